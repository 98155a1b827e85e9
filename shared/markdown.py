"""report.md from results.json's dict: every figure in the markdown is read from it."""

CHECK_TITLES = {
    "logits_abs": "forward logits, first minibatch: max abs diff",
    "grads_rel": "gradients, first minibatch: max abs diff / grad norm",
    "ppl_first10_rel": "perplexity, epochs 1-{first}: max rel diff",
    "ppl_all_rel": "perplexity, whole run: max rel diff",
    "ppl_final_rel": "final perplexity: rel diff",
    "ppl_diverge_epoch": "first epoch with perplexity rel diff > {threshold:.0e}",
}


def _measured(c) -> str:
  if c["check"] == "ppl_diverge_epoch":
    return "never" if c["measured"] is None else f"{c['measured']:.0f}"
  return "not finite" if c["measured"] is None else f"{c['measured']:.2e}"


def _table(header, rows) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def _num(x, fmt="{:,.0f}", none="–") -> str:
  return none if x is None else fmt.format(x)


def _config(results) -> str:
  c = results["config"]
  rows = [(k, f"`{v}`") for k, v in c.items()]
  return "## Configuration\n\n" + _table(("setting", "value"), rows)


def _inputs(results) -> str:
  i = results["inputs"]
  return ("## Identical inputs\n\n"
          f"Every implementation started from the same initial weights, generated once per layout "
          f"by `shared/params.py` from seed {i['seed']} ({i['init']}), and consumed the same "
          f"{i['epochs']} epochs x {i['batches_per_epoch']} minibatches of "
          f"{i['batch_shape'][0]} x {i['batch_shape'][1]} tokens, drawn once by `shared/data.py` "
          f"from `numpy.random.default_rng({i['seed']})` ({i['sampling']} sampling). "
          f"Data: The Time Machine (SHA-1 `{i['data_sha1']}`), first {i['tokens']:,} characters, "
          f"vocabulary of {i['vocab_size']}.\n")


def _environment(results) -> str:
  e = results["environment"]
  rows = [("Python", e["python"])] + [(k, v or "not installed") for k, v in e["packages"].items()]
  rows += [("CPU", f"{e['cpu']} ({e['cpu_count']} logical cores)"), ("OS", e["os"]),
           ("git commit", f"`{e['git_commit']}`"), ("command", f"`{e['command']}`")]
  rows += [(f"{n}", f"{r['device']}, {r['precision']}, {r['execution']}")
           for n, r in results["impls"].items()]
  return ("## Environment\n\nPer implementation: device, float32 matmul precision that ran, "
          "and how an epoch runs.\n\n" + _table(("", ""), rows))


def _parity(results) -> str:
  rows, epochs = [], results["inputs"]["epochs"]
  for c in results["parity"]:
    verdict = {True: "PASS", False: "**FAIL**", None: "(reported)"}[c["passed"]]
    tol = "–" if c["tolerance"] is None else f"{c['tolerance']:.0e}"
    title = CHECK_TITLES[c["check"]].format(first=min(results["ppl_first_epochs"], epochs),
                                            threshold=results["divergence_threshold"])
    rows.append((c["group"], f"{c['impl']} vs {c['anchor']}", title, _measured(c), tol, verdict))
  notes = "".join(f"\n- **{n}** is checked on the forward pass only: {why}.\n"
                  for n, why in results["forward_only"].items())
  judged = ("" if results["parity_judged"] else
            "**TF32 ran, so these figures are reported, not judged: parity is judged at full "
            "float32 (`--precision highest`).** ")
  return ("## Parity\n\nEach implementation against its group's anchor, from identical weights "
          "and minibatches. " + judged + "Tolerances and how they were chosen: "
          "`shared/metrics.py`. Training is chaotic: float32 round-off grows over the epochs "
          "until the trajectories part (the epoch is reported), most visibly in the sharp "
          "descent and in the perplexity spikes of late training; the final perplexities are "
          "compared with their own tolerance.\n\n"
          + _table(("group", "pair", "check", "measured", "tolerance", "result"), rows) + notes)


