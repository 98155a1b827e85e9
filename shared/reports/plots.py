"""The figures of a report, drawn with matplotlib from results.json's dict alone, each as
PNG (linked from report.md) and SVG.

Colours are fixed per implementation across every figure of every report: PyTorch rows
in warm colours, JAX rows in cool ones, each by its place in the registry.
"""
import pathlib

import numpy as np

from shared import metrics, parity
from shared.kinds.seeds import METRICS
from shared.kinds.sweep import points_of, series_file, series_title
from shared.reports import report
from shared.rows import IMPLS, MARK, Row

PALETTES = {"torch": ("#b2182b", "#e66101", "#8c510a", "#f1a340", "#de77ae", "#d6604d"),
            "jax": ("#2166ac", "#4393c3", "#1b7837", "#5aae61", "#542788", "#80cdc1", "#01665e"),
            "keras": ("#d01c8b", "#4d9221")}
FLOOR = 1e-17  # exact agreement (a gap of 0) is drawn here on the log scale


def color(name: str) -> str:
  """The row's colour: its framework's palette, by its implementation's place in the table (a
  data-parallel row's or a bf16 twin's is its row's; line styles tell them apart)."""
  try:
    info = Row.parse(name).info
  except ValueError:  # a row an older report names and the table no longer has
    return "0.5"
  same = [n for n, i in IMPLS.items() if i.framework == info.framework]
  palette = PALETTES[info.framework]
  return palette[same.index(info.name) % len(palette)]


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  matplotlib.rcParams["svg.hashsalt"] = "gru-parity"  # the same figure gives the same SVG, ids included
  import matplotlib.pyplot as plt
  return plt


def _save(fig, folder, name: str) -> None:
  """`name` (a PNG, which report.md links) and beside it the same figure as SVG (vector, for
  papers). The SVG carries no date, so that one figure always gives the same file."""
  fig.tight_layout()
  path = pathlib.Path(folder) / name
  fig.savefig(path, dpi=120)
  fig.savefig(path.with_suffix(".svg"), metadata={"Date": None})
  _pyplot().close(fig)


def perplexity(results: dict, folder) -> None:
  """Per-epoch perplexity, log scale: float32 solid, the float64 truth dashed; every seed."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7, 4.2))
  labelled = set()
  for block in report.blocks(results):
    truth = (block.get("truth") or {}).get("impls", {})
    for records, style in ((block["impls"], "-"), (truth, "--")):
      for name, r in records.items():
        if r["perplexity"]:
          label = f"{name}{' (float64)' if style == '--' else ''}"
          ax.plot(range(1, len(r["perplexity"]) + 1), r["perplexity"], style, color=color(name), lw=1,
                  alpha=0.8, label=None if label in labelled else label)
          labelled.add(label)
  ax.set(xlabel="epoch", ylabel="perplexity", yscale="log", title="Training perplexity per epoch")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=7)
  _save(fig, folder, "perplexity.png")


def throughput(results: dict, folder) -> None:
  """Steady-state tokens/s per implementation (the median epoch); whiskers: its 95%
  bootstrap interval (one seed; min-max over epochs in reports without one) or min-max of
  the seeds' medians (several)."""
  blocks = report.blocks(results)
  rates = {}
  for block in blocks:
    for n, r in block["impls"].items():
      if r.get("steady_tokens_per_s"):
        rates.setdefault(n, []).append(r)
  names = list(rates)
  departed = report.departures(results, names)
  if len(blocks) == 1:
    mid = [rates[n][0]["steady_tokens_per_s"] for n in names]
    ci = [rates[n][0].get("tokens_per_s_ci") or [mid[i]] * 2 for i, n in enumerate(names)]
    low, high = [c[0] for c in ci], [c[1] for c in ci]
  else:
    per = [[r["steady_tokens_per_s"] for r in rates[n]] for n in names]
    mid, low, high = [np.mean(v) for v in per], [min(v) for v in per], [max(v) for v in per]
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7.5, 4.2))
  bars = ax.bar([report.mark(n, departed) for n in names], mid, color=[color(n) for n in names], capsize=4, ecolor="0.3",
                yerr=[np.subtract(mid, low), np.subtract(high, mid)])
  ax.bar_label(bars, labels=[f"{r / 1e3:,.0f}k" for r in mid], fontsize=8)
  what = "median epoch, 95% CI" if len(blocks) == 1 else f"mean and min-max over {len(blocks)} seeds"
  ax.set(ylabel="tokens/s (median steady epoch)", title=f"Training throughput (first epoch excluded; {what})")
  ax.tick_params(axis="x", labelrotation=25, labelsize=8)
  _departed_note(fig, departed)
  _save(fig, folder, "throughput.png")


def split(block: dict) -> tuple:
  """(how, {row: (ms per 1,000 tokens in matrix products, ms in everything else)}) at each
  row's median steady rate: the products' share from its framework's profiler (a record's
  time_split), or, in a report before profiles, at its per-shape bound's rates."""
  out, profiled = {}, any((r.get("time_split") or {}).get("products_share") for r in block["impls"].values())
  for n, r in block["impls"].items():
    f, rate = (r.get("limits") or {}), r.get("steady_tokens_per_s")
    share = ((r.get("time_split") or {}).get("products_share") if profiled
             else min(f.get("share_of_framework_bound") or 0, 1.0))
    if rate and share:
      out[n] = (share * 1e6 / rate, (1 - share) * 1e6 / rate)
  return ("profiled" if profiled else "at the per-shape bound's rates"), out


