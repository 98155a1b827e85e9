"""Training the JAX/Flax models as the seed trains, and the protocol object around them.

Semantics (shared with torch_impl/train.py): optax.sgd(lr) after
optax.clip_by_global_norm(theta) (the seed's rule up to round-off: optax scales by
(g / norm) * theta when norm >= theta, the seed g * (theta / norm) when norm > theta; at
norm == theta both leave g as it is; no epsilon), mean optax.softmax_cross_entropy_with_integer_labels, with
sequential sampling the hidden state zeroed at each epoch start and carried through
`lax.stop_gradient` between minibatches; with random sampling zeroed every minibatch.

`train_step(state, batch) -> (state, loss)` is pure and jitted where it is called; the
fast path `train_epoch` runs a whole epoch as ONE compiled call, `lax.scan` of
train_step over the stacked (num_batches, B, T) minibatches.
"""
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jax_impl import builtin, scratch
from shared.config import resolve_device
from shared.protocol import GRUImpl, layout_of


class TrainState(NamedTuple):
  params: dict
  opt_state: tuple
  H: jax.Array  # (B, h), the state carried into the next minibatch


def make_train_fns(apply, config):
  """(loss_fn, train_step, train_epoch, tx) for `apply(params, X, H) -> (logits, H)`."""
  tx = optax.chain(optax.clip_by_global_norm(config.grad_clip), optax.sgd(config.lr))

  def loss_fn(params, X, Y, H):
    logits, H = apply(params, X, H)                                  # (T*B, V), (B, h)
    labels = Y.T.reshape(-1)                                         # time-major, as logits
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), H

  def train_step(state: TrainState, batch):
    X, Y = batch                                                     # (B, T) each
    if config.carries_state:
      # Not differentiated anyway (only params are): stop_gradient states the intent,
      # d2l's `state.detach_()`.
      H = jax.lax.stop_gradient(state.H)
    else:
      H = jnp.zeros_like(state.H)
    (loss, H), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, X, Y, H)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state, H), loss

  def train_epoch(state: TrainState, Xs, Ys):
    """Xs, Ys (N, B, T) -> (state, mean loss); H starts at zero, as each d2l epoch does."""
    state = state._replace(H=jnp.zeros_like(state.H))
    state, losses = jax.lax.scan(train_step, state, (Xs, Ys))
    return state, losses.mean()

  return loss_fn, train_step, train_epoch, tx


def select_device(device=None):
  """GPU when JAX sees one, else CPU (policy: shared.config.resolve_device)."""
  try:
    gpus = jax.devices("gpu")
  except RuntimeError:  # no GPU backend
    gpus = []
  if resolve_device(device, bool(gpus), "JAX") == "gpu":
    return gpus[0]
  return jax.devices("cpu")[0]


def _model(name, config, unroll):
  """(apply, to_tree, from_tree) of implementation `name`."""
  if name == "jax-scratch":
    apply = lambda p, X, H: scratch.gru(p, X, H, unroll=unroll)
    return apply, scratch.to_tree, scratch.from_tree
  module = builtin.MODELS[name](config.vocab_size, config.num_hiddens, unroll=unroll)
  table = builtin.TABLES[name]
  return (lambda p, X, H: module.apply({"params": p}, X, H),
          lambda p: builtin.to_tree(p, table), lambda t: builtin.from_tree(t, table))


