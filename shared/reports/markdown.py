"""report.md from results.json's dict: every figure in the markdown is read from it.

`render` writes a single comparison ("compare"), a several-seed run ("seeds"), a sweep or
an ablation.
"""
import math

from shared import data, metrics, protocol, timing
from shared.reports import checkpoint as checkpoint_md
from shared.reports import limits as limits_md
from shared.reports.tables import FOLDER as TABLES
from shared.reports.text import num, sig, table
from shared.reports.report import blocks, judged_rows, parity_rows, tally
from shared.sweep import fastest, label, points_of, series_file, series_title

CHECK_TITLES = {
    "logits_rel": "forward logits, first minibatch: max abs diff / max abs logit",
    "grads_rel": "gradients, first minibatch: max over parameters of max abs diff / max abs gradient",
    "probe_logits_rel": "probe, random weights and start: logits, max abs diff / max abs logit",
    "probe_grads_rel": "probe, random weights and start: gradients, per parameter as above",
    "probe_losses_rel": "probe, 2 epochs x 2 carried minibatches: epoch losses, max rel diff",
    "probe_update_rel": "probe, the same 4 clipped steps: weights after - before, max abs diff / max abs update",
    "probe_unclipped": "probe: steps whose gradient norm did not exceed theta (either row; 0: clipping had to act at every step)",
    "ppl_first10_rel": "perplexity, epochs 1-{first}: max rel diff",
    "ppl_all_rel": "perplexity, whole run: max rel diff",
    "ppl_final_rel": "final perplexity, the median of the last epochs (note): rel diff",
    "ppl_last_rel": "the last epoch's perplexity alone: rel diff (reported: a late spike, not where the run ended)",
    "ppl_diverge_epoch": "first epoch with perplexity rel diff > {threshold:.0e}",
    "logits_rms_rel": "forward logits, first minibatch: RMS diff / RMS logit (bf16: same roundings?)",
}
FIGURES = {"perplexity.png": "Per-epoch perplexity", "throughput.png": "Steady-state throughput",
           "divergence.png": "Relative perplexity gaps per epoch",
           "seeds.png": "Final perplexity and epoch to the target, per seed"}


def _measured(c) -> str:
  if c["check"] == "ppl_diverge_epoch":
    return "never" if c["measured"] is None else f"{c['measured']:.0f}"
  if c["check"] == "probe_unclipped":
    return "not reported" if c["measured"] is None else f"{c['measured']:.0f}"
  return "not finite" if c["measured"] is None else f"{c['measured']:.2e}"


def _tolerance(c) -> str:
  if c["tolerance"] is None:
    return "–"
  return f"{c['tolerance']:.0f}" if c["check"] == "probe_unclipped" else f"{c['tolerance']:.0e}"


def _config(results) -> str:
  rows = [(k, f"`{v}`") for k, v in results["config"].items()]
  if results["kind"] == "seeds":
    rows.append(("seeds", f"`{results['seeds']}`"))
  return "## Configuration\n\n" + table(("setting", "value"), rows)


def _inputs(results, block) -> str:
  i = block["inputs"]
  per_seed = (f"Within each seed ({', '.join(str(s) for s in results['seeds'])}), every implementation"
              if results["kind"] == "seeds" else "Every implementation")
  seed = "the seed" if results["kind"] == "seeds" else f"seed {i['seed']}"
  return ("## Identical inputs\n\n"
          f"{per_seed} started from the same initial weights, generated once per layout by "
          f"`shared/params.py` from {seed} ({i['init']}), and consumed the same {i['epochs']} epochs of "
          f"{i['batches_per_epoch']} minibatches each ({i['batch_shape'][0]} x {i['batch_shape'][1]} tokens), "
          f"drawn once by `shared/data.py` from `numpy.random.default_rng({seed.split()[-1]})` "
          f"({i['sampling']} sampling). Data: The Time Machine (SHA-1 `{i['data_sha1']}`), "
          f"{corpus(i['tokens'], i.get('corpus_characters'))}, "
          f"vocabulary of {i['vocab_size']}."
          + (" A float64 run starts from the same float32 weights, converted exactly." if _has_float64(results)
             else "") + "\n")


