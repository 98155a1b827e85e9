"""Sweeps: how each implementation's speed and cost grow with the workload's sizes.

`compare.py --sweep num_hiddens=64,128,256` trains every implementation for a few epochs
at each point (two --sweep flags make a grid), one point after another, and measures
steady-state tokens/s, compile/capture time and peak device memory; parity is not judged.
Each point's cost is given per token (microseconds), per minibatch step (milliseconds)
and as achieved matrix-product GFLOP/s (shared/params.py counts the FLOPs), and, along
each axis, how the time per step grows with the work per step (the elasticity) says
where an implementation is overhead-bound and where compute-bound.
"""
import itertools
import math

from shared import config as C
from shared import data, metrics
from shared import params as P
from shared.records import rates
from shared.rows import BASELINE, Row, implementation
from shared.runner import Cell, Plan, Unit

# The first epoch (compile, warm caches) is excluded; ten steady epochs give each point's
# median rate a bootstrap interval (shared/stats.py: none below 5 values; with 10 the 95%
# interval is narrower than the range of the epochs) and a paired speed-up with one.
DEFAULT_EPOCHS = 11
# Elasticity e = d log(time per step) / d log(FLOPs per step) between neighbouring points.
# e near 0: more work costs no more time (launch, dispatch or Python overhead dominates);
# e near 1: time grows with the work (the arithmetic dominates). The cut points are a
# reading aid, not a measurement: below 0.3 "overhead-bound", above 0.7 "compute-bound".
OVERHEAD_BOUND, COMPUTE_BOUND = 0.3, 0.7


def parse_axis(text: str) -> tuple:
  """"num_hiddens=64,128" -> ("num_hiddens", [64, 128]); ValueError naming the fix."""
  field, _, values = text.partition("=")
  field = field.strip().replace("-", "_")
  if field not in C.SIZE_FIELDS or not values.strip():
    raise ValueError(f"--sweep takes FIELD=V1,V2,... with FIELD one of {', '.join(C.SIZE_FIELDS)}, "
                     f"got {text!r}")
  try:
    numbers = [int(v) for v in values.split(",") if v.strip()]
  except ValueError:
    raise ValueError(f"--sweep {field} takes whole numbers separated by commas, got {values!r}") from None
  if not numbers or len(set(numbers)) != len(numbers):
    raise ValueError(f"--sweep {field} needs distinct values, got {values!r}")
  if field == "max_tokens" and -1 in numbers:
    raise ValueError("--sweep max_tokens takes sizes (the whole text is 170580); -1 has no place on its axis")
  return field, numbers


def parse_axes(texts) -> dict:
  axes = {}
  for text in texts:
    field, values = parse_axis(text)
    if field in axes:
      raise ValueError(f"--sweep {field} is given twice; give its values once, separated by commas")
    axes[field] = values
  return axes


def label(point: dict) -> str:
  return ", ".join(f"{k}={v}" for k, v in point.items())


def series_file(s: dict) -> str:
  """The figure of one series (see `series`)."""
  return f"sweep-{s['axis']}" + "".join(f"-{k}{v}" for k, v in s["fixed"].items()) + ".png"


def series_title(s: dict) -> str:
  fixed = ", ".join(f"{k} = {v}" for k, v in s["fixed"].items())
  return s["axis"] + (f" ({fixed})" if fixed else "")


def prepare_points(base, axes: dict, data_dir=None, scaling: str = "strong"):
  """([(point, config)], {max_tokens: corpus}): every point of the grid, its config
  validated and its corpus long enough, checked before any training. Along a devices axis,
  strong scaling keeps the global batch (split over more devices), weak scaling the batch
  per device (the global batch grows with the devices)."""
  corpora, configs = {}, []
  for values in itertools.product(*axes.values()):
    point = dict(zip(axes, values))
    try:
      cfg = base.set(**point)
      if scaling == "weak":
        cfg = cfg.set(batch_size=cfg.batch_size * cfg.devices)
      cfg = cfg.validate()
      if cfg.max_tokens not in corpora:
        corpora[cfg.max_tokens] = data.load_corpus(cfg.max_tokens, data_dir)[0]
      data.check_sizes(corpora[cfg.max_tokens], cfg.batch_size, cfg.num_steps)
    except ValueError as e:
      raise ValueError(f"sweep point {label(point)}: {e}") from None
    configs.append((point, cfg))
  return configs, corpora


