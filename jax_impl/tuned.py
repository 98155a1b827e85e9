"""The scratch GRU (shared/params.py, "Scratch model") written for speed in JAX: `jax-tuned`.

The same function as jax_impl/scratch.py, with the recurrence's backward written by hand
(jax.custom_vjp; mirrors torch_impl/tuned.py). Autodiff of a `lax.scan` accumulates every
weight gradient inside the reverse scan, T small (h, B) @ (B, 3h) products; here the forward
keeps its gates, the reverse scan computes the state gradients only, and each recurrent
weight gradient is ONE (h, T*B) @ (T*B, .) product afterwards, as cuDNN does. The input and
output layers stay with autodiff: their products already cover all T*B rows at once.

Backward of one step (g = dH_t from the output plus the carry from step t+1; primes are
the pre-activations):
    dN' = g (1 - Z) (1 - N^2);  d(R H) = dN' W_hh^T
    dZ' = g (H_prev - N) Z (1 - Z);  dR' = d(R H) H_prev R (1 - R)
    dH_prev = g Z + d(R H) R + [dZ' dR'] W_zr^T
and after the scan: dW_zr = H_prev^T [dZ' dR'],  dW_hh = (R H_prev)^T dN',  dxp = [dZ' dR' dN'].
"""
import functools

import jax
import jax.numpy as jnp

from jax_impl import train

BACKWARDS = ("hand-written", "autodiff")  # the `backward` option (jax_impl/options.py)


def _scan(xp, H, W_zr, W_hh, unroll):
  """The recurrence: xp (T, B, 3h) input projections, H (B, h) -> (H_prev, ZR, N, Hs), each
  (T, B, .): the state each step starts from, its gates [Z R], its candidate, its output."""
  h = H.shape[-1]

  def step(H, x):                                                    # x (B, 3h)
    ZR = jax.nn.sigmoid(x[:, :2 * h] + H @ W_zr)                     # (B, 2h)
    N = jnp.tanh(x[:, 2 * h:] + (ZR[:, h:] * H) @ W_hh)              # (B, h)
    H_next = ZR[:, :h] * H + (1 - ZR[:, :h]) * N
    return H_next, (H, ZR, N, H_next)
  return jax.lax.scan(step, H, xp, unroll=unroll)[1]


def recurrence_autodiff(xp, H, W_zr, W_hh, unroll=1):
  """(Hs (T, B, h), final H (B, h)), differentiated by autodiff of the scan."""
  Hs = _scan(xp, H, W_zr, W_hh, unroll)[3]
  return Hs, Hs[-1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def recurrence(xp, H, W_zr, W_hh, unroll=1):
  """The same (Hs, final H), with the backward of the module docstring."""
  return recurrence_autodiff(xp, H, W_zr, W_hh, unroll)


def _forward(xp, H, W_zr, W_hh, unroll):
  H_prev, ZR, N, Hs = _scan(xp, H, W_zr, W_hh, unroll)
  return (Hs, Hs[-1]), (H_prev, ZR, N, W_zr, W_hh)


def _backward(unroll, saved, cotangents):
  H_prev, ZR, N, W_zr, W_hh = saved
  dHs, dH_last = cotangents                                          # (T, B, h), (B, h)
  h = H_prev.shape[-1]

  def step(dH, inputs):                                              # dH: from step t+1
    g, Hp, ZR, N = inputs
    g = g + dH
    Z, R = ZR[:, :h], ZR[:, h:]
    dN = g * (1 - Z) * (1 - N * N)
    dRH = dN @ W_hh.T
    dZR = jnp.concatenate([g * (Hp - N) * Z * (1 - Z), dRH * Hp * R * (1 - R)], axis=1)
    return g * Z + dRH * R + dZR @ W_zr.T, (dZR, dN)
  dH0, (dZR, dN) = jax.lax.scan(step, dH_last, (dHs, H_prev, ZR, N), reverse=True, unroll=unroll)

  def rows(a):
    return a.reshape(-1, a.shape[-1])                                # (T*B, .)
  dW_zr = rows(H_prev).T @ rows(dZR)                                 # (h, 2h): one product
  dW_hh = rows(ZR[..., h:] * H_prev).T @ rows(dN)                    # (h, h): one product
  return jnp.concatenate([dZR, dN], axis=2), dH0, dW_zr, dW_hh


recurrence.defvjp(_forward, _backward)


def gru(params: dict, X, H, unroll: int = 1, backward: str = "hand-written"):
  """X int (B, T), H (B, h) -> logits (T*B, V) time-major, final H (B, h)."""
  p, h = params, H.shape[-1]
  W_x = jnp.concatenate([p["W_xz"], p["W_xr"], p["W_xh"]], axis=1)   # (V, 3h)
  b_x = jnp.concatenate([p["b_z"], p["b_r"], p["b_h"]])              # (3h,)
  W_zr = jnp.concatenate([p["W_hz"], p["W_hr"]], axis=1)             # (h, 2h)
  xp = W_x[X.T] + b_x                                                # (T, B, 3h): one-hot @ W_x
  run = recurrence if backward == "hand-written" else recurrence_autodiff
  Hs, H = run(xp, H, W_zr, p["W_hh"], unroll)
  return Hs.reshape(-1, h) @ p["W_hq"] + p["b_q"], H                 # (T*B, V)


def _apply(config, unroll, dtype):
  backward = config.option("jax_backward", "") or BACKWARDS[0]
  return lambda p, X, H: gru(p, X, H, unroll, backward)


def jax_tuned(info, config, device=None, cls=None):
  """The tuned row; its execution names its backward (the ablation tells its settings apart by it)."""
  impl = train._row(train.Model(_apply))(info, config, device, cls)
  impl.execution += f"; recurrence backward {config.option('jax_backward', '') or BACKWARDS[0]}"
  return impl