def time_split(results: dict, folder) -> None:
  """Where an epoch's time goes, per row: its matrix products (their share from its
  framework's profiler) and everything else (gates, loss, update, dispatch), stacked."""
  how, parts = split(report.blocks(results)[0])
  if not parts:
    return
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7.5, 4.2))
  names = list(parts)
  products, rest = [parts[n][0] for n in names], [parts[n][1] for n in names]
  ax.bar(names, products, color=[color(n) for n in names], label=f"matrix products ({how})")
  ax.bar(names, rest, bottom=products, color="0.85", edgecolor=[color(n) for n in names],
         label="everything else (gates, loss, update, dispatch)")
  ax.set(ylabel="ms per 1,000 training tokens", title="Where the time goes (median steady epoch)")
  ax.tick_params(axis="x", labelrotation=25, labelsize=8)
  ax.legend(fontsize=7)
  _save(fig, folder, "time.png")


def divergence(results: dict, folder) -> None:
  """Relative perplexity gap per epoch, log scale. Left: each implementation against its
  group's anchor, float32 solid, float64 dashed, bf16 dotted. Right (when the float64 truth
  ran): each float32 (and bf16) run against its own model's float64 trajectory."""
  blocks = report.blocks(results)
  has_truth = any(b.get("truth") for b in blocks)
  plt = _pyplot()
  fig, axes = plt.subplots(1, 2 if has_truth else 1, figsize=(12 if has_truth else 7, 4.4), squeeze=False)
  labelled = set()

  def line(ax, gaps, name, style, label):
    gaps = np.maximum(np.asarray(gaps, np.float64), FLOOR)
    ax.plot(range(1, len(gaps) + 1), gaps, style, color=color(name), lw=0.9, alpha=0.85,
            label=None if (ax, label) in labelled else label)
    labelled.add((ax, label))

  for block in blocks:
    truth = block.get("truth") or {}
    for records, style, arith in ((block["impls"], "-", "float32"), (truth.get("impls", {}), "--", "float64")):
      done = [Row.parse(n) for n, r in records.items() if r["perplexity"]]
      for _, r, a in parity.pairs(done):
        gaps = metrics.rel_gaps(records[r.name]["perplexity"], records[a.name]["perplexity"])
        # a bf16 pair dotted, in its rows' colour
        line(axes[0][0], gaps, r.name, ":" if r.bf16 else style, f"{r.name} vs {a.name} ({r.arithmetic(arith)})")
    for n, g in truth.get("gaps", {}).items():
      twin = Row.parse(n).bf16
      line(axes[0][1], g["rel_gap"], n, ":" if twin else "-", f"{n} {'bf16' if twin else 'float32'} vs its float64")
  titles = ["Gap to the group's anchor", "Gap to the float64 truth (float32 solid, bf16 dotted)"]
  for ax, title in zip(axes[0], titles):
    for arith, threshold in metrics.DIVERGENCE.items():
      ax.axhline(threshold, color="0.5", lw=0.7, ls=":")
      ax.annotate(f"{threshold:.0e} ({arith} parting)", (1, threshold), fontsize=7, color="0.4",
                  xytext=(2, 2), textcoords="offset points")
    ax.set(xlabel="epoch", ylabel="|ppl - ppl_ref| / ppl_ref", yscale="log", title=title)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=7, loc="lower right")
  _save(fig, folder, "divergence.png")


def seeds(results: dict, folder) -> None:
  """Final perplexity and the epoch reaching the target, one dot per seed per implementation,
  with the mean and +-1 standard deviation."""
  runs = [r for r in results["runs"] if r["status"] == "ok"]
  names = list(results["aggregate"]["impls"])
  plt = _pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
  for ax, metric, title in ((axes[0], "final_ppl", "Final perplexity"),
                            (axes[1], "epoch_to_target", f"First epoch at perplexity <= {metrics.PPL_TARGET}")):
    for i, n in enumerate(names):
      ys = [METRICS[metric](r, n) for r in runs if r["impls"].get(n, {}).get("status") == "ok"]
      ys = [y for y in ys if y is not None]
      ax.scatter(i + np.linspace(-0.15, 0.15, len(ys)), ys, color=color(n), s=22, zorder=3)
      d = results["aggregate"]["impls"][n][metric]
      if d["mean"] is not None:
        ax.errorbar(i + 0.3, d["mean"], yerr=d["std"] or 0, fmt="_", color="0.2", capsize=4, ms=12)
    ax.set_xticks(range(len(names)), names, rotation=25, fontsize=8)
    ax.set(title=f"{title}: one dot per seed (bar: mean +- std)")
    ax.grid(True, axis="y", alpha=0.3)
  _save(fig, folder, "seeds.png")


