"""report.md of a sweep: how each row's speed and cost grow with the sizes."""
from shared import data
from shared.kinds.sweep import fastest, label, points_of, series_file, series_title
from shared import config as C
from shared.reports import sections as S
from shared.reports.report import departure_note, departures, mark
from shared.text import num, table
from shared.rows import Row


def _sweep_summary(results) -> str:
  points = results["points"]
  lines = [f"- Points finished: {sum(p['status'] == 'ok' for p in points)} of {results['num_points']}."]
  lines += S.points_load(points)
  lines += [f"- **{label(p['point'])}: {p['status']}**" + (f" ({p['error']})" if p.get("error") else "")
            for p in points if p["status"] != "ok"]
  for s in results["series"]:
    line = points_of(points, s)
    for p in line[:1] + line[-1:] if len(line) > 1 else line:
      best = fastest(p["impls"], C.carries_state(results["config"]["sampling"]))
      lines.append(f"- {series_title(s)} = {p['point'][s['axis']]}: "
                   + ", ".join(f"fastest {fw} {n} {rate:,.0f} tokens/s" for fw, (n, rate) in sorted(best.items()))
                   + " (among the rows that train the reference computation)"
                   + (f"; JAX / PyTorch {p['jax_over_torch']:.2f}x" if p["jax_over_torch"] else ""))
  lines += _bf16_lines(points)
  return "## Summary\n\n" + "\n".join(lines) + "\n"


def _sweep_tables(results, s) -> str:
  at = {p["point"][s["axis"]]: p for p in points_of(results["points"], s)}
  names = list(dict.fromkeys(n for p in at.values() for n in p["impls"]))
  departed = departures(results, names)
  wide = [(v, *(num(at[v]["impls"][n]["steady_tokens_per_s"]) if n in at[v]["impls"] else "–" for n in names),
           num(at[v]["jax_over_torch"], "{:.2f}x"), num(at[v].get("steps_per_epoch"), "{:,}"),
           num(at[v]["point_seconds"], "{:,.0f}")) for v in at]
  long = []
  for v, p in at.items():
    for n, r in p["impls"].items():
      mem = num(r["peak_memory_bytes"] and r["peak_memory_bytes"] / 2**20, "{:,.0f} MiB")
      bound = r.get("limits") or {}
      long.append((v, mark(n, departed), r["status"], num(r["steady_tokens_per_s"]) + S.ci(r.get("tokens_per_s_ci")),
                   num(r["speedup"], "{:.2f}x") + S.ci(r.get("speedup_ci"), "{:.2f}"),
                   num(r.get("vs_float32"), "{:.3f}x") + S.ci(r.get("vs_float32_ci"), "{:.3f}"),
                   num(r["us_per_token"], "{:.2f}"), num(r["ms_per_step"], "{:.2f}"), num(r["gflops"], "{:.1f}"),
                   num(bound.get("gemm_gflops"), "{:.1f}"), num(bound.get("share_of_framework_bound"), "{:.0%}"),
                   num(bound.get("share_of_machine_bound"), "{:.0%}"),
                   num(r.get("cores_used"), "{:.2f}"), num(r["prepare_seconds"], "{:.2f}"), mem))
  steps = [(f"{st['from']} → {st['to']}", *(num(st["elasticity"][n], "{:.2f}") for n in names))
           for st in s["steps"]]
  baseline = next(iter(at.values()))["baseline"] if at else "–"
  return (f"### {series_title(s)}\n\nSteady tokens/s, the fastest JAX row over the fastest PyTorch row, the "
          "minibatches per epoch, and the point's wall time (compiling and every epoch of every row):\n\n"
          + table((s["axis"], *(mark(n, departed) for n in names), "JAX / PyTorch", "minibatches / epoch", "point s"),
                  wide) + departure_note(departed)
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


def _bf16_lines(points: list) -> list:
  """Per point with bf16 twins: each twin's speed over its float32 row (paired), so that the
  size where bf16 starts to pay, if any, can be read off."""
  out = []
  for p in points:
    ratios = {n: r.get("vs_float32") for n, r in (p.get("impls") or {}).items() if r.get("vs_float32")}
    if ratios:
      out.append(f"- {label(p['point'])}, bf16 / float32 (paired): "
                 + ", ".join(f"{Row.parse(n).float32.name} {x:.2f}x" for n, x in ratios.items()))
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


def _sweep_corpus(results) -> str:
  """The text a sweep trained on: one corpus, or the characters each point's max_tokens took."""
  if "max_tokens" in results["axes"]:
    return ("at each point the first `max_tokens` characters (-1: the whole text, "
            f"{data.CHARACTERS:,} characters)")
  return S.corpus(results["config"]["max_tokens"])


def render(results: dict) -> str:
  axes = ", ".join(f"`{k}` = {v}" for k, v in results["axes"].items())
  head = (f"# GRU language model: PyTorch vs JAX/Flax, how cost grows\n\nSweep of {results['created']} on "
          f"{results['device']}, preset `{results['preset']}`, {results['config']['num_epochs']} epochs per point "
          f"(the first excluded from tokens/s), over {axes}. Data: The Time Machine, {_sweep_corpus(results)}. "
          "Parity is not judged in a sweep.")
  if results["partial"]:
    head += " **PARTIAL: the sweep was interrupted; only what finished is reported.**"
  env = S.environment(results, {"impls": _sweep_rows(results)})
  parts = [head + "\n", _sweep_summary(results), S.configuration(results), env, _efficiency(results),
           "## Results per axis\n\n" + "\n".join(_sweep_tables(results, s) for s in results["series"]),
           "## Files\n\n" + S.files_note()]
  return "\n".join(parts)
