"""What "agree" and "faster" mean, measured: parity figures, tolerances, throughput, and
the statistics of a several-seed run.

Parity compares an implementation with its group's anchor (shared/protocol.py,
PARITY_GROUPS) from identical initial weights and identical minibatches.
"""
import math

import numpy as np
from scipy import stats

# Tolerances per arithmetic: one place, each with how it was chosen. "Measured" figures
# are round-off on the 2-core CPU (torch 2.13, jax 0.10.2), seed config, from
# `compare.py --preset quick`, the committed CPU reports under reports/ and the tests.
TOLERANCES = {
    "float32": {
        # Forward logits on the first minibatch, max |a - b|. Measured 7e-10 (torch-scratch),
        # 3e-9 (jax-scratch) and 5e-8 (flax-gru, flax-grucell) against their anchors. 1e-5
        # leaves room for GPU kernels that sum in another order, while a real equation
        # difference (reset gate on the wrong side of the matmul) shows up at 1e-2.
        "logits_abs": 1e-5,
        # Gradients on the first minibatch, max |a - b| / global gradient norm of the
        # anchor. Measured 8e-8 (scratch group) and 3e-8 (flax-gru); a missing bias
        # gradient (flax-grucell's folded biases) measures 1.2e-3.
        "grads_rel": 1e-4,
        # Per-epoch perplexity, max |a - b| / b over the first 10 epochs. Measured <= 7e-7;
        # training is chaotic, so round-off grows with epochs, but in 10 epochs it stays far
        # below 1% (the starting point), which still tells a different model apart.
        "ppl_first10_rel": 0.01,
        # Final perplexity after the whole run, |a - b| / b: 5%, the starting point.
        "ppl_final_rel": 0.05,
    },
    "float64": {
        # Measured on the first minibatch: logits 6e-18 (torch-scratch), 3e-18 (jax-scratch),
        # 2.5e-16 (flax-gru); gradients 1.4e-16 to 2.8e-16 of the norm. 1e-12 leaves three
        # to four orders of headroom for other summation orders (GPU) and is four orders
        # below what float32 arithmetic reaches (1e-8), so only float64 passes.
        "logits_abs": 1e-12,
        "grads_rel": 1e-12,
        # Perplexity over the first 10 epochs: measured <= 1.1e-15 (scratch) and 6.6e-15
        # (flax-gru over 30 epochs).
        "ppl_first10_rel": 1e-12,
        # Final perplexity after 500 seed epochs: measured 7.4e-4 (jax-scratch vs
        # torch-scratch) and 7.0e-3 (flax-gru vs torch-cudnn) at float64, as large as at
        # float32 (2e-3, 1.2e-2). Training amplifies any difference exponentially once it
        # is well under way: in float64 the two frameworks agree to 1e-14 up to epochs 148
        # (scratch) and 184 (built-in), then part by more than 1e-6 at epochs 324 and 240.
        # After that the final values differ as two runs of a chaotic system do, whatever
        # the arithmetic, so this check keeps float32's 5%.
        "ppl_final_rel": 0.05,
    },
}
# A trajectory "parts" from its anchor at the first epoch this far apart: 1e-3 for float32
# (0.1%, well above the 1e-7 round-off of the first epochs), 1e-6 for float64.
DIVERGENCE = {"float32": 1e-3, "float64": 1e-6}
PPL_TARGET = 1.5  # "time to perplexity 1.5" in the throughput table
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


