"""bfloat16 mixed precision: the casting policy every row follows, written once here.

`--precision bf16` trains every row twice, side by side in the same rounds: in float32 (the
row's own name) and in bf16 mixed precision (its twin, `<row>-bf16`), so that tokens/s at
both precisions are paired round by round and the twins' perplexities are compared on the
same minibatches from the same weights. The bf16 twins are judged against each other, in
their parity groups, with the tolerances of shared/metrics.py derived from bf16's unit
round-off (UNIT_ROUNDOFF).

THE POLICY (each quantity's dtype in a bf16 run; a float32 or float64 run holds all of them
in its own dtype):

  weights (the master copy), their gradients, the clipping norm, SGD   float32
  matrix products: hidden side of the gates, output layer              bf16 operands, float32
      sums, the result rounded to bf16 (a bias the framework adds inside the product, as
      torch's addmm does, is rounded to bf16 first and summed before the one rounding; a
      Flax Dense adds its bias after the product, in bf16: a second rounding)
  input projections: row gathers of the float32 weights               float32, rounded to
      bf16 where they enter a product's sum (one-hot @ W is the same numbers in bf16)
  gate pre-activations and the gates (sigmoid, tanh)                  bf16
  hidden state H: Z * H + (1 - Z) * H~ mixes bf16 gates with the      float32
      float32 state, and type promotion keeps it float32; carried between minibatches as
      float32, rounded to bf16 by every product it enters
  logits (the output product)                                         bf16
  loss: log-softmax and the mean over tokens                          float32

This is what `torch.autocast(device, torch.bfloat16)` around the forward pass and the loss
does to torch-scratch, torch-compile and torch-cudnn (autocast runs mm/addmm/linear in bf16
and log_softmax/nll_loss in float32); the JAX rows follow it with Flax's `dtype=bfloat16,
param_dtype=float32` and, in jax-scratch, explicit casts (jax_impl/scratch.py). Checked for
every row in tests/test_precision.py.

Known deviation, measured and reported: torch-reference is d2l's code line for line, which
adds every bias outside the products, `(x @ W_xz) + (H @ W_hz) + b_z`: under autocast the
products are bf16 and the float32 bias promotes their sum, so its gates and logits run in
float32 (DEVIATIONS). No bf16 loss scaling: bf16 has float32's exponent range.

Standard library only.
"""
import dataclasses

# The unit round-off u of each arithmetic: half the distance from 1 to the next number,
# 2^-(significand bits). bf16 keeps 8 significand bits (7 stored): u = 2^-8 = 3.9e-3.
UNIT_ROUNDOFF = {"float32": 2.0 ** -24, "float64": 2.0 ** -53, "bf16": 2.0 ** -8}

POLICY = {"weights": "float32", "grads": "float32", "products": "bfloat16", "gates": "bfloat16",
          "state": "float32", "logits": "bfloat16", "loss": "float32"}

# Rows whose idiom departs from POLICY under bf16, and how (asserted in tests/test_precision.py).
DEVIATIONS = {
    "torch-reference": ("d2l's code adds each bias outside the products, (x @ W_xz) + (H @ W_hz) + b_z: "
                        "under autocast the bf16 products meet a float32 bias and promote, so its gates "
                        "and logits are float32 where the policy has bf16"),
}
# Rows that cannot run bf16, and why (the check runs for every row; a run without --impls
# leaves them out).
REFUSED = {n: "Keras's mixed_bfloat16 policy keeps the GRU state and gates in bf16, against this "
              "repository's casting policy (float32 state); not measured here" for n in ("keras-jax", "keras-torch")}


# Rows that cannot run float64, and why: the float64 truth leaves them out, saying so.
FLOAT64_REFUSED = {n: "Keras 3.15.1 computes float64 in float32 on the jax and torch backends: its type "
                      "promotion (keras.backend.result_type) maps float64 to float32 on every backend but "
                      "TensorFlow, so keras.ops.matmul of two float64 tensors multiplies and returns float32 "
                      "(measured: 1e-5 off a 256-term float64 product, torch's own 2e-14)"
                   for n in ("keras-jax", "keras-torch")}


def float64_rows(names) -> list:
  """The rows among `names` that can train in float64 (the truth's rows)."""
  return [n for n in names if n.removesuffix("-bf16") not in FLOAT64_REFUSED]


def policy(precision: str) -> dict:
  """{quantity: dtype name} of a run at `precision` (a shared.config.PRECISIONS name)."""
  if precision == "bf16":
    return dict(POLICY)
  return {k: "float64" if precision == "float64" else "float32" for k in POLICY}


def row_config(name: str, config):
  """The configuration row `name` trains with: in a bf16 run, bf16 for a twin and full
  float32 for the row itself; any other run's configuration unchanged."""
  if config.precision != "bf16":
    return config
  twin = name.endswith("-bf16")
  return dataclasses.replace(config, precision="bf16" if twin else "highest")


def expand(names: list, precision: str) -> list:
  """The rows a run trains: with bf16, every row and then its bf16 twin."""
  return list(names) + ([f"{n}-bf16" for n in names] if precision == "bf16" else [])


def check(names, config, device=None) -> None:
  """ValueError (one line naming the fix) for a bf16 or float64 run that cannot be, before any
  training."""
  if config.precision == "float64" and len(float64_rows(names)) < len(names):
    n = next(n for n in names if n in FLOAT64_REFUSED)
    raise ValueError(f"{n} cannot run in float64: {FLOAT64_REFUSED[n]}; leave it out of --impls or drop "
                     "--precision float64 (--truth runs the float64 truth of the rows that can)")
  if config.precision != "bf16":
    return
  refused = [n for n in names if n in REFUSED]
  if refused:
    raise ValueError(f"{refused[0]} cannot run in bf16: {REFUSED[refused[0]]}; leave it out of --impls "
                     "or drop --precision bf16")
  if config.devices > 1:
    raise ValueError("--precision bf16 trains each row beside its bf16 twin on one device; data-parallel "
                     "twins in bf16 are not measured yet: drop --devices or --precision bf16")