def costs(rec: dict, cfg) -> dict:
  """An implementation's figures at one point (a summarized record, shared/runner.py): speed
  with its interval, cost per token and per step, GFLOP/s, the paired speed-up over the
  point's baseline, and the per-epoch rates (for paired ratios between points' rows)."""
  rate = rec["steady_tokens_per_s"]
  flops = P.matmul_flops_per_token(cfg.vocab_size, cfg.num_hiddens)
  keep = ("status", "error", "device", "precision", "execution", "threads", "parallel", "launch_seconds",
          "steady_tokens_per_s",
          "tokens_per_s_ci", "min_tokens_per_s", "max_tokens_per_s", "slow_epochs", "cores_used",
          "prepare_seconds", "first_epoch_seconds", "peak_memory_bytes", "framework", "limits",
          "vs_float32", "vs_float32_ci", "resumed_epochs", "resume_prepare_seconds")
  return {**{k: rec.get(k) for k in keep}, "epoch_rates": rates(rec), "perplexity": rec["perplexity"],
          "final_perplexity": (rec["perplexity"] or [None])[-1],
          "us_per_token": 1e6 / rate if rate else None,
          "ms_per_step": 1e3 * cfg.batch_size * cfg.num_steps / rate if rate else None,
          "gflops": flops * rate / 1e9 if rate else None,
          "speedup": rec.get("speedup_vs_reference"), "speedup_ci": rec.get("speedup_ci")}


def fastest(impls: dict, carries_state: bool = True) -> dict:
  """{framework: (name, steady tokens/s)} of the fastest row per framework at one point, among
  the rows that train their model's reference computation (rows.Impl.departure)."""
  same = {n: r for n, r in impls.items() if not (implementation(n) and implementation(n).departure(carries_state))}
  return metrics.fastest_per_framework({n: r["steady_tokens_per_s"] for n, r in same.items()},
                                       {n: r["framework"] for n, r in same.items()})


def fastest_ratio(impls: dict, carries_state: bool = True):
  """Steady tokens/s of the fastest JAX row over the fastest PyTorch row at one point."""
  best = fastest(impls, carries_state)
  return best["jax"][1] / best["torch"][1] if len(best) == 2 else None


def points_of(points: list, s: dict) -> list:
  """The finished points of series `s` (one axis, the others fixed), in axis order."""
  on = [p for p in points if p["status"] == "ok" and all(p["point"][k] == v for k, v in s["fixed"].items())]
  return sorted(on, key=lambda p: p["point"][s["axis"]])


def make(config, axes: dict, impls: list, points: list, corpora: dict, vocab, scaling="strong") -> Plan:
  """A sweep over `points` (prepare_points): `plan`, and its report's keys from the outcomes."""
  def results(outcomes: dict, partial: bool) -> dict:
    done = entries(outcomes, points, corpora, impls)
    devices = sorted({r["device"] for p in done for r in p.get("impls", {}).values()} - {"–"})
    return {**({"device": " + ".join(devices)} if devices else {}),
            **sweep_results(done, axes, impls, len(points), scaling)}
  units = plan(points, corpora, impls)
  what = (f"sweep of {len(points)} points x {len(units[0].cells[0].rows)} implementations x "
          f"{config.num_epochs} epochs")
  return Plan("sweep", what, config, units, vocab, frameworks(impls), results, lambda r: lines(r["points"]))


def frameworks(impls: list) -> list:
  return list(dict.fromkeys(Row(n).info.framework for n in impls))


def plan(points: list, corpora: dict, impls: list) -> list:
  """A unit per point ("point K"): the rows of `impls` at the point's sizes (each with its bf16
  twin in a bf16 run), data parallel over the point's devices; their records keep the rows'
  own names along a devices axis (the point says the devices)."""
  units = []
  for k, (point, cfg) in enumerate(points, 1):
    rows = [Row(n, bf16, cfg.devices) for bf16 in (False, True)[:1 + (cfg.precision == "bf16")] for n in impls]
    baseline = BASELINE if BASELINE in impls else impls[0]
    units.append(Unit(f"point {k}", [Cell(rows, cfg, point, lambda r: r.single.name)],
                      lambda c=cfg: data.training_epochs(corpora[c.max_tokens], c),
                      f"point {k}/{len(points)} {label(point)}: ", baseline=baseline))
  return units


def entries(outcomes: dict, points: list, corpora: dict, impls: list) -> list:
  """The sweep's points from its units' outcomes, in order, up to the one a Ctrl-C stopped."""
  out, baseline = [], BASELINE if BASELINE in impls else impls[0]
  for k, (point, cfg) in enumerate(points, 1):
    o = outcomes.get(f"point {k}")
    if o is None:
      break
    entry = {"point": point, "config": cfg.as_dict(), "status": o["status"], "error": o["error"]}
    if o["status"] != "failed" and o["cells"]:
      entry.update(_figures(o, cfg, corpora[cfg.max_tokens], baseline))
    out.append({**entry, "point_seconds": o["seconds"]})
  return out


