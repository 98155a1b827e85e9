"""Known-bad implementations: each mutation patches jax-scratch (or the harness) with a real
bug of the kind a port makes, so that a test, or bench/mutations.py, can show that the
report's own checks catch it. Each is a context manager; implementations built inside it
carry the bug (JAX traces the patched functions when it compiles).

    with MUTATIONS["reset-after-matmul"]():
      block = compare.run(config, [Row("torch-reference"), Row("jax-scratch")], corpus, vocab, "cpu")

Issue 16's table, and two more: the clipping rule with an epsilon (caught in float64
only: it changes an update by about 1e-6 / norm) and clipping removed. FAMILIES are
mutations of adjustable size, for finding the smallest one each check catches.
"""
import contextlib
from unittest import mock

import jax
import jax.numpy as jnp
import optax
import torch

from jax_impl import scratch, tuned
from jax_impl import train as jax_train
from shared import parity
from torch_impl import train as torch_train
from torch_impl import tuned as torch_tuned

_real_pairs = parity.pairs
_real_sgd = torch_train.clip_and_sgd_

_real_gru, _real_train_fns = scratch.gru, jax_train.make_train_fns


def _with_params(change):
  """scratch.gru itself, on parameters changed by `change(params) -> params`: a bias dropped
  (multiplied by 0, so its gradient is 0 too) or a weight scaled."""
  return lambda params, X, H, unroll=1, dtype=None: _real_gru(change(params), X, H, unroll=unroll, dtype=dtype)


def gru_reset_after(params, X, H, unroll=1, dtype=None, reset_after=True):
  """scratch.gru with the reset gate applied after the hidden matmul (the built-in model's
  equation, shared/params.py); reset_after=False is scratch.gru's own arithmetic, which a
  test checks bit for bit, so that this copy cannot drift from it. Float32 and float64 only
  (the mutations are judged there), so `dtype`, bf16's, must be None."""
  if dtype is not None:
    raise ValueError("the mutated GRU runs in float32 or float64 only")
  p, h = params, H.shape[-1]
  W_x = jnp.concatenate([p["W_xz"], p["W_xr"], p["W_xh"]], axis=1)
  b_x = jnp.concatenate([p["b_z"], p["b_r"], p["b_h"]])
  W_zr = jnp.concatenate([p["W_hz"], p["W_hr"]], axis=1)
  xp = W_x[X.T] + b_x

  def step(H, x):
    ZR = jax.nn.sigmoid(x[:, :2 * h] + H @ W_zr)
    Z, R = ZR[:, :h], ZR[:, h:]
    hidden = R * (H @ p["W_hh"]) if reset_after else (R * H) @ p["W_hh"]
    H = Z * H + (1 - Z) * jnp.tanh(x[:, 2 * h:] + hidden)
    return H, H
  H, Hs = jax.lax.scan(step, H, xp, unroll=unroll)
  return Hs.reshape(-1, h) @ p["W_hq"] + p["b_q"], H


def _no_epoch_reset(apply, config):
  """make_train_fns whose epoch starts from the last epoch's H instead of zero."""
  loss_fn, train_step, _, tx = _real_train_fns(apply, config)

  def train_epoch(state, Xs, Ys):
    state, (losses, clipped) = jax.lax.scan(train_step, state, (Xs, Ys))
    return state, (losses.mean(), clipped.sum())
  return loss_fn, train_step, train_epoch, tx


def _clip_with_epsilon(theta, eps=1e-6):
  """The clipping rule with an epsilon: theta / (norm + eps), against the seed's theta / norm."""
  def update(updates, state, params=None):
    norm = optax.tree.norm(updates)
    scale = jnp.where(norm > theta, theta / (norm + eps), 1.0)
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), updates), state
  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _patch(target, value):
  return lambda: mock.patch(target, value)


def _uncounted(apply, config):
  """make_train_fns whose steps report no clipping: the count a report gives is lost."""
  loss_fn, train_step, _, tx = _real_train_fns(apply, config)

  def train_epoch(state, Xs, Ys):
    state = state._replace(H=jnp.zeros_like(state.H))
    state, (losses, clipped) = jax.lax.scan(train_step, state, (Xs, Ys))
    return state, (losses.mean(), clipped.sum() * 0)
  return loss_fn, train_step, train_epoch, tx


def _tuned_scan_reset_after(xp, H, W_zr, W_hh, unroll=1):
  """jax_impl/tuned.py's _scan with the reset gate after the hidden matmul: its forward pass
  (and the residuals its backward reads) wrong."""
  h = H.shape[-1]

  def step(H, x):
    ZR = jax.nn.sigmoid(x[:, :2 * h] + H @ W_zr)
    N = jnp.tanh(x[:, 2 * h:] + ZR[:, h:] * (H @ W_hh))
    H_next = ZR[:, :h] * H + (1 - ZR[:, :h]) * N
    return H_next, (H, ZR, N, H_next)
  return jax.lax.scan(step, H, xp, unroll=unroll)[1]


