r"""The two GRU models, their canonical parameter layouts and seeded initializers.

THE EQUATIONS (every implementation points here). x_t is the one-hot of token t
(a row gather W[x_t] is the same arithmetic), H_0 = 0 unless carried, all products
are row-vector @ (in, out) matrices, sigma is the logistic sigmoid.

Scratch model (d2l's GRU chapter; reset gate BEFORE the hidden matmul):
    Z_t  = sigma(x_t W_xz + H_{t-1} W_hz + b_z)
    R_t  = sigma(x_t W_xr + H_{t-1} W_hr + b_r)
    H~_t = tanh(x_t W_xh + (R_t * H_{t-1}) W_hh + b_h)
    H_t  = Z_t * H_{t-1} + (1 - Z_t) * H~_t
    O_t  = H_t W_hq + b_q

Built-in model (torch.nn.GRU / cuDNN; reset gate AFTER the hidden matmul, six biases):
    r_t = sigma(x_t W_ir + b_ir + h_{t-1} W_hr + b_hr)
    z_t = sigma(x_t W_iz + b_iz + h_{t-1} W_hz + b_hz)
    n_t = tanh(x_t W_in + b_in + r_t * (h_{t-1} W_hn + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}
    O_t = h_t W_hq + b_q

Flax's stock nn.GRUCell computes the built-in function with four biases
(ir, iz, in, hn): `fold_builtin` maps six to four (b_ir + b_hr, b_iz + b_hz). Same
forward pass, different training: the folded bias gets one gradient where torch's pair
gets two, and the duplicate counts twice in the clipping norm.

Model outputs are time-major and flattened, (steps * batch, vocab), as d2l returns them.
All weights are stored (in, out) so that X @ W is the product in both layouts.
"""
import numpy as np

SCRATCH = "scratch"
BUILTIN = "builtin"

SCRATCH_NAMES = ("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h", "W_hq", "b_q")
BUILTIN_NAMES = ("W_ir", "W_iz", "W_in", "W_hr", "W_hz", "W_hn",
                 "b_ir", "b_iz", "b_in", "b_hr", "b_hz", "b_hn", "W_hq", "b_q")
NAMES = {SCRATCH: SCRATCH_NAMES, BUILTIN: BUILTIN_NAMES}


def shapes(layout: str, vocab_size: int, num_hiddens: int) -> dict:
  """{name: shape} of a layout, in its canonical order."""
  V, H = vocab_size, num_hiddens

  def shape(name):
    if name == "W_hq":
      return (H, V)
    if name == "b_q":
      return (V,)
    if name.startswith("b_"):
      return (H,)
    return (V, H) if name[2] in "xi" else (H, H)  # W_x* / W_i* read the input
  return {n: shape(n) for n in NAMES[layout]}


def init_scratch(rng: np.random.Generator, vocab_size: int, num_hiddens: int) -> dict:
  """d2l's `get_params`: weights normal(0, 0.01), biases zero, drawn in the seed's order."""
  out = {}
  for name, shape in shapes(SCRATCH, vocab_size, num_hiddens).items():
    if name.startswith("b_"):
      out[name] = np.zeros(shape, np.float32)
    else:
      out[name] = (rng.standard_normal(shape) * 0.01).astype(np.float32)
  return out


def init_builtin(rng: np.random.Generator, vocab_size: int, num_hiddens: int) -> dict:
  """What torch.nn.GRU + nn.Linear(num_hiddens, vocab) draw by default.

  Every GRU weight and bias is U(-k, k) with k = 1/sqrt(num_hiddens); nn.Linear's
  kaiming_uniform(a=sqrt(5)) weight and its bias have the same bound, 1/sqrt(fan_in).
  """
  k = 1.0 / np.sqrt(num_hiddens)
  return {name: rng.uniform(-k, k, shape).astype(np.float32)
          for name, shape in shapes(BUILTIN, vocab_size, num_hiddens).items()}


def init_params(layout: str, seed: int, vocab_size: int, num_hiddens: int) -> dict:
  """The canonical initial weights of `layout` from one integer seed."""
  init = {SCRATCH: init_scratch, BUILTIN: init_builtin}[layout]
  return init(np.random.default_rng(seed), vocab_size, num_hiddens)


def matmul_flops_per_token(vocab_size: int, num_hiddens: int) -> int:
  """Matrix-product FLOPs of one training token, forward and backward, by the equations above.

  Per time step and sequence, both models multiply H by three (h, h) hidden blocks (z, r
  and the candidate) and by the (h, V) output layer: 2 (3 h^2 + h V) FLOPs forward; the
  input projections are row gathers of the one-hot inputs (no FLOPs). The backward pass
  costs twice the forward (gradients of activations and of weights): 3x in all. The
  elementwise gate arithmetic is left out. Used to tell overhead-bound from compute-bound.
  """
  h, V = num_hiddens, vocab_size
  return 3 * 2 * (3 * h * h + h * V)


def fold_builtin(p: dict) -> dict:
  """Six-bias built-in layout -> the same dict with b_hr, b_hz folded into b_ir, b_iz (zeroed)."""
  q = dict(p)
  q["b_ir"], q["b_hr"] = p["b_ir"] + p["b_hr"], np.zeros_like(p["b_hr"])
  q["b_iz"], q["b_hz"] = p["b_iz"] + p["b_hz"], np.zeros_like(p["b_hz"])
  return q


def check(params: dict, layout: str, vocab_size: int, num_hiddens: int, dtype="float32") -> dict:
  """Returns `dtype` copies of `params` after checking names and shapes against `layout`.

  The canonical initializers draw float32; a float64 run starts from exactly those
  values (every float32 is a float64), so both precisions share one starting point.
  """
  want = shapes(layout, vocab_size, num_hiddens)
  if set(params) != set(want):
    raise ValueError(f"{layout} layout needs {sorted(want)}, got {sorted(params)}")
  out = {}
  for name, shape in want.items():
    arr = np.asarray(params[name], dtype)
    if arr.shape != shape:
      raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    out[name] = arr.copy()
  return out
