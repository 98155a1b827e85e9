"""The conversion table between the canonical built-in layout (shared/params.py) and the
weights of a Keras model: `keras.layers.GRU(reset_after=True)` then `keras.layers.Dense`.
NumPy only, so that it is tested without Keras.

Keras stacks a GRU's three gates in one matrix in the order z, r, h (torch: r, z, n), all
kernels (in, out) as ours; with reset_after=True its bias is (2, 3h): row 0 the input
side, row 1 the hidden side, the six biases of torch's cell. The candidate h of Keras is
torch's n.
"""
import numpy as np

GATES = ("z", "r", "n")  # Keras's order of the stacked gates, in canonical names


def to_keras(p: dict) -> list:
  """Canonical built-in params -> [kernel (V, 3h), recurrent_kernel (h, 3h), bias (2, 3h),
  out kernel (h, V), out bias (V,)], the order of `model.get_weights()`."""
  kernel = np.concatenate([p[f"W_i{g}"] for g in GATES], 1)
  recurrent = np.concatenate([p[f"W_h{g}"] for g in GATES], 1)
  bias = np.stack([np.concatenate([p[f"b_i{g}"] for g in GATES]),
                   np.concatenate([p[f"b_h{g}"] for g in GATES])])
  return [kernel, recurrent, bias, p["W_hq"], p["b_q"]]


def from_keras(weights: list) -> dict:
  """The inverse of `to_keras` (also maps gradients, which have the weights' shapes)."""
  kernel, recurrent, bias, w_out, b_out = (np.asarray(w) for w in weights)
  out = {"W_hq": w_out, "b_q": b_out}
  for side, k, b in (("i", kernel, bias[0]), ("h", recurrent, bias[1])):
    for g, w, v in zip(GATES, np.split(k, 3, 1), np.split(b, 3)):
      out[f"W_{side}{g}"], out[f"b_{side}{g}"] = w, v
  return out
