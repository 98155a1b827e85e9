"""Flax Linen models of the built-in GRU (shared/params.py, "Built-in model"); the NNX
ones are in nnx.py and share this file's conversion tables.

* `FlaxGRU` (flax-gru): a six-bias cell with torch.nn.GRU's exact parameterization,
  written with Flax Dense layers (kernels (in, out)) and scanned with `nn.scan`. The
  input-side Dense layers run on all time steps before the scan; the hidden side
  runs in the scanned cell.
* `FlaxGRUCell` (flax-grucell): stock `nn.GRUCell` in `nn.RNN`. Four biases, so the
  canonical layout is folded on the way in (params.fold_builtin) and comes back
  folded, input side, with b_hr = b_hz = 0.

Conversion is a rename table, canonical name -> path in the Flax params tree (`to_tree`,
`from_tree`).
"""
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jax_impl import precision
from shared import params as P


def torch_gru_step(h, xr, xz, xn, hidden):
  """One step of torch.nn.GRU (shared/params.py, "Built-in model"), for the Linen and the
  NNX rows alike: xr, xz, xn (B, h) the input projections, hidden(g) gate g's hidden-side
  Linear ("r", "z", "n", called in that order) applied to h (B, h). Returns the new h."""
  r = precision.sigmoid(xr + hidden("r"))  # correctly rounded in bf16, as torch's
  z = precision.sigmoid(xz + hidden("z"))
  n = jnp.tanh(xn + r * hidden("n"))
  # (1 - z) * n + z * h, in the form torch's GRU kernel computes it (aten's GRU cell: hy =
  # (hx - n) * z + n): in bf16 the two forms round differently, as (1 - z) * n rounds twice.
  return n + z * (h - n)


class TorchGRUCell(nn.Module):
  """Hidden side of torch's GRU step; `x` holds the input projections [r | z | n] (B, 3h)."""
  features: int
  dtype: Any = None  # the products' dtype (bf16 under mixed precision); None: the inputs'

  @nn.compact
  def __call__(self, h, x):
    dense = functools.partial(nn.Dense, self.features, **precision.dense_options(self.dtype))  # (h, h), bias
    h = torch_gru_step(h, *jnp.split(x, 3, axis=-1),
                       lambda g: precision.rounded(dense(name=f"h{g}")(h), self.dtype))
    return h, h


class FlaxGRU(nn.Module):
  """`dtype`: bf16 under mixed precision (Flax's idiom: bf16 computation over float32
  parameters, shared/precision.py), None otherwise."""
  vocab_size: int
  num_hiddens: int
  unroll: int = 1
  dtype: Any = None

  @nn.compact
  def __call__(self, X, H):
    """X int (B, T), H (B, h) -> logits (T*B, V), H (B, h)."""
    x = jax.nn.one_hot(X.T, self.vocab_size)                          # (T, B, V)
    dense = lambda features, name: lambda v: precision.rounded(
        nn.Dense(features, name=name, **precision.dense_options(self.dtype))(v), self.dtype)
    xp = jnp.concatenate([dense(self.num_hiddens, name=f"i{g}")(x) for g in "rzn"], -1)
    scan = nn.scan(TorchGRUCell, variable_broadcast="params", split_rngs={"params": False},
                   in_axes=0, out_axes=0, unroll=self.unroll)
    H, Hs = scan(self.num_hiddens, self.dtype, name="cell")(H, xp)     # Hs (T, B, h)
    logits = dense(self.vocab_size, name="out")(Hs.reshape(-1, self.num_hiddens))
    return logits, H


class FlaxGRUCell(nn.Module):
  vocab_size: int
  num_hiddens: int
  unroll: int = 1
  dtype: Any = None

  @nn.compact
  def __call__(self, X, H):
    """X int (B, T), H (B, h) -> logits (T*B, V), H (B, h)."""
    x = jax.nn.one_hot(X.T, self.vocab_size)                          # (T, B, V)
    rnn = nn.RNN(nn.GRUCell(self.num_hiddens, dtype=self.dtype, name="cell"), time_major=True,
                 return_carry=True, unroll=self.unroll, name="rnn")
    H, Hs = rnn(x, initial_carry=H)                                   # Hs (T, B, h)
    logits = nn.Dense(self.vocab_size, dtype=self.dtype, name="out")(Hs.reshape(-1, self.num_hiddens))
    return logits, H


_OUT = {"W_hq": ("out", "kernel"), "b_q": ("out", "bias")}
# canonical name -> Flax params path (None: the stock cell has no such parameter), per model.
FlaxGRU.TABLE = {**{f"W_i{g}": (f"i{g}", "kernel") for g in "rzn"},
                 **{f"b_i{g}": (f"i{g}", "bias") for g in "rzn"},
                 **{f"W_h{g}": ("cell", f"h{g}", "kernel") for g in "rzn"},
                 **{f"b_h{g}": ("cell", f"h{g}", "bias") for g in "rzn"}, **_OUT}
FlaxGRUCell.TABLE = {**{f"W_i{g}": ("cell", f"i{g}", "kernel") for g in "rzn"},
                     **{f"b_i{g}": ("cell", f"i{g}", "bias") for g in "rzn"},
                     **{f"W_h{g}": ("cell", f"h{g}", "kernel") for g in "rzn"},
                     "b_hr": None, "b_hz": None, "b_hn": ("cell", "hn", "bias"), **_OUT}


def _node(tree, path, create=False):
  for key in path:
    tree = tree.setdefault(key, {}) if create else tree[key]
  return tree


def to_tree(p: dict, table: dict) -> dict:
  """Canonical built-in layout -> params tree of NumPy arrays (the caller puts them on its
  device), by a table of canonical name -> where it goes.

  A table entry is a path in the tree; a path ending in a gate slot 0, 1, 2 (r, z, n) of
  an array that stacks the three gates along its last axis (NNX's fused GRUCell); or None
  where the model has no such parameter. Dropped b_hr, b_hz are folded into b_ir, b_iz
  first (the same function); a dropped b_hn is lost: it sits inside r * (h W_hn + b_hn),
  where no other bias can stand in for it.
  """
  if table["b_hr"] is None:
    p = P.fold_builtin(p)
  arrays = {}
  for name, path in table.items():
    if path is not None and isinstance(path[-1], int):
      arrays.setdefault(path[:-1], {})[path[-1]] = p[name]
    elif path is not None:
      arrays[path] = p[name]
  tree = {}
  for path, value in arrays.items():
    if isinstance(value, dict):  # gate slots, stacked r, z, n along the last axis
      value = np.concatenate([value[k] for k in sorted(value)], axis=-1)
    _node(tree, path[:-1], create=True)[path[-1]] = np.asarray(value)
  return tree


def from_tree(tree, table: dict) -> dict:
  """Params (or grads) tree -> canonical built-in layout; dropped biases come back as 0."""
  out, gates = {}, {}
  for name, path in table.items():
    if path is not None and isinstance(path[-1], int):  # split each fused array once
      if path[:-1] not in gates:
        gates[path[:-1]] = jnp.split(_node(tree, path[:-1]), 3, axis=-1)
      out[name] = gates[path[:-1]][path[-1]]
    elif path is not None:
      out[name] = _node(tree, path)
  zeros = jnp.zeros_like(out["b_in"])
  return {n: out.get(n, zeros) for n in P.BUILTIN_NAMES}
