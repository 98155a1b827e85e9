"""The protocol every implementation speaks, and the registry that builds them.

NumPy in, NumPy out at the edges, so compare.py, the parity tests and users treat
every implementation alike. Models and equations: see shared/params.py.

    impl = make_impl("jax-scratch", config)      # initial weights from config.seed
    impl.set_params(params)                      # canonical layout, dict of np.ndarray
    logits, H = impl.forward(X, H=None)          # X int32 (B, T) -> (T*B, V), (B, hidden)
    loss, grads, H = impl.loss_and_grads(X, Y)   # mean cross-entropy, grads by name
    mean_loss = impl.train_epoch((Xs, Ys))       # (num_batches, B, T) each; updates in place
    impl.clipped_steps                           # steps of that epoch at which clipping fired
    impl.predict("time traveller", 50, vocab)    # greedy, as d2l's predict_ch8

The registry imports a framework only when one of its names is asked for, so this
module (and all of shared/) stays free of torch and jax.
"""
import abc
import contextlib
import functools
import importlib
import re
import time
from typing import NamedTuple

import numpy as np

from shared import params as P
from shared import precision

# name -> (module, layout, description). The module's `make(name, config, device)` builds it.
IMPLS = {
    "torch-reference": ("torch_impl.train", P.SCRATCH,
                        "d2l's from-scratch loop as the book writes it (baseline, host syncs kept)"),
    "torch-scratch": ("torch_impl.train", P.SCRATCH,
                      "from-scratch GRU, sync-free epoch, CUDA-graph step on GPU"),
    "torch-cudnn": ("torch_impl.train", P.BUILTIN,
                    "torch.nn.GRU (cuDNN on GPU), sync-free epoch, CUDA-graph step on GPU"),
    "torch-compile": ("torch_impl.train", P.SCRATCH,
                      "from-scratch GRU, the training step compiled by torch.compile (Inductor), sync-free epoch"),
    "jax-scratch": ("jax_impl.train", P.SCRATCH,
                    "from-scratch GRU, pure JAX, lax.scan over time, one jitted call per epoch"),
    "flax-gru": ("jax_impl.train", P.BUILTIN,
                 "flax.linen six-bias GRU (torch's parameterization), one jitted call per epoch"),
    "flax-grucell": ("jax_impl.train", P.BUILTIN,
                     "stock flax nn.GRUCell in nn.RNN (four folded biases), one jitted call per epoch"),
    "nnx-gru": ("jax_impl.train", P.BUILTIN,
                "flax.nnx six-bias GRU (torch's parameterization), split/merge in one jitted call per epoch"),
    "nnx-grucell": ("jax_impl.train", P.BUILTIN,
                    "stock flax nnx.GRUCell in nnx.RNN (no b_hn), split/merge in one jitted call per epoch"),
    # Keras 3 (keras_impl/), each in a process of its own (shared/keras_rows.py)
    "keras-jax": ("keras_impl.train", P.BUILTIN,
                  "Keras 3 GRU(reset_after=True) + Dense, model.fit per epoch, on the JAX backend (XLA)"),
    "keras-torch": ("keras_impl.train", P.BUILTIN,
                    "Keras 3 GRU(reset_after=True) + Dense, model.fit per epoch, on the torch backend (eager)"),
}
BASELINE = "torch-reference"

# Parity groups: same mathematics and parameterization. The first member is the anchor.
PARITY_GROUPS = {
    "scratch": ("torch-reference", "torch-scratch", "torch-compile", "jax-scratch"),
    "builtin": ("torch-cudnn", "flax-gru", "nnx-gru", "keras-jax", "keras-torch"),
}
# One model on two backends: pairs judged against each other too, beside their group's anchor.
BACKEND_PAIRS = (("keras backends", "keras-jax", "keras-torch"),)
class ForwardOnly(NamedTuple):
  """An implementation checked against `anchor` on the forward pass only, and why. Where
  the forward pass itself differs (a known deviation, asserted in tests/test_parity.py),
  `judged` is False: its gap is measured and reported beside the tolerance, not judged."""
  anchor: str
  judged: bool
  why: str