def _throughput(results) -> str:
  rows = []
  for n, r in results["impls"].items():
    spread = (f"{_num(r['median_tokens_per_s'])} ({_num(r['min_tokens_per_s'])}–"
              f"{_num(r['max_tokens_per_s'])})")
    mem = _num(r["peak_memory_bytes"] and r["peak_memory_bytes"] / 2**20, "{:,.0f} MiB")
    rows.append((n, r["status"], _num(r["steady_tokens_per_s"]), spread,
                 _num(r["speedup_vs_reference"], "{:.2f}x"), _num(r["prepare_seconds"], "{:.2f}"),
                 _num(r["first_epoch_seconds"], "{:.2f}"), _num(r["train_seconds"], "{:.1f}"),
                 _num(r["seconds_to_target_ppl"], "{:.1f}", "not reached"), mem))
  header = ("implementation", "status", "tokens/s (steady)", "median (min–max) per epoch",
            f"speed-up vs {results['baseline']}", "compile/capture s", "first epoch s",
            "train wall s", f"train s to ppl {results['ppl_target']}", "peak device memory")
  return ("## Throughput\n\nTraining tokens over wall time per epoch, with a device sync at each "
          "epoch boundary; steady state excludes the first epoch. Each implementation compiles "
          "(or captures) and runs its first epoch alone; epochs 2 onwards run round-robin across "
          "implementations, so a drift in the machine's load falls on all of them alike. "
          "Compile/capture time is measured apart and is not in the train wall time nor in the "
          "time to the target perplexity. Peak device memory: torch's allocator peak during "
          "that implementation's capture and first epoch, above what was allocated before it; "
          "for JAX, XLA's memory analysis of the compiled epoch (arguments + outputs + "
          "temporaries).\n\n"
          + _table(header, rows))


def _training(results) -> str:
  rows = []
  for n, r in results["impls"].items():
    p = r["perplexity"]
    status = r["status"] + (f" at epoch {r['failed_epoch']}" if r.get("failed_epoch") else "")
    rows.append((n, _num(p[0] if p else None, "{:.3f}"), _num(p[9] if len(p) > 9 else None, "{:.3f}"),
                 _num(p[-1] if p else None, "{:.4f}"), len(p), status))
  return ("## Perplexity\n\n" + _table(("implementation", "epoch 1", "epoch 10", "final",
                                        "epochs run", "status"), rows))


def _samples(results) -> str:
  prefixes = results["sample_prefixes"]
  rows = [(n, *(f"`{r['samples'].get(p, '')}`" for p in prefixes))
          for n, r in results["impls"].items() if r.get("samples")]
  return (f"## Generated text\n\nGreedy, {results['sample_length']} characters after the prefix "
          "(d2l's predict_ch8), from the trained weights.\n\n" + _table(("implementation", *prefixes), rows))


def _summary(results) -> str:
  judged = [c for c in results["parity"] if c["passed"] is not None]
  passed = sum(c["passed"] for c in judged)
  done = {n: r for n, r in results["impls"].items() if r["status"] == "ok"}
  rates = {n: r["steady_tokens_per_s"] for n, r in done.items() if r.get("steady_tokens_per_s")}
  lines = [f"- **{n}: {r['status']}**" + (f" ({r['error']})" if r.get("error") else "")
           for n, r in results["impls"].items() if r["status"] != "ok"]
  if judged:
    lines.append(f"- Parity: {passed} of {len(judged)} judged checks pass.")
  if rates:
    best = max(rates, key=rates.get)
    up = results["impls"][best]["speedup_vs_reference"]
    lines.append(f"- Fastest: {best}, {rates[best]:,.0f} tokens/s"
                 + (f" ({up:.2f}x {results['baseline']})." if up else "."))
  finals = {n: r["perplexity"][-1] for n, r in done.items() if r["perplexity"]}
  if finals:
    lines.append("- Final perplexity: " + ", ".join(f"{n} {p:.3f}" for n, p in finals.items()) + ".")
  return "## Summary\n\n" + "\n".join(lines) + "\n"


def render(results: dict) -> str:
  title = "# GRU language model: PyTorch vs JAX/Flax, same data, same initial weights\n\n"
  head = f"Run of {results['created']} on {results['device']}, preset `{results['preset']}`."
  if results["partial"]:
    head += " **PARTIAL: the run was interrupted; only what finished is reported.**"
  figures = ("## Figures\n\n![Per-epoch perplexity](perplexity.png)\n\n"
             "![Steady-state throughput](throughput.png)\n")
  parts = [title + head + "\n", _summary(results), _config(results), _inputs(results), _environment(results),
           _parity(results), _throughput(results), _training(results), _samples(results), figures]
  return "\n".join(parts)
