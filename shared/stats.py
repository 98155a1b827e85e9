"""The statistics behind "faster" and "the same": SciPy's bootstrap for speeds, its paired
t-test and two one-sided tests (TOST) for what several seeds say. Pure functions of
NumPy arrays; every random draw comes from an explicit seed.
"""
import numpy as np
from scipy import stats

CONFIDENCE = 0.95
# A bootstrap interval of a median needs a few values to mean anything: from 2 values it
# can only return their range. Below this many, no interval is given.
MIN_BOOTSTRAP = 5
RESAMPLES = 4999
# Several seeds: no verdict from fewer pairs than this (two pairs give a t interval with one
# degree of freedom, 12.7 standard errors wide: it would call almost anything inconclusive,
# and a single outlier decides it).
MIN_PAIRS = 3


def describe(values) -> dict:
  """n, mean, sample standard deviation (ddof 1; None below two values), min and max."""
  v = np.asarray([x for x in values if x is not None], np.float64)
  if not len(v):
    return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
  return {"n": int(len(v)), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None,
          "min": float(v.min()), "max": float(v.max())}


def median_ci(values, seed: int = 0) -> tuple:
  """(median, low, high): the median of `values` and its 95% percentile-bootstrap interval
  (scipy.stats.bootstrap, `seed` for the resampling). low and high are None below
  MIN_BOOTSTRAP values; equal to the median when every value is the same.

  Why a median and a bootstrap: epoch times on a shared machine have a long right tail
  (one epoch stalled behind another process can take 50x the others), so a total-over-total
  rate or a mean follows the tail, while the median follows the typical epoch; the
  bootstrap makes no assumption about that skewed distribution.
  """
  v = np.asarray(values, np.float64)
  if not len(v):
    return None, None, None
  mid = float(np.median(v))
  if len(v) < MIN_BOOTSTRAP:
    return mid, None, None
  if np.ptp(v) == 0:
    return mid, mid, mid
  res = stats.bootstrap((v,), np.median, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                        method="percentile", rng=np.random.default_rng(seed))
  return mid, float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_ratio(a, b, seed: int = 0) -> tuple:
  """(median, low, high) of a[k] / b[k] over the rounds k where both are given: a speed-up
  from rates measured side by side, round by round, so that a slow spell of the machine
  that hits both rows in the same round cancels out. Interval as in `median_ci`."""
  pairs = [(x, y) for x, y in zip(a, b) if x and y]
  return median_ci([x / y for x, y in pairs], seed)


def paired_difference(a, b, margin=None) -> dict:
  """The paired difference a - b over samples paired by seed: its mean, 95% confidence
  interval and p-value (paired t-test), and, given an equivalence `margin` > 0 declared in
  advance, the p-value of TOST (two one-sided t-tests of "the difference is <= -margin"
  and ">= +margin"): below alpha, equivalent within the margin at level alpha (below
  0.025 exactly when the 95% interval lies within the margin).

  Why a paired t-test: within a seed both implementations start from the same weights and
  read the same minibatches, so the difference removes the seed-to-seed variation that
  dwarfs any framework effect; with a handful of seeds the variance of the differences is
  itself estimated from those few values, which Student's t with n - 1 degrees of freedom
  accounts for (a normal interval or a bootstrap would be too narrow at n = 5). Its
  assumption, roughly normal differences, cannot be tested at n = 5; the distribution-free
  alternative (Wilcoxon's signed-rank test) cannot reject at 5% with five pairs (its
  smallest two-sided p-value is 0.0625) and gives no interval for the mean difference.
  Differences that are all equal have no spread: no interval, no test (`no_spread`).
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  d = a - b
  out = {"n": int(len(d)), "mean": float(d.mean()) if len(d) else None, "ci_low": None, "ci_high": None,
         "p_value": None, "confidence": CONFIDENCE, "margin": margin, "tost_p": None,
         "no_spread": bool(len(d) > 1 and np.all(d == d[0]))}
  if len(d) < 2 or out["no_spread"]:
    return out
  res = stats.ttest_rel(a, b)
  ci = res.confidence_interval(CONFIDENCE)
  out.update(ci_low=float(ci.low), ci_high=float(ci.high), p_value=float(res.pvalue))
  if margin:
    above = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
    below = stats.ttest_1samp(d, margin, alternative="less").pvalue
    out["tost_p"] = float(max(above, below))
  return out


def geometric_interval(values) -> tuple:
  """(geometric mean, low, high) of positive `values` (a speed or a ratio of speeds per
  process): the 95% t-interval of their logs, taken back by exp; no interval from fewer
  than MIN_PAIRS values or values without spread (low, high None)."""
  logs = np.log(np.asarray([v for v in values if v], np.float64))
  if not len(logs):
    return None, None, None
  mid = float(np.exp(logs.mean()))
  if len(logs) < MIN_PAIRS or np.ptp(logs) == 0:
    return mid, None, None
  low, high = stats.t.interval(CONFIDENCE, len(logs) - 1, loc=logs.mean(), scale=stats.sem(logs))
  return mid, float(np.exp(low)), float(np.exp(high))


def tost_power(sd: float, margin: float, n: int, alpha: float = (1 - CONFIDENCE) / 2) -> float:
  """The chance that two one-sided t-tests at `alpha` each declare n paired differences of
  standard deviation `sd` the same within ±`margin` when the true difference is zero (the
  usual t approximation: 2 T(margin sqrt(n) / sd - t_alpha) - 1, at least 0)."""
  df = n - 1
  return max(0.0, 2 * float(stats.t.cdf(margin * np.sqrt(n) / sd - stats.t.ppf(1 - alpha, df), df)) - 1)


def tost_seeds(sd: float, margin: float, power: float, alpha: float = (1 - CONFIDENCE) / 2) -> int:
  """The fewest pairs (at least MIN_PAIRS) at which `tost_power` reaches `power`."""
  n = MIN_PAIRS
  while tost_power(sd, margin, n, alpha) < power:
    n += 1
  return n
