"""The report's section on how far each row is from the machine's limit (the figures:
shared/limits.py): per row its training FLOPs per token, the GFLOP/s it achieved, and the
throughput of the training step's own matrix-product shapes in its framework at its
precision, measured in the same run."""
from shared import ceilings, limits
from shared.text import num, table

EXPLAIN = (
    "FLOPs per token: the model's matrix products per training token, forward and backward, by the "
    "equations (`shared/params.py`, `matmul_flops_per_token`): per time step and sequence the hidden "
    "state times the three (h, h) hidden blocks and the (h, V) output layer, 2 (3h² + hV) forward, "
    "3x that with the backward pass; input projections are row gathers (no FLOPs) and the gates' "
    "elementwise work is left out. Achieved: tokens/s x FLOPs per token. Matmul bound: the GFLOP/s of "
    "the training step's own products (B x h by h x 3h per time step, forward and both backward "
    "products, and the output layer on all T x B rows; `shared/limits.py`), timed in the row's "
    "framework at the row's precision after training, on the same machine: torch.mm eagerly (as the "
    "eager rows run it), XLA as a compiled loop. Share of its framework's bound: achieved / that bound; "
    "a row near 100% is held back by its matrix products, a row far below by everything around them "
    "(the elementwise gates, dispatch, the recurrence's data dependence, Python). Share of the "
    "machine's bound: achieved / the fastest framework's bound at that precision in this run.")


CEILINGS = (
    "Three ceilings, each measured after the rows trained, at the run's threads. The theoretical peak: "
    "FLOPs per cycle per core (vector width, FMA pipes: `shared/ceilings.py`) x cores x the clock the OS "
    "reports. The measured peak: the best large product, (2048)^2 by (2048)^2, of torch, XLA and NumPy's "
    "BLAS. The per-shape bound: the step's own products as the row takes them (above: its recurrent weight "
    "gradients per step, or in one product after the backward recurrence, as the tuned rows take them). "
    "A row's share of a ceiling above 100% would make that figure no ceiling for it: the report names "
    "every such case.")


def _ceiling_rows(bounds: list) -> list:
  """The ceilings table: kind, framework, precision, GFLOP/s, what ran."""
  def what(m):
    where = "".join(f"in a process with {k}={v} (as its rows train); " for k, v in (m.get("conditions") or {}).items())
    return (m.get("weights", "per step") + " weight gradients; " + where if limits.kind(m) == "shapes" else "") + m["what"]
  order = {"theoretical": 0, "peak": 1, "shapes": 2}
  return [(limits.kind(m), m["framework"], m["precision"], num(m.get("gflops"), "{:.1f}"), what(m))
          for m in sorted(bounds, key=lambda m: order[limits.kind(m)])]


def _exceeded(bounds: list) -> str:
  """Where the measured peak exceeds the theoretical one at the reported clock: why that
  figure is no ceiling, and the clock the measurement implies."""
  lines = []
  for t in (m for m in bounds if limits.kind(m) == "theoretical" and m.get("gflops")):
    peak = limits.best(bounds, "peak", t["precision"])
    if peak and peak > t["gflops"]:
      mhz = ceilings.implied_mhz(peak, t["flops_per_cycle"], t["cores"])
      lines.append(f"- The measured {t['precision']} peak ({peak:.1f} GFLOP/s) exceeds the theoretical one at the "
                   f"reported clock ({t['gflops']:.1f}): the cores ran at {mhz:,.0f} MHz or more, above the "
                   f"{t['clock_mhz']:,.0f} MHz the OS reports (the hypervisor hides the boost clock), so that "
                   "figure is no ceiling here; the measured peak is.")
  return "\n".join(lines)


def render(block) -> str:
  """The section for one block (a comparison, or one seed's), "" where nothing was measured."""
  bounds = block.get("limits")
  if not bounds:
    return ""
  rows, above = [], []
  for n, r in block["impls"].items():
    f = r.get("limits") or {}
    if f.get("achieved_gflops") is None:
      continue
    rows.append((n, r["precision"], num(f["flops_per_token"]), num(f["achieved_gflops"], "{:.2f}"),
                 num(f["gemm_gflops"], "{:.1f}"), *(num(f.get(k), "{:.0%}") for k, _ in limits.CEILINGS)))
    above += [f"- **{n} exceeds {name}** ({f[k]:.0%}): that figure is no ceiling for it."
              for k, name in limits.CEILINGS if name in (f.get("above") or [])]
  measured = table(("ceiling", "framework", "precision", "GFLOP/s", "what ran"), _ceiling_rows(bounds))
  notes = "\n".join(x for x in (_exceeded(bounds), "\n".join(above)) if x)
  return ("## How far from the limit\n\n" + EXPLAIN + "\n\n" + CEILINGS + "\n\n" + measured + "\n"
          + (notes + "\n\n" if notes else "")
          + table(("row", "precision", "FLOPs/token", "achieved GFLOP/s", "own per-shape bound GFLOP/s",
                   "share of its framework's bound", "share of the machine's bound", "share of the measured peak",
                   "share of the theoretical peak"), rows))