def corpus(tokens: int, characters=None) -> str:
  """"the whole text, 170,580 characters" or "the first 10,000 characters": the text a run
  trained on, from `--max-tokens` (-1: all of it) and the characters it recorded (reports
  before that: the verified text's known length, data.CHARACTERS)."""
  used = characters if characters is not None else (data.CHARACTERS if tokens < 0 else min(tokens, data.CHARACTERS))
  if tokens < 0 or used >= data.CHARACTERS:
    return f"the whole text, {used:,} characters"
  return f"the first {used:,} characters"


def _has_float64(results) -> bool:
  return results["config"]["precision"] == "float64" or any(b.get("truth") for b in blocks(results))


def _environment(results, block) -> str:
  e = results["environment"]
  rows = [("Python", e["python"])] + [(k, v or "not installed") for k, v in e["packages"].items()]
  rows += [("CPU", f"{e['cpu']} ({e['cpu_count']} logical cores)"), ("OS", e["os"]),
           ("git commit", f"`{e['git_commit']}`"), ("command", f"`{e['command']}`")]
  rows += _threads_rows(e)
  for phase in (block, block.get("truth") or {}):
    rows += [(f"{n}", f"{r['device']}, {r['precision']}, {r['execution']}"
                      + (f", {r['threads']} threads" if r.get("threads") else "") + _parallel_note(r))
             for n, r in phase.get("impls", {}).items()]
  return ("## Environment\n\nPer implementation: device, arithmetic that ran (float32, TF32 or "
          "float64), how an epoch runs and the compute threads it was given.\n\n" + table(("", ""), rows))


def _parallel_note(r) -> str:
  """A data-parallel row's engine, backend, devices and processes (nothing for others)."""
  p = r.get("parallel")
  if not p:
    return ""
  return (f"; data parallel: {p['engine']}, {p['backend']}, {p['devices']} devices in {p['processes']} "
          f"process{'es' if p['processes'] > 1 else ''} of {p['threads_per_process']} thread(s) each, "
          f"launched by {p['launch']}")