def sweep(results: dict, folder) -> None:
  """Per axis (and setting of the other axes): tokens/s against the axis, log-log, one line
  per implementation; below it, the fastest JAX row over the fastest PyTorch row."""
  plt = _pyplot()
  for s in results["series"]:
    at = points_of(results["points"], s)
    fig, (top, low) = plt.subplots(2, 1, figsize=(7, 6.4), sharex=True, height_ratios=(3, 1.3))
    departed = report.departures(results, {n for p in at for n in p["impls"]})
    for n in dict.fromkeys(n for p in at for n in p["impls"]):
      xy = [(p["point"][s["axis"]], p["impls"][n]["steady_tokens_per_s"]) for p in at
            if p["impls"].get(n, {}).get("steady_tokens_per_s")]
      if xy:
        top.plot(*zip(*xy), "o-", color=color(n), label=report.mark(n, departed), lw=1.2, ms=4)
    ratio = [(p["point"][s["axis"]], p["jax_over_torch"]) for p in at if p["jax_over_torch"]]
    if ratio:
      low.plot(*zip(*ratio), "o-", color="0.25", lw=1.2, ms=4)
    low.axhline(1.0, color="0.5", lw=0.8, ls=":")
    top.set(xscale="log", yscale="log", ylabel="tokens/s (steady)", title=f"Throughput against {series_title(s)}")
    low.set(xscale="log", xlabel=s["axis"], ylabel="JAX / PyTorch\n(fastest rows)")
    for ax in (top, low):
      ax.grid(True, which="both", alpha=0.3)
    low.set_xticks(s["values"], [str(v) for v in s["values"]])
    low.minorticks_off()
    if top.get_legend_handles_labels()[0]:
      top.legend(fontsize=7)
    _departed_note(fig, departed)
    _save(fig, folder, series_file(s))


def ablation(results: dict, folder) -> None:
  """Steady tokens/s of every measured (lever, row, setting), one bar each, grouped by
  lever and row; the ratio to the lever's reference setting written beside each bar."""
  departed = report.departures(results, {row for e in results["levers"] for row in e["results"]})
  bars = [(f"{e['key']}: {report.mark(row, departed)}, {c['setting']}", row, c["steady_tokens_per_s"] or 0,
           c["ratio"]) for e in results["levers"] for row, cells in e["results"].items() for c in cells]
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(8, 1.2 + 0.24 * max(1, len(bars))))
  for i, (text, row, rate, ratio) in enumerate(bars):
    ax.barh(i, rate, color=color(row), height=0.7)
    if ratio is not None:
      ax.text(rate, i, f" {ratio:.2f}x", va="center", fontsize=7)
  ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=7)
  ax.invert_yaxis()
  ax.set(xlabel="tokens/s (steady)", title="What each lever buys (ratio: to the lever's first setting)")
  ax.grid(True, axis="x", alpha=0.3)
  _departed_note(fig, departed)
  _save(fig, folder, "ablation.png")


def pairs_perplexity(pairs: list, path) -> None:
  """The README's figure, one column per pair [(title, one seed's block, row, anchor)]: above,
  both rows' perplexity against epoch; below, the gap |row - anchor| / anchor, which sits at
  float32's round-off until chaos parts the two trajectories."""
  plt = _pyplot()
  fig, axes = plt.subplots(2, len(pairs), figsize=(5 * len(pairs), 5.6), sharex=True, squeeze=False,
                           height_ratios=(3, 1.6))
  for (title, block, impl, anchor), (top, low) in zip(pairs, axes.T):
    a, b = (np.asarray(block["impls"][n]["perplexity"]) for n in (impl, anchor))
    epochs = np.arange(1, len(a) + 1)
    for n, p, style in ((anchor, b, "-"), (impl, a, "--")):
      top.plot(epochs, p, style, color=color(n), lw=1.1, label=n)
    low.plot(epochs, np.maximum(np.abs(a - b) / b, FLOOR), color="0.25", lw=0.9)
    top.set(yscale="log", ylabel="perplexity", title=f"{title}, seed {block['seed']}")
    low.set(yscale="log", xlabel="epoch", ylabel=f"|{impl} - {anchor}|\n/ {anchor}")
    top.legend(fontsize=8)
    for ax in (top, low):
      ax.grid(True, which="major", alpha=0.3)
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  _save(fig, path.parent, path.name)


def _departed_note(fig, departed: dict) -> None:
  """Under a speed figure whose rows `departed` are marked: what the mark means."""
  if departed:
    fig.text(0.01, 0.005, f"{MARK} not the model's reference training (forward-only or a known deviation; "
             "see the report): " + ", ".join(departed), fontsize=6.5, color="0.3", va="bottom")


def write_all(results: dict, folder) -> None:
  """Every figure the report's kind has."""
  if results["kind"] in ("sweep", "ablation"):
    {"sweep": sweep, "ablation": ablation}[results["kind"]](results, folder)
    return
  time = [time_split] if results["kind"] == "compare" else []  # a comparison's report shows it
  for draw in [perplexity, throughput, *time, divergence] + ([seeds] if results["kind"] == "seeds" else []):
    draw(results, folder)