FORWARD_ONLY = {
    "flax-grucell": ForwardOnly("torch-cudnn", True, "stock nn.GRUCell keeps four biases: b_ir+b_hr and "
                                "b_iz+b_hz are folded, so SGD gives the folded bias one gradient where torch's "
                                "pair gets two, and the clipping norm counts the pair's gradient twice; "
                                "training trajectories differ"),
    "nnx-grucell": ForwardOnly("torch-cudnn", False, "stock nnx.GRUCell has no b_hn: it computes n = tanh(x "
                               "W_in + b_in + r * (h W_hn)), although its docstring and Linen's GRUCell add "
                               "b_hn inside r * (...) (google/flax#5594); the conversion folds b_hr, b_hz and "
                               "drops b_hn, so from torch's initial weights (b_hn not zero) even the forward "
                               "pass differs, by the figure reported"),
}


class Deviation(NamedTuple):
  """A row whose training departs from its group's rule when the run carries the hidden
  state (sequential sampling) because its framework does not let a user keep the rule
  (asserted in tests): its forward pass and gradients are judged as the group's; the
  figures that depend on training are measured and reported beside the tolerance, not
  judged. With random sampling (no state carried) the row is judged in full."""
  why: str


TRAINING_DEVIATIONS = {
    "keras-jax": Deviation("Keras 3.15.1 on the JAX backend does not carry a stateful GRU's state from "
                           "minibatch to minibatch in model.fit: the state variables are created untracked "
                           "(RNN._create_state_variables), so the JAX trainer's stateless train step drops "
                           "their update, and every minibatch starts from zero, as under random sampling "
                           "(keras-torch carries it)"),
}


def training_deviation(impl: str, anchor: str, carries_state: bool) -> str:
  """Why the training figures of the pair (impl, anchor) are reported, not judged; "" when
  they are judged."""
  if not carries_state:
    return ""
  found = [TRAINING_DEVIATIONS[b] for b in (_base(impl), _base(anchor)) if b in TRAINING_DEVIATIONS]
  return found[0].why if found else ""


class Unavailable(RuntimeError):
  """This implementation cannot run on this machine (the message names the fix); the
  other implementations can. Raised by make_impl before any training."""


def one_line(e: BaseException) -> str:
  """An exception as one line, for reports: its type and the first line of its message."""
  text = str(e).strip()
  return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


_DP = re.compile(r"^(?P<base>.+)-dp(?P<devices>[1-9]\d*)$")
BF16 = "-bf16"  # a row's bf16 mixed-precision twin (shared/precision.py): "torch-scratch-bf16"


def split_name(name: str) -> tuple:
  """"torch-scratch-dp2" -> ("torch-scratch", 2), a data-parallel row (shared/distributed.py);
  any other name -> (name, 1)."""
  m = _DP.match(name)
  return (m["base"], int(m["devices"])) if m and _base(m["base"]) in IMPLS else (name, 1)


def split_precision(name: str) -> tuple:
  """"torch-scratch-bf16" -> ("torch-scratch", "bf16"), a row's bf16 twin; any other name ->
  (name, None): the row runs in its run's precision."""
  if name.endswith(BF16) and name[:-len(BF16)] in IMPLS:
    return name[:-len(BF16)], "bf16"
  return name, None


def _base(name: str) -> str:
  """The registry name under a row's suffixes."""
  return split_precision(split_name(name)[0])[0]


def dp_name(name: str, devices: int) -> str:
  """The row of `name` on `devices` devices: the name itself for one."""
  return name if devices == 1 else f"{name}-dp{devices}"


def bf16_name(name: str) -> str:
  return name + BF16


def arithmetic(name: str, default: str) -> str:
  """The arithmetic a parity check of row `name` is judged in: "bf16" for a bf16 twin, else
  the run's (`default`, "float32" or "float64")."""
  return split_precision(name)[1] or default


def order_key(name: str) -> tuple:
  """Reports list rows on one device first, then data-parallel ones; float32 before bf16
  twins; each in registry order."""
  base, devices = split_name(name)
  base, precision = split_precision(base)
  return devices, bool(precision), list(IMPLS).index(base)


def layout_of(name: str) -> str:
  return _entry(name)[1]


def description(name: str) -> str:
  base, devices = split_name(name)
  base, precision = split_precision(base)
  return (_entry(base)[2] + (f"; data parallel over {devices} devices" if devices > 1 else "")
          + ("; bfloat16 mixed precision (float32 weights)" if precision else ""))


def framework_of(name: str) -> str:
  """"torch", "jax" or "keras": the side of the repository an implementation lives on."""
  return _entry(name)[0].split("_impl")[0]


def engine_of(name: str) -> str:
  """"torch" or "jax": the framework whose kernels run a row's arithmetic (a Keras row's
  backend: keras-jax runs on JAX, keras-torch on torch)."""
  framework = framework_of(name)
  return _base(name).split("-")[1] if framework == "keras" else framework