def _data_parallel(results, block) -> str:
  """The data-parallel rows beside their single-device rows: engine, launch, speed."""
  rows = []
  for n, r in block["impls"].items():
    p = r.get("parallel")
    if not p:
      continue
    cost = r.get("reduction") or {}
    rows.append((n, p["engine"], p["backend"], p["devices"], f"{p['processes']} x {p['threads_per_process']}",
                 num(r.get("launch_seconds"), "{:.1f}"), num(r["prepare_seconds"], "{:.2f}"),
                 num(r["steady_tokens_per_s"]) + _ci(r["tokens_per_s_ci"]),
                 num(r.get("vs_one_device"), "{:.2f}x") + _ci(r.get("vs_one_device_ci"), "{:.2f}"),
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


def _bf16(results, block) -> str:
  """The bf16 twins beside their float32 rows: speed paired round by round, perplexities."""
  rows = []
  for n, r in block["impls"].items():
    base = protocol.split_precision(n)[0]
    if base == n or base not in block["impls"]:
      continue
    one = block["impls"][base]
    rows.append((n, num(one["steady_tokens_per_s"]), num(r["steady_tokens_per_s"]) + _ci(r["tokens_per_s_ci"]),
                 num(r.get("vs_float32"), "{:.3f}x") + _ci(r.get("vs_float32_ci"), "{:.3f}"),
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


def _threads_rows(e) -> list:
  """The thread settings, the CPU's instruction set and what each framework's matrix
  products ran on (schema 4 on; nothing for older reports)."""
  t, rows = e.get("threads") or {}, []
  if t:
    rows.append(("threads", f"{t['threads']} per framework, in every process, on {t['cores']} cores "
                            f"(OMP_NUM_THREADS {t['OMP_NUM_THREADS']}, MKL_NUM_THREADS {t['MKL_NUM_THREADS']}, "
                            f"OMP_WAIT_POLICY {t['OMP_WAIT_POLICY']}, PJRT_NPROC {t['PJRT_NPROC']}, "
                            f"XLA_FLAGS `{t['XLA_FLAGS'] or ''}`)"))
    rows.append(("CPU instruction set", ", ".join(t["instruction_set"]) or "not read"))
  if e.get("loadavg_before") is not None:
    warning = timing.start_warning(e["loadavg_before"])
    rows.append(("load before the run", f"1-minute load average {e['loadavg_before']:.2f} as it started"
                                        + (f"; **warning: {warning}**" if warning else "")))
  for fw, r in (e.get("runtime") or {}).items():
    if fw == "torch":
      rows.append(("torch runtime", f"{r['threads']} intra-op threads ({r['interop_threads']} inter-op), "
                                    f"{r['parallel_backend']}, BLAS {r['blas']}, {r['onednn']}, CPU kernels "
                                    f"{r['cpu_capability']}, OpenMP wait policy {r['omp_wait_policy']}; "
                                    f"matrix products: {r['matmul']}"))
    elif fw == "jax":
      rows.append(("jax runtime", f"XLA:CPU pool of {r['threads']} threads; matrix products: {r['matmul']}"))
    else:
      rows.append((f"{fw} runtime", f"{r['threads']} threads per process, {r['processes']}; matrix products: "
                                    f"{r['matmul']}"))
  return rows


def _parity_rows(results, rows, block=None) -> list:
  out, why = [], set(results["forward_only"].values()) | set(results.get("training_deviations", {}).values())
  for c in rows:
    verdict = ("known deviation (reported)" if c["known_deviation"] else
               {True: "PASS", False: "**FAIL**", None: "(reported)"}[c["passed"]])
    epochs = results["ppl_first_epochs"]
    if block and c["check"] == "ppl_first10_rel":  # as many as both ran, if fewer
      epochs = min([epochs] + [len(block["impls"][n]["perplexity"]) for n in (c["impl"], c["anchor"])])
    title = CHECK_TITLES[c["check"]].format(first=epochs,
                                            threshold=results["divergence_thresholds"][c["arithmetic"]])
    note = c["note"]
    for w in why:  # a known deviation's reason is given once, below the table
      note = note.replace(w, "see below")
    out.append((c["group"], f"{c['impl']} vs {c['anchor']}", title, _measured(c), _tolerance(c), verdict, note))
  return out


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
          "their own tolerance.\n\n" + table(header, _parity_rows(results, block["parity"], block)) + notes)


def _truth(results, block) -> str:
  truth = block.get("truth")
  if not truth:
    return ""
  rows = []
  for n, g in truth["gaps"].items():
    p32, p64 = block["impls"][n]["perplexity"], truth["impls"][protocol.split_precision(n)[0]]["perplexity"]
    rows.append((n, f"{p32[-1]:.4f}", f"{p64[-1]:.4f}", f"{g['median']:.1e}", f"{g['max']:.1e}",
                 "never" if g["first_over"] is None else g["first_over"]))
  header = ("implementation", "final ppl (its precision)", "final ppl, float64", "median gap", "max gap",
            f"first epoch with gap > {results['divergence_thresholds']['float32']:.0e}")
  verdicts = "".join(f"- {v}\n" for v in truth["verdicts"])
  verdicts += "".join(f"- **{n}** has no float64 truth: {why}.\n" for n, why in block.get("truth_left_out", {}).items())
  return ("## The float64 ground truth\n\nEvery implementation that can also trained in float64 from the same "
          "weights and minibatches: with round-off near 1e-16 instead of 1e-7, its trajectory is the "
          "exact one for that model. Gap: |ppl(float32) - ppl(float64)| / ppl(float64) per epoch, "
          "against the float64 run of the same implementation (a bf16 twin's against its row's).\n\n" + table(header, rows) + "\n"
          + verdicts + "\nfloat64 parity, torch against JAX with round-off taken away (tolerances for "
          f"float64, parting threshold {results['divergence_thresholds']['float64']:.0e}):\n\n"
          + table(("group", "pair", "check", "measured", "tolerance", "result", "note"),
                  _parity_rows(results, truth["parity"], truth)))


def _ci(x, fmt="{:,.0f}") -> str:
  return "" if not x else f" [{fmt.format(x[0])}–{fmt.format(x[1])}]"


def _throughput(results, block) -> str:
  rows = []
  for n, r in block["impls"].items():
    steady = len(r["epoch_seconds"]) - 1
    mem = num(r["peak_memory_bytes"] and r["peak_memory_bytes"] / 2**20, "{:,.0f} MiB")
    slow = f"{len(r['slow_epochs'])} of {steady}" if steady > 0 else "–"
    cores = f"{num(r['threads'], '{:d}')} / {num(r['cores_used'], '{:.2f}')}"
    rows.append((n, r["status"], num(r["steady_tokens_per_s"]) + _ci(r["tokens_per_s_ci"]),
                 num(r["total_tokens_per_s"]), slow, cores,
                 num(r["speedup_vs_reference"], "{:.2f}x") + _ci(r["speedup_ci"], "{:.2f}"),
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
          + _load(block) + table(header, rows))


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
    best = max(rates, key=rates.get)
    r = block["impls"][best]
    up = f" ({r['speedup_vs_reference']:.2f}x{_ci(r['speedup_ci'], '{:.2f}')} {results['baseline']})" \
        if r["speedup_vs_reference"] else ""
    lines.append(f"- Fastest on this machine: {best}, {rates[best]:,.0f}{_ci(r['tokens_per_s_ci'])} tokens/s "
                 f"(median epoch [95% CI]){up}.")
    lines += _cores_line(results, done)
  if timing.load_warning(block.get("load")):
    lines.append(f"- **Warning: {timing.load_warning(block['load'])}.**")
  finals = {n: r["perplexity"] for n, r in done.items() if r["perplexity"]}
  if finals:
    lines.append(f"- Final perplexity (the median of the last {metrics.final_epochs(next(iter(finals.values())))} "
                 "epochs; the last epoch alone in brackets): "
                 + ", ".join(f"{n} {metrics.final_perplexity(p):.3f} ({p[-1]:.3f})" for n, p in finals.items()) + ".")
  lines += _target_line(results, done, block["inputs"]["epochs"])
  return "## Summary\n\n" + "\n".join(lines) + "\n"


def _failed_names(judged: list) -> str:
  failed = [f"{c['impl']} vs {c['anchor']} {c['check']} ({_measured(c)} against {_tolerance(c)})"
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


def _figures(names) -> str:
  return ("## Figures\n\n" + "\n\n".join(f"![{FIGURES[n]}]({n})" for n in names) + "\n\n"
          + _files_note())


def _files_note() -> str:
  """Where the same figures and tables are as files, for a write-up."""
  return ("Every figure is also an SVG (vector) beside its PNG, same name; every table of this report is "
          f"also a CSV in `{TABLES}/` (`NN-<section>.csv`, in the order they appear here).\n")


def _head(results, what: str) -> str:
  head = (f"# GRU language model: PyTorch vs JAX/Flax, same data, same initial weights\n\n"
          f"{what} of {results['created']} on {results['device']}, preset `{results['preset']}`.")
  if results["partial"]:
    head += " **PARTIAL: the run was interrupted; only what finished is reported.**"
  return head + "\n"


def render_compare(results: dict) -> str:
  figures = ["perplexity.png", "throughput.png", "divergence.png"]
  parts = [_head(results, "Run"), _summary(results, results), _config(results), _inputs(results, results),
           _environment(results, results), _parity(results, results), _truth(results, results),
           _throughput(results, results), _bf16(results, results), limits_md.render(results),
           _data_parallel(results, results), _training(results),
           _samples(results, results), _figures(figures)]
  return "\n".join(p for p in parts if p)


# --- several seeds ---------------------------------------------------------------------
def _stat(d, fmt) -> str:
  if d["n"] == 0:
    return "–"
  std = "" if d["std"] is None else f" ± {fmt.format(d['std'])}"
  return f"{fmt.format(d['mean'])}{std} ({fmt.format(d['min'])}–{fmt.format(d['max'])})"


def _aggregate(results) -> str:
  agg, rows = results["aggregate"], []
  for n, a in agg["impls"].items():
    missed = f", not reached in {a['target_not_reached']}" if a["target_not_reached"] else ""
    last = _stat(a["last_ppl"], "{:.4f}") if "last_ppl" in a else "–"
    rows.append((n, a["final_ppl"]["n"], _stat(a["final_ppl"], "{:.4f}"), last,
                 _stat(a["epoch_to_target"], "{:.1f}") + missed, _stat(a["tokens_per_s"], "{:,.0f}"),
                 _stat(a["truth_median_gap"], "{:.1e}")))
  header = ("implementation", "seeds", "final perplexity", "last epoch's perplexity",
            f"first epoch at ppl {results['ppl_target']}", "tokens/s (median epoch)", "median gap to float64")
  return ("## Across seeds\n\nPer implementation over the seeds that finished: mean ± sample standard "
          "deviation (min–max). " + _final_note(results) + "\n\n" + table(header, rows) + "\n"
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
          "against the margin, declared in `shared/seeds.py` before any run; why these tests: "
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
  rows = [(p["group"], f"{p['numerator']} / {p['denominator']}", p["n"],
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
          + "\n" + "".join(f"- {p['sentence']}\n" for p in pairs))


def _failed_checks(results) -> list:
  """One line per judged parity check that failed, in any seed, at either arithmetic."""
  return [f"- seed {r['seed']}: {c['impl']} vs {c['anchor']} {c['check']} at {c['arithmetic']}: "
          f"{_measured(c)} (tolerance {_tolerance(c)})"
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


def render_seeds(results: dict) -> str:
  first = next((r for r in results["runs"] if r.get("impls")), None)
  figures = ["seeds.png", "perplexity.png", "throughput.png", "divergence.png"]
  parts = [_head(results, f"Several-seed run ({len(results['seeds'])} seeds)"), _seeds_summary(results),
           _config(results)]
  if first:
    parts += [_inputs(results, first), _environment(results, first)]
  parts += [_aggregate(results), limits_md.render_seeds(results), _per_seed(results), _figures(figures)]
  return "\n".join(p for p in parts if p)




# --- sweeps ----------------------------------------------------------------------------
def _sweep_tables(results, s) -> str:
  at = {p["point"][s["axis"]]: p for p in points_of(results["points"], s)}
  names = list(dict.fromkeys(n for p in at.values() for n in p["impls"]))
  wide = [(v, *(num(at[v]["impls"][n]["steady_tokens_per_s"]) if n in at[v]["impls"] else "–" for n in names),
           num(at[v]["jax_over_torch"], "{:.2f}x"), num(at[v].get("steps_per_epoch"), "{:,}"),
           num(at[v]["point_seconds"], "{:,.0f}")) for v in at]
  long = []
  for v, p in at.items():
    for n, r in p["impls"].items():
      mem = num(r["peak_memory_bytes"] and r["peak_memory_bytes"] / 2**20, "{:,.0f} MiB")
      bound = r.get("limits") or {}
      long.append((v, n, r["status"], num(r["steady_tokens_per_s"]) + _ci(r.get("tokens_per_s_ci")),
                   num(r["speedup"], "{:.2f}x") + _ci(r.get("speedup_ci"), "{:.2f}"),
                   num(r.get("vs_float32"), "{:.3f}x") + _ci(r.get("vs_float32_ci"), "{:.3f}"),
                   num(r["us_per_token"], "{:.2f}"), num(r["ms_per_step"], "{:.2f}"), num(r["gflops"], "{:.1f}"),
                   num(bound.get("gemm_gflops"), "{:.1f}"), num(bound.get("share_of_framework_bound"), "{:.0%}"),
                   num(bound.get("share_of_machine_bound"), "{:.0%}"),
                   num(r.get("cores_used"), "{:.2f}"), num(r["prepare_seconds"], "{:.2f}"), mem))
  steps = [(f"{st['from']} → {st['to']}", *(num(st["elasticity"][n], "{:.2f}") for n in names))
           for st in s["steps"]]
  baseline = next(iter(at.values()))["baseline"] if at else "–"
  return (f"### {series_title(s)}\n\nSteady tokens/s, the fastest JAX row over the fastest PyTorch row, the "
          "minibatches per epoch, and the point's wall time (compiling and every epoch of every row):\n\n"
          + table((s["axis"], *names, "JAX / PyTorch", "minibatches / epoch", "point s"), wide)
          + f"\nCost per point (tokens/s: median epoch [95% CI]; speed-up against {baseline} at the same "
            "point: median of the per-round ratios [95% CI]; a bf16 twin's rate over its float32 row's, "
            "paired the same way; achieved GFLOP/s of matrix products by `shared/params.py`'s count, at "
            "the median rate; the matmul bound of the point's step shapes in the row's framework and "
            "precision, and the shares of it and of the machine's bound, as a comparison report's "
            "\"How far from the limit\" explains):\n\n"
          + table((s["axis"], "implementation", "status", "tokens/s", "speed-up", "bf16 / float32",
                   "µs/token", "ms/step", "achieved GFLOP/s", "bound GFLOP/s", "share of own bound",
                   "share of machine's", "cores used", "compile s", "peak device memory"), long)
          + ("\nElasticity of time per step to work per step between neighbouring points (0: "
             "overhead-bound, 1: compute-bound):\n\n" + table(("step", *names), steps) if steps else "")
          + "".join(f"\n- {n}: {text}." for n, text in s["summary"].items())
          + f"\n\n![tokens/s against {s['axis']}]({series_file(s)})\n")


def _points_load(points: list) -> list:
  """One line on the load measured while the points (or an ablation's levers) trained."""
  loads = [p["load"] for p in points if p.get("load")]
  if not loads:
    return []
  worst = max(loads, key=lambda load: load["other_cores"])
  warning = timing.load_warning(worst)
  return [f"- Load: other processes used at most {worst['other_cores']:.2f} of {worst['cores']} cores on average "
          "while any one trained" + (f"; **warning: {warning}**." if warning else ".")]


def _sweep_summary(results) -> str:
  points = results["points"]
  lines = [f"- Points finished: {sum(p['status'] == 'ok' for p in points)} of {results['num_points']}."]
  lines += _points_load(points)
  lines += [f"- **{label(p['point'])}: {p['status']}**" + (f" ({p['error']})" if p.get("error") else "")
            for p in points if p["status"] != "ok"]
  for s in results["series"]:
    line = points_of(points, s)
    for p in line[:1] + line[-1:] if len(line) > 1 else line:
      best = fastest(p["impls"])
      lines.append(f"- {series_title(s)} = {p['point'][s['axis']]}: "
                   + ", ".join(f"fastest {fw} {n} {rate:,.0f} tokens/s" for fw, (n, rate) in sorted(best.items()))
                   + (f"; JAX / PyTorch {p['jax_over_torch']:.2f}x" if p["jax_over_torch"] else ""))
  lines += _bf16_lines(points)
  return "## Summary\n\n" + "\n".join(lines) + "\n"


def _bf16_lines(points: list) -> list:
  """Per point with bf16 twins: each twin's speed over its float32 row (paired), so that the
  size where bf16 starts to pay, if any, can be read off."""
  out = []
  for p in points:
    ratios = {n: r.get("vs_float32") for n, r in (p.get("impls") or {}).items() if r.get("vs_float32")}
    if ratios:
      out.append(f"- {label(p['point'])}, bf16 / float32 (paired): "
                 + ", ".join(f"{protocol.split_precision(n)[0]} {x:.2f}x" for n, x in ratios.items()))
  return out


def _efficiency(results) -> str:
  """A devices sweep: each row's tokens/s at N devices over its own at one."""
  rows = [(label(e["point"]), n, num(x, "{:.2f}x")) for e in results.get("efficiency") or []
          for n, x in e["vs_one_device"].items()]
  if not rows:
    return ""
  scaling = {"strong": "strong scaling: the global batch fixed, split over more devices",
             "weak": "weak scaling: the batch per device fixed, the global batch growing with the devices"}
  return (f"## Data parallel: against one device\n\n{scaling[results['scaling']]}. Each row's steady tokens/s "
          "at N devices over its own at one device, the other sizes alike. On a CPU the N devices share the "
          "cores that one device has alone (each process gets its share of the threads), so 1.00x means "
          "that splitting the work cost nothing; where every device brings its own hardware (GPUs), N "
          "would be ideal.\n\n" + table(("point", "row", "tokens/s against one device"), rows))


def _sweep_rows(results) -> dict:
  """The rows whose device, arithmetic and execution the environment block states: the
  first finished point's; along a devices axis every point's (its engines differ)."""
  done = [p for p in results["points"] if p["status"] == "ok"]
  if "devices" not in results["axes"]:
    return done[0]["impls"] if done else {}
  return {f"{n} ({label(p['point'])})": r for p in done for n, r in p["impls"].items()}


def render_sweep(results: dict) -> str:
  axes = ", ".join(f"`{k}` = {v}" for k, v in results["axes"].items())
  head = (f"# GRU language model: PyTorch vs JAX/Flax, how cost grows\n\nSweep of {results['created']} on "
          f"{results['device']}, preset `{results['preset']}`, {results['config']['num_epochs']} epochs per point "
          f"(the first excluded from tokens/s), over {axes}. Data: The Time Machine, {_sweep_corpus(results)}. "
          "Parity is not judged in a sweep.")
  if results["partial"]:
    head += " **PARTIAL: the sweep was interrupted; only what finished is reported.**"
  env = _environment(results, {"impls": _sweep_rows(results)})
  parts = [head + "\n", _sweep_summary(results), _config(results), env, _efficiency(results),
           "## Results per axis\n\n" + "\n".join(_sweep_tables(results, s) for s in results["series"]),
           "## Files\n\n" + _files_note()]
  return "\n".join(parts)


def _sweep_corpus(results) -> str:
  """The text a sweep trained on: one corpus, or the characters each point's max_tokens took."""
  if "max_tokens" in results["axes"]:
    return ("at each point the first `max_tokens` characters (-1: the whole text, "
            f"{data.CHARACTERS:,} characters)")
  return corpus(results["config"]["max_tokens"])


# --- ablations -------------------------------------------------------------------------
def _lever_table(e) -> str:
  rows = [(row, c["setting"], c["status"] + (f" ({c['error']})" if c["error"] else ""),
           num(c["steady_tokens_per_s"]) + _ci(c.get("tokens_per_s_ci")),
           num(c["ratio"], "{:.2f}x") + _ci(c.get("ratio_ci"), "{:.2f}"), num(c["prepare_seconds"], "{:.2f}"),
           num((c.get("limits") or {}).get("achieved_gflops"), "{:.2f}"),
           num((c.get("limits") or {}).get("share_of_framework_bound"), "{:.0%}"),
           num((c.get("limits") or {}).get("share_of_machine_bound"), "{:.0%}"),
           num(c["final_perplexity"], "{:.6f}"), c["precision"] or "–", c["execution"] or "–")
          for row, cells in e["results"].items() for c in cells]
  return table(("row", "setting", "status", "tokens/s", "ratio to reference", "compile/capture s",
                "achieved GFLOP/s", "share of its framework's matmul bound", "share of the machine's",
                "last-epoch perplexity", "arithmetic", "execution"), rows)


def _lever(e) -> str:
  head = f"### {e['name']} ({e['framework']}; `--ablation {e['key']}`)\n\n{e['why'][0].upper()}{e['why'][1:]}."
  if e["skipped"]:
    return head + f" **Skipped: {e['skipped']}.**\n"
  return head + f" Reference setting: {e['settings'][0]}.\n\n" + _lever_table(e)


def _ablation_summary(results) -> str:
  points = results["points"]
  lines = [f"- Cells measured: {sum(p['status'] == 'ok' for p in points)} of {len(points)}."]
  lines += _points_load(points)
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


def render_ablation(results: dict) -> str:
  c = results["config"]
  head = (f"# GRU language model: what each speed lever buys\n\nAblation of {results['created']} on "
          f"{results['device']}, preset `{results['preset']}`, {c['num_epochs']} epochs per cell (the first, "
          f"compiling and warming up, left out of tokens/s) on {corpus(c['max_tokens'])} of The Time Machine, "
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
           "## Levers\n\n" + "\n".join(_lever(e) for e in results["levers"]),
           "![tokens/s per lever and setting](ablation.png)\n", _config(results), _environment(results, {}),
           "## Files\n\n" + _files_note()]
  return "\n".join(parts)


def _ablation_bounds(results) -> str:
  """The matmul bounds the ablation's shares rest on: per framework and precision, the median
  over the cells that measured it (each cell measures its frameworks' defaults after training)."""
  seen = {}
  for p in results["points"]:
    for m in p.get("limits") or []:
      if m.get("gflops"):
        seen.setdefault((m["framework"], m["precision"], m["what"]), []).append(m["gflops"])
  if not seen:
    return ""
  rows = [(fw, prec, num(sorted(v)[len(v) // 2], "{:.1f}"), len(v), what) for (fw, prec, what), v in seen.items()]
  return ("## Matmul bounds\n\nThe shares in the lever tables are of these: the training step's own "
          "matrix-product shapes timed in each framework with its default settings after each cell trained "
          "(`shared/limits.py`; a comparison report's \"How far from the limit\" explains), the median over "
          "the cells.\n\n" + table(("framework", "precision", "GFLOP/s", "cells", "what ran"), rows))


def render(results: dict) -> str:
  text = {"compare": render_compare, "seeds": render_seeds, "sweep": render_sweep,
          "ablation": render_ablation}[results["kind"]](results)
  resumed = checkpoint_md.render(results)  # how the run was checkpointed, and any resume
  return text + ("\n" + resumed if resumed else "")
