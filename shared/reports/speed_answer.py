"""The README's speed answer, generated from the committed speed reports (compare reports run
with --repeat at one thread and at every core; shared/reports/findings.py names them): the
framework ratio per model, each row's tokens/s, what the tuned rows bought over their
framework's fastest untuned row, and how near each framework's fastest row came to the
measured peak."""
import numpy as np

from shared import limits, machine
from shared.text import table


def _threads(t: int) -> str:
  return f"{t} thread{'s' * (t > 1)}"


def answer(sets: list, folders: tuple, link) -> str:
  """The README's speed answer from `sets`, the results of each pair of committed speed reports
  in `folders` (one thread, every core; `link(folder)` their Markdown links). Each model's row
  of the table is read from the first pair that timed its tuned rows (else the first that
  has it); the rows' rates, tuned ratios and peak shares are given pair by pair."""
  flat = [r for s in sets for r in s]
  _check(flat, sets, folders)
  threads = [r["environment"]["threads"]["threads"] for r in sets[0]]
  models = list(dict.fromkeys(f["model"] for r in flat for f in r["speed"]["frameworks"]))
  source = {m: _source(sets, m) for m in models}
  rows = [(m, *(_ratio(r, m) for r in sets[source[m]])) for m in models]
  env, n, c = sets[0][0]["environment"], sets[0][0]["speed"]["processes"], sets[0][0]["config"]
  per_pair = "".join(_in(f, link, len(sets)) + _rates(s, threads)[1:] + _tuned(s, threads) + _peaks(s, threads)
                     for s, f in zip(sets, folders))
  origin = "" if len(sets) == 1 else ("Each model's row comes from the pair of reports that timed its tuned rows: " + "; ".join(
      f"{m} from {' and '.join(map(link, folders[source[m]]))}" for m in models) + ".\n\n")
  return (f"**Which trains faster?** JAX over PyTorch on {machine.short(env['machine'])}: the fastest row of each "
          f"framework per model among the rows that passed their run's checks against their anchor, each row "
          f"trained for {c['num_epochs']} epochs of seed {c['seed']} (not the 500-epoch verdict runs) in {n} fresh "
          "processes; the geometric mean over them [95% interval across processes]. Above 1, JAX is faster on "
          "this machine; only this machine was measured, and others may rank differently.\n\n"
          + table(("model", *(f"{_threads(t)}: JAX / PyTorch" for t in threads)), rows) + "\n" + origin
          + f"The machine: {machine.label(env['machine'])}; calibrated as each run started "
          + f"({env['calibration']['product']}, GFLOP/s): " + "; ".join(
              f"{_threads(t)}: " + ", then ".join(", ".join(f"{fw} {g:.0f}" for fw, g in r["environment"][
                  "calibration"]["gflops"].items() if g) for r in at) for t, at in zip(threads, zip(*sets)))
          + (" (in the order of the reports below)" if len(sets) > 1 else "") + ".\n\n" + _widths(flat) + per_pair + "Reports: " + ", ".join(link(f) for pair in folders for f in pair) + ".")


def _in(pair: tuple, link, count: int) -> str:
  """The opening of a pair's sentences: "T" of "Tokens/s", or where several pairs are given,
  which pair they come from."""
  return f"In {' and '.join(map(link, pair))}, t" if count > 1 else "T"


def _check(flat: list, sets: list, folders: tuple) -> None:
  """ValueError unless every report ran on one machine, and every pair at the same thread
  settings, epochs, seed and processes (one table compares them)."""
  names = ", ".join(f for pair in folders for f in pair)
  if len({machine.label(r["environment"]["machine"]) for r in flat}) > 1:
    raise ValueError(f"the speed reports {names} ran on different machines: one table compares only speeds of "
                     "one machine")
  same = {(tuple(r["environment"]["threads"]["threads"] for r in s), s[0]["config"]["num_epochs"],
           s[0]["config"]["seed"], s[0]["speed"]["processes"]) for s in sets}
  if len(same) > 1:
    raise ValueError(f"the speed reports {names} differ in threads, epochs, seed or processes: one table "
                     "compares only runs made alike")


