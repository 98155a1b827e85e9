"""Several seeds: the whole comparison repeated once per seed (each seed draws its own
initial weights and minibatches, the same for every implementation within the seed), and
what the seeds say together: spread per implementation, paired differences per parity pair.
"""
import math

from shared import config as C
from shared import metrics, parity, stats
from shared.kinds import compare
from shared.text import sig
from shared.rows import MARK, Row
from shared.runner import Plan

METRICS = {  # aggregated figure -> how to read it from one seed's block, for one implementation
    "final_ppl": lambda block, n: metrics.final_perplexity(block["impls"][n]["perplexity"]),
    "last_ppl": lambda block, n: block["impls"][n]["perplexity"][-1],
    "epoch_to_target": lambda block, n: block["impls"][n]["epoch_to_target_ppl"],
    "tokens_per_s": lambda block, n: block["impls"][n]["steady_tokens_per_s"],
    "truth_median_gap": lambda block, n: ((block.get("truth") or {}).get("gaps", {}).get(n) or {}).get("median"),
}
# The questions of parity, paired per seed (speed is paired apart, as a ratio: speed_pairs):
# what each is called, the scale the paired test works on, and the equivalence margin,
# declared here before any run: within it the frameworks count as "the same". Gaps to
# float64 span decades, so they are compared as log10: a difference of +0.3 means the first
# implementation's gap is 2x the second's.
#   final perplexity: 1% of the anchor's mean. At the seed's 1.05 that is 0.01 (a fifth of
#   the way from 1.05 to a perfect 1.0); the single-run tolerance ppl_final_rel (5%) is a
#   bug detector, far too loose for "the same";
#   epoch at perplexity 1.5: 2% of the anchor's mean epoch (7 epochs at the seed's 350);
#   log10 gap to float64: log10(2), a factor of two either way.
#   the last epoch's perplexity alone: the same margin, reported beside the final perplexity
#   (the median of the last ten epochs, shared/metrics.py) so that a late spike shows.
PAIRED = {"final_ppl": ("final perplexity", None, ("relative", 0.01)),
          "last_ppl": ("the last epoch's perplexity", None, ("relative", 0.01)),
          "epoch_to_target": (f"epoch reaching perplexity {metrics.PPL_TARGET}", None, ("relative", 0.02)),
          "truth_median_gap": ("log10 of the median gap to float64", math.log10, ("absolute", math.log10(2)))}
# TOST at 2.5% on each side: "the same" exactly when the 95% interval the report prints lies
# within the margin (TOST at 5% would match a 90% interval, and could call "the same" an
# interval that visibly reaches past the margin).
TOST_ALPHA = (1 - stats.CONFIDENCE) / 2


def parse(text: str) -> list:
  """"0,1,2" -> [0, 1, 2]; ValueError naming the fix."""
  try:
    found = [int(s) for s in text.split(",") if s.strip()]
  except ValueError:
    found = []
  if not found or len(set(found)) != len(found) or min(found) < 0:
    raise ValueError(f"--seeds takes distinct integers >= 0 separated by commas (e.g. 0,1,2,3,4), got {text!r}")
  return found


def make(config, seeds: list, rows: list, corpus, vocab, truth=False, launched=None) -> Plan:
  """The comparison once per seed: `plan`, and its report's keys from the outcomes."""
  def results(outcomes: dict, partial: bool) -> dict:
    done = runs(outcomes, config, seeds, rows, corpus, truth)
    return {**compare.header(rows, config, launched), "kind": "seeds", "partial": partial, "seeds": seeds,
            "runs": done, "aggregate": aggregate(done, rows, config.carries_state)}
  what = (f"{len(rows)} implementations x {config.num_epochs} epochs, seed(s) {seeds}"
          + (", with the float64 truth" if truth else ""))
  return Plan("seeds", what, config, plan(config, seeds, rows, corpus, truth), vocab,
              list(dict.fromkeys(r.info.framework for r in rows)), results)


