"""bf16 mixed precision in JAX (the policy: shared/precision.py; mirrors
torch_impl/precision.py). Flax modules take `dtype=compute_dtype(config)` over float32
parameters; jax-scratch casts with `addmm`; every row's programs compile with BF16_OPTIONS
and round each gate with `sigmoid`, so that a bf16 op's result is rounded once, as torch's.
"""
import functools

import jax
import jax.numpy as jnp

# bf16 as written: by default XLA may keep "excess precision", computing a chain of bf16
# operations in float32 and skipping the roundings between them, so that a bf16 program
# rounds less often than torch, which rounds every bf16 op's result. Switched off, each
# bf16 op's result is rounded as the policy (shared/precision.py) and torch have it:
# measured at the seed's first minibatch, jax-scratch-bf16 against torch-scratch-bf16
# differed in 60% of the logits (RMS 4.0e-3, bf16's whole round-off) with excess precision.
BF16_OPTIONS = {"xla_allow_excess_precision": False}


def compute_dtype(config):
  """The products' dtype under mixed precision (bf16: shared/precision.py's policy), else
  None: every model then computes in its parameters' dtype."""
  return jnp.bfloat16 if config.precision == "bf16" else None


def at_least_float32(x):
  """x in float32 when it is bf16 (the loss's inputs), else as it is (float32, float64)."""
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def addmm(bias, a, b, dtype=None):
  """bias + a @ b as torch.addmm computes it, in the products' dtype of shared/precision.py:
  with `dtype` bf16, every operand rounded to bf16, the sum taken in float32 and rounded
  to bf16 once (what torch.autocast's bf16 addmm returns); with None, in the operands' dtype."""
  if dtype is None:
    return bias + a @ b
  total = jnp.dot(a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)
  return (bias.astype(dtype).astype(jnp.float32) + total).astype(dtype)


def sigmoid(x):
  """The logistic function, correctly rounded in x's dtype: computed in float32 at least.
  XLA:CPU's bf16 logistic is not (measured: 34% of bf16 results one unit in the last place
  off the correctly rounded value, where torch's bf16 sigmoid is exact); the policy
  (shared/precision.py) rounds each gate once, as torch does."""
  return jax.nn.sigmoid(at_least_float32(x)).astype(x.dtype)


def dense_options(dtype) -> dict:
  """Keyword arguments of a Flax Dense (Linen) that computes bias + x @ W as torch's bf16
  addmm does, rounded once after the bias (`rounded` does the rounding): float32 sums of
  the bf16 operands. A plain Dense(dtype=bf16) rounds the product, then adds the bias in
  bf16 and rounds again; measured at the seed's first minibatch that one extra rounding
  made flax-gru-bf16 differ from torch-cudnn-bf16 in 43% of the logits (RMS 3.1e-3)."""
  if dtype is None:
    return {}
  return {"dtype": dtype, "dot_general": functools.partial(jax.lax.dot_general, preferred_element_type=jnp.float32)}


def rounded(x, dtype):
  """x rounded to the products' dtype (None: as it is)."""
  return x if dtype is None else x.astype(dtype)