def tuned_backward(unroll, saved, cotangents, wrong=""):
  """A copy of jax_impl/tuned.py's _backward with one bug: "state", the reset gate's path
  dropped from the state gradient (dH_prev without d(R H) R); "weights", W_hh's gradient
  taken against H_prev instead of R H_prev; "" none (a test checks that copy bit for bit)."""
  H_prev, ZR, N, W_zr, W_hh = saved
  dHs, dH_last = cotangents
  h = H_prev.shape[-1]

  def step(dH, inputs):
    g, Hp, ZR, N = inputs
    g = g + dH
    Z, R = ZR[:, :h], ZR[:, h:]
    dN = g * (1 - Z) * (1 - N * N)
    dRH = dN @ W_hh.T
    dZR = jnp.concatenate([g * (Hp - N) * Z * (1 - Z), dRH * Hp * R * (1 - R)], axis=1)
    return g * Z + (0 if wrong == "state" else dRH * R) + dZR @ W_zr.T, (dZR, dN)
  dH0, (dZR, dN) = jax.lax.scan(step, dH_last, (dHs, H_prev, ZR, N), reverse=True, unroll=unroll)
  rows = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
  dW_zr = rows(H_prev).T @ rows(dZR)
  dW_hh = rows(H_prev if wrong == "weights" else ZR[..., h:] * H_prev).T @ rows(dN)
  return jnp.concatenate([dZR, dN], axis=2), dH0, dW_zr, dW_hh


def _tuned_recurrence(wrong: str):
  """jax_impl/tuned.py's recurrence with tuned_backward(wrong) as its backward."""
  recurrence = jax.custom_vjp(tuned.recurrence_autodiff, nondiff_argnums=(4,))
  recurrence.defvjp(tuned._forward, lambda unroll, saved, ct: tuned_backward(unroll, saved, ct, wrong))
  return recurrence


def _torch_scan_reset_after(xp, H, W_zr, W_hh):
  """torch_impl/tuned.py's _scan with the reset gate after the hidden matmul."""
  h, out = H.shape[-1], ([], [], [], [])
  for x in xp.unbind(0):
    ZR = torch.sigmoid(torch.addmm(x[:, :2 * h], H, W_zr))
    N = torch.tanh(x[:, 2 * h:] + ZR[:, h:] * (H @ W_hh))
    out[0].append(H)
    H = ZR[:, :h] * H + (1 - ZR[:, :h]) * N
    out[1].append(ZR), out[2].append(N), out[3].append(H)
  return tuple(map(torch.stack, out))


def torch_backward(wrong=""):
  """A copy of torch_impl/tuned.py's Recurrence.backward with the bugs of tuned_backward."""
  def backward(ctx, dHs, dH):
    H_prev, ZR, N, W_zr, W_hh = ctx.saved_tensors
    h, dxp = H_prev.shape[-1], []
    for t in range(len(H_prev) - 1, -1, -1):
      g, Hp, Z, R, Nt = dHs[t] + dH, H_prev[t], ZR[t, :, :h], ZR[t, :, h:], N[t]
      dN = g * (1 - Z) * (1 - Nt * Nt)
      dRH = dN @ W_hh.T
      dZR = torch.cat([g * (Hp - Nt) * Z * (1 - Z), dRH * Hp * R * (1 - R)], dim=1)
      dH = torch.addmm(g * Z + (0 if wrong == "state" else dRH * R), dZR, W_zr.T)
      dxp.append(torch.cat([dZR, dN], dim=1))
    rows = torch.stack(dxp[::-1]).flatten(0, 1)
    dW_zr = H_prev.flatten(0, 1).T @ rows[:, :2 * h]
    dW_hh = (H_prev if wrong == "weights" else ZR[..., h:] * H_prev).flatten(0, 1).T @ rows[:, 2 * h:]
    return rows.unflatten(0, H_prev.shape[:2]), dH, dW_zr, dW_hh
  return staticmethod(backward)


