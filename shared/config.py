"""Run configuration and its presets (standard library only).

The seed preset is the d2l book's GRU chapter: The Time Machine, character level,
first 10,000 tokens, minibatches of 32 x 35 with sequential partitioning, 256 hidden
units, SGD lr 1, gradient clipping at global norm 1, 500 epochs.
"""
import dataclasses
import math

SAMPLINGS = ("sequential", "random")
# highest: full float32 matmuls (the parity setting); tf32: GPUs may use TF32 for float32
# matmuls; float64: every parameter, activation, loss and update in float64 (the ground truth);
# bf16: bfloat16 mixed precision, float32 weights (the casting policy: shared/precision.py).
PRECISIONS = ("highest", "tf32", "float64", "bf16")
COMPILE_MODES = ("", "default", "reduce-overhead", "max-autotune")  # torch.compile's modes
# The speed levers of the GPU paths ("" = the per-device default; shared/ablation.py measures
# each). cuda_graph, torch's sync-free rows: no graph, one CUDA graph per step, or one per
# epoch. command_buffer, the JAX rows: XLA's GPU command buffers (CUDA graphs XLA records
# itself) off, XLA's default set, or that set with while loops added.
# jax_loop: the whole epoch as one call (lax.scan over the minibatches) or a jitted step
# per minibatch in a Python loop.
# xla_dot, the JAX rows on a CPU: which library XLA:CPU hands its dot fusions to, per compiled
# program ("" = jaxlib's default, which in 0.10.2 is YNNPACK for dots; "eigen": no library,
# XLA's own Eigen kernels; "ynnpack-eltwise": YNNPACK for dots and elementwise fusions).
# Tried and left out (jaxlib 0.10.2, the 2-core EPYC; README "What bounds each row"): oneDNN's
# dot fusion kills the process with SIGILL at the GRU epoch's first run ("partition compile
# failed"; bench/xla_dot_libraries.py reproduces it in a subprocess), and XNNPACK's options
# are accepted and ignored (the compiled program is Eigen's). thread_pool, the PyTorch rows:
# "" = torch's intra-op pool of `threads` threads; "single": one thread around the row's calls.
# XLA:CPU's pool is sized once per process (PJRT_NPROC, shared/threads.py): its per-program
# xla_cpu_multi_thread_eigen is accepted and ignored in jaxlib 0.10.2, measured.
XLA_DOTS = ("", "eigen", "ynnpack-eltwise")
THREAD_POOLS = ("", "single")
CUDA_GRAPHS = ("", "off", "step", "epoch")
COMMAND_BUFFERS = ("", "off", "while")
JAX_LOOPS = ("", "epoch", "step")
# keras_jit, the Keras rows: model.compile's jit_compile. "" = Keras's default ("auto": XLA on
# the JAX backend, eager on the torch backend); "on": jit_compile=True (torch.compile there).
KERAS_JITS = ("", "on")


