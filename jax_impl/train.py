"""Training the JAX/Flax models as the seed trains, and the protocol object around them.

Semantics (shared with torch_impl/train.py): optax.sgd(lr) after
optax.clip_by_global_norm(theta) (the seed's rule up to round-off: optax scales by
(g / norm) * theta when norm >= theta, the seed g * (theta / norm) when norm > theta; at
norm == theta both leave g as it is; no epsilon), mean optax.softmax_cross_entropy_with_integer_labels, with
sequential sampling the hidden state zeroed at each epoch start and carried through
`lax.stop_gradient` between minibatches; with random sampling zeroed every minibatch.

`train_step(state, batch) -> (state, (loss, clipped))` is pure and jitted where it is called; the
fast path `train_epoch` runs a whole epoch as ONE compiled call, `lax.scan` of
train_step over the stacked (num_batches, B, T) minibatches. Every row trains this way,
the NNX ones too (nnx.merge inside the trace). `NnxJitTrainer` is the other way of
compiling NNX, nnx.jit on the module, kept for bench/nnx_styles.py to measure.
"""
import contextlib
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jax_impl import builtin, options, precision, profile, scratch, threads
from jax_impl.xla import COMMAND_BUFFER_EXECUTION, XLA_DOT_EXECUTION, compiler_options
from jax_impl import nnx as nnx_models
from shared.config import resolve_device
from shared.protocol import GRUImpl, scoped


class TrainState(NamedTuple):
  params: dict
  opt_state: tuple
  H: jax.Array  # (B, h), the state carried into the next minibatch


def optimizer(config):
  """SGD after clipping by global norm: the seed's update rule."""
  return optax.chain(optax.clip_by_global_norm(config.grad_clip), optax.sgd(config.lr))


def cross_entropy(logits, Y):
  """Mean cross-entropy of time-major logits (T*B, V) against labels Y (B, T), in float32 at
  least: bf16 logits are upcast first, as the mixed-precision policy says (shared/precision.py)."""
  logits = precision.at_least_float32(logits)
  return optax.softmax_cross_entropy_with_integer_labels(logits, Y.T.reshape(-1)).mean()


def carried(H, config):
  """The state a minibatch starts from: the last one's, carried (not differentiated
  anyway, as only params are: stop_gradient states d2l's `state.detach_()`), or zero."""
  return jax.lax.stop_gradient(H) if config.carries_state else jnp.zeros_like(H)


def make_train_fns(apply, config):
  """(loss_fn, train_step, train_epoch, tx) for `apply(params, X, H) -> (logits, H)`."""
  tx = optimizer(config)

  def loss_fn(params, X, Y, H):
    logits, H = apply(params, X, H)                                  # (T*B, V), (B, h)
    return cross_entropy(logits, Y), H

  def train_step(state: TrainState, batch):
    """-> (state, (loss, clipped)): clipped is 1 where the gradient norm exceeded theta."""
    X, Y = batch                                                     # (B, T) each
    H = carried(state.H, config)
    (loss, H), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, X, Y, H)
    clipped = (optax.tree.norm(grads) > config.grad_clip).astype(loss.dtype)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state, H), (loss, clipped)

  def train_epoch(state: TrainState, Xs, Ys):
    """Xs, Ys (N, B, T) -> (state, (mean loss, clipped steps)); H starts at zero, as each
    d2l epoch does."""
    state = state._replace(H=jnp.zeros_like(state.H))
    state, (losses, clipped) = jax.lax.scan(train_step, state, (Xs, Ys))
    return state, (losses.mean(), clipped.sum())

  return loss_fn, train_step, train_epoch, tx


def select_device(device=None):
  """GPU when JAX sees one, else CPU (policy: shared.config.resolve_device)."""
  try:
    gpus = jax.local_devices(backend="gpu")  # this process's, in a multi-process run too
  except RuntimeError:  # no GPU backend
    gpus = []
  if resolve_device(device, bool(gpus), "JAX") == "gpu":
    return gpus[0]
  return jax.local_devices(backend="cpu")[0]


class Model(NamedTuple):
  """How a JAX row computes: `apply(config, unroll, dtype)` gives its pure
  `apply(params, X, H) -> (logits, H)`; `table` converts the canonical built-in layout to
  its params tree (jax_impl/builtin.py; None: the scratch layout, which is its own tree);
  `nnx`, an NNX row's module class."""
  apply: object
  table: dict = None
  nnx: object = None

  def tree(self):
    """(to_tree, from_tree, missing): the conversions of its params tree, and the canonical
    parameters it lacks."""
    if self.table is None:
      return scratch.to_tree, scratch.from_tree, ()
    missing = tuple(n for n, path in self.table.items() if path is None)
    return lambda p: builtin.to_tree(p, self.table), lambda t: builtin.from_tree(t, self.table), missing