def _tuned_scan_builtin_reset_before(xp, H, W_h, b_h, unroll=1):
  """jax_impl/tuned.py's _scan_builtin with the reset gate before the candidate's product (the
  scratch model's equation): N = tanh(x_n + (R H) W_hn + b_hn)."""
  h = H.shape[-1]

  def step(H, x):
    G = H @ W_h + b_h
    RZ = jax.nn.sigmoid(x[:, :2 * h] + G[:, :2 * h])
    A = (RZ[:, :h] * H) @ W_h[:, 2 * h:] + b_h[2 * h:]
    N = jnp.tanh(x[:, 2 * h:] + A)
    H_next = N + RZ[:, h:] * (H - N)
    return H_next, (H, RZ, N, A, H_next)
  return jax.lax.scan(step, H, xp, unroll=unroll)[1]


def tuned_builtin_backward(unroll, saved, cotangents, wrong=""):
  """A copy of jax_impl/tuned.py's _backward_builtin with one bug: "state", the update gate's
  direct path dropped from the state gradient (dH_prev = dG W_h^T without g Z); "weights",
  the hidden weights' gradient taken against the input side's [dG_r dG_z dN'] instead of dG
  (dA without its R); "" none (a test checks that copy bit for bit)."""
  H_prev, RZ, N, A, W_h = saved
  dHs, dH_last = cotangents
  h = H_prev.shape[-1]

  def step(dH, inputs):
    g, Hp, RZ, N, A = inputs
    g = g + dH
    R, Z = RZ[:, :h], RZ[:, h:]
    dN = g * (1 - Z) * (1 - N * N)
    dG = jnp.concatenate([dN * A * R * (1 - R), g * (Hp - N) * Z * (1 - Z), dN * R], axis=1)
    return (0 if wrong == "state" else g * Z) + dG @ W_h.T, (dG, dN)
  dH0, (dG, dN) = jax.lax.scan(step, dH_last, (dHs, H_prev, RZ, N, A), reverse=True, unroll=unroll)
  dxp = jnp.concatenate([dG[..., :2 * h], dN], axis=2)
  rows = (dxp if wrong == "weights" else dG).reshape(-1, 3 * h)
  dW_h = H_prev.reshape(-1, h).T @ rows
  return dxp, dH0, dW_h, rows.sum(0)


def _tuned_recurrence_builtin(wrong: str):
  recurrence = jax.custom_vjp(tuned.recurrence_builtin_autodiff, nondiff_argnums=(4,))
  recurrence.defvjp(tuned._forward_builtin, lambda unroll, saved, ct: tuned_builtin_backward(unroll, saved, ct, wrong))
  return recurrence


def _torch_scan_builtin_reset_before(xp, H, W_h, b_h):
  """torch_impl/tuned.py's _scan_builtin with the reset gate before the candidate's product."""
  h, out = H.shape[-1], ([], [], [], [], [])
  for x in xp.unbind(0):
    G = torch.addmm(b_h, H, W_h)
    RZ = torch.sigmoid(x[:, :2 * h] + G[:, :2 * h])
    A = torch.addmm(b_h[2 * h:], RZ[:, :h] * H, W_h[:, 2 * h:])
    N = torch.tanh(x[:, 2 * h:] + A)
    out[0].append(H)
    H = N + RZ[:, h:] * (H - N)
    out[1].append(RZ), out[2].append(N), out[3].append(A), out[4].append(H)
  return tuple(map(torch.stack, out))


def torch_builtin_backward(wrong=""):
  """A copy of torch_impl/tuned.py's RecurrenceBuiltin.backward with the bugs of
  tuned_builtin_backward."""
  def backward(ctx, dHs, dH):
    H_prev, RZ, N, A, W_h = ctx.saved_tensors
    h, dGs, dNs = H_prev.shape[-1], [], []
    for t in range(len(H_prev) - 1, -1, -1):
      g, Hp, R, Z, Nt = dHs[t] + dH, H_prev[t], RZ[t, :, :h], RZ[t, :, h:], N[t]
      dN = g * (1 - Z) * (1 - Nt * Nt)
      dG = torch.cat([dN * A[t] * R * (1 - R), g * (Hp - Nt) * Z * (1 - Z), dN * R], dim=1)
      dH = torch.addmm(0 * g if wrong == "state" else g * Z, dG, W_h.T)
      dGs.append(dG), dNs.append(dN)
    dG = torch.stack(dGs[::-1])
    dxp = torch.cat([dG[..., :2 * h], torch.stack(dNs[::-1])], dim=2)
    rows = (dxp if wrong == "weights" else dG).flatten(0, 1)
    return dxp, dH, H_prev.flatten(0, 1).T @ rows, rows.sum(0)
  return staticmethod(backward)


def _sgd_doubled(params, grads, theta, lr):
  return _real_sgd(params, grads, theta, 2 * lr)


