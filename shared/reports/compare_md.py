"""report.md of a single comparison ("compare"): what one seed's run says, judged."""
import math

from shared import config as C
from shared import metrics, timing
from shared.kinds import speed
from shared.reports import limits as limits_md
from shared.reports import plots
from shared.reports import sections as S
from shared.reports.report import departure_note, departures, judged_rows, mark, tally
from shared.text import num, table
from shared.rows import Row


def _summary(results, block) -> str:
  judged = judged_rows(block["parity"])
  done = {n: r for n, r in block["impls"].items() if r["status"] == "ok"}
  rates = {n: r["steady_tokens_per_s"] for n, r in done.items() if r.get("steady_tokens_per_s")}
  lines = _failures(block["impls"])
  if judged:
    lines.append(f"- Parity: {tally(judged)} judged checks pass" + _failed_names(judged) + ".")
  if block.get("truth_error"):
    lines.append(f"- **The float64 truth failed** ({block['truth_error']}); the float32 results stand.")
  if block.get("truth"):
    lines += _failures(block["truth"]["impls"], "float64")
    judged64 = judged_rows(block["truth"]["parity"])
    lines.append(f"- float64 parity: {tally(judged64)} judged checks pass" + _failed_names(judged64) + ".")
    lines += [f"- {v}" for v in block["truth"]["verdicts"]]
  if rates:
    lines += _fastest_lines(results, block, rates)
    lines += _cores_line(results, done) + _time_line(done)
  if timing.load_warning(block.get("load")):
    lines.append(f"- **Warning: {timing.load_warning(block['load'])}.**")
  finals = {n: r["perplexity"] for n, r in done.items() if r["perplexity"]}
  if finals:
    lines.append(f"- Final perplexity (the median of the last {metrics.final_epochs(next(iter(finals.values())))} "
                 "epochs; the last epoch alone in brackets): "
                 + ", ".join(f"{n} {metrics.final_perplexity(p):.3f} ({p[-1]:.3f})" for n, p in finals.items()) + ".")
  lines += _target_line(results, done, block["inputs"]["epochs"])
  return "## Summary\n\n" + "\n".join(lines) + "\n"


def _time_line(done: dict) -> list:
  """The matrix products' share of an epoch per row, from its framework's profiler."""
  shares = {n: r["time_split"]["products_share"] for n, r in done.items() if (r.get("time_split") or {}).get("products_share")}
  return [("- Matrix products' share of an epoch (one epoch under each framework's profiler; Where the time "
           "goes): " + ", ".join(f"{n} {v:.0%}" for n, v in shares.items()) + ".")] if shares else []


def _fastest_lines(results, block, rates: dict) -> list:
  """The fastest row per model among the rows judged equal (shared/kinds/speed.py), and the
  framework ratios across processes where the run repeated."""
  carries = C.carries_state(results["config"]["sampling"])
  out = []
  for model, best in speed.fastest(rates, block["parity"], carries).items():
    n = max(best.values(), key=rates.get)
    r = block["impls"][n]
    up = f" ({r['speedup_vs_reference']:.2f}x{S.ci(r['speedup_ci'], '{:.2f}')} {results['baseline']})" \
        if r["speedup_vs_reference"] else ""
    out.append(f"- Fastest {model} row on this machine, among the rows judged equal to their anchor: {n}, "
               f"{rates[n]:,.0f}{S.ci(r['tokens_per_s_ci'])} tokens/s (median epoch [95% CI]){up}.")
  across = block.get("speed") or {}
  out += [f"- {f['model']}: {f['jax']} / {f['torch']} {_across_ratio(f, across['processes'])}."
          for f in across.get("frameworks", []) if across["processes"] > 1]
  out += [f"- Tuned: {f['row']} / {f['over']} {_across_ratio(f, across['processes'])}."
          for f in across.get("tuned", []) if across["processes"] > 1]
  return out