def _linen(module):
  def apply(config, unroll, dtype):
    model = module(config.vocab_size, config.num_hiddens, unroll=unroll, dtype=dtype)
    return lambda p, X, H: model.apply({"params": p}, X, H)
  return Model(apply, module.TABLE)


def _nnx(module):
  return Model(lambda c, unroll, dtype: nnx_models.apply_fn(module, c.vocab_size, c.num_hiddens, unroll, dtype),
               module.TABLE, module)


SCRATCH = Model(lambda c, unroll, dtype: lambda p, X, H: scratch.gru(p, X, H, unroll=unroll, dtype=dtype))


class JaxImpl(GRUImpl):
  """One model (`info`, a shared.rows.Impl, computed as `model` says), jit-compiled, on one
  device. `loop` (default the jax_loop option, else "epoch"): "step" loops the jitted step
  instead of scanning the epoch in one call."""

  def __init__(self, info, config, device=None, model=SCRATCH, loop=None):
    self.name, self.config, self.layout, self.model = info.name, config, info.layout, model
    self.threads = threads.apply(config.threads)
    self.loop = loop or config.option("jax_loop", "") or "epoch"
    self.device = select_device(device)
    self.device_name = self.device.device_kind if self.device.platform == "gpu" else "cpu"
    gpu = self.device.platform == "gpu"
    self._precision = "tensorfloat32" if config.precision == "tf32" else "highest"
    self._x64 = config.dtype == "float64"
    self.precision = config.precision_label(gpu)
    self.unroll = options.scan_unroll(config, self.device.platform)
    apply = model.apply(config, self.unroll, precision.compute_dtype(config))
    self._to_tree, self._from_tree, self.missing = model.tree()
    loss_fn, train_step, train_epoch, self._tx = make_train_fns(apply, config)
    donate = (0,) if gpu else ()  # CPU XLA cannot reuse donated buffers; it would only warn
    xla = compiler_options(config, self.device.platform)
    self._apply = jax.jit(apply, compiler_options=xla)
    self._grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True), compiler_options=xla)
    self._step = jax.jit(train_step, donate_argnums=donate, compiler_options=xla, **self._state_out())
    self._epoch = jax.jit(train_epoch, donate_argnums=donate, compiler_options=xla, **self._state_out())
    self._compiled = {}  # (N, B, T) -> AOT-compiled epoch, filled by prepare()
    self._warmed = set()  # the step loop's (N, B, T) compiled by prepare()
    self.execution = (f"one jitted call per epoch (lax.scan over minibatches, unroll {self.unroll})"
                      if self.loop == "epoch" else f"jitted step in a Python loop (unroll {self.unroll})")
    self.execution += COMMAND_BUFFER_EXECUTION[config.option("command_buffer", "")]
    self.execution += XLA_DOT_EXECUTION[config.option("xla_dot", "")] if self.device.platform == "cpu" else ""
    self.set_params(self.initial_params())

  @contextlib.contextmanager
  def scope(self):
    """The context of every JAX call this implementation makes: its matmul precision, and
    64-bit types switched on for a float64 run and explicitly off otherwise, so that a
    float64 implementation never changes a float32 one in the same process (jit caches
    key on the flag; without it, float64 arrays would silently become float32)."""
    with jax.enable_x64(self._x64), jax.default_matmul_precision(self._precision):
      yield

  # --- where arrays live: one device here; jax_impl/distributed.py shards the batch rows ---
  def _state_out(self) -> dict:
    """jit's keyword arguments fixing where a step's or an epoch's outputs live (none here)."""
    return {}

  def _sharding(self, rows_axis=None):
    """Where an input lives; `rows_axis` the axis of the batch rows (None: no such axis)."""
    return jax.sharding.SingleDeviceSharding(self.device)

  def _put(self, a, rows_axis=None):
    """An array (or a tree of them) onto this implementation's device in one copy
    (jnp.asarray first would go through the default device)."""
    return jax.device_put(a, self.device)

  def _get(self, x) -> np.ndarray:
    """An output back on the host."""
    return np.asarray(x)

  def _minibatches(self, Xs, Ys):
    """The step loop's minibatches of an epoch on the device, (B, T) each."""
    return zip(Xs, Ys)

  # --- protocol edges: NumPy in, NumPy out -------------------------------------------
  @scoped
  def set_params(self, params):
    tree = self._put(self._to_tree(self.checked(params)))
    self.state = TrainState(tree, self._tx.init(tree), self._H(None, self.config.batch_size))

  @scoped
  def get_params(self):
    return {k: np.array(self._get(v)) for k, v in self._from_tree(self.state.params).items()}

  def _H(self, H, batch_size):
    if H is None:
      return self._put(np.zeros((batch_size, self.config.num_hiddens), self.config.dtype), 0)
    return self._put(np.asarray(H, self.config.dtype), 0)

  @scoped
  def forward(self, X, H=None):
    logits, H = self._apply(self.state.params, self._put(np.asarray(X), 0), self._H(H, len(X)))
    # bf16 logits come back in the run's float32: exact, and what every check reads
    return self._get(logits).astype(self.config.dtype), self._get(H)

  @scoped
  def loss_and_grads(self, X, Y, H=None):
    X, Y = self._put(np.asarray(X), 0), self._put(np.asarray(Y), 0)
    (loss, H), grads = self._grad(self.state.params, X, Y, self._H(H, len(X)))
    grads = {k: self._get(v) for k, v in self._from_tree(grads).items()}
    return float(self._get(loss)), grads, self._get(H)

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
  @scoped
  def prepare(self, epoch_batches):
    """Compiles for these shapes, before any timed epoch; returns seconds. Params unchanged.
    The whole-epoch call is compiled ahead of time; the step loop runs an epoch."""
    Xs, Ys = epoch_batches
    if self.loop == "step":
      return self._warm_steps(Xs, Ys)
    if Xs.shape in self._compiled:
      return 0.0
    start = time.perf_counter()
    # Abstract arguments: only shapes and dtypes matter to the compiler, nothing is copied.
    shapes = [jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=self._sharding(1)) for a in (Xs, Ys)]
    self._compiled[Xs.shape] = self._epoch.lower(self.state, *shapes).compile()
    return time.perf_counter() - start

  @scoped
  def train_epoch(self, epoch_batches):
    Xs, Ys = (self._put(np.asarray(a), 1) for a in epoch_batches)     # (N, B, T), once
    if self.loop == "step":
      self._warm_steps(*epoch_batches)  # the host's arrays: it puts its own copies
      return self._epoch_stepped(Xs, Ys)
    if Xs.shape not in self._compiled:
      self.prepare((Xs, Ys))
    self.state, sums = self._compiled[Xs.shape](self.state, Xs, Ys)
    return self._epoch_result(sums)

  @scoped
  def time_split(self, epoch_batches):
    """One epoch under jax.profiler: its matrix products' share (jax_impl/profile.py), on a CPU;
    the caller puts the weights back (shared/training.py)."""
    if self.device.platform == "gpu":
      return None
    X, Y = (jax.ShapeDtypeStruct(a.shape[1:], a.dtype, sharding=self._sharding(0)) for a in epoch_batches)
    programs = (list(self._compiled.values()) if self.loop == "epoch" else
                [self._step.lower(self.state, (X, Y)).compile()])
    return profile.time_split(lambda: self.train_epoch(epoch_batches), [p.as_text() for p in programs])

  def _epoch_result(self, sums) -> float:
    """The mean loss, with the clipped steps, in the epoch's one host sync."""
    loss, clipped = (self._get(s) for s in sums)
    self.clipped_steps = int(clipped)
    return float(loss)

  def _warm_steps(self, Xs, Ys):
    """One epoch of the step loop on a copy of the state, so that jit compiles and caches
    every program the loop meets for this (N, B, T): the step from a zero and from a
    carried H, and the small ops that split the minibatches and average the losses. The
    seconds include the epoch's steps (milliseconds on a GPU)."""
    if Xs.shape in self._warmed:
      return 0.0
    start = time.perf_counter()
    saved, self.state = self.state, jax.tree.map(jnp.copy, self.state)  # donated on a GPU
    try:
      self._epoch_stepped(*(self._put(np.asarray(a), 1) for a in (Xs, Ys)))
    finally:
      self.state = saved
    self._warmed.add(Xs.shape)
    return time.perf_counter() - start

  def _epoch_stepped(self, Xs, Ys):
    """The same epoch as a Python loop over the jitted step (for tests and comparison)."""
    self.state = self.state._replace(H=jnp.zeros_like(self.state.H))
    losses, clipped = [], []
    for X, Y in self._minibatches(Xs, Ys):
      self.state, (loss, clip) = self._step(self.state, (X, Y))
      losses.append(loss)
      clipped.append(clip)
    return self._epoch_result((jnp.mean(jnp.stack(losses)), jnp.sum(jnp.stack(clipped))))


