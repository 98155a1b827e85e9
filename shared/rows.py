"""Every implementation in ONE table, and a row: one implementation at a precision on some
devices. Every fact about an implementation is its entry here (standard library only);
adding one means an entry plus its code in its framework's package.

    row = Row("torch-scratch", bf16=True)      # its name: "torch-scratch-bf16"
    Row.parse("jax-scratch-dp2")               # Row("jax-scratch", devices=2)
    row.info.layout, row.info.group            # "scratch", "scratch"

A row's name is derived from it and parsed by `Row.parse` alone, where names come in (the
command line, a stored report).
"""
import dataclasses
import re

from shared import params as P


@dataclasses.dataclass(frozen=True)
class ForwardOnly:
  """An implementation checked against `anchor` on the forward pass only, and why. Where the
  forward pass itself differs (a known deviation, asserted in tests/test_parity.py),
  `judged` is False: its gap is measured and reported beside the tolerance, not judged."""
  anchor: str
  judged: bool
  why: str


@dataclasses.dataclass(frozen=True)
class Impl:
  """One implementation: where it lives, what it computes, how it is judged, what it refuses."""
  name: str
  framework: str            # "torch", "jax" or "keras": the package (<framework>_impl/) it lives in
  make: str                 # "module:function" building it: function(impl, config, device, cls=None)
  layout: str               # its canonical parameter layout (shared/params.py)
  description: str
  group: str = ""           # parity group (same mathematics); its first member in this table anchors it
  engine: str = ""          # whose kernels run its products, when not its framework's (a Keras backend)
  own_process: bool = False  # trains in a process of its own (<framework>_impl/process.py: its environment)
  forward_only: ForwardOnly = None
  # Its training departs from the group's rule when the state is carried (sequential sampling):
  # forward pass and gradients are judged; what depends on training is reported, not judged.
  deviation: str = ""
  bf16_deviation: str = ""  # its bf16 idiom departs from the casting policy (shared/precision.py)
  no_bf16: str = ""         # why it cannot run bf16 / float64 / data parallel ("" = it can)
  no_float64: str = ""
  no_data_parallel: str = ""
  levers: tuple = ()        # the ablation levers that act on it (declared with its framework's options)
  # How it takes the recurrent weights' gradients (shared/limits.py, WEIGHT_GRADIENTS): its
  # per-shape bound times those products.
  weight_gradients: str = "per step"
  tuned: bool = False       # written for speed (shared/kinds/speed.py sets it over its framework's fastest other row)
  also_judged: tuple = ()   # (group, other implementation): one model on two backends, judged as a pair

  def departure(self, carries_state: bool) -> str:
    """Why its training is not its model's reference training ("" when it is): a forward-only
    implementation's reason, or its known training deviation where the state is carried."""
    return self.forward_only.why if self.forward_only else (self.deviation if carries_state else "")

  @property
  def runs_on(self) -> str:
    """"torch" or "jax": the framework whose kernels run its arithmetic."""
    return self.engine or self.framework

  def refusal(self, config) -> str:
    """Why it cannot train in `config` (its precision, its devices), as one line naming the
    fix; "" when it can."""
    if config.precision == "float64" and self.no_float64:
      return (f"{self.name} cannot run in float64: {self.no_float64}; leave it out of --impls or drop "
              "--precision float64 (--truth runs the float64 truth of the rows that can)")
    if config.precision == "bf16" and self.no_bf16:
      return f"{self.name} cannot run in bf16: {self.no_bf16}; leave it out of --impls or drop --precision bf16"
    if config.devices > 1 and self.no_data_parallel:
      return f"{self.name} does not run data parallel ({self.no_data_parallel}); leave it out of --impls"
    return ""


_KERAS_BF16 = ("Keras's mixed_bfloat16 policy keeps the GRU state and gates in bf16, against this repository's "
               "casting policy (float32 state); not measured here")
_KERAS_F64 = ("Keras 3.15.1 computes float64 in float32 on the jax and torch backends: its type promotion "
              "(keras.backend.result_type) maps float64 to float32 on every backend but TensorFlow, so "
              "keras.ops.matmul of two float64 tensors multiplies and returns float32 (measured: 1e-5 off a "
              "256-term float64 product, torch's own 2e-14)")