def _across_ratio(f: dict, processes: int) -> str:
  return (f"{f['ratio']:.2f}x{S.ci(f['ci'], '{:.2f}')} (geometric mean over {processes} processes, "
          "95% CI across them)")


def _failures(impls: dict, arithmetic: str = "") -> list:
  tag = f" ({arithmetic})" if arithmetic else ""
  return [f"- **{n}{tag}: {r['status']}**" + (f" ({r['error']})" if r.get("error") else "")
          for n, r in impls.items() if r["status"] != "ok"]


def _target_line(results, impls: dict, epochs: int) -> list:
  """Where no implementation reached the target: the lowest perplexity and its recent trend,
  and how many more epochs that trend would need (a geometric extrapolation, a rough guide)."""
  if any(r.get("epoch_to_target_ppl") for r in impls.values()) or not impls:
    return []
  lows = {n: min(r["perplexity"]) for n, r in impls.items() if r["perplexity"]}
  if not lows:
    return []
  best = min(lows, key=lows.get)
  line = (f"- No implementation reached perplexity {results['ppl_target']} in {epochs} epochs; the lowest "
          f"was {lows[best]:.3f} ({best})")
  p, k = impls[best]["perplexity"], min(10, len(impls[best]["perplexity"]) - 1)
  if k >= 2:
    rate = (p[-1] / p[-1 - k]) ** (1 / k) - 1
    line += f", changing {rate:+.2%} per epoch over its last {k} epochs"
    if rate < 0:
      more = math.log(results["ppl_target"] / p[-1]) / math.log(1 + rate)
      line += f": at that rate about {more:,.0f} more epochs would reach it"
  return [line + "."]


def _failed_names(judged: list) -> str:
  failed = [f"{c['impl']} vs {c['anchor']} {c['check']} ({S.measured(c)} against {S.tolerance(c)})"
            for c in judged if not c["passed"]]
  return "; **failed: " + "; ".join(failed) + "**" if failed else ""


def _cores_line(results, done: dict) -> list:
  """Threads given and cores used, per framework (schema 4 on)."""
  used = {}
  for r in done.values():
    if r.get("cores_used") is not None:
      used.setdefault(r["framework"], []).append(r["cores_used"])
  threads = (results["environment"].get("threads") or {}).get("threads")
  if not used or not threads:
    return []
  return [f"- Threads: {threads} per framework; cores used "
          + ", ".join(f"{fw} rows {min(v):.2f}–{max(v):.2f}" for fw, v in used.items()) + "."]


def _parity(results, block) -> str:
  notes = "".join(f"\n- **{n}** is checked on the forward pass only: {why}.\n"
                  for n, why in results["forward_only"].items())
  notes += "".join(f"\n- **{n}**: its forward pass and gradients are judged; what depends on its training "
                   f"(probe losses and update, perplexities) is reported beside the tolerance, not judged: {why}.\n"
                   for n, why in results.get("training_deviations", {}).items())
  judged = ("" if block["parity_judged"] else
            "**TF32 ran, so these figures are reported, not judged: parity is judged at full "
            "float32 (`--precision highest`) and float64.** ")
  header = ("group", "pair", "check", "measured", "tolerance", "result", "note")
  notes += _chaos(block)
  return ("## Parity\n\nEach implementation against its group's anchor, from identical weights "
          "and minibatches. " + judged + "Every figure is relative to the anchor's own scale; any "
          "NaN or infinity fails its check. Tolerances, the round-off they rest on and the bugs "
          "they catch: `shared/metrics.py`. The first-minibatch checks start from the run's "
          "initial weights and H = 0, where biases are zero and logits tiny; the probes "
          "(`shared/probes.py`) add random weights, a non-zero start, two carried minibatches, an "
          "epoch restart and clipping at every step, on fresh copies of each implementation. A clipping "
          "rule with an epsilon (theta / (norm + 1e-6)) moves an update by about 1e-6 / norm, below "
          "float32's round-off: only a float64 run (`--truth` or `--precision float64`) can catch it. "
          "Training is chaotic: round-off grows over the epochs until the "
          "trajectories part (the epoch is reported), most visibly in the sharp descent and in "
          "the perplexity spikes of late training; the final perplexities are compared with "
          "their own tolerance.\n\n" + table(header, S.parity_table(results, block["parity"], block)) + notes)