def merge(reports: dict) -> dict:
  """One several-seed report from several ({folder: results.json's dict}, each a "seeds"
  report, e.g. two processes of one thread each over different seeds): their seeds' runs in
  seed order and the aggregate taken again over all of them; its environment the first's,
  with every source named under "merged_from". A partial source (stopped by a Ctrl-C)
  gives the seeds it finished; the seed it was stopped in is left out and named. ValueError
  naming what differs where they cannot be read as one run: sizes and settings but the seed,
  rows, code, packages, machine or threads."""
  (first, *rest), names = reports.values(), list(reports)
  for name, r in reports.items():
    if r.get("kind") != "seeds":
      raise ValueError(f"{name} is not a several-seed report (kind {r.get('kind')!r}); merge those only")
  for name, r in zip(names[1:], rest):
    differ = [k for k, f in MERGE_SAME.items() if f(r) != f(first)]
    if differ:
      raise ValueError(f"{name} differs from {names[0]} in its {', '.join(differ)}: not one run; merge reports "
                       "of the same code, sizes, rows and machine only")
  kept = {name: [run for run in r["runs"] if run["status"] != "interrupted"] for name, r in reports.items()}
  seeds = sorted(run["seed"] for runs_ in kept.values() for run in runs_)
  if len(set(seeds)) != len(seeds):
    raise ValueError(f"a seed is in two of the reports ({seeds}); merge reports of different seeds")
  runs_ = sorted((run for runs_ in kept.values() for run in runs_), key=lambda run: run["seed"])
  rows = [Row.parse(n) for n in first["aggregate"]["impls"]]  # the stored reports' names
  environment = {**first["environment"], "merged_from": [
      {"report": name, "seeds": [run["seed"] for run in kept[name]], "created": r["created"],
       "command": r["environment"]["command"], "partial": bool(r.get("partial")),
       "left_out": [run["seed"] for run in r["runs"] if run["status"] == "interrupted"]}
      for name, r in reports.items()]}
  return {**first, "partial": False, "environment": environment, "seeds": seeds, "runs": runs_,
          "aggregate": aggregate(runs_, rows, C.carries_state(first["config"]["sampling"]))}


# What several-seed reports must share to be merged into one (seeds.merge).
MERGE_SAME = {"sizes and settings": lambda r: {**r["config"], "seed": None},
              "rows": lambda r: list(r["aggregate"]["impls"]),
              "code": lambda r: r["environment"]["git_commit"], "packages": lambda r: r["environment"]["packages"],
              "machine": lambda r: r["environment"].get("machine") or r["environment"]["cpu"],
              "float64 truth": lambda r: any(run.get("truth") for run in r["runs"])}


def plan(config, seeds: list, rows: list, corpus, truth=False) -> list:
  """The comparison's units once per seed ("seed N main", "seed N truth")."""
  return [u for seed in seeds for u in compare.plan(config.set(seed=seed), rows, corpus, truth=truth,
                                                     label=f"seed {seed}: ", key=f"seed {seed}")]


def runs(outcomes: dict, config, seeds: list, rows: list, corpus, truth=False) -> list:
  """One entry per seed tried, in order: its block (compare.block), or why it has none. A
  seed whose rows could not be built is recorded as failed and the next one ran; a Ctrl-C
  stopped the seeds at the one it interrupted."""
  out = []
  for seed in seeds:
    main = outcomes.get(f"seed {seed} main")
    if main is None:
      break
    if main["status"] == "failed" or not main["cells"]:
      out.append({"seed": seed, "status": "interrupted" if main["status"] == "interrupted" else "failed",
                  "error": main["error"]})
      continue
    block = compare.block(outcomes, config.set(seed=seed), rows, corpus, f"seed {seed}", truth)
    out.append({"status": "interrupted" if block["partial"] else "ok", "error": None, **block})
  return out


def values(runs, name, metric):
  """{seed: value} of `metric` for `name` over the seeds where it trained to the end (a seed
  cut short in its float64 truth keeps its float32 figures; its gap to float64 is None)."""
  out = {}
  for r in runs:
    rec = r.get("impls", {}).get(name)
    if rec and rec["status"] == "ok":
      out[r["seed"]] = METRICS[metric](r, name)
  return out


def margin_of(metric: str, anchor_values) -> float:
  """The equivalence margin of `metric` (PAIRED) on its scale, for these anchor values."""
  kind, size = PAIRED[metric][2]
  return size * abs(float(sum(anchor_values) / len(anchor_values))) if kind == "relative" else size