_TUNED_BF16 = "its hand-written backward is written for one float type (float32 or float64), not for bf16 casts"
_TUNED_DP = ("torch.compile of a DDP step splits the graph at DDP's gradient buckets (DDPOptimizer) and "
             "cold-compiles for minutes in every process on the 2-core CPU, as torch-compile's; not measured here")
_TORCH_EAGER = ("cuda-graph", "epoch-graph", "threads", "omp-spin", "tf32")
_JAX_ROWS = ("jax-loop", "unroll", "command-buffer", "xla-dot", "tf32")
IMPLS = {i.name: i for i in (
    Impl("torch-reference", "torch", "torch_impl.train:reference", P.SCRATCH,
         "d2l's from-scratch loop as the book writes it (baseline, host syncs kept)", group="scratch",
         bf16_deviation="d2l's code adds each bias outside the products, (x @ W_xz) + (H @ W_hz) + b_z: under "
                        "autocast the bf16 products meet a float32 bias and promote, so its gates and logits are "
                        "float32 where the policy has bf16",
         no_data_parallel="d2l's own loop is the single-device baseline of every speed-up; its data-parallel "
                          "twin is torch-scratch-dpN (the same model and arithmetic, the DDP idiom)"),
    Impl("torch-scratch", "torch", "torch_impl.train:fast", P.SCRATCH,
         "from-scratch GRU, sync-free epoch, CUDA-graph step on GPU", group="scratch", levers=_TORCH_EAGER),
    Impl("torch-cudnn", "torch", "torch_impl.train:fast", P.BUILTIN,
         "torch.nn.GRU (cuDNN on GPU), sync-free epoch, CUDA-graph step on GPU", group="builtin",
         levers=_TORCH_EAGER),
    Impl("torch-compile", "torch", "torch_impl.train:compiled", P.SCRATCH,
         "from-scratch GRU, the training step compiled by torch.compile (Inductor), sync-free epoch",
         group="scratch", levers=("threads", "omp-spin", "cpp-wrapper", "compile-mode"),
         no_data_parallel="torch.compile of a DDP step splits the graph at DDP's gradient buckets (DDPOptimizer) "
                          "and cold-compiles for 80-100 s in every process on the 2-core CPU; not measured here"),
    Impl("torch-tuned", "torch", "torch_impl.tuned:torch_tuned", P.SCRATCH,
         "from-scratch GRU written for speed: hand-written backward (autograd.Function; weight gradients one "
         "product over T*B rows), the step compiled by torch.compile (C++ wrapper), OpenMP spinning between "
         "products in a process of its own", group="scratch", own_process=True, weight_gradients="batched", tuned=True,
         levers=("torch-backward", "cpp-wrapper", "omp-spin", "threads"), no_bf16=_TUNED_BF16,
         no_data_parallel=_TUNED_DP),
    Impl("torch-tuned-builtin", "torch", "torch_impl.tuned:torch_tuned_builtin", P.BUILTIN,
         "torch.nn.GRU's model and parameters written for speed: one (h, 3h) product per step, hand-written "
         "backward (autograd.Function; weight gradients one product over T*B rows), the step compiled by "
         "torch.compile (C++ wrapper), OpenMP spinning between products in a process of its own",
         group="builtin", own_process=True, weight_gradients="batched", tuned=True,
         levers=("torch-backward", "cpp-wrapper", "omp-spin", "threads"), no_bf16=_TUNED_BF16,
         no_data_parallel=_TUNED_DP),
    Impl("jax-scratch", "jax", "jax_impl.train:jax_scratch", P.SCRATCH,
         "from-scratch GRU, pure JAX, lax.scan over time, one jitted call per epoch", group="scratch",
         levers=_JAX_ROWS),
    Impl("flax-gru", "jax", "jax_impl.train:flax_gru", P.BUILTIN,
         "flax.linen six-bias GRU (torch's parameterization), one jitted call per epoch", group="builtin",
         levers=_JAX_ROWS),
    Impl("flax-grucell", "jax", "jax_impl.train:flax_grucell", P.BUILTIN,
         "stock flax nn.GRUCell in nn.RNN (four folded biases), one jitted call per epoch",
         forward_only=ForwardOnly("torch-cudnn", True, "stock nn.GRUCell keeps four biases: b_ir+b_hr and "
                                  "b_iz+b_hz are folded, so SGD gives the folded bias one gradient where torch's "
                                  "pair gets two, and the clipping norm counts the pair's gradient twice; "
                                  "training trajectories differ")),
    Impl("nnx-gru", "jax", "jax_impl.train:nnx_gru", P.BUILTIN,
         "flax.nnx six-bias GRU (torch's parameterization), split/merge in one jitted call per epoch",
         group="builtin"),
    Impl("nnx-grucell", "jax", "jax_impl.train:nnx_grucell", P.BUILTIN,
         "stock flax nnx.GRUCell in nnx.RNN (no b_hn), split/merge in one jitted call per epoch",
         forward_only=ForwardOnly("torch-cudnn", False, "stock nnx.GRUCell has no b_hn: it computes n = tanh(x "
                                  "W_in + b_in + r * (h W_hn)), although its docstring and Linen's GRUCell add "
                                  "b_hn inside r * (...) (google/flax#5594); the conversion folds b_hr, b_hz and "
                                  "drops b_hn, so from torch's initial weights (b_hn not zero) even the forward "
                                  "pass differs, by the figure reported")),
    Impl("jax-tuned", "jax", "jax_impl.tuned:jax_tuned", P.SCRATCH,
         "from-scratch GRU written for speed: hand-written backward (jax.custom_vjp; weight gradients one product "
         "over T*B rows), one jitted call per epoch", group="scratch", weight_gradients="batched", tuned=True,
         levers=("jax-backward", "unroll", "xla-dot"), no_bf16=_TUNED_BF16),
    Impl("jax-tuned-builtin", "jax", "jax_impl.tuned:jax_tuned_builtin", P.BUILTIN,
         "torch.nn.GRU's model written for speed in JAX: one (h, 3h) product per step, hand-written backward "
         "(jax.custom_vjp; weight gradients one product over T*B rows), one jitted call per epoch",
         group="builtin", weight_gradients="batched", tuned=True, levers=("jax-backward", "unroll", "xla-dot"),
         no_bf16=_TUNED_BF16),
    Impl("keras-jax", "keras", "keras_impl.train:make", P.BUILTIN,
         "Keras 3 GRU(reset_after=True) + Dense, model.fit per epoch, on the JAX backend (XLA)", group="builtin",
         engine="jax", own_process=True, also_judged=("keras backends", "keras-torch"),
         deviation="Keras 3.15.1 on the JAX backend does not carry a stateful GRU's state from minibatch to "
                   "minibatch in model.fit: the state variables are created untracked "
                   "(RNN._create_state_variables), so the JAX trainer's stateless train step drops their "
                   "update, and every minibatch starts from zero, as under random sampling (keras-torch "
                   "carries it)",
         no_bf16=_KERAS_BF16, no_float64=_KERAS_F64,
         no_data_parallel="Keras's own data parallelism (keras.distribution) is JAX-only and outside this "
                          "comparison's engines; not measured here"),
    Impl("keras-torch", "keras", "keras_impl.train:make", P.BUILTIN,
         "Keras 3 GRU(reset_after=True) + Dense, model.fit per epoch, on the torch backend (eager)",
         group="builtin", engine="torch", own_process=True, levers=("keras-jit",), no_bf16=_KERAS_BF16,
         no_float64=_KERAS_F64, no_data_parallel="Keras 3 has no data-parallel distribution on the torch backend"),
)}
BASELINE = "torch-reference"  # the baseline of every speed-up
# Beside a row whose training is not its model's reference training (Impl.departure), in every
# speed table, plot and summary: its speed is not that of the model the others train.
MARK = "†"
FRAMEWORKS = tuple(dict.fromkeys(i.framework for i in IMPLS.values()))