def _truth(results, block) -> str:
  truth = block.get("truth")
  if not truth:
    return ""
  rows = []
  for n, g in truth["gaps"].items():
    p32, p64 = block["impls"][n]["perplexity"], truth["impls"][Row.parse(n).float32.name]["perplexity"]
    rows.append((n, f"{p32[-1]:.4f}", f"{p64[-1]:.4f}", f"{g['median']:.1e}", f"{g['max']:.1e}",
                 "never" if g["first_over"] is None else g["first_over"]))
  header = ("implementation", "final ppl (its precision)", "final ppl, float64", "median gap", "max gap",
            f"first epoch with gap > {results['divergence_thresholds']['float32']:.0e}")
  verdicts = "".join(f"- {v}\n" for v in truth["verdicts"]) + _chaos(truth)
  verdicts += "".join(f"- **{n}** has no float64 truth: {why}.\n" for n, why in block.get("truth_left_out", {}).items())
  return ("## The float64 ground truth\n\nEvery implementation that can also trained in float64 from the same "
          "weights and minibatches: with round-off near 1e-16 instead of 1e-7, its trajectory is the "
          "exact one for that model. Gap: |ppl(float32) - ppl(float64)| / ppl(float64) per epoch, "
          "against the float64 run of the same implementation (a bf16 twin's against its row's).\n\n" + table(header, rows) + "\n"
          + verdicts + "\nfloat64 parity, torch against JAX with round-off taken away (tolerances for "
          f"float64, parting threshold {results['divergence_thresholds']['float64']:.0e}):\n\n"
          + table(("group", "pair", "check", "measured", "tolerance", "result", "note"),
                  S.parity_table(results, truth["parity"], truth)))


def _chaos(phase: dict) -> str:
  """Under a phase's parity table, for each failed final-perplexity check whose pair agreed
  over the first epochs: the figures that show chaos at work (where the trajectories parted,
  and how high each climbed in the final window), so that the failure is read for what it
  is. One seed decides nothing about chaos: a several-seed run (--seeds) pairs the seeds."""
  out = []
  for c in [c for c in phase["parity"] if c["check"] == "ppl_final_rel" and c["passed"] is False]:
    same = {x["check"]: x for x in phase["parity"] if (x["impl"], x["anchor"]) == (c["impl"], c["anchor"])}
    first, parted = same.get("ppl_first10_rel"), same.get("ppl_diverge_epoch")
    if not (first and first["passed"] and parted and parted["measured"]):
      continue
    window = metrics.final_epochs(phase["impls"][c["impl"]]["perplexity"])
    peak = {n: max(phase["impls"][n]["perplexity"][-window:]) for n in (c["impl"], c["anchor"])}
    out.append(f"\n- **Why {c['impl']} vs {c['anchor']} fails its final perplexity**: the two agree over the "
               f"first epochs ({first['measured']:.1e}) and part at epoch {parted['measured']:.0f}, as chaotic "
               f"training does at any round-off; in the last {window} epochs {c['impl']} peaks at a perplexity of "
               f"{peak[c['impl']]:.3f} against {c['anchor']}'s {peak[c['anchor']]:.3f}: a late spike in one "
               "trajectory, caught by the final window. One seed cannot tell chaos from a bug here; a "
               "several-seed run (`--seeds`) pairs the seeds and tests the difference.\n")
  return "".join(out)