TIME = (
    "One epoch per row, trained after the timed ones (its weights put back), under its framework's "
    "profiler: torch.profiler's time inside aten's matrix-product ops (mm, addmm, bmm, ...); "
    "jax.profiler's XLA:CPU thunks that run a product (dots, and the fusions that hold one, read from "
    "the compiled program); a Keras row under its backend's profiler, read the same way. Products: their time over the profiled epoch's wall time. The profiler "
    "adds its own cost to what it records, so the profiled epoch runs longer than the median steady one "
    "(both are shown) and its split can differ from an unprofiled epoch's in either direction. "
    "At the bound's rates: the share the products would take at the per-shape bound's speed "
    "(share of its framework's bound), the same question answered without a profiler.")


def render_time(block) -> str:
  """Where the time goes, per row: its profiled products' share beside the share at the
  per-shape bound's rates; "" where no row was profiled."""
  rows = []
  for n, r in block["impls"].items():
    t, f = r.get("time_split") or {}, r.get("limits") or {}
    if t:
      rate, tokens = r.get("steady_tokens_per_s"), (r.get("tokens") or [None])[-1]
      ms = t.get("products_seconds"), t.get("epoch_seconds"), tokens / rate if rate and tokens else None
      rows.append((n, num(t.get("products_share"), "{:.0%}"), num(f.get("share_of_framework_bound"), "{:.0%}"),
                   *(num(None if x is None else 1e3 * x, "{:.1f}") for x in ms), t["what"]))
  if not rows:
    return ""
  return ("## Where the time goes\n\n" + TIME + "\n\n"
          + table(("row", "products, profiled", "at the bound's rates", "products ms", "profiled epoch ms",
                   "median steady epoch ms", "what was read"), rows))


def render_seeds(results) -> str:
  """The section for several seeds: per row, the median over the seeds of its achieved
  GFLOP/s, its framework's bound and both shares (each seed measured its own bounds)."""
  import statistics
  per_row, bounds, missing = {}, {}, {}
  for block in (r for r in results["runs"] if r.get("impls")):
    for m in block.get("limits") or []:
      key = (limits.kind(m), m["framework"], m["precision"], m.get("weights", "per step") if limits.kind(m) == "shapes"
             else "–")
      if m.get("gflops"):
        bounds.setdefault(key, []).append(m["gflops"])
      else:  # a bound that could not be measured says why, once per reason
        missing.setdefault((*key, m["what"]), []).append(block["seed"])
    for n, r in block["impls"].items():
      if (r.get("limits") or {}).get("achieved_gflops") is not None:
        per_row.setdefault(n, []).append(r["limits"])
  if not per_row:
    return ""
  median = lambda fs, k: statistics.median([f[k] for f in fs if f[k] is not None] or [None]) if any(
      f[k] is not None for f in fs) else None
  rows = [(n, len(fs), num(fs[0]["flops_per_token"]), num(median(fs, "achieved_gflops"), "{:.2f}"),
           num(median(fs, "gemm_gflops"), "{:.1f}"), num(median(fs, "share_of_framework_bound"), "{:.0%}"),
           num(median(fs, "share_of_machine_bound"), "{:.0%}")) for n, fs in per_row.items()]
  measured = [(kind, fw, prec, weights, num(statistics.median(v), "{:.1f}"), f"{min(v):.1f}-{max(v):.1f}", len(v))
              for (kind, fw, prec, weights), v in sorted(bounds.items())]
  measured += [(*key, "–", what, len(seeds)) for (*key, what), seeds in sorted(missing.items())]
  return ("## How far from the limit\n\n" + EXPLAIN + " Medians over the seeds; each seed measured its "
          "bounds after its rows trained.\n\n"
          + table(("ceiling", "framework", "precision", "weight gradients", "GFLOP/s (median)", "range", "seeds"),
                  measured) + "\n"
          + table(("row", "seeds", "FLOPs/token", "achieved GFLOP/s", "own matmul bound GFLOP/s",
                   "share of its framework's bound", "share of the machine's bound"), rows))