def judgement(d: dict) -> str:
  """What a paired difference `d` (stats.paired_difference with a margin) decides: "none"
  (fewer than stats.MIN_PAIRS pairs, or no spread), "same" (TOST within the margin),
  "different" (the interval excludes zero), "different, within the margin" (both), or
  "inconclusive" (the interval holds zero but reaches past the margin)."""
  if d["n"] < stats.MIN_PAIRS or d["no_spread"]:
    return "none"
  equivalent = d["tost_p"] is not None and d["tost_p"] < TOST_ALPHA
  if not d["ci_low"] <= 0 <= d["ci_high"]:
    return "different, within the margin" if equivalent else "different"
  return "same" if equivalent else "inconclusive"


def verdict(d: dict, impl: str, anchor: str, metric: str, one_sided=(), dropped=()) -> str:
  """One sentence: are `impl` and `anchor` the same within the margin, different, or is
  the evidence inconclusive (`judgement`)? Never a verdict from fewer than stats.MIN_PAIRS
  pairs or from differences without spread; seeds left out (a row did not finish, or only
  one reached the target) are named."""
  what = PAIRED[metric][0]
  left_out = "".join(f"; left out: {why}" for why in dropped)
  if one_sided:
    left_out += (f"; only one of them reached it at seed(s) {', '.join(map(str, one_sided))}, a difference "
                 "no interval over the others can show")
  if d["n"] < stats.MIN_PAIRS:
    return f"{what}: no verdict, {d['n']} paired seed(s) (at least {stats.MIN_PAIRS} needed){left_out}."
  if d["no_spread"]:
    return (f"{what}: no verdict, every seed gives the same difference ({sig(d['mean'], True)}): no spread "
            f"to build an interval from{left_out}.")
  ci = (f"{impl} minus {anchor} is {sig(d['mean'], True)} (95% CI {sig(d['ci_low'], True)} to "
        f"{sig(d['ci_high'], True)}, n = {d['n']}), margin ±{sig(d['margin'])}")
  tost, kind = f"TOST p = {d['tost_p']:.2g}", judgement(d)
  if kind.startswith("different"):
    size = "within the margin" if kind.endswith("margin") else "not shown to be within the margin"
    return f"{what}: a systematic difference, {size}; {ci}, p = {d['p_value']:.2g}, {tost}{left_out}."
  if kind == "same":
    return f"{what}: the same within the margin; {ci}, {tost}{left_out}."
  return (f"{what}: inconclusive, the interval holds zero but reaches past the margin; {ci}, {tost}"
          f"{left_out}.")


def _dropped(runs, impl: str, anchor: str) -> list:
  """"seed 4 (jax-scratch failed)" for each seed where either row did not finish."""
  out = []
  for r in runs:
    bad = [n for n in (impl, anchor) if (r.get("impls", {}).get(n) or {}).get("status", "not run") != "ok"]
    if r.get("impls") and bad:
      out.append(f"seed {r['seed']} ({' and '.join(bad)} did not finish)")
  return out


def aggregate(runs: list, rows: list, carries_state: bool = True) -> dict:
  """Per row (shared.rows.Row): describe() of each METRICS figure over the finished seeds;
  per parity pair: the paired difference of each PAIRED figure (on its scale) with its margin
  and verdict, the gap to float64 only where the truth ran; a pair with a known training
  deviation (parity.training_deviation) says so before its verdict."""
  names = [r.name for r in rows]
  impls = {n: {m: stats.describe(values(runs, n, m).values()) for m in METRICS} for n in names}
  for n in names:
    impls[n]["target_not_reached"] = sum(v is None for v in values(runs, n, "epoch_to_target").values())
  # and with bf16, each twin against its float32 row: does bf16 reach the same perplexity?
  pairs = [_pair(runs, g, r, a, m, carries_state) for g, r, a in parity.pairs(rows) + parity.precision_pairs(rows)
           for m in PAIRED]
  done = [r["seed"] for r in runs if r["status"] == "ok"]
  return {"seeds_done": done, "impls": impls, "pairs": [p for p in pairs if p],
          "speed_pairs": speed_pairs(runs, rows, carries_state)}


