"""The from-scratch GRU (d2l equations: shared/params.py, "Scratch model") in pure JAX.

A pure function over the scratch-layout parameter dict; `lax.scan` over time, so no
Python loop over time steps reaches the compiled program. Mirrors torch_impl/scratch.py's
fast `forward`: row gathers for all input projections before the scan, z and r hidden
matmuls fused into one (h, 2h) product.
"""
import jax
import jax.numpy as jnp
import numpy as np

from jax_impl import precision
from shared import params as P


def gru(params: dict, X, H, unroll: int = 1, dtype=None):
  """X int (B, T), H (B, h) -> logits (T*B, V) time-major, final H (B, h). `dtype`: the
  products' dtype under mixed precision (None: the parameters'); the state stays in H's."""
  p, h = params, H.shape[-1]
  W_x = jnp.concatenate([p["W_xz"], p["W_xr"], p["W_xh"]], axis=1)   # (V, 3h)
  b_x = jnp.concatenate([p["b_z"], p["b_r"], p["b_h"]])              # (3h,)
  W_zr = jnp.concatenate([p["W_hz"], p["W_hr"]], axis=1)             # (h, 2h)
  xp = W_x[X.T] + b_x                                                # (T, B, 3h): one-hot @ W_x

  def step(H, x):                                                    # x (B, 3h)
    ZR = precision.sigmoid(precision.addmm(x[:, :2 * h], H, W_zr, dtype))         # (B, 2h)
    Z, R = ZR[:, :h], ZR[:, h:]
    H_tilda = jnp.tanh(precision.addmm(x[:, 2 * h:], R * H, p["W_hh"], dtype))
    H = Z * H + (1 - Z) * H_tilda                                    # bf16 gates promote to H's dtype
    return H, H

  H, Hs = jax.lax.scan(step, H, xp, unroll=unroll)                   # Hs (T, B, h)
  return precision.addmm(p["b_q"], Hs.reshape(-1, h), p["W_hq"], dtype), H     # (T*B, V)


def to_tree(p: dict) -> dict:
  """Canonical scratch layout -> the pytree `gru` takes, of NumPy arrays (the caller puts
  them on its device): the identity (same names)."""
  return {k: np.asarray(v) for k, v in p.items()}


def from_tree(tree: dict) -> dict:
  """The pytree (or its gradients) -> canonical scratch layout, in canonical order."""
  return {n: tree[n] for n in P.SCRATCH_NAMES}  # jax orders dict pytrees by sorted key
