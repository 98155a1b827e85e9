"""report.md of a several-seed run ("seeds"): each seed's comparison, and what the seeds say
together, paired."""
from shared import metrics
from shared.reports import limits as limits_md
from shared.reports import sections as S
from shared.reports.report import departure_note, departures, judged_rows, mark, parity_rows, tally
from shared.text import num, sig, table


def _seeds_summary(results) -> str:
  runs, agg = results["runs"], results["aggregate"]
  lines = [f"- Seeds finished: {len(agg['seeds_done'])} of {len(results['seeds'])} "
           f"({', '.join(str(s) for s in agg['seeds_done']) or 'none'})."]
  lines += [f"- **seed {r['seed']}: {r['status']}**" + (f" ({r['error']})" if r.get("error") else "")
            for r in runs if r["status"] != "ok"]
  judged = judged_rows([c for r in runs for c in parity_rows(r)])
  if judged:
    failed = _failed_checks(results)
    lines.append(f"- Parity: {len(judged) - len(failed)} of {len(judged)} judged checks pass"
                 + (f"; failed (see Per seed): {'; '.join(f[2:] for f in failed)}." if failed else "."))
  lines += [f"- {p['impl']} vs {p['anchor']}, {p['verdict']}" for p in agg["pairs"]]
  lines += [f"- Speed, {p['sentence']}" for p in agg.get("speed_pairs", [])]
  return "## Summary\n\n" + "\n".join(lines) + "\n"


def _stat(d, fmt) -> str:
  if d["n"] == 0:
    return "–"
  std = "" if d["std"] is None else f" ± {fmt.format(d['std'])}"
  return f"{fmt.format(d['mean'])}{std} ({fmt.format(d['min'])}–{fmt.format(d['max'])})"


def _aggregate(results) -> str:
  agg, rows = results["aggregate"], []
  departed = departures(results, agg["impls"])
  for n, a in agg["impls"].items():
    missed = f", not reached in {a['target_not_reached']}" if a["target_not_reached"] else ""
    last = _stat(a["last_ppl"], "{:.4f}") if "last_ppl" in a else "–"
    rows.append((mark(n, departed), a["final_ppl"]["n"], _stat(a["final_ppl"], "{:.4f}"), last,
                 _stat(a["epoch_to_target"], "{:.1f}") + missed, _stat(a["tokens_per_s"], "{:,.0f}"),
                 _stat(a["truth_median_gap"], "{:.1e}")))
  header = ("implementation", "seeds", "final perplexity", "last epoch's perplexity",
            f"first epoch at ppl {results['ppl_target']}", "tokens/s (median epoch)", "median gap to float64")
  return ("## Across seeds\n\nPer implementation over the seeds that finished: mean ± sample standard "
          "deviation (min–max). " + _final_note(results) + "\n\n" + table(header, rows) + departure_note(departed) + "\n"
          + _paired_differences(results) + _paired_speed(results))


def _new_final(results) -> bool:
  """Whether this report's final perplexity is the median of the last epochs (the aggregate
  holds last_ppl beside it); before, it was the last epoch's."""
  impls = results["aggregate"]["impls"].values()
  return bool(impls) and all("last_ppl" in a for a in impls)


def _final_note(results) -> str:
  """One sentence: which perplexity is judged "final", and why."""
  if not _new_final(results):
    return ("This report predates the final perplexity as the median of the last epochs: its final "
            "perplexity is the last epoch's.")
  return (f"The final perplexity, the one paired and judged, is the median of the last {metrics.FINAL_EPOCHS} "
          "epochs (all of them in a shorter run), not the last epoch alone: once two trajectories have parted, "
          "a single late epoch can spike in one of them and not the other (`shared/metrics.py`, FINAL_EPOCHS); "
          "the last epoch's perplexity is given beside it.")