def _throughput(results, block) -> str:
  rows, departed = [], departures(results, block["impls"])
  for n, r in block["impls"].items():
    steady = len(r["epoch_seconds"]) - 1
    mem = num(r["peak_memory_bytes"] and r["peak_memory_bytes"] / 2**20, "{:,.0f} MiB")
    slow = f"{len(r['slow_epochs'])} of {steady}" if steady > 0 else "–"
    cores = f"{num(r['threads'], '{:d}')} / {num(r['cores_used'], '{:.2f}')}"
    rows.append((mark(n, departed), r["status"], num(r["steady_tokens_per_s"]) + S.ci(r["tokens_per_s_ci"]),
                 num(r["total_tokens_per_s"]), slow, cores,
                 num(r["speedup_vs_reference"], "{:.2f}x") + S.ci(r["speedup_ci"], "{:.2f}"),
                 num(r["prepare_seconds"], "{:.2f}"), num(r["first_epoch_seconds"], "{:.2f}"),
                 num(r["train_seconds"], "{:.1f}"), num(r["seconds_to_target_ppl"], "{:.1f}", "not reached"),
                 num(r["seconds_to_target_with_compile"], "{:.1f}", "not reached"), mem))
  header = ("implementation", "status", "tokens/s: median epoch [95% CI]", "total / total", "slow epochs",
            "threads / cores used", f"speed-up vs {results['baseline']} [95% CI]", "compile/capture s",
            "first epoch s", "train wall s", f"train s to ppl {results['ppl_target']}", "same, with compile",
            "peak device memory")
  return ("## Throughput\n\nTraining tokens over wall time per epoch, with a device sync at each "
          "epoch boundary; the first epoch is left out. The headline is the median of the steady "
          "epochs' rates with its 95% bootstrap interval (`scipy.stats.bootstrap`); total / total is "
          "steady tokens over steady seconds, which one stalled epoch drags down. An epoch slower than "
          f"{metrics.SLOW_FACTOR:g}x the median is flagged slow. Cores used is process CPU time over wall "
          "time in the steady epochs, beside the threads each framework was given. Each implementation "
          "compiles (or captures) and runs its first epoch alone; epochs 2 onwards run round-robin in an "
          "order that rotates every round, so epoch k of every row ran within one round: the speed-up is "
          "the median over rounds of the ratio of the two rows' rates, with its interval. "
          "Compile/capture time is measured apart and left out of the train wall time; the time to the "
          "target perplexity is given without and with it. Peak device memory: torch's allocator peak "
          "during that implementation's capture and first epoch, above what was allocated before it; for "
          "JAX, XLA's memory analysis of the compiled epoch (arguments + outputs + temporaries).\n\n"
          + _load(block) + table(header, rows) + departure_note(departed) + _across(results, block, departed))


def _across(results, block, departed: dict) -> str:
  """A run with repeats: each row's speed in every process and across them, and the
  framework ratio per model, within each process and across processes."""
  sp = block.get("speed") or {}
  if sp.get("processes", 1) < 2:
    return ""
  rows = [(mark(n, departed), *(num(v) for v in r["per_process"]), num(r["geomean"]) + S.ci(r["ci"]))
          for n, r in sp["rows"].items()]
  ratios = [(f["model"], f"{f['jax']} / {f['torch']}",
             *(f"{v:.2f}x" + S.ci(w, "{:.2f}") for v, w in zip(f["per_process"], f["within"])),
             f"{f['ratio']:.2f}x" + S.ci(f["ci"], "{:.2f}")) for f in sp["frameworks"]]
  ratios += [(f"{f['model']} (tuned)", f"{f['row']} / {f['over']}",
              *(f"{v:.2f}x" + S.ci(w, "{:.2f}") for v, w in zip(f["per_process"], f["within"])),
              f"{f['ratio']:.2f}x" + S.ci(f["ci"], "{:.2f}")) for f in sp.get("tuned", [])]
  k = [f"process {i}" for i in range(1, sp["processes"] + 1)]
  return ("\n### Across processes\n\nThe same comparison trained in "
          f"{sp['processes']} fresh processes per row (`--repeat`; the first is the one judged above): a fresh "
          "process lays out its memory, thread pools and compiled code anew, and the same ratio moves more "
          "between processes than within one, so the headline interval is taken across processes, as "
          "pyperf does with its worker processes. Per process: the median steady epoch's rate; across: the "
          "geometric mean and its 95% t-interval on the logs (`shared/stats.py`).\n\n"
          + table(("row", *k, "across processes [95% CI]"), rows)
          + "\nFramework ratio per model: the fastest JAX row over the fastest PyTorch row among the rows "
          "judged equal (`shared/kinds/speed.py`); within a process, the median over rounds of the two rows' "
          "paired epoch ratio [95% CI within that process]; across processes, the geometric mean of those "
          "medians [95% CI across processes]. A tuned row (\"(tuned)\") is set the same way over its own "
          "framework's fastest row that is not tuned.\n\n"
          + table(("model", "ratio", *k, "across processes [95% CI]"), ratios))