class JaxImpl(GRUImpl):
  """One model, jit-compiled, on one device. `loop="step"` loops the jitted step instead."""

  def __init__(self, name, config, device=None, loop="epoch"):
    self.name, self.config, self.layout, self.loop = name, config, layout_of(name), loop
    self.device = select_device(device)
    self.device_name = self.device.device_kind if self.device.platform == "gpu" else "cpu"
    gpu = self.device.platform == "gpu"
    self._precision = "tensorfloat32" if config.precision == "tf32" else "highest"
    self.precision = config.precision_label(gpu)
    self.unroll = config.scan_unroll(self.device.platform)
    apply, self._to_tree, self._from_tree = _model(name, config, self.unroll)
    loss_fn, train_step, train_epoch, self._tx = make_train_fns(apply, config)
    donate = (0,) if gpu else ()  # CPU XLA cannot reuse donated buffers; it would only warn
    self._apply = jax.jit(apply)
    self._grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    self._step = jax.jit(train_step, donate_argnums=donate)
    self._epoch = jax.jit(train_epoch, donate_argnums=donate)
    self._compiled = {}  # (N, B, T) -> AOT-compiled epoch, filled by prepare()
    self.execution = (f"one jitted call per epoch (lax.scan over minibatches, unroll {self.unroll})"
                      if loop == "epoch" else f"jitted step in a Python loop (unroll {self.unroll})")
    self.set_params(self.initial_params())

  def _put(self, a):
    """Onto this implementation's device in one copy (jnp.asarray first would go through
    the default device)."""
    return jax.device_put(a, self.device)

  # --- protocol edges: NumPy in, NumPy out -------------------------------------------
  def set_params(self, params):
    tree = self._put(self._to_tree(self.checked(params)))
    H = self._put(np.zeros((self.config.batch_size, self.config.num_hiddens), np.float32))
    self.state = TrainState(tree, self._tx.init(tree), H)

  def get_params(self):
    return {k: np.array(v) for k, v in self._from_tree(self.state.params).items()}

  def _H(self, H, batch_size):
    if H is None:
      return self._put(np.zeros((batch_size, self.config.num_hiddens), np.float32))
    return self._put(np.asarray(H, np.float32))

  def forward(self, X, H=None):
    with jax.default_matmul_precision(self._precision):
      logits, H = self._apply(self.state.params, self._put(np.asarray(X)), self._H(H, len(X)))
    return np.asarray(logits), np.asarray(H)

  def loss_and_grads(self, X, Y, H=None):
    X, Y = self._put(np.asarray(X)), self._put(np.asarray(Y))
    with jax.default_matmul_precision(self._precision):
      (loss, H), grads = self._grad(self.state.params, X, Y, self._H(H, len(X)))
    grads = {k: np.asarray(v) for k, v in self._from_tree(grads).items()}
    return float(loss), grads, np.asarray(H)

  def peak_memory_bytes(self):
    """On GPU: XLA's own account of the compiled epoch (arguments + outputs + temporaries).

    JAX's allocator peak cannot be reset between implementations sharing a process, so
    the compiled program's memory analysis is the per-implementation figure.
    """
    if self.device.platform != "gpu" or not self._compiled:
      return None
    m = next(iter(self._compiled.values())).memory_analysis()
    if m is None:
      return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
               - m.alias_size_in_bytes)

  # --- training ----------------------------------------------------------------------
  def prepare(self, epoch_batches):
    """AOT-compiles the whole-epoch call for these shapes; returns seconds. Params unchanged."""
    Xs, Ys = (self._put(np.asarray(a)) for a in epoch_batches)
    if self.loop != "epoch" or Xs.shape in self._compiled:
      return 0.0
    start = time.perf_counter()
    with jax.default_matmul_precision(self._precision):
      self._compiled[Xs.shape] = self._epoch.lower(self.state, Xs, Ys).compile()
    return time.perf_counter() - start

  def train_epoch(self, epoch_batches):
    Xs, Ys = (self._put(np.asarray(a)) for a in epoch_batches)        # (N, B, T), once
    if self.loop == "step":
      return self._epoch_stepped(Xs, Ys)
    self.prepare((Xs, Ys))
    self.state, loss = self._compiled[Xs.shape](self.state, Xs, Ys)
    return float(loss)                                                # the epoch's one sync

  def _epoch_stepped(self, Xs, Ys):
    """The same epoch as a Python loop over the jitted step (for tests and comparison)."""
    self.state = self.state._replace(H=jnp.zeros_like(self.state.H))
    losses = []
    with jax.default_matmul_precision(self._precision):
      for X, Y in zip(Xs, Ys):
        self.state, loss = self._step(self.state, (X, Y))
        losses.append(loss)
    return float(jnp.mean(jnp.stack(losses)))


def make(name, config, device=None) -> JaxImpl:
  """The registry's constructor for jax-scratch, flax-gru and flax-grucell."""
  return JaxImpl(name, config, device)
