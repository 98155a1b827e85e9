"""report.md of an ablation: what each speed lever buys."""
from shared.kinds.sweep import label
from shared.reports import sections as S
from shared.reports.report import departure_note, departures, mark
from shared import limits
from shared.text import num, table


def _ablation_summary(results) -> str:
  points = results["points"]
  lines = [f"- Cells measured: {sum(p['status'] == 'ok' for p in points)} of {len(points)}."]
  lines += S.points_load(points)
  lines += [f"- **{p['lever']}, cell {label(p['point']) or 'as configured'}: {p['status']}**"
            + (f" ({p['error']})" if p.get("error") else "") for p in points if p["status"] != "ok"]
  same = results.get("repeats", [])
  if same:
    lines.append("- Noise: cells that ran the same computation (same row, execution and arithmetic) differ by "
                 + ", ".join(f"{r['spread']:.1%} ({r['impl']}, {' vs '.join(r['cells'])})" for r in same)
                 + ". Twins in two levers ran at different times: this is how far the machine drifted "
                   "between levers; a ratio within a lever compares settings that ran side by side.")
  for e in results["levers"]:
    if e["skipped"]:
      lines.append(f"- {e['name']}: skipped ({e['skipped']}).")
      continue
    parts = [f"{row} " + ", ".join(f"{c['setting']} {num(c['ratio'], '{:.2f}x')}" for c in cells[1:])
             for row, cells in e["results"].items()]
    lines.append(f"- {e['name']}, against {e['settings'][0]}: " + "; ".join(parts) + ".")
  return "## Summary\n\n" + "\n".join(lines) + "\n"


def _lever_table(results, e) -> str:
  departed = departures(results, e["results"])
  rows = [(mark(row, departed), c["setting"], c["status"] + (f" ({c['error']})" if c["error"] else ""),
           num(c["steady_tokens_per_s"]) + S.ci(c.get("tokens_per_s_ci")),
           num(c["ratio"], "{:.2f}x") + S.ci(c.get("ratio_ci"), "{:.2f}"), num(c["prepare_seconds"], "{:.2f}"),
           num((c.get("limits") or {}).get("achieved_gflops"), "{:.2f}"),
           num((c.get("limits") or {}).get("share_of_framework_bound"), "{:.0%}"),
           num((c.get("limits") or {}).get("share_of_machine_bound"), "{:.0%}"),
           num(c["final_perplexity"], "{:.6f}"), c["precision"] or "–", c["execution"] or "–")
          for row, cells in e["results"].items() for c in cells]
  return table(("row", "setting", "status", "tokens/s", "ratio to reference", "compile/capture s",
                "achieved GFLOP/s", "share of its framework's matmul bound", "share of the machine's",
                "last-epoch perplexity", "arithmetic", "execution"), rows) + departure_note(departed)


def _lever(results, e) -> str:
  head = f"### {e['name']} ({e['framework']}; `--ablation {e['key']}`)\n\n{e['why'][0].upper()}{e['why'][1:]}."
  if e["skipped"]:
    return head + f" **Skipped: {e['skipped']}.**\n"
  return head + f" Reference setting: {e['settings'][0]}.\n\n" + _lever_table(results, e)


def _ablation_bounds(results) -> str:
  """The ceilings the ablation's shares rest on: per kind, framework, precision, weight
  gradients and process conditions, the median over the cells that measured it (each cell
  measures its own after training)."""
  seen = {}
  for p in results["points"]:
    for m in p.get("limits") or []:
      if m.get("gflops"):
        where = ", ".join(f"{k}={v}" for k, v in (m.get("conditions") or {}).items())
        key = (limits.kind(m), m["framework"], m["precision"], m.get("weights", "") if limits.kind(m) == "shapes"
               else "", where, m["what"])
        seen.setdefault(key, []).append(m["gflops"])
  if not seen:
    return ""
  rows = [(kind, fw, prec, weights or "–", where or "–", num(sorted(v)[len(v) // 2], "{:.1f}"), len(v), what)
          for (kind, fw, prec, weights, where, what), v in seen.items()]
  return ("## Ceilings\n\nThe shares in the lever tables are of the per-shape bounds (\"shapes\": the training "
          "step's own matrix-product shapes, with the weight gradients as the row takes them, in a process with "
          "the row's conditions) measured after each cell trained, beside the measured and theoretical peaks "
          "(`shared/limits.py`; a comparison report's \"How far from the limit\" explains); the median over the "
          "cells.\n\n" + table(("ceiling", "framework", "precision", "weight gradients", "process", "GFLOP/s", "cells",
                                 "what ran"), rows))


def render(results: dict) -> str:
  c = results["config"]
  head = (f"# GRU language model: what each speed lever buys\n\nAblation of {results['created']} on "
          f"{results['device']}, preset `{results['preset']}`, {c['num_epochs']} epochs per cell (the first, "
          f"compiling and warming up, left out of tokens/s) on {S.corpus(c['max_tokens'])} of The Time Machine, "
          f"precision `{c['precision']}` unless a lever "
          "sets it. Each lever is measured on the rows it acts on, every other setting as configured; "
          "tokens/s is the median epoch [95% bootstrap interval]. The levers ran one after another in one "
          "process; a lever's settings trained on the same minibatches, round-robin epoch by epoch in a "
          "rotating order, so a ratio is the median over rounds of the setting's rate over the reference's "
          "in the same round [95% interval]. Parity is not judged in an ablation; the last-epoch perplexity "
          "shows that the levers other than TF32 leave the arithmetic as it was.")
  if results["partial"]:
    head += " **PARTIAL: the ablation was interrupted; only what finished is reported.**"
  parts = [head + "\n", _ablation_summary(results), _ablation_bounds(results),
           "## Levers\n\n" + "\n".join(_lever(results, e) for e in results["levers"]),
           "![tokens/s per lever and setting](ablation.png)\n", S.configuration(results), S.environment(results, {}),
           "## Files\n\n" + S.files_note()]
  return "\n".join(parts)