def _pair(runs: list, group: str, row, anchor, m: str, carries_state: bool):
  """The paired difference of figure `m` between two rows over the seeds, with its verdict;
  None for the gap to float64 where the truth did not run."""
  n, a, scale = row.name, anchor.name, PAIRED[m][1] or (lambda v: v)
  x, y = values(runs, n, m), values(runs, a, m)
  seeds = [s for s in x if s in y and x[s] is not None and y[s] is not None]
  one_sided = [s for s in x if s in y and (x[s] is None) != (y[s] is None)]
  if not seeds and m == "truth_median_gap":
    return None
  x, y = [scale(x[s]) for s in seeds], [scale(y[s]) for s in seeds]
  d = stats.paired_difference(x, y, margin_of(m, y) if y else None)
  stds = [v for v in (stats.describe(x)["std"], stats.describe(y)["std"]) if v is not None]
  dropped, why = _dropped(runs, n, a), parity.training_deviation(row, anchor, carries_state)
  return {"group": group, "impl": n, "anchor": a, "metric": m, "seeds": seeds, **d, "one_sided": one_sided,
          "dropped": dropped, "spread": sum(stds) / len(stds) if stds else None, "known_deviation": why,
          "verdict": (f"known training deviation ({why}): " if why else "") + verdict(d, n, a, m, one_sided, dropped)}


def speed_pairs(runs: list, rows: list, carries_state: bool = True) -> list:
  """Per parity pair (and bf16 twin against its float32 row), paired as the perplexities
  are: the ratio of the two rows' steady tokens/s per seed, JAX over PyTorch where the pair
  spans the two frameworks, else the row over its anchor. Speeds multiply, so the ratios are
  averaged as logs: `ratio` is their geometric mean, the interval the paired t-interval of
  the log ratios (stats.paired_difference) taken back by exp; none from fewer than
  stats.MIN_PAIRS seeds. A row whose training departs from its model's reference
  (rows.Impl.departure) is named with rows.MARK."""
  out = []
  for group, row, other in parity.pairs(rows) + parity.precision_pairs(rows):
    departed = [r.name for r in (row, other) if r.info.departure(carries_state)]
    impl, anchor = top, bottom = row.name, other.name
    if row.info.framework == "torch" and other.info.framework == "jax":
      top, bottom = anchor, impl
    x, y = values(runs, top, "tokens_per_s"), values(runs, bottom, "tokens_per_s")
    seeds = [s for s in x if s in y and x[s] and y[s]]
    d = stats.paired_difference([math.log(x[s]) for s in seeds], [math.log(y[s]) for s in seeds])
    interval = d["n"] >= stats.MIN_PAIRS and d["ci_low"] is not None
    p = {"group": group, "impl": impl, "anchor": anchor, "numerator": top, "denominator": bottom,
         "n": d["n"], "seeds": seeds, "ratio": math.exp(d["mean"]) if seeds else None,
         "ci_low": math.exp(d["ci_low"]) if interval else None,
         "ci_high": math.exp(d["ci_high"]) if interval else None, "p_value": d["p_value"] if interval else None,
         "excludes_one": (not d["ci_low"] <= 0 <= d["ci_high"]) if interval else None,
         "no_spread": d["no_spread"], "departed": departed}
    out.append({**p, "sentence": speed_sentence(p)})
  return out


def speed_sentence(p: dict) -> str:
  """"jax-scratch over torch-scratch: 2.11x (95% CI 1.85x to 2.41x, n = 5 seeds); the
  interval excludes 1: jax-scratch is faster.", or why no interval is given."""
  name = lambda n: n + MARK if n in p.get("departed", ()) else n  # noqa: E731
  head = f"{name(p['numerator'])} over {name(p['denominator'])}"
  if not p["n"]:
    return f"{head}: no seed where both rows finished with a steady rate."
  if p["no_spread"]:
    return f"{head}: {sig(p['ratio'])}x at every seed (n = {p['n']}): no spread to build an interval from."
  if p["ci_low"] is None:
    return (f"{head}: {sig(p['ratio'])}x (geometric mean, n = {p['n']} seed(s)); no interval from fewer "
            f"than {stats.MIN_PAIRS} seeds.")
  ci = f"{head}: {sig(p['ratio'])}x (95% CI {sig(p['ci_low'])}x to {sig(p['ci_high'])}x, n = {p['n']} seeds)"
  if not p["excludes_one"]:
    return f"{ci}; the interval holds 1: no difference in speed shown."
  return f"{ci}; the interval excludes 1: {p['numerator']} is {'faster' if p['ratio'] > 1 else 'slower'}."