def _load(block) -> str:
  """How busy the machine was while this block trained, measured (schema 4 on)."""
  load = block.get("load")
  if not load:
    return ""
  warning = timing.load_warning(load)
  return (f"While it trained ({load['seconds']:,.0f} s), other processes used {load['other_cores']:.2f} of the "
          f"machine's {load['cores']} cores on average and the hypervisor took {load['steal_cores']:.2f} (steal "
          f"time); 1-minute load average {load['loadavg_start']:.2f} at the start, {load['loadavg_end']:.2f} at "
          "the end (this run included)." + (f" **Warning: {warning}.**" if warning else "") + "\n\n")


def _bf16(results, block) -> str:
  """The bf16 twins beside their float32 rows: speed paired round by round, perplexities."""
  rows = []
  for n, r in block["impls"].items():
    base = Row.parse(n).float32.name
    if base == n or base not in block["impls"]:
      continue
    one = block["impls"][base]
    rows.append((mark(n, departures(results, [n])), num(one["steady_tokens_per_s"]),
                 num(r["steady_tokens_per_s"]) + S.ci(r["tokens_per_s_ci"]),
                 num(r.get("vs_float32"), "{:.3f}x") + S.ci(r.get("vs_float32_ci"), "{:.3f}"),
                 num((one["perplexity"] or [None])[-1], "{:.4f}"), num((r["perplexity"] or [None])[-1], "{:.4f}")))
  if not rows:
    return ""
  return ("## bf16 beside float32\n\nEach `<row>-bf16` is its row in bf16 mixed precision by the casting "
          "policy of `shared/precision.py` (float32 weights, gradients and update; bf16 products and gates; "
          "float32 state and loss), trained in the same rounds on the same minibatches from the same "
          "weights. Against float32: the median over rounds of the ratio of its steady epochs' rates to its "
          "row's, with its interval. The twins are judged against each other in their parity groups "
          "(`<group>-bf16`, tolerances derived from bf16's unit round-off 2^-8, `shared/metrics.py`), not "
          "against float32, whose numbers bf16 changes.\n\n"
          + table(("bf16 twin", "float32 tokens/s", "bf16 tokens/s [95% CI]", "bf16 / float32 [95% CI]",
                   "last ppl, float32", "last ppl, bf16"), rows))


