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
float32 (its bf16_deviation in shared/rows.py). No bf16 loss scaling: bf16 has float32's
exponent range.

Standard library only.
"""

# The unit round-off u of each arithmetic: half the distance from 1 to the next number,
# 2^-(significand bits). bf16 keeps 8 significand bits (7 stored): u = 2^-8 = 3.9e-3.
UNIT_ROUNDOFF = {"float32": 2.0 ** -24, "float64": 2.0 ** -53, "bf16": 2.0 ** -8}

POLICY = {"weights": "float32", "grads": "float32", "products": "bfloat16", "gates": "bfloat16",
          "state": "float32", "logits": "bfloat16", "loss": "float32"}


def policy(precision: str) -> dict:
  """{quantity: dtype name} of a run at `precision` (a shared.config.PRECISIONS name)."""
  if precision == "bf16":
    return dict(POLICY)
  return {k: "float64" if precision == "float64" else "float32" for k in POLICY}