def rel_gaps(a, b) -> np.ndarray:
  """|a - b| / |b| per entry over the common length (perplexity trajectories, per epoch)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  n = min(len(a), len(b))
  return np.abs(a[:n] - b[:n]) / np.abs(b[:n])


def rel_diff(a, b) -> float:
  """max |a - b| / |b| over matching entries (perplexity trajectories)."""
  gaps = rel_gaps(a, b)
  return float(np.max(gaps)) if len(gaps) else float("nan")


def first_divergence(a, b, threshold: float = DIVERGENCE["float32"]):
  """The first epoch (1-based) at which |a - b| / b exceeds `threshold`, else None."""
  over = np.flatnonzero(rel_gaps(a, b) > threshold)
  return int(over[0]) + 1 if len(over) else None


def gap_summary(a, b, threshold: float) -> dict:
  """Per-epoch relative gap of trajectory `a` to `b`, with its median, max and the first
  epoch above `threshold` (the float32-to-float64 truth figures)."""
  gaps = rel_gaps(a, b)
  return {"rel_gap": gaps.tolist(), "median": float(np.median(gaps)) if len(gaps) else None,
          "max": float(np.max(gaps)) if len(gaps) else None,
          "first_over": first_divergence(a, b, threshold), "threshold": threshold}


def check(group, impl, anchor, name, measured, arith="float32", tolerance=None, note="",
          judged=True) -> dict:
  """One parity row; `passed` is None (figure reported only) when there is no tolerance or
  the row is a known deviation (`judged` False), whose tolerance is shown for scale."""
  tol = TOLERANCES[arith].get(name) if tolerance is None else tolerance
  ok = None if tol is None or not judged else bool(
      measured is not None and np.isfinite(measured) and measured <= tol)
  return {"group": group, "impl": impl, "anchor": anchor, "check": name, "arithmetic": arith,
          "measured": None if measured is None else float(measured), "tolerance": tol,
          "passed": ok, "known_deviation": not judged, "note": note}


def first_epoch_at(perplexity, target: float = PPL_TARGET):
  """The first epoch (1-based) whose perplexity is <= target, else None."""
  reached = [i for i, p in enumerate(perplexity) if p <= target]
  return reached[0] + 1 if reached else None


def fastest_per_framework(rates: dict, frameworks: dict) -> dict:
  """{framework: (name, rate)} of the highest rate per framework, from {name: rate} (None
  or 0 for a row without one) and {name: framework}."""
  best = {}
  for name, rate in rates.items():
    fw = frameworks[name]
    if rate and rate > best.get(fw, ("", 0.0))[1]:
      best[fw] = (name, rate)
  return best


def throughput(tokens_per_epoch, epoch_seconds, perplexity) -> dict:
  """Steady-state figures: the first epoch (compile, capture, warm caches) is excluded."""
  secs = np.asarray(epoch_seconds, np.float64)
  toks = np.asarray(tokens_per_epoch, np.float64)
  steady = slice(1, None) if len(secs) > 1 else slice(0, 0)
  rates = toks[steady] / secs[steady]
  reached = first_epoch_at(perplexity)
  return {
      "first_epoch_seconds": float(secs[0]) if len(secs) else None,
      "steady_tokens_per_s": float(toks[steady].sum() / secs[steady].sum()) if len(rates) else None,
      "median_tokens_per_s": float(np.median(rates)) if len(rates) else None,
      "min_tokens_per_s": float(rates.min()) if len(rates) else None,
      "max_tokens_per_s": float(rates.max()) if len(rates) else None,
      "train_seconds": float(secs.sum()),
      "epoch_to_target_ppl": reached,
      "seconds_to_target_ppl": float(secs[:reached].sum()) if reached else None,
  }


# --- several seeds ---------------------------------------------------------------------
CONFIDENCE = 0.95


def describe(values) -> dict:
  """n, mean, sample standard deviation (ddof 1; None below two values), min and max."""
  v = np.asarray([x for x in values if x is not None], np.float64)
  if not len(v):
    return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
  return {"n": int(len(v)), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None,
          "min": float(v.min()), "max": float(v.max())}


def paired_difference(a, b) -> dict:
  """Mean of a - b over paired samples (one pair per seed), its 95% confidence interval
  and the two-sided p-value of "no difference".

  Why a paired t-test (scipy.stats.ttest_rel) and its t interval: within a seed both
  implementations start from the same weights and read the same minibatches, so the
  difference a - b removes the seed-to-seed variation that dwarfs any framework effect;
  with a handful of seeds the variance of the differences is itself estimated from
  those few values, which Student's t with n - 1 degrees of freedom accounts for (a
  normal interval or a bootstrap would be too narrow at n = 5). Its assumption, roughly
  normal differences, cannot be tested at n = 5; the distribution-free alternative
  (Wilcoxon's signed-rank test) cannot reject at 5% with five pairs (its smallest
  two-sided p-value is 0.0625) and gives no interval for the mean difference.
  Differences that are all equal have no spread: the interval is that value, p None.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  d = a - b
  out = {"n": int(len(d)), "mean": float(d.mean()) if len(d) else None,
         "ci_low": None, "ci_high": None, "p_value": None, "confidence": CONFIDENCE}
  if len(d) < 2:
    return out
  if np.all(d == d[0]):
    return {**out, "ci_low": float(d[0]), "ci_high": float(d[0])}
  res = stats.ttest_rel(a, b)
  ci = res.confidence_interval(CONFIDENCE)
  return {**out, "ci_low": float(ci.low), "ci_high": float(ci.high), "p_value": float(res.pvalue)}
