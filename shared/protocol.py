"""The protocol every implementation speaks: NumPy in, NumPy out at the edges, so that
compare.py, the parity tests and users treat every implementation alike. Models and
equations: shared/params.py; the implementations: shared/rows.py; building one:
shared/registry.py.

    impl = registry.make_impl("jax-scratch", config)  # initial weights from config.seed
    impl.set_params(params)                      # canonical layout, dict of np.ndarray
    logits, H = impl.forward(X, H=None)          # X int32 (B, T) -> (T*B, V), (B, hidden)
    loss, grads, H = impl.loss_and_grads(X, Y)   # mean cross-entropy, grads by name
    mean_loss = impl.train_epoch((Xs, Ys))       # (num_batches, B, T) each; updates in place
    impl.clipped_steps                           # steps of that epoch at which clipping fired
    impl.predict("time traveller", 50, vocab)    # greedy, as d2l's predict_ch8
"""
import abc
import contextlib
import functools
import time

import numpy as np

from shared import params as P


class Unavailable(RuntimeError):
  """This implementation cannot run on this machine (the message names the fix); the
  other implementations can. Raised by make_impl before any training."""


def one_line(e: BaseException) -> str:
  """An exception as one line, for reports: its type and the first line of its message."""
  text = str(e).strip()
  return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def scoped(method):
  """Runs a protocol method inside its implementation's `scope()`."""
  @functools.wraps(method)
  def wrapper(self, *args, **kwargs):
    with self.scope():
      return method(self, *args, **kwargs)
  return wrapper


class GRUImpl(abc.ABC):
  """Base class of every implementation; subclasses fill in the framework parts."""

  name: str
  layout: str
  config: object
  device_name: str  # e.g. "cpu" or "NVIDIA H200", as the framework reports it
  precision: str    # the float32 matmul precision that actually runs
  execution: str    # how an epoch runs, e.g. "CUDA graph per step", set once known
  threads: int = None  # compute threads the framework runs this implementation with
  # Canonical parameters the model does not have (a stock cell's folded or absent biases):
  # set_params drops them (shared/params.py says how), get_params and gradients give 0.
  missing: tuple = ()
  # Steps of the last train_epoch whose global gradient norm exceeded theta, where clipping
  # scales the gradient; read with the epoch's one host sync; every report counts them per row.
  clipped_steps: int = 0
  # A data-parallel row's engine, backend, devices, processes and threads per process
  # (shared/distributed.py); None on one device. launch_seconds: starting its processes.
  parallel: dict = None
  launch_seconds: float = None
  fatal: bool = False  # one rank of a launched run: an error stops the process (shared/training.py)

  def scope(self):
    """The context each computing call runs in: the framework settings of this
    implementation's arithmetic, set around its own calls because the frameworks keep
    them process-wide (JAX's 64-bit mode, torch's TF32 switches)."""
    return contextlib.nullcontext()

  def initial_params(self) -> dict:
    """The canonical initial weights of this implementation's layout, from config.seed."""
    c = self.config
    return P.init_params(self.layout, c.seed, c.vocab_size, c.num_hiddens)

  def checked(self, params: dict) -> dict:
    """Copies of `params` in the run's dtype (config.dtype), names and shapes checked."""
    c = self.config
    return P.check(params, self.layout, c.vocab_size, c.num_hiddens, c.dtype)

  @abc.abstractmethod
  def set_params(self, params: dict) -> None: ...

  @abc.abstractmethod
  def get_params(self) -> dict: ...

  @abc.abstractmethod
  def forward(self, X: np.ndarray, H=None): ...

  @abc.abstractmethod
  def loss_and_grads(self, X: np.ndarray, Y: np.ndarray, H=None): ...

  @abc.abstractmethod
  def train_epoch(self, epoch_batches) -> float: ...

  def prepare(self, epoch_batches) -> float:
    """Compiles or captures whatever an epoch of these shapes needs; returns seconds. Params
    unchanged. Called once per distinct epoch shape, the first epoch's first."""
    return 0.0

  def peak_memory_bytes(self):
    """Peak device memory of this implementation's training where the framework reports it."""
    return None

  @contextlib.contextmanager
  def weights_kept(self):
    """Its weights as they were on entering, put back on leaving (an epoch profiled after
    the timed ones changes them)."""
    params = self.get_params()
    try:
      yield
    finally:
      self.set_params(params)

  def time_split(self, epoch_batches):
    """One epoch (its weights changed; shared/training.py puts them back) under the framework's
    profiler: shared.profile.split's dict, its matrix products' share; None where not profiled."""
    return None

  def release(self) -> None:
    """Called when the harness is done with this implementation: a row trained in other
    processes stops them; nothing to do for the others."""

  def cpu_seconds(self) -> float:
    """The CPU clock its epochs are charged to: this process's (every thread, so that a
    framework's pool counts); a row trained in other processes adds theirs."""
    return time.process_time()

  def predict(self, prefix: str, num_preds: int, vocab) -> str:
    """Greedy generation as d2l's predict_ch8: warm up on `prefix`, then append argmax tokens."""
    H, outputs = None, [vocab[prefix[0]]]
    for ch in prefix[1:]:  # warm-up: only the state matters
      _, H = self.forward(np.array([[outputs[-1]]], np.int32), H)
      outputs.append(vocab[ch])
    for _ in range(num_preds):
      logits, H = self.forward(np.array([[outputs[-1]]], np.int32), H)
      outputs.append(int(np.argmax(logits[0])))
    return "".join(vocab.idx_to_token[i] for i in outputs)