def _data_parallel(results, block) -> str:
  """The data-parallel rows beside their single-device rows: engine, launch, speed."""
  rows = []
  for n, r in block["impls"].items():
    p = r.get("parallel")
    if not p:
      continue
    cost = r.get("reduction") or {}
    rows.append((mark(n, departures(results, [n])), p["engine"], p["backend"], p["devices"],
                 f"{p['processes']} x {p['threads_per_process']}",
                 num(r.get("launch_seconds"), "{:.1f}"), num(r["prepare_seconds"], "{:.2f}"),
                 num(r["steady_tokens_per_s"]) + S.ci(r["tokens_per_s_ci"]),
                 num(r.get("vs_one_device"), "{:.2f}x") + S.ci(r.get("vs_one_device_ci"), "{:.2f}"),
                 num(cost.get("ms_per_step"), "{:.2f}") if cost.get("ms_per_step") is not None
                 else cost.get("what", "–")))
  if not rows:
    return ""
  return ("## Data parallel\n\nEach `<row>-dpN` splits every minibatch's rows over N devices through its "
          "framework's own engine and is judged against its own row on one device (parity group "
          "`data-parallel`) and against the other framework's data-parallel rows (groups `<group>-dpN`). "
          "Launch: starting its processes and the engine's rendezvous, apart from compile and training. "
          "Against one device: the median over rounds of the ratio of its steady epochs' rates to its "
          "single-device row's, in the same rounds. On a CPU the N devices share the cores the single-device "
          "row has alone (threads split between processes), so 1.00x means that splitting the batch cost "
          "nothing; it is not a speed-up over one device's share. Gradient reduction: the engine's profiler's "
          "time in the all-reduce per step, where it shows one.\n\n"
          + table(("row", "engine", "backend", "devices", "processes x threads", "launch s", "compile s",
                   "tokens/s [95% CI]", "against one device [95% CI]", "gradient all-reduce ms/step"), rows))


def _training(block) -> str:
  rows, per_step = [], block["inputs"]["batch_shape"][0] * block["inputs"]["batch_shape"][1]
  for n, r in block["impls"].items():
    p, clipped = r["perplexity"], r.get("clipped_steps", [])
    status = r["status"] + (f" at epoch {r['failed_epoch']}" if r.get("failed_epoch") else "")
    first = next((k for k, c in enumerate(clipped, 1) if c), None)
    clips = (f"{sum(clipped):,} of {sum(r['tokens']) // per_step:,}" + (f" (from epoch {first})" if first else "")
             if None not in clipped else "not reported (Keras's fit)")
    rows.append((n, num(p[0] if p else None, "{:.3f}"), num(p[9] if len(p) > 9 else None, "{:.3f}"),
                 num(metrics.final_perplexity(p), "{:.4f}"), num(p[-1] if p else None, "{:.4f}"), len(p),
                 clips if p else "–", status))
  return ("## Perplexity\n\nClipped steps: the minibatch steps whose global gradient norm exceeded theta, "
          "where the clipping rule scales the gradient, counted by each implementation (that the rule then "
          "scales as it should is what the probe's update check judges). Final: the median of the last "
          f"{metrics.FINAL_EPOCHS} epochs (fewer in a shorter run), what parity judges; the last epoch alone "
          "beside it.\n\n"
          + table(("implementation", "epoch 1", "epoch 10", "final (median)", "last epoch", "epochs run",
                   "clipped steps", "status"), rows))


def _samples(results, block) -> str:
  prefixes = results["sample_prefixes"]
  rows = [(n, *(f"`{r['samples'].get(p, '')}`" for p in prefixes))
          for n, r in block["impls"].items() if r.get("samples")]
  return (f"## Generated text\n\nGreedy, {results['sample_length']} characters after the prefix "
          "(d2l's predict_ch8), from the trained weights.\n\n" + table(("implementation", *prefixes), rows))


def render(results: dict) -> str:
  figures = ["perplexity.png", "throughput.png"] + (["time.png"] if plots.split(results)[1] else []) + ["divergence.png"]
  parts = [S.head(results, "Run"), _summary(results, results), S.configuration(results), S.inputs(results, results),
           S.environment(results, results), _parity(results, results), _truth(results, results),
           _throughput(results, results), _bf16(results, results), limits_md.render(results), limits_md.render_time(results),
           _data_parallel(results, results), _training(results),
           _samples(results, results), S.figures(figures)]
  return "\n".join(p for p in parts if p)