def check(impls, config) -> None:
  """ValueError (one line naming the fix) when implementations `impls` cannot train in
  `config`, before any training."""
  for n in impls:
    if IMPLS[n].refusal(config):
      raise ValueError(IMPLS[n].refusal(config))
  if config.precision == "bf16" and config.devices > 1:
    raise ValueError("--precision bf16 trains each row beside its bf16 twin on one device; data-parallel "
                     "twins in bf16 are not measured yet: drop --devices or --precision bf16")


def implementation(name: str) -> Impl:
  """The implementation of a record named `name` (a row, or a row with a point's label after
  it); None for a name no longer in the table (an old report's)."""
  try:
    return Row.parse(name).info
  except ValueError:
    known = [n for n in IMPLS if name.startswith(n)]
    return IMPLS[max(known, key=len)] if known else None


def able(config) -> list:
  """The implementations that can train in `config` (a run without --impls trains these)."""
  return [n for n, i in IMPLS.items() if not i.refusal(config)]


def group(name: str) -> list:
  """The members of parity group `name`, in table order: the first is its anchor."""
  return [n for n, i in IMPLS.items() if i.group == name]


def groups() -> list:
  return list(dict.fromkeys(i.group for i in IMPLS.values() if i.group))


@dataclasses.dataclass(frozen=True)
class Row:
  """What one record of a report trains: an implementation, in the run's float arithmetic or
  as its bf16 mixed-precision twin, on one device or data parallel over `devices`."""
  impl: str
  bf16: bool = False
  devices: int = 1

  def __post_init__(self):
    if self.impl not in IMPLS:
      raise ValueError(f"unknown implementation {self.impl!r}; known: {', '.join(IMPLS)}")

  @property
  def name(self) -> str:
    return self.impl + ("-bf16" if self.bf16 else "") + (f"-dp{self.devices}" if self.devices > 1 else "")

  @property
  def info(self) -> Impl:
    return IMPLS[self.impl]

  @property
  def single(self) -> "Row":
    """The same row on one device."""
    return Row(self.impl, self.bf16)

  @property
  def float32(self) -> "Row":
    """A bf16 twin's row in the run's float arithmetic."""
    return Row(self.impl, devices=self.devices)

  def arithmetic(self, run: str) -> str:
    """The arithmetic its parity checks are judged in: "bf16" for a twin, else the run's."""
    return "bf16" if self.bf16 else run

  def config(self, run):
    """The configuration it trains with: in a bf16 run, bf16 for a twin and full float32 for
    the row itself; on its own devices."""
    if run.precision == "bf16":
      run = run.set(precision="bf16" if self.bf16 else "highest")
    return run.set(devices=self.devices) if self.devices > 1 else run

  def description(self) -> str:
    return (self.info.description + (f"; data parallel over {self.devices} devices" if self.devices > 1 else "")
            + ("; bfloat16 mixed precision (float32 weights)" if self.bf16 else ""))

  def order(self) -> tuple:
    """Reports list rows on one device first, then data-parallel ones; float32 before bf16
    twins; each in table order."""
    return self.devices, self.bf16, list(IMPLS).index(self.impl)

  @classmethod
  def parse(cls, name: str) -> "Row":
    """"torch-scratch-bf16-dp2" -> Row("torch-scratch", bf16=True, devices=2); ValueError
    naming the known implementations for anything else."""
    m = _NAME.match(name)
    if not m or m["impl"] not in IMPLS:
      raise ValueError(f"unknown implementation {name!r}; known: {', '.join(IMPLS)}")
    return cls(m["impl"], bool(m["bf16"]), int(m["devices"] or 1))


_NAME = re.compile(r"^(?P<impl>.+?)(?P<bf16>-bf16)?(?:-dp(?P<devices>[1-9]\d*))?$")


def run_rows(impls, config) -> list:
  """The rows a comparison of `impls` trains: each implementation and beside it its
  data-parallel twin on config.devices devices, then (a bf16 run) every row's bf16 twin."""
  twins = (1, config.devices) if config.devices > 1 else (1,)
  out = [Row(n, devices=d) for n in impls for d in twins]
  return out + ([Row(r.impl, True) for r in out] if config.precision == "bf16" else [])


def select(text, config) -> list:
  """The implementations `--impls` names (comma-separated); when not given, every one that
  can train in `config`. ValueError naming the fix."""
  if text is None:
    return able(config)
  names = [n.strip() for n in text.split(",") if n.strip()]
  for r in map(Row.parse, names):  # ValueError listing the known names
    if r.devices > 1 or r.bf16:
      raise ValueError(f"--impls takes the rows' own names: for {r.name} give {r.impl} with "
                       + (f"--devices {r.devices}" if r.devices > 1 else "--precision bf16"))
  if not names or len(set(names)) != len(names):
    raise ValueError(f"--impls needs distinct names from: {', '.join(IMPLS)}")
  return names
