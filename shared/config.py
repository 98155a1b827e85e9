"""Run configuration and its presets (standard library only).

The seed preset is the d2l book's GRU chapter: The Time Machine, character level,
first 10,000 tokens, minibatches of 32 x 35 with sequential partitioning, 256 hidden
units, SGD lr 1, gradient clipping at global norm 1, 500 epochs.

A Config knows no framework: each framework's own settings (its speed levers, declared in
torch_impl/options.py, jax_impl/options.py and keras_impl/options.py) travel in `options`
as (name, value) pairs, which only that framework reads.
"""
import dataclasses
import math

SAMPLINGS = ("sequential", "random")
# highest: full float32 matmuls (the parity setting); tf32: GPUs may use TF32 for float32
# matmuls; float64: every parameter, activation, loss and update in float64 (the ground truth);
# bf16: bfloat16 mixed precision, float32 weights (the casting policy: shared/precision.py).
PRECISIONS = ("highest", "tf32", "float64", "bf16")


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
  threads: int = 0              # compute threads of each framework; 0 = every core (shared/threads.py)
  # Data parallelism (shared/distributed.py): the devices a data-parallel row splits each
  # minibatch's rows over; the processes of a JAX one (0: one process drives every device
  # through a Mesh; = devices: jax.distributed, one device per process; PyTorch's DDP
  # always runs a process per device); the engines' timeout for a collective or a
  # start-up that does not complete, in seconds.
  devices: int = 1
  processes: int = 0
  worker_timeout: int = 300
  options: tuple = ()           # ((name, value), ...): the frameworks' own settings, opaque here

  def option(self, name: str, default=None):
    """The value of a framework's setting `name`, else `default`."""
    return dict(self.options).get(name, default)

  def set(self, **values) -> "Config":
    """A copy with `values` changed: a field by its name, any other name as a framework
    setting in `options` (a lever's settings are both kinds: shared/kinds/ablation.py)."""
    fields = {f.name for f in dataclasses.fields(self)} - {"options"}
    options = dict(self.options)
    options.update({k: v for k, v in values.items() if k not in fields})
    return dataclasses.replace(self, options=tuple(options.items()),
                               **{k: v for k, v in values.items() if k in fields})

  def as_dict(self) -> dict:
    """Every field and every framework setting, flat: what a report's "config" holds."""
    out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "options"}
    return {**out, **dict(self.options)}

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
    for field, allowed in (("sampling", SAMPLINGS), ("precision", PRECISIONS)):
      if getattr(self, field) not in allowed:
        raise ValueError(f"{field} must be one of {allowed}, got {getattr(self, field)!r}")
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
    return self

  @property
  def carries_state(self) -> bool:
    return carries_state(self.sampling)

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


def carries_state(sampling: str) -> bool:
  """Sequential sampling carries H between minibatches (zeroed at each epoch start);
  random sampling starts every minibatch from zero."""
  return sampling == "sequential"


def preset(name: str, **overrides) -> Config:
  """The named preset with `overrides` applied (fields, or framework settings) and validated."""
  if name not in PRESETS:
    raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
  return PRESETS[name].set(**overrides).validate()


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
