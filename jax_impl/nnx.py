"""Flax NNX models of the built-in GRU (shared/params.py, "Built-in model"): the two Linen
rows of builtin.py written in the API Flax now recommends, converted by its tables.

* `NnxGRU` (nnx-gru): torch.nn.GRU's six-bias parameterization as nnx.Linear layers
  (kernels (in, out)); input side on all time steps before `lax.scan`, hidden side in it.
* `NnxGRUCell` (nnx-grucell): stock `nnx.GRUCell` in `nnx.RNN`. Its source (flax 0.12.8,
  nnx/nn/recurrent.py) computes n = tanh(x W_in + b_in + r * (h W_hn)) with one fused
  input Linear (bias) and one fused hidden Linear (no bias): there is no b_hn, although
  its docstring and Linen's GRUCell have one (google/flax#5594). The canonical layout
  converts with b_hr, b_hz folded into b_ir, b_iz (the same function) and b_hn DROPPED,
  so from torch's initial weights, where b_hn is not zero, the forward pass differs.

Models are built abstractly (`nnx.eval_shape`: no random draws, no arrays) and split once
into a graph definition; training merges it with a plain dict of parameters inside the
jitted whole-epoch scan of train.py (the functional style).
"""
import functools

import jax
from flax import nnx

import jax.numpy as jnp

from jax_impl import builtin, precision


class NnxGRU(nnx.Module):

  def __init__(self, vocab_size: int, num_hiddens: int, *, unroll: int = 1, dtype=None, rngs: nnx.Rngs):
    V, h = vocab_size, num_hiddens
    # dtype bf16: float32 sums of bf16 operands, rounded after the bias (`_linear`), as torch's
    # addmm (jax_impl/precision.py says why); None: the parameters' dtype
    f32 = {"dtype": dtype, "preferred_element_type": jnp.float32} if dtype is not None else {}
    linear = functools.partial(nnx.Linear, rngs=rngs, **f32)
    self.vocab_size, self.num_hiddens, self.unroll, self.dtype = V, h, unroll, dtype
    self.ir, self.iz, self.in_ = linear(V, h), linear(V, h), linear(V, h)  # `in` is a keyword
    self.hr, self.hz, self.hn = linear(h, h), linear(h, h), linear(h, h)
    self.out = linear(h, V)

  def __call__(self, X, H):
    """X int (B, T), H (B, h) -> logits (T*B, V), H (B, h)."""
    x = jax.nn.one_hot(X.T, self.vocab_size, dtype=self.out.kernel.dtype)  # (T, B, V)
    xs = (self._linear(self.ir, x), self._linear(self.iz, x), self._linear(self.in_, x))  # 3 x (T, B, h)

    def step(h, x):
      h = builtin.torch_gru_step(h, *x, lambda g: self._linear(getattr(self, f"h{g}"), h))
      return h, h

    H, Hs = jax.lax.scan(step, H, xs, unroll=self.unroll)                  # Hs (T, B, h)
    return self._linear(self.out, Hs.reshape(-1, self.num_hiddens)), H

  def _linear(self, layer, x):
    return precision.rounded(layer(x), self.dtype)


class NnxGRUCell(nnx.Module):

  def __init__(self, vocab_size: int, num_hiddens: int, *, unroll: int = 1, dtype=None, rngs: nnx.Rngs):
    self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
    # rngs=False: the initial carry is always given, so the RNN keeps no RNG state.
    self.rnn = nnx.RNN(nnx.GRUCell(vocab_size, num_hiddens, dtype=dtype, rngs=rngs), time_major=True,
                       return_carry=True, unroll=unroll, rngs=False)
    self.out = nnx.Linear(num_hiddens, vocab_size, dtype=dtype, rngs=rngs)

  def __call__(self, X, H):
    """X int (B, T), H (B, h) -> logits (T*B, V), H (B, h)."""
    x = jax.nn.one_hot(X.T, self.vocab_size, dtype=self.out.kernel.dtype)  # (T, B, V)
    H, Hs = self.rnn(x, initial_carry=H)                                    # Hs (T, B, h)
    return self.out(Hs.reshape(-1, self.num_hiddens)), H


_OUT = {"W_hq": ("out", "kernel"), "b_q": ("out", "bias")}
_NAME = {"r": "ir", "z": "iz", "n": "in_"}
# canonical name -> path in the params dict (builtin.to_tree); a trailing 0, 1, 2 is the
# gate's slot in a fused [r | z | n] array; None: the stock cell has no such parameter.
NnxGRU.TABLE = {**{f"W_i{g}": (_NAME[g], "kernel") for g in "rzn"},
                **{f"b_i{g}": (_NAME[g], "bias") for g in "rzn"},
                **{f"W_h{g}": (f"h{g}", "kernel") for g in "rzn"},
                **{f"b_h{g}": (f"h{g}", "bias") for g in "rzn"}, **_OUT}
NnxGRUCell.TABLE = {**{f"W_i{g}": ("rnn", "cell", "dense_i", "kernel", k) for k, g in enumerate("rzn")},
                    **{f"b_i{g}": ("rnn", "cell", "dense_i", "bias", k) for k, g in enumerate("rzn")},
                    **{f"W_h{g}": ("rnn", "cell", "dense_h", "kernel", k) for k, g in enumerate("rzn")},
                    "b_hr": None, "b_hz": None, "b_hn": None, **_OUT}


def graphdef(model, vocab_size: int, num_hiddens: int, unroll: int = 1, dtype=None):
  """The graph definition of `model` (NnxGRU or NnxGRUCell), built abstractly; its only state
  is nnx.Param."""
  abstract = nnx.eval_shape(lambda: model(vocab_size, num_hiddens, unroll=unroll, dtype=dtype,
                                                 rngs=nnx.Rngs(0)))
  definition, _ = nnx.split(abstract)
  return definition


def apply_fn(model, vocab_size: int, num_hiddens: int, unroll: int = 1, dtype=None):
  """`apply(params, X, H) -> (logits, H)` over a plain dict of parameters (the functional
  style: nnx.merge rebuilds the module inside the trace, nothing is walked per call)."""
  definition = graphdef(model, vocab_size, num_hiddens, unroll, dtype)
  return lambda params, X, H: nnx.merge(definition, params)(X, H)
