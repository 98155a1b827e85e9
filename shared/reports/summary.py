"""What a finished comparison says on the console, and the exit status it gives.

compare.py prints `print_summary` after a single or several-seed comparison: the last seed's
table of rows, then the verdict per pair (checks passed, the worst margin, every failure in
full; each check on its own line with --verbose, and always in the report), then the verdicts
and speed across seeds or processes. It exits with `exit_code`: 130 if interrupted; with
--strict, 1 if any parity check failed or anything (an implementation, its float64 twin, the
truth phase, a seed) did not finish.
"""
import math

from shared import metrics, rows, timing
from shared.reports import report


def print_summary(results: dict, verbose: bool = False) -> None:
  blocks = report.blocks(results)
  departed = report.departures(results, {n for b in blocks for n in b["impls"]})
  for block in blocks[-1:]:  # the last seed's table; every seed is in the report
    w = max([18] + [len(report.mark(n, departed)) + 1 for n in block["impls"]])  # the longest name's width
    print(f"\n{'implementation':<{w}} {'status':<12} {'final ppl':>10} {'tokens/s':>12} {'speed-up':>9} "
          f"{'compile s':>10} {'cores':>6}   (tokens/s: median epoch)")
    for n, r in block["impls"].items():
      ppl = f"{metrics.final_perplexity(r['perplexity']):.4f}" if r["perplexity"] else "–"  # median of the last ten
      rate = f"{r['steady_tokens_per_s']:,.0f}" if r.get("steady_tokens_per_s") else "–"
      up = f"{r['speedup_vs_reference']:.2f}x" if r.get("speedup_vs_reference") else "–"
      prep = f"{r['prepare_seconds']:.2f}" if r["prepare_seconds"] is not None else "–"
      cores = f"{r['cores_used']:.2f}" if r.get("cores_used") is not None else "–"
      print(f"{report.mark(n, departed):<{w}} {r['status']:<12} {ppl:>10} {rate:>12} {up:>9} {prep:>10} {cores:>6}")
    for n, why in departed.items():
      print(f"{rows.MARK} {n}: not its model's reference training ({why.split(':')[0]}; the report says why)")
  checks = [(b["seed"], c) for b in blocks for c in report.judged_rows(report.parity_rows(b))]
  if checks:
    print_verdicts(checks, len(blocks), verbose)
  for p in results.get("aggregate", {}).get("pairs", []):
    print(f"{p['impl']} vs {p['anchor']}, {p['verdict']}")
  for p in results.get("aggregate", {}).get("speed_pairs", []):
    print(f"speed: {p['sentence']}")
  across = results.get("speed") or {"processes": 1}
  for f in across["frameworks"] if across["processes"] > 1 else []:
    print(f"speed, {f['model']}: {f['jax']} / {f['torch']} {f['ratio']:.2f}x [{_ci(f['ci'])}] "
          f"(geometric mean over {across['processes']} processes, 95% CI across them)")
  for f in across.get("tuned", []) if across["processes"] > 1 else []:
    print(f"speed, {f['model']}, tuned: {f['row']} / {f['over']} {f['ratio']:.2f}x [{_ci(f['ci'])}]")
  for block in blocks:
    warning = timing.load_warning(block.get("load"))
    if warning:
      print(f"warning: seed {block['seed']}: {warning}")


def _ci(ci) -> str:
  return "no interval" if not ci else f"{ci[0]:.2f}x-{ci[1]:.2f}x"


def margin(check: dict) -> float:
  """How much of its tolerance a judged check used: measured / tolerance (0 for an exact
  match, infinite for any gap where none is allowed or a NaN)."""
  measured, tolerance = check["measured"], check["tolerance"]
  if measured is None or (isinstance(measured, float) and math.isnan(measured)):
    return math.inf
  if tolerance == 0:
    return 0.0 if measured == 0 else math.inf
  return measured / tolerance


def verdicts(checks: list) -> list:
  """[(pair, arithmetic, passed, judged, worst check)] from [(seed, check)]: per pair and
  arithmetic, how many judged checks passed and the one that came nearest its tolerance."""
  out = {}
  for seed, c in checks:
    key = (f"{c['impl']} vs {c['anchor']}", c["arithmetic"])
    passed, judged, worst = out.get(key, (0, 0, None))
    worst = max((worst, (seed, c)), key=lambda w: -1 if w is None else margin(w[1]))
    out[key] = (passed + bool(c["passed"]), judged + 1, worst)
  return [(*key, *v) for key, v in out.items()]


def print_verdicts(checks: list, seeds: int, verbose: bool) -> None:
  """The verdict table, every failure in full, and with `verbose` every judged check."""
  where = f"{seeds} seeds" if seeds > 1 else f"seed {checks[0][0]}"
  print(f"\nparity ({where}; every check is in the report, and here with --verbose):")
  table = verdicts(checks)
  w = max([34] + [len(pair) + 1 for pair, *_ in table])
  print(f"{'pair':<{w}} {'arithmetic':<10} {'passed':>9}   worst: measured / tolerance")
  for pair, arithmetic, passed, judged, (seed, c) in table:
    worst = f"{margin(c):.2f} of its tolerance ({c['check']} {c['measured'] or 0:.2e} / {c['tolerance']:.0e})"
    print(f"{pair:<{w}} {arithmetic:<10} {f'{passed}/{judged}':>9}   {worst}")
  for seed, c in checks:
    if verbose or not c["passed"]:
      print(f"parity {'PASS' if c['passed'] else 'FAIL'}: seed {seed} {c['impl']} vs {c['anchor']} {c['check']} "
            f"({c['arithmetic']}) {c['measured'] or 0:.2e} (tolerance {c['tolerance']:.0e})"
            + ("" if c["passed"] else f": {c['note']}" if c.get("note") else ""))


def exit_code(results: dict, strict: bool) -> int:
  if results["partial"]:
    return 130
  blocks = report.blocks(results)
  failed = [c for b in blocks for c in report.parity_rows(b) if c["passed"] is False]
  failed += [n for b in blocks for n, r in b["impls"].items() if r["status"] != "ok"]
  failed += [n for b in blocks for n, r in ((b.get("truth") or {}).get("impls") or {}).items()
             if r["status"] != "ok"]  # a float64 twin that did not finish
  failed += [b["truth_error"] for b in blocks if b.get("truth_error")]
  failed += [r["seed"] for r in results.get("runs", []) if r["status"] != "ok"]
  return 1 if strict and failed else 0