class NnxJitTrainer:
  """An NNX row (`like`, a JaxImpl of nnx-gru or nnx-grucell) compiled the other way, as
  Flax's NNX guides write it: nnx.jit over the module and an nnx.Optimizer, which walks
  the module graph in Python at every call. `per_step` False: a whole epoch per call
  (nnx.scan over the minibatches); True: one call per minibatch in a Python loop. Same
  weights, device, unroll, arithmetic and semantics as `like`."""

  def __init__(self, like: JaxImpl, per_step=False):
    self.like, self.config, self.table = like, like.config, like.model.table
    c = self.config
    definition = nnx_models.graphdef(like.model.nnx, c.vocab_size, c.num_hiddens, like.unroll,
                                     precision.compute_dtype(c))
    with like.scope(), jax.default_device(like.device):
      tree = jax.tree.map(jnp.asarray, builtin.to_tree(like.checked(like.get_params()), self.table))
      self.model = nnx.merge(definition, tree)
      self.optimizer = nnx.Optimizer(self.model, optimizer(c), wrt=nnx.Param)
      # Commit every array to the device, as train_epoch commits the batches: jit keys its
      # cache on committed-or-not, so uncommitted state would compile a second time on the
      # second call (measured: 0.5 s, once, counted as a slow steady-state epoch).
      objects = (self.model, self.optimizer)
      nnx.update(objects, jax.device_put(nnx.state(objects), like.device))
    self.per_step = per_step
    self._step, self._epoch = nnx.jit(self.step), nnx.jit(self.epoch)

  def step(self, model, opt, X, Y, H):
    def loss_fn(model):
      logits, H_next = model(X, H)
      return cross_entropy(logits, Y), H_next
    (loss, H), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    opt.update(model, grads)
    return loss, H

  def epoch(self, model, opt, Xs, Ys):
    @nnx.scan(in_axes=(nnx.Carry, 0, 0), out_axes=(nnx.Carry, 0))
    def body(carry, X, Y):
      model, opt, H = carry
      loss, H = self.step(model, opt, X, Y, carried(H, self.config))
      return (model, opt, H), loss
    H = jnp.zeros((Xs.shape[1], self.config.num_hiddens), self.model.out.kernel.dtype)
    _, losses = body((model, opt, H), Xs, Ys)
    return losses.mean()

  def train_epoch(self, epoch_batches) -> float:
    with self.like.scope(), jax.default_device(self.like.device):
      return self._train_epoch(*(jax.device_put(a, self.like.device) for a in epoch_batches))

  def _train_epoch(self, Xs, Ys) -> float:
    if not self.per_step:
      return float(self._epoch(self.model, self.optimizer, Xs, Ys))
    H = jax.device_put(jnp.zeros((Xs.shape[1], self.config.num_hiddens), self.model.out.kernel.dtype),
                       self.like.device)  # committed, as every later H is
    losses = []
    for X, Y in zip(Xs, Ys):
      loss, H = self._step(self.model, self.optimizer, X, Y, carried(H, self.config))
      losses.append(loss)
    return float(jnp.mean(jnp.stack(losses)))

  def get_params(self) -> dict:
    with self.like.scope():  # from_tree runs JAX ops: in a float64 run, under 64-bit mode
      tree = nnx.state(self.model, nnx.Param).to_pure_dict()
      return {k: np.array(v) for k, v in builtin.from_tree(tree, self.table).items()}


# The constructors the table names (shared/rows.py): (impl, config, device, cls) -> a row.
def _row(model: Model):
  return lambda info, config, device=None, cls=None: (cls or JaxImpl)(info, config, device, model)


jax_scratch = _row(SCRATCH)
flax_gru, flax_grucell = _row(_linen(builtin.FlaxGRU)), _row(_linen(builtin.FlaxGRUCell))
nnx_gru, nnx_grucell = _row(_nnx(nnx_models.NnxGRU)), _row(_nnx(nnx_models.NnxGRUCell))