def _figures(o: dict, cfg, corpus, baseline: str) -> dict:
  """A point's figures: its rows' costs (`costs`), the bounds and the load it measured."""
  cell, first = o["cells"][0], data.training_epochs(corpus, cfg, 1)[0][0]
  impls = {n: costs(r, cfg) for n, r in cell["impls"].items()}
  return {"baseline": baseline, "load": o["load"], "limits": cell["limits"], "tokens_per_epoch": int(first.size),
          "steps_per_epoch": int(first.shape[0]),
          "flops_per_token": P.matmul_flops_per_token(cfg.vocab_size, cfg.num_hiddens),
          "impls": impls, "jax_over_torch": fastest_ratio(impls, cfg.carries_state)}


def sweep_results(points: list, axes: dict, names: list, num_points: int, scaling: str = "strong") -> dict:
  """The sweep's own keys of results.json (report.common gives the others)."""
  return {"axes": axes, "num_points": num_points, "impls": names, "points": points, "series": series(points, axes),
          "scaling": scaling if "devices" in axes else None, "efficiency": efficiency(points, axes)}


def lines(points: list) -> list:
  """One console line per point: its status and every row's steady tokens/s."""
  return [f"{label(p['point'])}: {p['status']}  "
          + ", ".join(f"{n} {r['steady_tokens_per_s'] or 0:,.0f}" for n, r in p.get("impls", {}).items())
          for p in points]


def _elasticity(a: dict, b: dict, name: str):
  """d log(ms per step) / d log(FLOPs per step) from point a to point b, else None."""
  ra, rb = a["impls"].get(name, {}), b["impls"].get(name, {})
  if not (ra.get("ms_per_step") and rb.get("ms_per_step")):
    return None
  work = lambda p: p["flops_per_token"] * p["config"]["batch_size"] * p["config"]["num_steps"]
  if work(a) == work(b):
    return None
  return math.log(rb["ms_per_step"] / ra["ms_per_step"]) / math.log(work(b) / work(a))


def regime(e) -> str:
  if e is None:
    return "–"
  return "overhead-bound" if e < OVERHEAD_BOUND else "compute-bound" if e > COMPUTE_BOUND else "in between"


def series(points: list, axes: dict) -> list:
  """Along each axis, for each setting of the other axes: the points in axis order, and per
  implementation the elasticity between neighbours and a sentence on where it changes."""
  done = [p for p in points if p["status"] == "ok"]
  names = list(dict.fromkeys(n for p in done for n in p["impls"]))
  out = []
  for axis in axes:
    others = [a for a in axes if a != axis]
    for fixed in itertools.product(*(axes[a] for a in others)):
      where = dict(zip(others, fixed))
      line = points_of(done, {"axis": axis, "fixed": where})
      steps = [{"from": a["point"][axis], "to": b["point"][axis],
                "elasticity": {n: _elasticity(a, b, n) for n in names}} for a, b in zip(line, line[1:])]
      out.append({"axis": axis, "fixed": where, "values": [p["point"][axis] for p in line],
                  "steps": steps, "summary": {n: _regime_sentence(steps, n, axis) for n in names}})
  return out


def _regime_sentence(steps: list, name: str, axis: str) -> str:
  labels = [(s["from"], s["to"], regime(s["elasticity"][name])) for s in steps]
  labels = [t for t in labels if t[2] != "–"]
  if not labels:
    return "no step with a change of work to read"
  parts, current = [], None
  for lo, hi, kind in labels:
    if kind != current:
      parts.append(f"{kind} from {axis} {lo}")
      current = kind
  return "; ".join(parts) + f" (up to {labels[-1][1]})"


def efficiency(points: list, axes: dict) -> list:
  """Along a devices axis: each row's steady tokens/s at N devices over its own at one
  device, the other axes alike. On a CPU the N devices share the one device's cores (each
  process gets its share), so 1.0 means splitting the batch cost nothing; where each
  device brings its own hardware (GPUs), N would be the ideal."""
  if "devices" not in axes or 1 not in axes["devices"]:
    return []
  done, out = [p for p in points if p["status"] == "ok"], []
  for p in done:
    if p["point"]["devices"] == 1:
      continue
    same = {k: v for k, v in p["point"].items() if k != "devices"}
    one = next((q for q in done if q["point"] == {**same, "devices": 1}), None)
    if one is None:
      continue
    ratios = {n: (r["steady_tokens_per_s"] / one["impls"][n]["steady_tokens_per_s"]
                  if r.get("steady_tokens_per_s") and (one["impls"].get(n) or {}).get("steady_tokens_per_s")
                  else None) for n, r in p["impls"].items()}
    out.append({"point": p["point"], "vs_one_device": ratios})
  return out
