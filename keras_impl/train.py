"""Training the Keras model (keras_impl/model.py) the way Keras users train it, and the
protocol object around it. Runs in a process of its own, on the backend KERAS_BACKEND
names (keras_impl/process.py says how shared/registry.py starts it).

`train_epoch` is one `model.fit(..., epochs=1, shuffle=False)` over the epoch's minibatches
in order, the stateful GRU's state zeroed first (what a `reset_state()` in an
on_epoch_begin callback does in a single fit over every epoch): fit is how Keras users
train, and one call per epoch lets the harness train every row side by side, epoch by
epoch. fit's loss is the mean of the minibatch losses, as the seed's. Keras does not
report the gradient norm, so `clipped_steps` is None: the probe's update (four clipped
steps) checks the clipping rule instead.

The protocol's forward pass and gradients run the same weights from an explicit state
(`GRUModel.infer`); gradients are the backend's own autodiff (jax.value_and_grad over
Keras's stateless scope, torch.autograd.grad), as Keras's trainers take them.
"""
import time

import keras
import numpy as np

from keras_impl import convert, model, profile, threads
from shared.config import resolve_device
from shared.protocol import GRUImpl


def value_and_grad(fn, variables):
  """(loss, aux, [gradient of loss per variable]) of `fn() -> (loss, aux)` at the
  variables' current values, by the backend's autodiff."""
  if keras.backend.backend() == "jax":
    import jax

    def pure(values):
      with keras.StatelessScope(state_mapping=list(zip(variables, values))):
        return fn()
    (loss, aux), grads = jax.value_and_grad(pure, has_aux=True)([v.value for v in variables])
    return loss, aux, grads
  import torch
  loss, aux = fn()
  return loss, aux, torch.autograd.grad(loss, [v.value for v in variables])


def numpy(x) -> np.ndarray:
  return np.asarray(keras.ops.convert_to_numpy(x))


class KerasImpl(GRUImpl):
  """keras-jax or keras-torch (`info`, a shared.rows.Impl): the process's backend must be its engine."""

  def __init__(self, info, config, device=None):
    self.backend = keras.backend.backend()
    if info.engine != self.backend:
      raise ValueError(f"{info.name} needs KERAS_BACKEND={info.engine}, and this process has {self.backend}")
    self.name, self.config, self.layout = info.name, config, info.layout
    self.threads = threads.apply(self.backend, config.threads)
    gpu = resolve_device(device, self._gpu_available(), f"Keras on {self.backend}") == "gpu"
    self.device_name = self._gpu_name() if gpu else "cpu"
    self.precision = config.precision_label(gpu)
    keras.config.set_floatx(config.dtype)
    self.net = model.build(config)
    model.compile_model(self.net.model, config)
    self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    self.clipped_steps = None
    self._describe()
    self.set_params(self.initial_params())

  def _gpu_available(self) -> bool:
    if self.backend == "jax":
      import jax
      return any(d.platform == "gpu" for d in jax.devices())
    import torch
    return torch.cuda.is_available()

  def _gpu_name(self) -> str:
    if self.backend == "jax":
      import jax
      return jax.devices()[0].device_kind
    import torch
    return torch.cuda.get_device_name()

  # --- protocol edges: NumPy in, NumPy out ---------------------------------------------
  def set_params(self, params):
    for v, w in zip(self.net.weights(), convert.to_keras(self.checked(params))):
      v.assign(w)

  def get_params(self):
    return convert.from_keras([numpy(v) for v in self.net.weights()])

  def _state(self, H, batch_size):
    H = np.zeros((batch_size, self.config.num_hiddens), self.config.dtype) if H is None else H
    return keras.ops.convert_to_tensor(np.asarray(H, self.config.dtype))

  @staticmethod
  def _time_major(logits) -> np.ndarray:
    """(B, T, V) -> (T*B, V), the protocol's order."""
    logits = numpy(logits)
    return logits.transpose(1, 0, 2).reshape(-1, logits.shape[-1])

  def forward(self, X, H=None):
    logits, H = self.net.infer(keras.ops.convert_to_tensor(np.asarray(X, np.int32)), self._state(H, len(X)))
    return self._time_major(logits), numpy(H)

  def loss_and_grads(self, X, Y, H=None):
    X, H0 = keras.ops.convert_to_tensor(np.asarray(X, np.int32)), self._state(H, len(X))

    def fn():
      logits, H = self.net.infer(X, H0)
      return self.loss(np.asarray(Y, np.int32), logits), H
    loss, H, grads = value_and_grad(fn, self.net.weights())
    return float(numpy(loss)), convert.from_keras([numpy(g) for g in grads]), numpy(H)

  # --- training ------------------------------------------------------------------------
  def train_epoch(self, epoch_batches):
    Xs, Ys = epoch_batches                                   # (N, B, T) each
    if self.config.carries_state:
      self.net.gru.reset_state()
    T = Xs.shape[-1]
    # minibatch k of the fit is rows k*B .. (k+1)*B - 1: the epoch's minibatches, in order
    history = self.net.model.fit(Xs.reshape(-1, T), Ys.reshape(-1, T), batch_size=Xs.shape[1], epochs=1,
                                 shuffle=False, verbose=0)
    return float(history.history["loss"][-1])

  def prepare(self, epoch_batches):
    """Keras compiles (traces, or torch.compile's) on the first fit: one epoch on these
    shapes, the weights, state and optimizer put back after. Returns seconds."""
    variables = self.net.model.variables + self.net.model.optimizer.variables
    saved = [numpy(v) for v in variables]
    start = time.perf_counter()
    self.train_epoch(epoch_batches)
    seconds = time.perf_counter() - start
    for v, value in zip(variables, saved):
      v.assign(value)
    return seconds

  def time_split(self, epoch_batches):
    """One epoch under its backend's profiler (keras_impl/profile.py), on a CPU."""
    return None if self.device_name != "cpu" else profile.time_split(self, epoch_batches)

  def _describe(self) -> None:
    jit = self.net.model.jit_compile
    how = {("jax", True): "XLA (jax.jit of Keras's train step)", ("torch", True): "torch.compile of Keras's train step",
           ("torch", False): "eager"}.get((self.backend, jit), "eager")
    self.execution = (f"Keras 3 model.fit, one call per epoch, {how} (jit_compile={'True' if self.config.option('keras_jit') else 'auto'}"
                      f" resolved to {jit}); GRU through Keras's generic RNN loop (use_cudnn=False)")


def make(info, config, device=None) -> KerasImpl:
  """The constructor the table names for a Keras row, called in its own process."""
  return KerasImpl(info, config, device)