def _source(sets: list, model: str) -> int:
  """The index of the first pair whose reports set a tuned row of `model` over its framework,
  else of the first that has `model` at all."""
  tuned = [i for i, s in enumerate(sets) if any(f["model"] == model for r in s for f in r["speed"].get("tuned", []))]
  return (tuned or [i for i, s in enumerate(sets) if any(f["model"] == model for r in s
                                                          for f in r["speed"]["frameworks"])])[0]


def _rates(reports: list, threads: list) -> str:
  """Each row of the table in tokens/s at each thread setting (the geometric mean over its
  processes), and those that train slower with more threads: a ratio alone hides which side moved."""
  names = list(dict.fromkeys(f[k] for r in reports for f in r["speed"]["frameworks"] for k in ("jax", "torch")))
  rows = {n: [r["speed"]["rows"][n] for r in reports] for n in names}
  rates = {n: [r["geomean"] for r in v] for n, v in rows.items()}
  slower = [n for n, v in rows.items() if v[-1]["ci"] and v[0]["ci"] and v[-1]["ci"][1] < v[0]["ci"][0]]
  return (f"Tokens/s at {' and '.join(map(str, threads))} threads: "
          + "; ".join(f"{n} {' / '.join(f'{v:,.0f}' for v in rates[n])}" for n in names) + ". "
          + (f"Slower with {threads[-1]} threads than with {threads[0]} (the intervals across processes apart): "
             f"{', '.join(slower)}; where a ratio grows with the threads, these rows' loss is part of why. "
             if slower else ""))


def _widths(reports: list) -> str:
  """How wide the intervals within one process are, beside those across processes."""
  within = [(w[1] / w[0]) ** 0.5 for r in reports for f in r["speed"]["frameworks"] for w in f["within"] if w]
  across = [(f["ci"][1] / f["ci"][0]) ** 0.5 for r in reports for f in r["speed"]["frameworks"] if f["ci"]]
  if not within or not across:
    return ""
  w, a = float(np.median(within)), float(np.median(across))
  return (f"Within one process the paired epochs give intervals of ×/÷{w:.3f} (the median over processes and "
          f"models; derived from each report's per-process intervals), across processes ×/÷{a:.3f}, " + (
              "wider: the process-to-process spread that one run's interval leaves out. " if a > w else
              "no wider than within one: in these runs the processes agreed within the spread of their own epochs. "))


def _ratio(results: dict, model: str) -> str:
  f = next((f for f in results["speed"]["frameworks"] if f["model"] == model), None)
  if f is None:
    return "–"
  ci = "" if not f["ci"] else f" [{f['ci'][0]:.2f}–{f['ci'][1]:.2f}]"
  return f"{f['ratio']:.2f}x{ci} ({f['jax']} / {f['torch']})"


def _tuned(reports: list, threads: list) -> str:
  """Each tuned row over its framework's fastest untuned row, at each thread setting."""
  parts = [f"at {_threads(t)} " + ", ".join(f"{f['row']} / {f['over']} {f['ratio']:.2f}x"
                                            + (f" [{f['ci'][0]:.2f}–{f['ci'][1]:.2f}]" if f["ci"] else "")
                                            for f in r["speed"].get("tuned", []))
           for t, r in zip(threads, reports) if r["speed"].get("tuned")]
  return ("Written for speed (the tuned rows: a hand-written backward, every weight gradient one product; "
          "`torch_impl/tuned.py`, `jax_impl/tuned.py`), each over its framework's fastest row that is not tuned, "
          "geometric mean over the processes [95% interval across them]: " + "; ".join(parts) + ". ") if parts else ""


def _peaks(reports: list, threads: list) -> str:
  """The table's rows as shares of the measured peak (the best 2048^2 product of torch, XLA
  and NumPy at the run's threads), in each report's judged run."""
  parts = []
  for t, r in zip(threads, reports):
    peak = limits.best(r.get("limits") or [], "peak", "float32")
    names = dict.fromkeys(f[k] for f in r["speed"]["frameworks"] for k in ("torch", "jax"))
    shares = [(n, (r["impls"][n].get("limits") or {}).get("share_of_peak")) for n in names]
    if peak and all(s for _, s in shares):
      parts.append(f"at {_threads(t)} ({peak:.0f} GFLOP/s) " + ", ".join(f"{n} {s:.0%}" for n, s in shares))
  return ("Share of the measured peak, the best (2048)² float32 product of torch, XLA and NumPy at the run's "
          "threads: " + "; ".join(parts) + ". ") if parts else ""