@dataclasses.dataclass(frozen=True)
class Config:
  batch_size: int = 32
  num_steps: int = 35
  num_hiddens: int = 256
  lr: float = 1.0
  num_epochs: int = 500
  grad_clip: float = 1.0        # theta of the global-norm clipping rule
  max_tokens: int = 10_000      # -1: the whole text, as d2l's load_corpus_time_machine(-1)
  sampling: str = "sequential"  # "sequential" carries H between minibatches
  seed: int = 0
  vocab_size: int = 28          # the Time Machine character vocabulary
  precision: str = "highest"    # one of PRECISIONS
  unroll: int = 0               # JAX lax.scan unroll over time; 0 = per-device default
  compile_mode: str = ""        # torch.compile mode of torch-compile; "" = per-device default
  cuda_graph: str = ""          # one of CUDA_GRAPHS; "" = per step on GPU
  command_buffer: str = ""      # one of COMMAND_BUFFERS; "" = XLA's default
  jax_loop: str = ""            # one of JAX_LOOPS; "" = epoch
  xla_dot: str = ""             # one of XLA_DOTS; "" = jaxlib's default
  thread_pool: str = ""         # one of THREAD_POOLS; "" = each framework's pool
  keras_jit: str = ""           # one of KERAS_JITS; "" = Keras's default for the backend
  threads: int = 0              # compute threads of each framework; 0 = every core (shared/threads.py)
  # Data parallelism (shared/distributed.py): the devices a data-parallel row splits each
  # minibatch's rows over; the processes of a JAX one (0: one process drives every device
  # through a Mesh; = devices: jax.distributed, one device per process; PyTorch's DDP
  # always runs a process per device); the engines' timeout for a collective or a
  # start-up that does not complete, in seconds.
  devices: int = 1
  processes: int = 0
  worker_timeout: int = 300

  def validate(self) -> "Config":
    """Raises ValueError (one line, naming the fix) on an impossible config."""
    for field in ("batch_size", "num_steps", "num_hiddens", "num_epochs", "vocab_size"):
      if getattr(self, field) < 1:
        raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
    if self.max_tokens < 2 and self.max_tokens != -1:
      raise ValueError(f"max_tokens must be >= 2 (an input and a target) or -1 (the whole text), "
                       f"got {self.max_tokens}")
    for field in ("lr", "grad_clip"):
      if not (getattr(self, field) > 0 and math.isfinite(getattr(self, field))):
        raise ValueError(f"{field} must be a finite number > 0, got {getattr(self, field)}")
    if self.sampling not in SAMPLINGS:
      raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
    if self.precision not in PRECISIONS:
      raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
    if self.seed < 0:
      raise ValueError(f"seed must be >= 0 (numpy.random.default_rng), got {self.seed}")
    if self.threads < 0:
      raise ValueError(f"threads must be >= 1, or 0 for every core, got {self.threads}")
    if self.devices < 1 or self.processes not in (0, self.devices):
      raise ValueError(f"devices must be >= 1 and processes 0 or equal to devices; got devices {self.devices}, "
                       f"processes {self.processes}")
    if self.batch_size % self.devices:
      raise ValueError(f"batch_size {self.batch_size} does not split evenly over {self.devices} devices; "
                       f"choose a devices count that divides it, or another batch_size")
    if self.worker_timeout < 1:
      raise ValueError(f"worker_timeout must be >= 1 second, got {self.worker_timeout}")
    if self.unroll < 0:
      raise ValueError(f"unroll must be >= 0 (0 picks the per-device default), got {self.unroll}")
    for field, allowed in (("compile_mode", COMPILE_MODES), ("cuda_graph", CUDA_GRAPHS),
                           ("command_buffer", COMMAND_BUFFERS), ("jax_loop", JAX_LOOPS),
                           ("xla_dot", XLA_DOTS), ("thread_pool", THREAD_POOLS), ("keras_jit", KERAS_JITS)):
      if getattr(self, field) not in allowed:
        raise ValueError(f"{field} must be one of {allowed[1:]} (or empty for the default), "
                         f"got {getattr(self, field)!r}")
    return self

  @property
  def carries_state(self) -> bool:
    """Sequential sampling carries H between minibatches (zeroed at each epoch start);
    random sampling starts every minibatch from zero."""
    return self.sampling == "sequential"

  @property
  def dtype(self) -> str:
    """The floating-point type of parameters, their gradients and updates (a NumPy name):
    float32 also under bf16 mixed precision, whose master weights are float32."""
    return "float64" if self.precision == "float64" else "float32"

  def precision_label(self, on_gpu: bool) -> str:
    """The arithmetic that actually runs: float64, bf16 mixed precision, or float32 (with
    TF32 matmuls on a GPU when asked)."""
    if self.precision in ("float64", "bf16"):
      return self.precision
    return "tf32" if on_gpu and self.precision == "tf32" else "float32"

  def scan_unroll(self, platform: str) -> int:
    """The lax.scan unroll factor: `unroll`, else the measured default for `platform`.

    Measured on the seed config (jax-scratch, whole-epoch scan): on GPU unrolling all
    num_steps was fastest (issue #4's H200 figures: 0.97M / 1.51M / 1.75M tokens/s at
    unroll 1 / 5 / 35); on the 2-core CPU unroll 1 was fastest (53k vs 44k vs 32k
    tokens/s at 1 / 5 / 35) and compiles in 1 s instead of 7 s.
    """
    return self.unroll or (self.num_steps if platform == "gpu" else 1)


PRESETS = {
    "seed": Config(),
    # Small enough for CI: the seed's sizes, few epochs.
    "quick": Config(num_epochs=4),
    # The seed configuration on the whole text (170,580 characters, d2l's full corpus).
    "book": Config(max_tokens=-1),
}
# The fields that set a size of the workload, overridable from the command line, and the
# devices of data parallelism: each can be swept.
SIZE_FIELDS = ("batch_size", "num_steps", "num_hiddens", "max_tokens", "devices")


def preset(name: str, **overrides) -> Config:
  """The named preset with `overrides` applied and validated."""
  if name not in PRESETS:
    raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
  return dataclasses.replace(PRESETS[name], **overrides).validate()


def resolve_device(requested, gpu_available: bool, framework: str) -> str:
  """The seed's try_gpu policy for both frameworks: None/"auto" -> "gpu" if the framework
  sees one, else "cpu"; "gpu" insists (ValueError naming the fix); "cpu" is "cpu"."""
  if requested in (None, "auto"):
    return "gpu" if gpu_available else "cpu"
  if requested == "gpu" and not gpu_available:
    raise ValueError(f"device 'gpu' asked for, but {framework} sees no GPU; use --device cpu")
  if requested not in ("gpu", "cpu"):
    raise ValueError(f"device must be auto, cpu or gpu, got {requested!r}")
  return requested
