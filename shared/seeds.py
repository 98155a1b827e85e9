"""Several seeds: the whole comparison repeated once per seed (each seed draws its own
initial weights and minibatches, the same for every implementation within the seed), and
what the seeds say together: spread per implementation, paired differences per parity pair.
"""
import dataclasses
import math
import sys

from tqdm import tqdm

from shared import metrics, protocol, run

METRICS = {  # aggregated figure -> how to read it from one seed's block, for one implementation
    "final_ppl": lambda block, n: block["impls"][n]["perplexity"][-1],
    "epoch_to_target": lambda block, n: block["impls"][n]["epoch_to_target_ppl"],
    "tokens_per_s": lambda block, n: block["impls"][n]["steady_tokens_per_s"],
    "truth_median_gap": lambda block, n: ((block.get("truth") or {}).get("gaps", {}).get(n) or {}).get("median"),
}
# The questions of parity, paired per seed (speed is not): what each is called, and the
# scale the paired test works on. Gaps to float64 span decades, so they are compared as
# log10: a difference of +0.3 means the first implementation's gap is 2x the second's.
PAIRED = {"final_ppl": ("final perplexity", None),
          "epoch_to_target": (f"epoch reaching perplexity {metrics.PPL_TARGET}", None),
          "truth_median_gap": ("log10 of the median gap to float64", math.log10)}


def run_seeds(config, seeds, names, corpus, vocab, device=None, truth=False, first_built=None):
  """(runs, partial): one entry per seed tried, in order. A seed that raises is recorded as
  failed and the next one runs; a Ctrl-C stops the loop and keeps every finished seed."""
  runs = []
  for i, seed in enumerate(seeds):
    cfg = dataclasses.replace(config, seed=seed)
    try:
      block = run.compare_once(cfg, names, corpus, vocab, device, truth=truth, label=f"seed {seed}: ",
                               built=first_built if i == 0 else None)
    except KeyboardInterrupt:
      runs.append({"seed": seed, "status": "interrupted", "error": None})
      return runs, True
    except Exception as e:  # noqa: BLE001 - one seed's failure does not lose the others
      error = protocol.one_line(e)
      tqdm.write(f"seed {seed} failed ({error}); the next seed goes on", file=sys.stdout)
      runs.append({"seed": seed, "status": "failed", "error": error})
      continue
    runs.append({"status": "interrupted" if block["partial"] else "ok", "error": None, **block})
    if block["partial"]:
      return runs, True
  return runs, False


def values(runs, name, metric):
  """{seed: value} of `metric` for `name` over the seeds where it trained to the end (a seed
  cut short in its float64 truth keeps its float32 figures; its gap to float64 is None)."""
  out = {}
  for r in runs:
    rec = r.get("impls", {}).get(name)
    if rec and rec["status"] == "ok":
      out[r["seed"]] = METRICS[metric](r, name)
  return out


def verdict(d: dict, spread, impl: str, anchor: str, metric: str, one_sided=()) -> str:
  """One sentence: do `impl` and `anchor` differ beyond what the seeds' spread explains?
  `one_sided`: seeds where only one of the two has a value (reached the target); such a
  seed is a difference no interval over the others can show, so there is no verdict."""
  what = PAIRED[metric][0]
  if one_sided:
    return (f"{what}: only one of {impl} and {anchor} reached it at seed(s) "
            f"{', '.join(map(str, one_sided))}; not judged ({d['n']} seed(s) where both did).")
  if d["n"] < 2 or d["ci_low"] is None:
    return f"{what}: {d['n']} paired seed(s), too few for an interval."
  spread_text = f"seed-to-seed standard deviation {spread:.3g}" if spread is not None else "no seed spread"
  ci = f"{d['mean']:+.3g} (95% CI {d['ci_low']:+.3g} to {d['ci_high']:+.3g}, n = {d['n']})"
  if d["ci_low"] <= 0 <= d["ci_high"]:
    return (f"{what}: no difference beyond seed-to-seed spread; {impl} minus {anchor} is {ci}, "
            f"an interval holding zero ({spread_text}).")
  p = "" if d["p_value"] is None else f", p = {d['p_value']:.2g}"
  return (f"{what}: a systematic difference; {impl} minus {anchor} is {ci}{p}, an interval "
          f"excluding zero ({spread_text}).")


def aggregate(runs: list, names) -> dict:
  """Per implementation: describe() of each METRICS figure over the finished seeds; per
  parity pair: the paired difference of each PAIRED figure (on its scale) with its
  verdict, the gap to float64 only where the truth ran."""
  impls = {n: {m: metrics.describe(values(runs, n, m).values()) for m in METRICS} for n in names}
  for n in names:
    impls[n]["target_not_reached"] = sum(v is None for v in values(runs, n, "epoch_to_target").values())
  pairs = []
  for group, n, a in protocol.parity_pairs(names):
    for m, (_, scale) in PAIRED.items():
      x, y = values(runs, n, m), values(runs, a, m)
      seeds = [s for s in x if s in y and x[s] is not None and y[s] is not None]
      one_sided = [s for s in x if s in y and (x[s] is None) != (y[s] is None)]
      if not seeds and m == "truth_median_gap":
        continue  # the float64 truth did not run
      f = scale or (lambda v: v)
      x, y = [f(x[s]) for s in seeds], [f(y[s]) for s in seeds]
      d = metrics.paired_difference(x, y)
      stds = [metrics.describe(v)["std"] for v in (x, y)]
      stds = [v for v in stds if v is not None]
      spread = sum(stds) / len(stds) if stds else None
      pairs.append({"group": group, "impl": n, "anchor": a, "metric": m, "seeds": seeds, **d,
                    "one_sided": one_sided, "spread": spread,
                    "verdict": verdict(d, spread, n, a, m, one_sided)})
  done = [r["seed"] for r in runs if r["status"] == "ok"]
  return {"seeds_done": done, "impls": impls, "pairs": pairs}