def _paired_differences(results) -> str:
  pair_rows = [(p["group"], f"{p['impl']} − {p['anchor']}", p["metric"], p["n"], sig(p["mean"], True),
                "–" if p["ci_low"] is None else f"{sig(p['ci_low'], True)} to {sig(p['ci_high'], True)}",
                num(p["p_value"], "{:.2g}"), "–" if p.get("margin") is None else f"±{sig(p['margin'])}",
                num(p.get("tost_p"), "{:.2g}"), sig(p["spread"])) for p in results["aggregate"]["pairs"]]
  verdicts = "".join(f"- **{p['impl']} vs {p['anchor']}**, {p['verdict']}\n" for p in results["aggregate"]["pairs"])
  return ("## Paired differences\n\nSame seed, same "
          "weights, same minibatches: the difference per seed, its mean and 95% confidence interval "
          "(paired t-test, `scipy.stats.ttest_rel`), and the test of equivalence (TOST: two one-sided t-tests "
          "against the margin, declared in `shared/kinds/seeds.py` before any run; why these tests: "
          "`shared/stats.py`), beside the seed-to-seed standard deviation of the figure (mean of the two "
          "implementations'). A verdict reads \"the same\" only when TOST puts the difference within the "
          "margin at 2.5% on each side (p < 0.025: the 95% interval lies within the margin), \"a systematic "
          "difference\" when the interval excludes zero, and "
          "\"inconclusive\" otherwise; fewer than three pairs, or differences without spread, get none. A "
          "seed where either row did not finish is named, never silently dropped.\n\n"
          + table(("group", "pair", "figure", "seeds", "mean difference", "95% CI", "p", "margin", "TOST p",
                   "seed std"), pair_rows) + "\n" + verdicts)


def _paired_speed(results) -> str:
  """The speed of each parity pair, paired by seed as the perplexities are (reports from
  before it have none)."""
  pairs = results["aggregate"].get("speed_pairs")
  if not pairs:
    return ""
  departed = departures(results, [n for p in pairs for n in (p["numerator"], p["denominator"])])
  rows = [(p["group"], f"{mark(p['numerator'], departed)} / {mark(p['denominator'], departed)}", p["n"],
           "–" if p["ratio"] is None else f"{sig(p['ratio'])}x",
           "–" if p["ci_low"] is None else f"{sig(p['ci_low'])}x to {sig(p['ci_high'])}x",
           num(p["p_value"], "{:.2g}"), {True: "yes", False: "no", None: "–"}[p["excludes_one"]]) for p in pairs]
  return ("\n## Paired speed\n\nSame seed, same machine, rows trained round-robin: per seed, the ratio of the "
          "two rows' steady tokens/s (median epoch), JAX over PyTorch where the pair spans the frameworks, "
          "else the row over its anchor (a bf16 twin over its float32 row). Speeds multiply, so the ratios are "
          "averaged as logarithms: the geometric mean, and the 95% interval of the paired t-test on the log "
          "ratios (`shared/stats.py`), none from fewer than three seeds. A ratio above 1: the first row is "
          "faster on this machine.\n\n"
          + table(("group", "ratio of", "seeds", "geometric mean", "95% CI", "p", "interval excludes 1"), rows)
          + departure_note(departed) + "\n" + "".join(f"- {p['sentence']}\n" for p in pairs))


def _failed_checks(results) -> list:
  """One line per judged parity check that failed, in any seed, at either arithmetic."""
  return [f"- seed {r['seed']}: {c['impl']} vs {c['anchor']} {c['check']} at {c['arithmetic']}: "
          f"{S.measured(c)} (tolerance {S.tolerance(c)})"
          for r in results["runs"] for c in parity_rows(r) if c["passed"] is False]


def _per_seed(results) -> str:
  names = list(results["aggregate"]["impls"])
  final = metrics.final_perplexity if _new_final(results) else (lambda p: p[-1])
  rows = []
  for r in results["runs"]:
    impls = r.get("impls", {})
    finals = [num(final(impls[n]["perplexity"]) if impls.get(n, {}).get("perplexity") else None, "{:.4f}")
              for n in names]
    judged = judged_rows(parity_rows(r))
    parity = tally(judged) if judged else "–"
    status = r["status"] + (f" ({r['error']})" if r.get("error") else "")
    rows.append((r["seed"], status, *finals, parity))
  failed = [line + "\n" for line in _failed_checks(results)]
  return ("## Per seed\n\nFinal perplexity per implementation (as across seeds, above), and parity checks "
          "passed (judged checks, float64 truth included where it ran).\n\n"
          + table(("seed", "status", *names, "parity passed"), rows)
          + ("\nFailed parity checks:\n\n" + "".join(failed) if failed else ""))


def render(results: dict) -> str:
  first = next((r for r in results["runs"] if r.get("impls")), None)
  figures = ["seeds.png", "perplexity.png", "throughput.png", "divergence.png"]
  parts = [S.head(results, f"Several-seed run ({len(results['seeds'])} seeds)"), _seeds_summary(results),
           S.configuration(results)]
  if first:
    parts += [S.inputs(results, first), S.environment(results, first)]
  parts += [_aggregate(results), limits_md.render_seeds(results), _per_seed(results), S.figures(figures)]
  return "\n".join(p for p in parts if p)