def _variants(names) -> list:
  """The (devices, precision suffix) of every row in `names`: plain rows (1, ""), then
  data-parallel and bf16 twins."""
  found = {(split_name(n)[1], BF16 if split_precision(split_name(n)[0])[1] else "") for n in names}
  return sorted(found)


def _variant(name: str, devices: int, suffix: str) -> str:
  return dp_name(name + suffix, devices)


def parity_pairs(names) -> list:
  """[(group, impl, anchor)] for the implementations in `names`: in each parity group, every
  member present is compared with the first member present (the anchor); the data-parallel
  rows (`<row>-dpN`) and the bf16 twins (`<row>-bf16`) the same way among themselves (groups
  `<group>-dpN`, `<group>-bf16`, judged in their own arithmetic), and each data-parallel row
  against its own single-device row (group "data-parallel"), which computes the same function;
  and each BACKEND_PAIRS pair (one Keras model on two backends).
  A bf16 twin is not judged against its float32 row: bf16 changes the numbers
  (`precision_pairs` gives those pairs, for the figures that compare them)."""
  pairs = []
  for devices, suffix in _variants(names):
    for group, members in PARITY_GROUPS.items():
      # a row whose bf16 idiom departs from the casting policy is no bf16 anchor: forward_only_pairs
      members = [n for n in members if not (suffix and n in precision.DEVIATIONS)]
      present = [_variant(n, devices, suffix) for n in members if _variant(n, devices, suffix) in names]
      pairs += [(_variant(group, devices, suffix), n, present[0]) for n in present[1:]]
  pairs += [(group, n, a) for group, n, a in BACKEND_PAIRS if n in names and a in names]
  return pairs + [("data-parallel", n, split_name(n)[0]) for n in names
                  if split_name(n)[1] > 1 and split_name(n)[0] in names]


def precision_pairs(names) -> list:
  """[("bf16 vs float32", twin, row)] for every bf16 twin whose float32 row is in `names`."""
  return [("bf16 vs float32", n, split_precision(n)[0]) for n in names
          if split_precision(n)[1] and split_precision(n)[0] in names]


def forward_only_pairs(names) -> list:
  """[(layout, impl, anchor, why, judged)] of the forward-only checks whose two names are in
  `names` (a bf16 twin against its anchor's bf16 twin); `judged` is False for a known
  forward gap (reported, not judged)."""
  deviations = {n + BF16: ForwardOnly(_bf16_anchor(n) + BF16, False, why) for n, why in precision.DEVIATIONS.items()}
  return [(layout_of(n), v, f.anchor + suffix, f.why, f.judged)
          for n, f in FORWARD_ONLY.items() for suffix in ("", BF16)
          if (v := n + suffix) in names and f.anchor + suffix in names] + [
      (layout_of(n), n, f.anchor, f"bf16 casting: {f.why}", f.judged)
      for n, f in deviations.items() if n in names and f.anchor in names]


def _bf16_anchor(name: str) -> str:
  """The member of `name`'s parity group that anchors its bf16 twins: the first that follows
  the casting policy."""
  group = next(m for m in PARITY_GROUPS.values() if name in m)
  return next(n for n in group if n not in precision.DEVIATIONS)


def _entry(name: str):
  name = _base(name)
  if name not in IMPLS:
    raise ValueError(f"unknown implementation {name!r}; known: {', '.join(IMPLS)}")
  return IMPLS[name]


def runtime(framework: str) -> dict:
  """What `framework` ("torch", "jax" or "keras") runs on here: threads, parallel backend, matrix
  libraries ({torch,jax}_impl/threads.py); imports that framework."""
  return importlib.import_module(f"{framework}_impl.threads").describe()


def make_impl(name: str, config, device=None) -> "GRUImpl":
  """Builds implementation `name` on `device` ("cpu", "gpu" or None for GPU-if-present).

  Its parameters start from the canonical initializer of its layout and config.seed.
  """
  module, _, _ = _entry(name)
  config.validate()
  if split_name(name)[1] > 1:  # data parallel: the engines' processes (shared/distributed.py)
    return importlib.import_module("shared.distributed").make(name, config, device)
  if framework_of(name) == "keras":  # a process of its own, on its backend
    return importlib.import_module("shared.keras_rows").make(name, config, device)
  base, _ = split_precision(name)
  impl = importlib.import_module(module).make(base, precision.row_config(name, config), device)
  impl.name = name
  return impl


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
  fatal: bool = False  # one rank of a launched run: an error stops the process (shared/run.py)

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