MUTATIONS = {
    "reset-after-matmul": _patch("jax_impl.scratch.gru", gru_reset_after),
    "gate-biases-dropped": _patch("jax_impl.scratch.gru", _with_params(
        lambda p: {**p, "b_z": p["b_z"] * 0, "b_r": p["b_r"] * 0})),
    "state-not-carried": _patch("jax_impl.train.carried", lambda H, config: jnp.zeros_like(H)),
    "state-not-reset": _patch("jax_impl.train.make_train_fns", _no_epoch_reset),
    "clip-epsilon": _patch("jax_impl.train.optimizer", lambda c: optax.chain(
        _clip_with_epsilon(c.grad_clip), optax.sgd(c.lr))),
    "clipping-removed": _patch("jax_impl.train.optimizer", lambda c: optax.sgd(c.lr)),
    "clipping-not-counted": _patch("jax_impl.train.make_train_fns", _uncounted),
    "learning-rate-doubled": _patch("jax_impl.train.optimizer", lambda c: optax.chain(
        optax.clip_by_global_norm(c.grad_clip), optax.sgd(2 * c.lr))),
    # jax-tuned's own code (tests/test_mutations.py, TUNED): its forward, each half of its
    # hand-written backward; its update is the other rows' (the mutations above reach it)
    "tuned-reset-after-matmul": _patch("jax_impl.tuned._scan", _tuned_scan_reset_after),
    "tuned-state-gradient": _patch("jax_impl.tuned.recurrence", _tuned_recurrence("state")),
    "tuned-weight-gradient": _patch("jax_impl.tuned.recurrence", _tuned_recurrence("weights")),
    # torch-tuned's (tests/test_mutations.py builds it in the test's process, where they reach it)
    "torch-tuned-reset-after-matmul": _patch("torch_impl.tuned._scan", _torch_scan_reset_after),
    "torch-tuned-state-gradient": lambda: mock.patch.object(torch_tuned.Recurrence, "backward", torch_backward("state")),
    "torch-tuned-weight-gradient": lambda: mock.patch.object(torch_tuned.Recurrence, "backward",
                                                             torch_backward("weights")),
    "torch-learning-rate-doubled": _patch("torch_impl.train.clip_and_sgd_", _sgd_doubled),
    # the built-in tuned rows': the same three kinds of bug in their own code
    "tuned-builtin-reset-before-matmul": _patch("jax_impl.tuned._scan_builtin", _tuned_scan_builtin_reset_before),
    "tuned-builtin-state-gradient": _patch("jax_impl.tuned.recurrence_builtin", _tuned_recurrence_builtin("state")),
    "tuned-builtin-weight-gradient": _patch("jax_impl.tuned.recurrence_builtin", _tuned_recurrence_builtin("weights")),
    "torch-tuned-builtin-reset-before-matmul": _patch("torch_impl.tuned._scan_builtin",
                                                      _torch_scan_builtin_reset_before),
    "torch-tuned-builtin-state-gradient": lambda: mock.patch.object(
        torch_tuned.RecurrenceBuiltin, "backward", torch_builtin_backward("state")),
    "torch-tuned-builtin-weight-gradient": lambda: mock.patch.object(
        torch_tuned.RecurrenceBuiltin, "backward", torch_builtin_backward("weights")),
    # the harness, not a row: every pair compared as (anchor, anchor), the row's own outputs unread
    "harness-compares-anchor-with-itself": _patch("shared.parity.pairs", lambda rows: [
        (group, anchor, anchor) for group, _, anchor in _real_pairs(rows)]),
}
# The mutations of the tuned rows' own code and of torch's update (tests/test_mutations.py
# pairs each with its tuned row); the others mutate jax-scratch, the JAX update or the harness.
TUNED_CODE = tuple(m for m in MUTATIONS if "tuned" in m) + ("torch-learning-rate-doubled",)


# Mutations of size d: W_hh scaled by 1 + d in the forward pass (a wrong equation of any
# kind, as small as one likes); the carried state scaled by 1 - d (a carry almost right);
# the clipping rule with epsilon d.
FAMILIES = {
    "hidden-weights-scaled": lambda d: mock.patch("jax_impl.scratch.gru", _with_params(
        lambda p: {**p, "W_hh": p["W_hh"] * (1.0 + d)})),
    "carry-scaled": lambda d: mock.patch(
        "jax_impl.train.carried", lambda H, c: jax.lax.stop_gradient(H) * (1 - d) if c.carries_state else H * 0),
    "clip-epsilon": lambda d: mock.patch("jax_impl.train.optimizer", lambda c: optax.chain(
        _clip_with_epsilon(c.grad_clip, d), optax.sgd(c.lr))),
}


@contextlib.contextmanager
def none():
  yield


__all__ = ["FAMILIES", "MUTATIONS", "none"]
