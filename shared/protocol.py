"""The protocol every implementation speaks, and the registry that builds them.

NumPy in, NumPy out at the edges, so compare.py, the parity tests and users treat
every implementation alike. Models and equations: see shared/params.py.

    impl = make_impl("jax-scratch", config)      # initial weights from config.seed
    impl.set_params(params)                      # canonical layout, dict of np.ndarray
    logits, H = impl.forward(X, H=None)          # X int32 (B, T) -> (T*B, V), (B, hidden)
    loss, grads, H = impl.loss_and_grads(X, Y)   # mean cross-entropy, grads by name
    mean_loss = impl.train_epoch((Xs, Ys))       # (num_batches, B, T) each; updates in place
    impl.predict("time traveller", 50, vocab)    # greedy, as d2l's predict_ch8

The registry imports a framework only when one of its names is asked for, so this
module (and all of shared/) stays free of torch and jax.
"""
import abc
import importlib

import numpy as np

from shared import params as P

# name -> (module, layout, description). The module's `make(name, config, device)` builds it.
IMPLS = {
    "torch-reference": ("torch_impl.train", P.SCRATCH,
                        "d2l's from-scratch loop as the book writes it (baseline, host syncs kept)"),
    "torch-scratch": ("torch_impl.train", P.SCRATCH,
                      "from-scratch GRU, sync-free epoch, CUDA-graph step on GPU"),
    "torch-cudnn": ("torch_impl.train", P.BUILTIN,
                    "torch.nn.GRU (cuDNN on GPU), sync-free epoch, CUDA-graph step on GPU"),
    "jax-scratch": ("jax_impl.train", P.SCRATCH,
                    "from-scratch GRU, pure JAX, lax.scan over time, one jitted call per epoch"),
    "flax-gru": ("jax_impl.train", P.BUILTIN,
                 "flax.linen six-bias GRU (torch's parameterization), one jitted call per epoch"),
    "flax-grucell": ("jax_impl.train", P.BUILTIN,
                     "stock flax nn.GRUCell in nn.RNN (four folded biases), one jitted call per epoch"),
}
BASELINE = "torch-reference"

# Parity groups: same mathematics and parameterization. The first member is the anchor.
PARITY_GROUPS = {
    "scratch": ("torch-reference", "torch-scratch", "jax-scratch"),
    "builtin": ("torch-cudnn", "flax-gru"),
}
# Checked against the anchor on the forward pass only, and why.
FORWARD_ONLY = {
    "flax-grucell": ("torch-cudnn", "stock nn.GRUCell keeps four biases: b_ir+b_hr and b_iz+b_hz are "
                     "folded, so SGD gives the folded bias one gradient where torch's pair gets two, and "
                     "the clipping norm counts the pair's gradient twice; training trajectories differ"),
}


def layout_of(name: str) -> str:
  return _entry(name)[1]


def _entry(name: str):
  if name not in IMPLS:
    raise ValueError(f"unknown implementation {name!r}; known: {', '.join(IMPLS)}")
  return IMPLS[name]


def make_impl(name: str, config, device=None) -> "GRUImpl":
  """Builds implementation `name` on `device` ("cpu", "gpu" or None for GPU-if-present).

  Its parameters start from the canonical initializer of its layout and config.seed.
  """
  module, _, _ = _entry(name)
  config.validate()
  return importlib.import_module(module).make(name, config, device)


class GRUImpl(abc.ABC):
  """Base class of every implementation; subclasses fill in the framework parts."""

  name: str
  layout: str
  config: object
  device_name: str  # e.g. "cpu" or "NVIDIA H200", as the framework reports it
  precision: str    # the float32 matmul precision that actually runs
  execution: str    # how an epoch runs, e.g. "CUDA graph per step", set once known

  def initial_params(self) -> dict:
    """The canonical initial weights of this implementation's layout, from config.seed."""
    c = self.config
    return P.init_params(self.layout, c.seed, c.vocab_size, c.num_hiddens)

  def checked(self, params: dict) -> dict:
    """float32 copies of `params` after checking names and shapes against the layout."""
    return P.check(params, self.layout, self.config.vocab_size, self.config.num_hiddens)

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
    """Compiles or captures whatever the first epoch would; returns seconds. Params unchanged."""
    return 0.0

  def peak_memory_bytes(self):
    """Peak device memory of this implementation's training where the framework reports it."""
    return None

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

