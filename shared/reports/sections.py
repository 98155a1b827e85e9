"""The sections every kind of report.md shares (shared/reports/markdown.py renders each
kind from results.json's dict: every figure in the Markdown is read from it)."""
from shared import data, machine, timing
from shared.reports.report import blocks
from shared.reports.tables import FOLDER as TABLES
from shared.text import num, table


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
           "time.png": "Where the time goes: matrix products (their share from each framework's profiler) and the rest",
           "seeds.png": "Final perplexity and epoch to the target, per seed"}


def measured(c) -> str:
  if c["check"] == "ppl_diverge_epoch":
    return "never" if c["measured"] is None else f"{c['measured']:.0f}"
  if c["check"] == "probe_unclipped":
    return "not reported" if c["measured"] is None else f"{c['measured']:.0f}"
  return "not finite" if c["measured"] is None else f"{c['measured']:.2e}"


def tolerance(c) -> str:
  if c["tolerance"] is None:
    return "–"
  return f"{c['tolerance']:.0f}" if c["check"] == "probe_unclipped" else f"{c['tolerance']:.0e}"


def configuration(results) -> str:
  rows = [(k, f"`{v}`") for k, v in results["config"].items()]
  if results["kind"] == "seeds":
    rows.append(("seeds", f"`{results['seeds']}`"))
  return "## Configuration\n\n" + table(("setting", "value"), rows)


def inputs(results, block) -> str:
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
          + (" A float64 run starts from the same float32 weights, converted exactly." if has_float64(results)
             else "") + "\n")


def corpus(tokens: int, characters=None) -> str:
  """"the whole text, 170,580 characters" or "the first 10,000 characters": the text a run
  trained on, from `--max-tokens` (-1: all of it) and the characters it recorded (reports
  before that: the verified text's known length, data.CHARACTERS)."""
  used = characters if characters is not None else (data.CHARACTERS if tokens < 0 else min(tokens, data.CHARACTERS))
  if tokens < 0 or used >= data.CHARACTERS:
    return f"the whole text, {used:,} characters"
  return f"the first {used:,} characters"


def has_float64(results) -> bool:
  return results["config"]["precision"] == "float64" or any(b.get("truth") for b in blocks(results))


def environment(results, block) -> str:
  e = results["environment"]
  rows = [("Python", e["python"])] + [(k, v or "not installed") for k, v in e["packages"].items()]
  rows += [("CPU", machine_line(e)), ("calibration", calibration_line(e)), ("OS", e["os"]),
           ("git commit", f"`{e['git_commit']}`"), ("command", f"`{e['command']}`")]
  rows += threads_rows(e) + [("merged from", merged_line(m)) for m in e.get("merged_from", [])]
  for phase in (block, block.get("truth") or {}):
    rows += [(f"{n}", f"{r['device']}, {r['precision']}, {r['execution']}"
                      + (f", {r['threads']} threads" if r.get("threads") else "") + parallel_note(r))
             for n, r in phase.get("impls", {}).items()]
  return ("## Environment\n\nPer implementation: device, arithmetic that ran (float32, TF32 or "
          "float64), how an epoch runs and the compute threads it was given.\n\n" + table(("", ""), rows))


def merged_line(m: dict) -> str:
  """One source of a merged several-seed report (shared/kinds/seeds.merge): its seeds and command."""
  stopped = (f"; stopped by Ctrl-C, seed(s) {', '.join(map(str, m['left_out']))} left unfinished and left out"
             if m.get("partial") else "")
  return f"`{m['report']}`, {len(m['seeds'])} seed(s) ({seed_list(m['seeds'])}), `{m['command']}`{stopped}"


def seed_list(seeds: list) -> str:
  """[0, 2, 4, 6] -> "0, 2, ..., 6"; a short list whole."""
  return ", ".join(map(str, seeds)) if len(seeds) <= 4 else f"{seeds[0]}, {seeds[1]}, ..., {seeds[-1]}"


def machine_line(e: dict) -> str:
  """The machine as the OS describes it (shared/machine.py); reports before that: its name alone."""
  if e.get("machine"):
    return machine.label(e["machine"])
  return f"{e['cpu']} ({e['cpu_count']} logical cores; recorded before reports identified their machine)"


def calibration_line(e: dict) -> str:
  """The machine's speed as the run started: one large float32 product per framework."""
  c = e.get("calibration")
  if not c:
    return "not measured (reports before it)"
  figures = ", ".join(f"{fw} {num(g, '{:.1f}')} GFLOP/s" for fw, g in c["gflops"].items())
  return (f"{figures}: one {c['product']} product on the {c['device']} at the run's threads, timed as it started"
          + "".join(f"; {fw} failed: {why}" for fw, why in c.get("errors", {}).items()))


def parallel_note(r) -> str:
  """A data-parallel row's engine, backend, devices and processes (nothing for others)."""
  p = r.get("parallel")
  if not p:
    return ""
  return (f"; data parallel: {p['engine']}, {p['backend']}, {p['devices']} devices in {p['processes']} "
          f"process{'es' if p['processes'] > 1 else ''} of {p['threads_per_process']} thread(s) each, "
          f"launched by {p['launch']}")


def threads_rows(e) -> list:
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


def parity_table(results, rows, block=None) -> list:
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
    out.append((c["group"], f"{c['impl']} vs {c['anchor']}", title, measured(c), tolerance(c), verdict, note))
  return out


def ci(x, fmt="{:,.0f}") -> str:
  return "" if not x else f" [{fmt.format(x[0])}–{fmt.format(x[1])}]"


def figures(names) -> str:
  return ("## Figures\n\n" + "\n\n".join(f"![{FIGURES[n]}]({n})" for n in names) + "\n\n"
          + files_note())


def files_note() -> str:
  """Where the same figures and tables are as files, for a write-up."""
  return ("Every figure is also an SVG (vector) beside its PNG, same name; every table of this report is "
          f"also a CSV in `{TABLES}/` (`NN-<section>.csv`, in the order they appear here).\n")


def head(results, what: str) -> str:
  head = (f"# GRU language model: PyTorch vs JAX/Flax, same data, same initial weights\n\n"
          f"{what} of {results['created']} on {results['device']}, preset `{results['preset']}`.")
  if results["partial"]:
    head += " **PARTIAL: the run was interrupted; only what finished is reported.**"
  return head + "\n"


def points_load(points: list) -> list:
  """One line on the load measured while the points (or an ablation's levers) trained."""
  loads = [p["load"] for p in points if p.get("load")]
  if not loads:
    return []
  worst = max(loads, key=lambda load: load["other_cores"])
  warning = timing.load_warning(worst)
  return [f"- Load: other processes used at most {worst['other_cores']:.2f} of {worst['cores']} cores on average "
          "while any one trained" + (f"; **warning: {warning}**." if warning else ".")]
