"""What a finished comparison says on the console, and the exit status it gives.

compare.py prints `print_summary` after a single or several-seed comparison and exits with
`exit_code`: 130 if interrupted; with --strict, 1 if any parity check failed or anything
(an implementation, its float64 twin, the truth phase, a seed) did not finish.
"""
from shared import metrics, timing
from shared.reports import report


def print_summary(results: dict) -> None:
  """The last seed's table, then the parity rows: every judged one of a single seed; of
  several, the failures and a count per seed; then the paired verdicts and speed ratios across seeds."""
  blocks = report.blocks(results)
  for block in blocks[-1:]:  # the last seed's table; every seed is in the report
    print(f"\n{'implementation':<18} {'status':<12} {'final ppl':>10} {'tokens/s':>12} {'speed-up':>9} "
          f"{'compile s':>10} {'cores':>6}   (tokens/s: median epoch)")
    for n, r in block["impls"].items():
      ppl = f"{metrics.final_perplexity(r['perplexity']):.4f}" if r["perplexity"] else "–"  # median of the last ten
      rate = f"{r['steady_tokens_per_s']:,.0f}" if r.get("steady_tokens_per_s") else "–"
      up = f"{r['speedup_vs_reference']:.2f}x" if r.get("speedup_vs_reference") else "–"
      prep = f"{r['prepare_seconds']:.2f}" if r["prepare_seconds"] is not None else "–"
      cores = f"{r['cores_used']:.2f}" if r.get("cores_used") is not None else "–"
      print(f"{n:<18} {r['status']:<12} {ppl:>10} {rate:>12} {up:>9} {prep:>10} {cores:>6}")
  for block in blocks:
    judged = report.judged_rows(report.parity_rows(block))
    for c in judged:
      if len(blocks) == 1 or not c["passed"]:
        print(f"parity {'PASS' if c['passed'] else 'FAIL'}: seed {block['seed']} {c['impl']} vs "
              f"{c['anchor']} {c['check']} ({c['arithmetic']}) {c['measured'] or 0:.2e} "
              f"(tolerance {c['tolerance']:.0e})")
    if len(blocks) > 1:
      print(f"seed {block['seed']}: {report.tally(judged)} parity checks pass")
  for p in results.get("aggregate", {}).get("pairs", []):
    print(f"{p['impl']} vs {p['anchor']}, {p['verdict']}")
  for p in results.get("aggregate", {}).get("speed_pairs", []):
    print(f"speed: {p['sentence']}")
  for block in blocks:
    warning = timing.load_warning(block.get("load"))
    if warning:
      print(f"warning: seed {block['seed']}: {warning}")


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
