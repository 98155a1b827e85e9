"""The report's section on how far each row is from the machine's limit (the figures:
shared/limits.py): per row its training FLOPs per token, the GFLOP/s it achieved, and the
throughput of the training step's own matrix-product shapes in its framework at its
precision, measured in the same run."""
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


def render(block) -> str:
  """The section for one block (a comparison, or one seed's), "" where nothing was measured."""
  bounds = block.get("limits")
  if not bounds:
    return ""
  rows = []
  for n, r in block["impls"].items():
    f = r.get("limits") or {}
    if f.get("achieved_gflops") is None:
      continue
    rows.append((n, r["precision"], num(f["flops_per_token"]), num(f["achieved_gflops"], "{:.2f}"),
                 num(f["gemm_gflops"], "{:.1f}"), num(f["share_of_framework_bound"], "{:.0%}"),
                 num(f["share_of_machine_bound"], "{:.0%}")))
  measured = table(("framework", "precision", "matmul bound GFLOP/s", "what ran"),
                   [(m["framework"], m["precision"], num(m.get("gflops"), "{:.1f}"), m["what"]) for m in bounds])
  return ("## How far from the limit\n\n" + EXPLAIN + "\n\n" + measured + "\n"
          + table(("row", "precision", "FLOPs/token", "achieved GFLOP/s", "own matmul bound GFLOP/s",
                   "share of its framework's bound", "share of the machine's bound"), rows))


def render_seeds(results) -> str:
  """The section for several seeds: per row, the median over the seeds of its achieved
  GFLOP/s, its framework's bound and both shares (each seed measured its own bounds)."""
  import statistics
  per_row, bounds, missing = {}, {}, {}
  for block in (r for r in results["runs"] if r.get("impls")):
    for m in block.get("limits") or []:
      if m.get("gflops"):
        bounds.setdefault((m["framework"], m["precision"]), []).append(m["gflops"])
      else:  # a bound that could not be measured says why, once per reason
        missing.setdefault((m["framework"], m["precision"], m["what"]), []).append(block["seed"])
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
  measured = [(fw, prec, num(statistics.median(v), "{:.1f}"), f"{min(v):.1f}-{max(v):.1f}", len(v))
              for (fw, prec), v in sorted(bounds.items())]
  measured += [(fw, prec, "–", what, len(seeds)) for (fw, prec, what), seeds in sorted(missing.items())]
  return ("## How far from the limit\n\n" + EXPLAIN + " Medians over the seeds; each seed measured its "
          "bounds after its rows trained.\n\n"
          + table(("framework", "precision", "matmul bound GFLOP/s (median)", "range", "seeds"), measured) + "\n"
          + table(("row", "seeds", "FLOPs/token", "achieved GFLOP/s", "own matmul bound GFLOP/s",
                   "share of its framework's bound", "share of the machine's bound"), rows))
