"""Training the PyTorch models as the seed trains, and the protocol object around them.

Semantics (shared with jax_impl/train.py): SGD with lr, mean cross-entropy over the
minibatch's tokens, clipping by global norm with theta (scale every gradient by
theta/norm only when norm > theta, no epsilon), with sequential sampling the hidden
state zeroed at each epoch start and carried, detached, between minibatches; with
random sampling zeroed for every minibatch. Perplexity = exp(mean epoch loss).

Three loops over the same models:
  * plain: d2l's `train_epoch_ch8` line for line, with the host syncs that `if norm >
    theta` and `float(loss)` cause. `torch-reference` runs it with `forward_d2l`.
  * fast: no host sync inside an epoch (loss summed on the device, clipping by
    torch.where), the epoch's data moved to the device once; on CUDA the whole train
    step (forward, backward, clip, SGD, hidden carry, loss sum) replays as one CUDA graph,
    or, with cuda_graph "epoch", every step of the epoch as one graph.
  * compiled: the fast loop with its step (forward, backward, clip, SGD) compiled by
    torch.compile (Inductor: C++ on the CPU, Triton on the GPU); `torch-compile`.
"""
import contextlib
import time

import numpy as np
import torch
from torch.nn import functional as F

from shared import params as P
from shared.config import resolve_device
from shared.protocol import GRUImpl, Unavailable, one_line, scoped
from torch_impl import inductor, precision, profile, threads
from torch_impl.d2l import Accumulator, grad_clipping_d2l
from torch_impl.builtin import BuiltinGRU
from torch_impl.scratch import ScratchGRU

MODELS = {P.SCRATCH: ScratchGRU, P.BUILTIN: BuiltinGRU}
# The fast loop's execution per CUDA-graph setting (shared.config.CUDA_GRAPHS). One graph
# per epoch records every minibatch's step, the hidden-state carry between them included,
# so an epoch is one replay instead of one per minibatch (issue 8's first stage-2 lever).
GRAPH_EXECUTION = {"off": "sync-free eager loop", "step": "CUDA graph per step",
                   "epoch": "one CUDA graph per epoch"}


def try_gpu(device=None) -> torch.device:
  """d2l's try_gpu: CUDA if present, else CPU (policy: shared.config.resolve_device)."""
  kind = resolve_device(device, torch.cuda.is_available(), "torch")
  return torch.device("cuda" if kind == "gpu" else "cpu")


@contextlib.contextmanager
def precision_scope(precision: str):
  """Float32 matmul precision for cuBLAS and cuDNN while inside: TF32 only if asked for;
  what was set before is put back (the switches are process-wide)."""
  tf32 = precision == "tf32"
  saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
           torch.get_float32_matmul_precision())
  torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
  torch.set_float32_matmul_precision("high" if tf32 else "highest")
  try:
    yield
  finally:
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
    torch.set_float32_matmul_precision(saved[2])


@contextlib.contextmanager
def weights_restored(params):
  """Whatever runs inside may train (a warm-up, a capture, a compile): the parameters get
  their values back afterwards, in place, so no tensor changes identity."""
  saved = [p.detach().clone() for p in params]
  try:
    yield
  finally:
    with torch.no_grad():
      for p, s in zip(params, saved):
        p.copy_(s)


def clip_and_sgd_(params, grads, theta: float, lr: float):
  """The same clipping rule without a host sync, then SGD, in place on `params`; returns
  whether it clipped, as a 0-dim tensor of the gradients' dtype (1 or 0)."""
  norm = torch.sqrt(sum(torch.sum(g ** 2) for g in grads))
  clipped = norm > theta
  scale = torch.where(clipped, theta / norm, torch.ones_like(norm))
  torch._foreach_mul_(grads, scale)          # exact no-op when scale == 1
  torch._foreach_add_(params, grads, alpha=-lr)
  return clipped.to(norm.dtype)


