"""How fast, with uncertainty that holds between runs. Within one process each row's steady
epochs give its rate an interval, and two rows' epochs, run side by side round by round, give
their ratio one (shared/stats.py). The same ratio moves more than that between processes (a
fresh process lays out its memory, its thread pools and its compiled code anew), so a run
with repeats (`compare.py --repeat N`) trains the same comparison in N fresh processes, as
pyperf runs its benchmarks in worker processes, and the headline interval is taken across
them. The framework ratio, per model: the fastest JAX row over the fastest PyTorch row, among
the rows judged equal to their anchor (no forward-only row, no known training deviation, no
failed check). A tuned row (shared/rows.py, Impl.tuned) is also set over its framework's
fastest row that is not tuned: what writing for speed bought.
"""
from shared import stats
from shared.records import rates
from shared.rows import IMPLS


def judged_equal(checks: list, names, carries_state: bool) -> list:
  """The rows of `names` that compute their model's reference training as their anchor does:
  single-device float rows (no twin) that depart from nothing (rows.Impl.departure) and
  failed none of their judged checks `checks`."""
  failed = {n for c in checks if c["passed"] is False for n in (c["impl"], c["anchor"])}
  return [n for n in names if n in IMPLS and not IMPLS[n].departure(carries_state) and n not in failed]


def fastest(rates: dict, checks: list, carries_state: bool) -> dict:
  """{model (parity group): {framework: row}}: the fastest row of each framework per model by
  `rates` ({row: tokens/s}), among the rows judged equal."""
  out = {}
  for n in judged_equal(checks, [n for n, r in rates.items() if r], carries_state):
    best = out.setdefault(IMPLS[n].group, {})
    fw = IMPLS[n].framework
    if rates[n] > rates.get(best.get(fw), 0):
      best[fw] = n
  return out


def summary(processes: list, checks: list, carries_state: bool) -> dict:
  """The run's speed ({row: record} per process, the judged one first; its checks): per row
  its rate in every process and across them; per model the framework ratio, within each
  process (paired round by round) and across processes."""
  names = [n for n in processes[0] if all(p.get(n, {}).get("steady_tokens_per_s") for p in processes)]
  rows = {n: _across([p[n]["steady_tokens_per_s"] for p in processes]) for n in names}
  geomeans = {n: r["geomean"] for n, r in rows.items()}
  best = fastest(geomeans, checks, carries_state)
  plain = fastest({n: g for n, g in geomeans.items() if n not in IMPLS or not IMPLS[n].tuned}, checks, carries_state)
  return {"processes": len(processes), "rows": rows,
          "frameworks": [_framework_ratio(g, b, processes) for g, b in best.items() if {"jax", "torch"} <= set(b)],
          "tuned": [{**_ratio(t, plain[IMPLS[t].group][IMPLS[t].framework], processes), "model": IMPLS[t].group}
                    for t in judged_equal(checks, names, carries_state)
                    if IMPLS[t].tuned and IMPLS[t].framework in plain.get(IMPLS[t].group, {})]}


def _across(values: list) -> dict:
  mid, low, high = stats.geometric_interval(values)
  return {"per_process": values, "geomean": mid, "ci": None if low is None else [low, high]}


def _framework_ratio(group: str, best: dict, processes: list) -> dict:
  """The fastest JAX row of model `group` over its fastest PyTorch row (`best`): per process
  the median over rounds of the paired epoch ratio with its interval, and across processes
  their geometric mean with its interval."""
  return {"model": group, "jax": best["jax"], "torch": best["torch"], **_ratio(best["jax"], best["torch"], processes)}


def _ratio(row: str, over: str, processes: list) -> dict:
  """Row `row`'s rate over row `over`'s: per process the median over rounds of their paired
  epoch ratio with its interval, and across processes the geometric mean with its interval."""
  within = [stats.paired_ratio(rates(p[row])[1:], rates(p[over])[1:]) for p in processes]
  mid, low, high = stats.geometric_interval([w[0] for w in within])
  return {"row": row, "over": over, "per_process": [w[0] for w in within],
          "within": [None if w[1] is None else [w[1], w[2]] for w in within],
          "ratio": mid, "ci": None if low is None else [low, high]}
