"""Hand-written NumPy GRUs (float64, or complex128 for the complex step) for the tests:
the equations of shared/params.py, one time step at a time; central finite differences
and exact complex-step derivatives of their mean cross-entropy."""
import numpy as np

from shared import params as P
from shared.registry import make_impl


def _cross_entropy(logits: np.ndarray, Y: np.ndarray):
  """mean over (T*B) of -log softmax(logits)[y], y = Y.T flattened (real or complex)."""
  y = np.asarray(Y).T.reshape(-1)
  z = np.asarray(logits, np.result_type(logits, np.float64))
  z = z - z.real.max(axis=1, keepdims=True)  # a real shift: softmax is unchanged
  logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
  return -logp[np.arange(len(y)), y].mean()


def mean_cross_entropy(logits: np.ndarray, Y: np.ndarray) -> float:
  return float(_cross_entropy(logits, Y))


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _wide(p: dict) -> dict:
  """float64 copies (complex128 ones stay complex)."""
  return {k: np.asarray(v, np.result_type(v, np.float64)) for k, v in p.items()}


def scratch(p, X, H):
  """d2l's scratch model. X int (B, T), H (B, h) -> logits (T*B, V), H."""
  p = _wide(p)
  outputs = []
  for x in np.asarray(X).T:                       # x (B,): W[x] is one-hot(x) @ W
    Z = sigmoid(p["W_xz"][x] + H @ p["W_hz"] + p["b_z"])
    R = sigmoid(p["W_xr"][x] + H @ p["W_hr"] + p["b_r"])
    H_tilda = np.tanh(p["W_xh"][x] + (R * H) @ p["W_hh"] + p["b_h"])
    H = Z * H + (1 - Z) * H_tilda
    outputs.append(H @ p["W_hq"] + p["b_q"])
  return np.concatenate(outputs), H


def builtin(p, X, H):
  """torch.nn.GRU's equations, six biases. X int (B, T), H (B, h) -> logits (T*B, V), H."""
  p = _wide(p)
  outputs = []
  for x in np.asarray(X).T:
    r = sigmoid(p["W_ir"][x] + p["b_ir"] + H @ p["W_hr"] + p["b_hr"])
    z = sigmoid(p["W_iz"][x] + p["b_iz"] + H @ p["W_hz"] + p["b_hz"])
    n = np.tanh(p["W_in"][x] + p["b_in"] + r * (H @ p["W_hn"] + p["b_hn"]))
    H = (1 - z) * n + z * H
    outputs.append(H @ p["W_hq"] + p["b_q"])
  return np.concatenate(outputs), H


MODELS = {"scratch": scratch, "builtin": builtin}


def zeros_state(X, p):
  return np.zeros((len(X), p["W_hq"].shape[0]))


def finite_diff(model, p, X, Y, name, index, eps=1e-6) -> float:
  """d loss / d p[name][index] by central differences in float64."""
  def loss(delta):
    q = {k: np.array(v, np.float64) for k, v in p.items()}
    q[name][index] += delta
    return mean_cross_entropy(model(q, X, zeros_state(X, q))[0], Y)
  return (loss(eps) - loss(-eps)) / (2 * eps)


def complex_step_grads(model, p, X, Y, h=1e-30) -> dict:
  """The exact gradient of the mean cross-entropy, entry by entry: Im f(x + i h) / h.

  No difference of two nearby values is taken, so there is no cancellation: the result
  is correct to float64 round-off (about 1e-16), where finite differences reach 1e-9.
  """
  grads = {}
  for name, value in p.items():
    g = np.zeros(np.shape(value))
    for index in np.ndindex(g.shape):
      q = {k: np.array(v, np.complex128) for k, v in p.items()}
      q[name][index] += 1j * h
      g[index] = _cross_entropy(model(q, X, zeros_state(X, q))[0], Y).imag / h
    grads[name] = g
  return grads


def random_params(layout_shapes: dict, rng, scale=0.5) -> dict:
  """Random float32 parameters large enough that every gate and bias matters."""
  return {k: (rng.standard_normal(s) * scale).astype(np.float32) for k, s in layout_shapes.items()}


def random_impl(name, config, seed=0, scale=0.5):
  """(impl, params): implementation `name` on the CPU with random_params set."""
  impl = make_impl(name, config, "cpu")
  shapes = P.shapes(impl.layout, config.vocab_size, config.num_hiddens)
  p = random_params(shapes, np.random.default_rng(seed), scale)
  impl.set_params(p)  # flax-grucell folds the six biases: the same function
  return impl, p