class TorchImpl(GRUImpl):
  """One model (`info`, a shared.rows.Impl; `model` its module class, else its layout's), one loop
  ("plain", "fast" or "compiled"), one device."""

  def __init__(self, info, config, device=None, loop="fast", forward="fast", model=None, wrapper="python"):
    self.name, self.config, self.layout = info.name, config, info.layout
    self.threads = threads.apply(config.threads)
    self.device, self.dtype = try_gpu(device), getattr(torch, config.dtype)
    self.precision = config.precision_label(self.device.type == "cuda")
    if self.precision == "bf16" and (problem := precision.bf16_problem(self.device)):
      raise ValueError(problem)
    self.device_name = (torch.cuda.get_device_name(self.device)
                        if self.device.type == "cuda" else "cpu")
    self.model = (model or MODELS[self.layout])(config.vocab_size, config.num_hiddens).to(self.device, self.dtype)
    self._forward = self.model.forward_d2l if forward == "d2l" else self.model.forward
    self.loop, self._graphs, self._allocated_at_start, self.wrapper = loop, {}, None, wrapper
    self.cuda_graph = self._cuda_graph(config.option("cuda_graph", ""))
    self.execution = ("d2l loop, host sync every step" if loop == "plain" else GRAPH_EXECUTION[self.cuda_graph])
    if loop == "compiled":
      self._compile_step()
    self.execution += ", every op on one thread" if self._single_thread() else ""
    self.set_params(self.initial_params())

  def _cuda_graph(self, asked: str) -> str:
    """The fast loop's CUDA graph ("" picks one per step on CUDA); the other loops have none."""
    if self.loop != "fast":
      return "off"
    if self.device.type != "cuda":
      if asked not in ("", "off"):
        raise ValueError(f"cuda_graph {asked!r} needs a CUDA device; drop it or run on a GPU")
      return "off"
    return asked or "step"

  @contextlib.contextmanager
  def scope(self):
    """TF32 as configured, and with thread_pool "single" one intra-op thread, around this
    row's calls only (both switches are process-wide; what was set before comes back)."""
    with precision_scope(self.config.precision), threads.limited(1 if self._single_thread() else 0):
      yield

  def _single_thread(self) -> bool:
    return self.config.option("thread_pool", "") == "single"

  def _autocast(self):
    return precision.autocast(self.device, self.precision)

  # --- protocol edges: NumPy in, NumPy out -------------------------------------------
  def set_params(self, params):
    self.model.load_canonical(self.checked(params))

  def get_params(self):
    return {k: v.detach().cpu().numpy().copy() for k, v in self.model.canonical().items()}

  def _tensor(self, a, dtype=torch.long):
    return torch.as_tensor(np.asarray(a), device=self.device).to(dtype)

  def _zeros(self, *shape):
    return torch.zeros(shape, device=self.device, dtype=self.dtype)

  def _state(self, H, batch_size):
    if H is None:
      return self._zeros(batch_size, self.config.num_hiddens)
    return self._tensor(H, self.dtype)

  @scoped
  def forward(self, X, H=None):
    with torch.no_grad(), self._autocast():
      logits, H = self._forward(self._tensor(X), self._state(H, len(X)))
    # bf16 logits come back in the run's float32: exact, and what every check reads
    return logits.to(self.dtype).cpu().numpy(), H.to(self.dtype).cpu().numpy()

  @scoped
  def loss_and_grads(self, X, Y, H=None):
    params = list(self.model.parameters())
    with self._autocast():
      logits, H = self._forward(self._tensor(X), self._state(H, len(X)))
      loss = F.cross_entropy(logits, self._tensor(Y).T.reshape(-1))
    grads = torch.autograd.grad(loss, params)
    grads = self.model.canonical(grads)
    return loss.item(), {k: g.cpu().numpy().copy() for k, g in grads.items()}, H.detach().cpu().numpy()

  def peak_memory_bytes(self):
    """Torch allocator peak since prepare() (capture and what ran after it), above what
    was already allocated then (other implementations' tensors)."""
    if self.device.type != "cuda":
      return None
    return torch.cuda.max_memory_allocated(self.device) - (self._allocated_at_start or 0)

  # --- training ----------------------------------------------------------------------
  @scoped
  def train_epoch(self, epoch_batches):
    Xs, Ys = epoch_batches
    if self.loop == "plain":
      return self._epoch_plain(Xs, Ys)
    if self.loop == "compiled":
      with inductor.patched(self.wrapper):
        return self._epoch_fast(Xs, Ys, self._compiled_step)
    if self.cuda_graph != "off":
      return self._epoch_graph(Xs, Ys)
    return self._epoch_fast(Xs, Ys)

  def time_split(self, epoch_batches):
    """One epoch under torch.profiler: its matrix products' share (torch_impl/profile.py), on a
    CPU; the caller puts the weights back (shared/training.py)."""
    return None if self.device.type == "cuda" else profile.time_split(lambda: self.train_epoch(epoch_batches))

  def _epoch_plain(self, Xs, Ys):
    """d2l's train_epoch_ch8 (with its sgd updater, batch_size=1), per-step host syncs kept."""
    params, state, metric, self.clipped_steps = list(self.model.parameters()), None, Accumulator(2), 0
    for X, Y in zip(Xs, Ys):
      if state is None or not self.config.carries_state:
        state = self._zeros(X.shape[0], self.config.num_hiddens)
      else:
        state = state.detach()  # d2l: state.detach_(); nn.GRU's squeezed state is a view
      y = torch.from_numpy(Y).T.reshape(-1)
      X, y = torch.from_numpy(X).to(self.device), y.to(self.device)
      with self._autocast():  # nothing at float32, as d2l
        y_hat, state = self._forward(X, state)
        l = F.cross_entropy(y_hat, y.long()).mean()
      l.backward()
      self.clipped_steps += grad_clipping_d2l(params, self.config.grad_clip)
      with torch.no_grad():
        for param in params:
          param -= self.config.lr * param.grad / 1
          param.grad.zero_()
      metric.add(l.detach() * y.numel(), y.numel())  # float() of it: a host sync, as d2l
    return metric[0] / metric[1]

  def _step(self, X, Y, H):
    """One sync-free SGD step on device tensors; returns (loss, new H, clipped), detached."""
    params = list(self.model.parameters())
    with self._autocast():
      logits, H = self._forward(X, H)                   # (T*B, V), (B, h)
      loss = F.cross_entropy(logits, Y.T.reshape(-1))   # float32 under autocast too
    grads = list(torch.autograd.grad(loss, params))
    with torch.no_grad():
      clipped = clip_and_sgd_(params, grads, self.config.grad_clip, self.config.lr)
    return loss.detach(), H.detach(), clipped

  def _steps(self, Xs, Ys, H, sums, step=None):
    """A step per minibatch of Xs, Ys (n, B, T), in place: H (B, h) carried from step to
    step (zeroed before each without carrying), each step's loss and clipping added to
    `sums` (2,). The eager epoch runs it, and a CUDA graph records it (one step, or a
    whole epoch)."""
    for X, Y in zip(Xs, Ys):
      if not self.config.carries_state:
        H.zero_()
      loss, H_next, clipped = (step or self._step)(X, Y, H)
      H.copy_(H_next)
      sums.add_(torch.stack([loss, clipped]))

  def _epoch_fast(self, Xs, Ys, step=None):
    Xs, Ys = self._tensor(Xs), self._tensor(Ys)         # (N, B, T), once per epoch
    H, sums = self._zeros(Xs.shape[1], self.config.num_hiddens), self._zeros(2)
    self._steps(Xs, Ys, H, sums, step)
    return self._epoch_result(sums, len(Xs))

  def _epoch_result(self, sums, steps: int) -> float:
    """The mean loss from `sums` (loss total, clipped steps), in the epoch's one host sync."""
    total, self.clipped_steps = sums.tolist()
    self.clipped_steps = int(self.clipped_steps)
    return total / steps

  # --- CUDA graphs: a step, or a whole epoch, replayed ---------------------------------
  @scoped
  def prepare(self, epoch_batches):
    """Captures the CUDA graph (fast loop on CUDA) or compiles the step (compiled loop)
    for these shapes; returns seconds. Parameters unchanged.

    Also starts this implementation's peak-memory count. If capture fails, the epoch
    runs the sync-free eager loop instead and `execution` says so.
    """
    if self.device.type == "cuda" and self._allocated_at_start is None:  # the first call only
      torch.cuda.reset_peak_memory_stats(self.device)
      self._allocated_at_start = torch.cuda.memory_allocated(self.device)
    if self.loop == "compiled":
      return self._compile_once(epoch_batches)
    return self._capture_once(epoch_batches)

  def _graph_key(self, shape):
    """A step graph serves every epoch of one (B, T); an epoch graph one (N, B, T)."""
    return tuple(shape) if self.cuda_graph == "epoch" else tuple(shape[1:])

  def _capture_once(self, epoch_batches):
    key = self._graph_key(epoch_batches[0].shape)
    if self.cuda_graph == "off" or key in self._graphs:
      return 0.0
    start = time.perf_counter()
    with weights_restored(list(self.model.parameters())):  # the warm-up steps trained
      try:
        self._graphs[key] = self._capture(epoch_batches)
      except torch.cuda.OutOfMemoryError:
        raise
      except RuntimeError as e:  # an op the graph cannot hold: run eager, and say so
        self.cuda_graph = "off"
        self.execution = f"sync-free eager loop (CUDA graph capture failed: {one_line(e)})"
        print(f"{self.name}: {self.execution}", flush=True)
    return time.perf_counter() - start

  def _capture(self, epoch_batches):
    """(graph, static buffers): `_steps` over the buffers, recorded for every minibatch of
    the epoch, or for the first only (a step graph, replayed once per minibatch)."""
    # Owned copies: on a CPU torch.as_tensor would share the caller's NumPy memory.
    Xs, Ys = (self._tensor(a if self.cuda_graph == "epoch" else a[:1]).clone() for a in epoch_batches)
    buffers = (Xs, Ys, self._zeros(Xs.shape[1], self.config.num_hiddens), self._zeros(2))
    return self._record(lambda: self._steps(*buffers)), buffers

  def _record(self, body):
    """A CUDA graph of `body()`: a warm-up on a side stream (cuBLAS/cuDNN workspaces), then
    the capture; the device has finished both when it returns."""
    torch.cuda.synchronize(self.device)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
      for _ in range(3):
        body()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    # thread_local: XLA's runtime threads may touch CUDA in this process meanwhile; only
    # this thread's unsafe calls may fail the capture
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):  # recorded, not run
      body()
    torch.cuda.synchronize(self.device)
    return graph

  def _epoch_graph(self, Xs, Ys):
    self._capture_once((Xs, Ys))
    if self.cuda_graph == "off":  # the capture failed
      return self._epoch_fast(Xs, Ys)
    graph, (X, Y, H, sums) = self._graphs[self._graph_key(Xs.shape)]
    Xs, Ys = self._tensor(Xs), self._tensor(Ys)         # (N, B, T), once per epoch
    H.zero_()
    sums.zero_()
    if self.cuda_graph == "epoch":
      X.copy_(Xs)
      Y.copy_(Ys)
      graph.replay()
    else:
      for x, y in zip(Xs, Ys):
        X[0].copy_(x)
        Y[0].copy_(y)
        graph.replay()
    return self._epoch_result(sums, len(Xs))

  # --- torch.compile: the step compiled by Inductor ------------------------------------
  def _compile_step(self):
    """Wraps `_step` in torch.compile (compiled lazily, at the first call: see prepare)."""
    cache = inductor.fresh_inductor_cache()  # before Inductor first looks at its cache folder
    if problem := inductor.inductor_compiler_problem():
      raise Unavailable(problem)
    asked = self.config.option("compile_mode", "")
    mode = asked or inductor.COMPILE_MODES[self.device.type]
    why = "set by --compile-mode" if asked else inductor.MODE_REASONS[self.device.type]
    self._cudagraphs = self.device.type == "cuda" and mode == "reduce-overhead"
    self._compiled = torch.compile(self._step, mode=None if mode == "default" else mode,
                                   fullgraph=inductor.ONE_GRAPH, dynamic=False)
    graphs = "one graph per step" if inductor.ONE_GRAPH else "two graphs per step, autograd.grad between"
    self.wrapper = self.config.option("inductor_wrapper", "") or self.wrapper
    self.execution = (f"torch.compile (Inductor, mode {mode}: {why}; {graphs}; {self.wrapper} wrapper), "
                      f"sync-free loop; {cache}")
    self._compiled_once = set()

  def _compiled_step(self, X, Y, H):
    """One compiled step. Under CUDA graphs (reduce-overhead) its outputs live in the
    graph's memory pool, which the next replay overwrites: loss and H are copied out."""
    if not self._cudagraphs:
      return self._compiled(X, Y, H)
    torch.compiler.cudagraph_mark_step_begin()
    loss, H, clipped = self._compiled(X, Y, H)
    return loss.clone(), H.clone(), clipped.clone()

  def _compile_once(self, epoch_batches):
    """Compiles for these shapes by running steps, timed (under CUDA graphs three: the
    warm-up, the recording, a replay); then puts the weights back."""
    Xs, Ys = epoch_batches
    if Xs.shape[1:] in self._compiled_once:  # the step sees (B, T): N does not matter
      return 0.0
    X, Y, H = self._tensor(Xs[0]), self._tensor(Ys[0]), self._zeros(Xs.shape[1], self.config.num_hiddens)
    start = time.perf_counter()
    with weights_restored(list(self.model.parameters())), inductor.patched(self.wrapper):
      for _ in range(3 if self._cudagraphs else 1):
        loss, _, _ = self._compiled_step(X, Y, H)
      float(loss)  # waits for the device
    self._compiled_once.add(Xs.shape[1:])
    return time.perf_counter() - start


# The constructors the table names (shared/rows.py): (impl, config, device, cls) -> a row.
def reference(info, config, device=None, cls=None) -> TorchImpl:
  """d2l's loop line for line: torch-reference."""
  return (cls or TorchImpl)(info, config, device, loop="plain", forward="d2l")


def fast(info, config, device=None, cls=None) -> TorchImpl:
  """The sync-free loop (a CUDA graph per step on a GPU): torch-scratch, torch-cudnn."""
  return (cls or TorchImpl)(info, config, device)


def compiled(info, config, device=None, cls=None) -> TorchImpl:
  """The step compiled by torch.compile: torch-compile."""
  return (cls or TorchImpl)(info, config, device, loop="compiled")
