"""What "agree" and "faster" mean, measured: parity figures, tolerances, throughput.

Parity compares an implementation with its group's anchor (shared/protocol.py,
PARITY_GROUPS) from identical initial weights and identical minibatches.
"""
import math

import numpy as np

# Tolerances: one place, each with how it was chosen. "Measured" figures are float32
# round-off on the 2-core CPU (torch 2.13, jax 0.10.2), seed config, from
# `compare.py --preset quick` and the committed CPU report under reports/.
TOLERANCES = {
    # Forward logits on the first minibatch, max |a - b|. Measured 7e-10 (torch-scratch),
    # 3e-9 (jax-scratch) and 5e-8 (flax-gru, flax-grucell) against their anchors. 1e-5
    # leaves room for GPU kernels that sum in another order, while a real equation
    # difference (reset gate on the wrong side of the matmul) shows up at 1e-2.
    "logits_abs": 1e-5,
    # Gradients on the first minibatch, max |a - b| / global gradient norm of the
    # anchor. Measured 8e-8 (scratch group) and 3e-8 (flax-gru); a missing bias
    # gradient (flax-grucell's folded biases) measures 1.2e-3.
    "grads_rel": 1e-4,
    # Per-epoch perplexity, max |a - b| / b over the first 10 epochs. Measured <= 5e-7;
    # training is chaotic, so round-off grows with epochs, but in 10 epochs it stays far
    # below 1% (the starting point), which still tells a different model apart.
    "ppl_first10_rel": 0.01,
    # Final perplexity after the whole run, |a - b| / b: 5%, the starting point.
    "ppl_final_rel": 0.05,
}
PPL_TARGET = 1.5  # "time to perplexity 1.5" in the throughput table
DIVERGENCE = 1e-3  # a trajectory "parts" from its anchor at the first epoch this far apart
FIRST_EPOCHS = 10  # "ppl_first10_rel" compares this many epochs


def max_abs_diff(a, b) -> float:
  return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def global_norm(tensors: dict) -> float:
  return float(math.sqrt(sum(np.sum(np.asarray(t, np.float64) ** 2) for t in tensors.values())))


def grads_rel_diff(grads: dict, anchor: dict) -> float:
  """max over all parameters of |g - g_anchor|, divided by the anchor's global norm."""
  if set(grads) != set(anchor):
    raise ValueError(f"gradient names differ: {sorted(set(grads) ^ set(anchor))}")
  return max(max_abs_diff(grads[k], anchor[k]) for k in anchor) / global_norm(anchor)


def rel_diff(a, b) -> float:
  """max |a - b| / |b| over matching entries (perplexity trajectories)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  n = min(len(a), len(b))
  if n == 0:
    return float("nan")
  return float(np.max(np.abs(a[:n] - b[:n]) / np.abs(b[:n])))


def first_divergence(a, b, threshold: float = DIVERGENCE):
  """The first epoch (1-based) at which |a - b| / b exceeds `threshold`, else None."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  n = min(len(a), len(b))
  over = np.flatnonzero(np.abs(a[:n] - b[:n]) > threshold * np.abs(b[:n]))
  return int(over[0]) + 1 if len(over) else None


def check(group, impl, anchor, name, measured, tolerance=None, note="") -> dict:
  """One parity row; `passed` is None when there is no tolerance (figure reported only)."""
  tol = TOLERANCES.get(name) if tolerance is None else tolerance
  ok = None if tol is None else bool(measured is not None and np.isfinite(measured) and measured <= tol)
  return {"group": group, "impl": impl, "anchor": anchor, "check": name,
          "measured": None if measured is None else float(measured), "tolerance": tol,
          "passed": ok, "note": note}


def throughput(tokens_per_epoch, epoch_seconds, perplexity) -> dict:
  """Steady-state figures: the first epoch (compile, capture, warm caches) is excluded."""
  secs = np.asarray(epoch_seconds, np.float64)
  toks = np.asarray(tokens_per_epoch, np.float64)
  steady = slice(1, None) if len(secs) > 1 else slice(0, 0)
  rates = toks[steady] / secs[steady]
  reached = [i for i, p in enumerate(perplexity) if p <= PPL_TARGET]
  return {
      "first_epoch_seconds": float(secs[0]) if len(secs) else None,
      "steady_tokens_per_s": float(toks[steady].sum() / secs[steady].sum()) if len(rates) else None,
      "median_tokens_per_s": float(np.median(rates)) if len(rates) else None,
      "min_tokens_per_s": float(rates.min()) if len(rates) else None,
      "max_tokens_per_s": float(rates.max()) if len(rates) else None,
      "train_seconds": float(secs.sum()),
      "seconds_to_target_ppl": float(secs[:reached[0] + 1].sum()) if reached else None,
  }
