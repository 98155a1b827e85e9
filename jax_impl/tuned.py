"""Both GRUs of shared/params.py written for speed in JAX: `jax-tuned` (the scratch model) and
`jax-tuned-builtin` (the built-in one, as flax-gru computes it).

The same functions as jax_impl/scratch.py and jax_impl/builtin.py's FlaxGRU, with the
recurrence's backward written by hand (jax.custom_vjp; mirrors torch_impl/tuned.py). Autodiff of a `lax.scan` accumulates every
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

The built-in model's step takes ONE product, G = H W_h + b_h (B, 3h) = [G_r G_z A], since its
reset gate multiplies after it: R = sig(x_r + G_r), Z = sig(x_z + G_z), N = tanh(x_n + R A),
H = N + Z (H_prev - N). Its backward:
    dN' = g (1 - Z) (1 - N^2);  dG = [dN' A R (1 - R),  g (H_prev - N) Z (1 - Z),  dN' R]
    dH_prev = g Z + dG W_h^T
and after the scan: dW_h = H_prev^T dG,  db_h = sum dG,  dxp = [dG_r dG_z dN'].
"""
import functools

import jax
import jax.numpy as jnp

from jax_impl import train
from shared import params as P

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


def _scan_builtin(xp, H, W_h, b_h, unroll):
  """The built-in recurrence: xp (T, B, 3h) input projections [r z n], H (B, h), W_h (h, 3h),
  b_h (3h,) -> (H_prev, RZ, N, A, Hs), each (T, B, .); A = H W_hn + b_hn."""
  h = H.shape[-1]

  def step(H, x):                                                    # x (B, 3h)
    G = H @ W_h + b_h                                                # (B, 3h): the step's one product
    RZ = jax.nn.sigmoid(x[:, :2 * h] + G[:, :2 * h])                 # (B, 2h)
    N = jnp.tanh(x[:, 2 * h:] + RZ[:, :h] * G[:, 2 * h:])            # (B, h)
    H_next = N + RZ[:, h:] * (H - N)                                 # torch's GRU cell's form
    return H_next, (H, RZ, N, G[:, 2 * h:], H_next)
  return jax.lax.scan(step, H, xp, unroll=unroll)[1]


def recurrence_builtin_autodiff(xp, H, W_h, b_h, unroll=1):
  """(Hs (T, B, h), final H (B, h)), differentiated by autodiff of the scan."""
  Hs = _scan_builtin(xp, H, W_h, b_h, unroll)[4]
  return Hs, Hs[-1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def recurrence_builtin(xp, H, W_h, b_h, unroll=1):
  """The same (Hs, final H), with the built-in backward of the module docstring."""
  return recurrence_builtin_autodiff(xp, H, W_h, b_h, unroll)


def _forward_builtin(xp, H, W_h, b_h, unroll):
  H_prev, RZ, N, A, Hs = _scan_builtin(xp, H, W_h, b_h, unroll)
  return (Hs, Hs[-1]), (H_prev, RZ, N, A, W_h)


def _backward_builtin(unroll, saved, cotangents):
  H_prev, RZ, N, A, W_h = saved
  dHs, dH_last = cotangents                                          # (T, B, h), (B, h)
  h = H_prev.shape[-1]

  def step(dH, inputs):                                              # dH: from step t+1
    g, Hp, RZ, N, A = inputs
    g = g + dH
    R, Z = RZ[:, :h], RZ[:, h:]
    dN = g * (1 - Z) * (1 - N * N)
    dG = jnp.concatenate([dN * A * R * (1 - R), g * (Hp - N) * Z * (1 - Z), dN * R], axis=1)  # (B, 3h)
    return g * Z + dG @ W_h.T, (dG, dN)
  dH0, (dG, dN) = jax.lax.scan(step, dH_last, (dHs, H_prev, RZ, N, A), reverse=True, unroll=unroll)
  rows = dG.reshape(-1, 3 * h)                                       # (T*B, 3h)
  dW_h = H_prev.reshape(-1, h).T @ rows                              # (h, 3h): one product
  return jnp.concatenate([dG[..., :2 * h], dN], axis=2), dH0, dW_h, rows.sum(0)


recurrence_builtin.defvjp(_forward_builtin, _backward_builtin)


def gru_builtin(params: dict, X, H, unroll: int = 1, backward: str = "hand-written"):
  """The built-in model on its canonical parameters: X int (B, T), H (B, h) -> logits (T*B, V)
  time-major, final H (B, h)."""
  p, h = params, H.shape[-1]
  stack = lambda kind: jnp.concatenate([p[f"{kind}{g}"] for g in "rzn"], axis=-1)  # noqa: E731
  xp = stack("W_i")[X.T] + stack("b_i")                              # (T, B, 3h): one-hot @ W_i
  run = recurrence_builtin if backward == "hand-written" else recurrence_builtin_autodiff
  Hs, H = run(xp, H, stack("W_h"), stack("b_h"), unroll)
  return Hs.reshape(-1, h) @ p["W_hq"] + p["b_q"], H                 # (T*B, V)


def _apply(gru):
  def apply(config, unroll, dtype):
    backward = config.option("jax_backward", "") or BACKWARDS[0]
    return lambda p, X, H: gru(p, X, H, unroll, backward)
  return apply


def _tuned(model):
  """A tuned row's constructor; its execution names its backward (the ablation tells its
  settings apart by it)."""
  def make(info, config, device=None, cls=None):
    impl = train._row(model)(info, config, device, cls)
    impl.execution += f"; recurrence backward {config.option('jax_backward', '') or BACKWARDS[0]}"
    return impl
  return make


jax_tuned = _tuned(train.Model(_apply(gru)))
# The canonical built-in layout is its own params tree: each name a leaf of a flat dict.
jax_tuned_builtin = _tuned(train.Model(_apply(gru_builtin), {n: (n,) for n in P.BUILTIN_NAMES}))
