"""Re-judges a committed comparison report with today's checks, from its stored data alone:
the trajectory checks (per-epoch perplexities are stored) and, for several seeds, the
paired statistics (equivalence margins, seeds left out named). What needs the weights (the
first-minibatch checks, the probes) cannot be re-judged from a report and is said so.

    PYTHONPATH=. python bench/rejudge.py reports/2026-11-29-cpu-seed-5seeds-truth [--out FILE.md]
"""
import argparse
import json
import pathlib

from shared import parity, records
from shared.kinds import seeds as S
from shared.reports import report
from shared.rows import Row
from shared.text import table

# The checks that read stored trajectories: the first epochs, and the final perplexity (judged
# as the median of the last ten epochs since issue 20; the last epoch alone, as it was judged
# before, is reported beside it as ppl_last_rel).
STORED = ("ppl_first10_rel", "ppl_final_rel", "ppl_last_rel")


def rejudge_block(block: dict) -> list:
  """[(seed, arithmetic, pair, check, measured then, tolerance then, verdict then, measured now,
  tolerance now, verdict now)]."""
  rows = []
  for phase in (block, block.get("truth") or {}):
    if not phase.get("impls") or phase.get("parity_judged") is False:  # TF32: reported, never judged
      continue
    arith = next(iter(phase["impls"].values()))["precision"]
    arith = "float64" if arith == "float64" else "float32"
    old = {(c["impl"], c["check"]): c for c in phase["parity"]}
    rows_of = {n: Row.parse(n) for n in phase["impls"]}  # names as the report stores them
    for c in parity.trajectory(phase["impls"], rows_of, arith):
      if c["check"] in STORED:
        before = old.get((c["impl"], c["check"]), {})
        rows.append((block["seed"], c["arithmetic"], f"{c['impl']} vs {c['anchor']}", c["check"],
                     _measured(before.get("measured")), _tol(before.get("tolerance")), _verdict(before.get("passed")),
                     _measured(c["measured"]), _tol(c["tolerance"]), _verdict(c["passed"])))
  return rows


def _measured(m) -> str:
  return "–" if m is None else f"{m:.2e}"


def _tol(t) -> str:
  return "–" if t is None else f"{t:.0e}"


def _verdict(passed) -> str:
  return {True: "PASS", False: "**FAIL**", None: "–"}[passed]


def render(folder: pathlib.Path, results: dict) -> str:
  lines = [f"# {folder.name}, re-judged with the checks of schema {records.SCHEMA_VERSION}\n",
           f"The stored results.json (schema {results['schema_version']}, {results['created']}, git "
           f"`{results['environment']['git_commit']}`) re-judged without re-running: only what the stored per-epoch "
           "perplexities and seed figures allow. The first-minibatch checks and the probes need the weights, "
           "so they cannot be re-judged here.\n", "## Trajectory checks\n"]
  rows = [r for block in report.blocks(results) for r in rejudge_block(block)]
  lines.append("Since issue 20 the final perplexity is judged as the median of the last ten epochs "
               "(`shared/metrics.py`, FINAL_EPOCHS): once two trajectories have parted, a single late spike "
               "decides a one-epoch comparison. `ppl_final_rel` was the last epoch alone before (measured then) "
               "and is the median now (measured now); `ppl_last_rel` keeps the last epoch alone, reported, "
               "not judged.\n")
  lines.append(table(("seed", "arithmetic", "pair", "check", "measured then", "tolerance then", "then",
                      "measured now", "tolerance now", "now"), rows))
  if results["kind"] == "seeds":
    agg = S.aggregate(results["runs"], [Row.parse(n) for n in results["aggregate"]["impls"]])
    lines.append("## Paired statistics across seeds\n")
    lines.append("Equivalence margins declared in `shared/kinds/seeds.py`; TOST at 2.5% on each side (the 95% "
                 "interval within the margin); no verdict below three pairs.\n")
    lines += [f"- **{p['impl']} vs {p['anchor']}**, {p['verdict']}" for p in agg["pairs"]]
    lines.append("\nBefore (as committed):\n")
    lines += [f"- {p['impl']} vs {p['anchor']}, {p['verdict']}" for p in results["aggregate"]["pairs"]]
  return "\n".join(lines) + "\n"


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("folder", help="a report folder holding results.json")
  p.add_argument("--out", help="Markdown file (default: print)")
  args = p.parse_args()
  folder = pathlib.Path(args.folder)
  text = render(folder, json.loads((folder / "results.json").read_text()))
  if args.out:
    pathlib.Path(args.out).write_text(text)
  print(text)


if __name__ == "__main__":
  main()
