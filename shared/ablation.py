"""Ablation: what each speed lever buys, in each framework, measured in one run.

`compare.py --ablation` (or `--ablation unroll,tf32`) measures every lever of LEVERS on the
rows it acts on, with each of its settings, everything else as the run's configuration.
A lever's first setting is its reference: every other setting's steady tokens/s is given
as a ratio to it. A setting is a set of config fields (shared/config.py); a cell is one
setting's configuration and the lever's rows. The levers run one after another; within a
lever every cell's rows are built first, then trained together round-robin, epoch by
epoch, on the same minibatches, the first epoch (compiling) left out of tokens/s: a ratio
compares epochs that ran side by side, and a run cut short keeps every lever that
finished. Parity is not judged: no lever but TF32 changes the arithmetic, and the
comparison runs judge that.
"""
import dataclasses
import gc

from shared import config as C
from shared import checkpoint, data, limits, protocol, run, stats, sweep

TORCH_EAGER = ("torch-scratch", "torch-cudnn")   # the sync-free rows the CUDA graphs act on
JAX_ROWS = ("jax-scratch", "flax-gru")


@dataclasses.dataclass(frozen=True)
class Lever:
  key: str          # its name on the command line
  name: str
  framework: str    # "torch", "jax" or "both"
  rows: tuple
  settings: tuple   # ((label, {config field: value}), ...): the first is the reference
  gpu_only: bool    # meaningless on a CPU (no CUDA graphs, no TF32): skipped there
  why: str


def levers(base: C.Config) -> tuple:
  """Every lever, its settings written for `base` (unroll runs up to base.num_steps), in
  the order an ablation measures them: torch.compile's modes last, as their compiles take
  longest (an ablation cut short keeps the levers that finished)."""
  unroll = sorted({1, min(5, base.num_steps), base.num_steps})
  return (
      Lever("cuda-graph", "CUDA graph of the training step", "torch", TORCH_EAGER,
            (("eager", {"cuda_graph": "off"}), ("graph per step", {"cuda_graph": "step"})), True,
            "one replay per minibatch instead of launching forward, backward, clipping and SGD kernel by kernel"),
      Lever("epoch-graph", "One CUDA graph per epoch", "torch", TORCH_EAGER,
            (("graph per step", {"cuda_graph": "step"}), ("graph per epoch", {"cuda_graph": "epoch"})), True,
            "every minibatch of the epoch and the hidden-state carry between them in one replay"),
      Lever("jax-loop", "The whole epoch in one compiled call", "jax", JAX_ROWS,
            (("jitted step per minibatch", {"jax_loop": "step"}), ("lax.scan per epoch", {"jax_loop": "epoch"})),
            False, "one dispatch per epoch instead of one per minibatch"),
      Lever("unroll", "lax.scan unroll over time", "jax", JAX_ROWS,
            tuple((str(u), {"unroll": u}) for u in unroll), False,
            "fewer loop iterations for XLA to run; longer programs to compile"),
      Lever("command-buffer", "XLA command buffers", "jax", JAX_ROWS,
            (("off", {"command_buffer": "off"}), ("XLA's default", {"command_buffer": ""}),
             ("with while loops", {"command_buffer": "while"})), True,
            "XLA records kernels (and, with while loops, lax.scan's loops) into CUDA graphs"),
      Lever("xla-dot", "XLA:CPU's dot library", "jax", JAX_ROWS,
            (("Eigen, no library", {"xla_dot": "eigen"}), ("YNNPACK dots (jaxlib's default)", {"xla_dot": ""}),
             ("YNNPACK dots and elementwise", {"xla_dot": "ynnpack-eltwise"})), False,
            "XLA:CPU hands its dot fusions to a library (experimental fusion options, per compiled program) "
            "instead of its own Eigen kernels; oneDNN's crashes here and XNNPACK's is ignored (shared/config.py)"),
      Lever("threads", "PyTorch's intra-op pool", "torch", TORCH_EAGER + ("torch-compile",),
            (("every core", {"thread_pool": ""}), ("one thread", {"thread_pool": "single"})), False,
            "small products split over the cores, or each on one core without the pool's hand-offs "
            "(XLA:CPU's pool is per process: compare.py --threads 1 measures it)"),
      Lever("tf32", "TF32 matrix products", "both", TORCH_EAGER + JAX_ROWS,
            (("full float32", {"precision": "highest"}), ("TF32", {"precision": "tf32"})), True,
            "tensor cores at 10-bit mantissa for float32 matmuls; changes the arithmetic"),
      Lever("keras-jit", "Keras's jit_compile on the torch backend", "keras", ("keras-torch",),
            (("Keras's default (auto: eager)", {"keras_jit": ""}), ("jit_compile=True (torch.compile)",
                                                                   {"keras_jit": "on"})), False,
            "Keras hands its train step to torch.compile instead of running it eagerly; on the JAX backend "
            "the default already jits it (XLA)"),
      Lever("compile-mode", "torch.compile mode", "torch", ("torch-compile",),
            tuple((m, {"compile_mode": m}) for m in C.COMPILE_MODES[1:]), False,
            "reduce-overhead adds CUDA graphs to Inductor's kernels; max-autotune also tunes them"),
  )


def parse(text: str, base: C.Config) -> tuple:
  """"all" or "unroll,tf32" -> the levers named; ValueError naming the fix."""
  known = {lever.key: lever for lever in levers(base)}
  if text == "all":
    return tuple(known.values())
  keys = [k.strip() for k in text.split(",") if k.strip()]
  unknown = [k for k in keys if k not in known]
  if unknown or not keys or len(set(keys)) != len(keys):
    raise ValueError(f"--ablation takes 'all' or distinct levers from {', '.join(known)}; got {text!r}")
  return tuple(known[k] for k in keys)


def plan(chosen: tuple, base: C.Config, names: list, on_gpu: bool) -> list:
  """An entry per lever: its rows among `names`, why it is skipped if it is, and its
  cells, one per setting: (the setting's config fields, config, rows). Every config is
  validated here, before any training."""
  entries = []
  for lever in chosen:
    rows = [n for n in lever.rows if n in names]
    skipped = ("GPU only, skipped on a CPU" if lever.gpu_only and not on_gpu
               else None if rows else "none of its rows is in --impls")
    cells = [] if skipped else [(overrides, dataclasses.replace(base, **overrides).validate(), rows)
                                for _, overrides in lever.settings]
    entries.append({"key": lever.key, "name": lever.name, "framework": lever.framework, "why": lever.why,
                    "settings": [label for label, _ in lever.settings], "rows": rows, "skipped": skipped,
                    "overrides": [overrides for _, overrides in lever.settings], "cells": cells})
  return entries


def _cell_of(points: list, lever: str, base: C.Config, overrides: dict):
  want = dataclasses.asdict(dataclasses.replace(base, **overrides))
  return next((p for p in points if p["lever"] == lever and p["config"] == want), None)


def table(entries: list, points: list, base: C.Config) -> list:
  """Per lever and row, per setting: the figures of the cell that measured it, and its
  steady tokens/s over the reference setting's."""
  for e in entries:
    e["results"] = {}
    for row in [] if e["skipped"] else e["rows"]:
      out = []
      for label, overrides in zip(e["settings"], e["overrides"]):
        cell = _cell_of(points, e["key"], base, overrides)
        rec = (cell or {}).get("impls", {}).get(row)
        status = rec["status"] if rec else (cell or {}).get("status", "not run")
        out.append({"setting": label, "status": status,
                    "error": (rec or {}).get("error") or (cell or {}).get("error"),
                    **{k: (rec or {}).get(k) for k in ("steady_tokens_per_s", "tokens_per_s_ci", "prepare_seconds",
                                                       "execution", "precision", "final_perplexity", "limits")},
                    "epoch_rates": (rec or {}).get("epoch_rates") or []})
      reference = out[0]["epoch_rates"][1:]
      for o in out:  # epochs of one lever ran side by side, round by round: ratios are paired
        ratio, low, high = stats.paired_ratio(o.pop("epoch_rates")[1:], reference)
        o.update(ratio=ratio, ratio_ci=None if low is None else [low, high])
      e["results"][row] = out
  return entries


def repeats(points: list) -> list:
  """Cells that ran the same computation twice, e.g. a lever's setting that is another's
  default (same row, execution and arithmetic): [{"impl", "cells", "spread"}], spread =
  fastest over slowest - 1, the ablation's own measure of its noise. Twins in two levers
  ran at different times: their spread is how far the machine drifted between levers,
  while a ratio within one lever compares settings that ran side by side."""
  groups = {}
  for p in points:
    for n, r in p.get("impls", {}).items():
      if r["status"] == "ok" and r["steady_tokens_per_s"]:
        where = sweep.label(p["point"]) or "as configured"
        groups.setdefault((n, r["execution"], r["precision"]), []).append(
            (f"{p['lever']}: {where}", r["steady_tokens_per_s"]))
  return [{"impl": n, "cells": [c for c, _ in same],
           "spread": max(r for _, r in same) / min(r for _, r in same) - 1}
          for (n, _, _), same in groups.items() if len(same) > 1]


def _key(row: str, point: dict) -> str:
  return f"{row} | {sweep.label(point) or 'as configured'}"


def _build(cells: list, device) -> tuple:
  """(points, impls, records): every cell's rows built, keyed "row | setting"; a cell
  that cannot be built is failed with its reason, the others go on."""
  points, impls, records = [], {}, {}
  for point, cfg, rows in cells:
    entry = {"point": point, "config": dataclasses.asdict(cfg), "status": "ok", "error": None}
    try:
      built, unavailable = run.build_impls(rows, cfg, device)
    except Exception as e:  # noqa: BLE001 - e.g. out of memory, a flag this version refuses
      built, unavailable = {}, {n: protocol.one_line(e) for n in rows}
      entry.update(status="failed", error=protocol.one_line(e))
    for n, impl in built.items():
      impls[_key(n, point)] = impl
      records[_key(n, point)] = run.new_record(n, impl.device_name, impl.precision, impl.threads)
    for n, why in unavailable.items():
      records[_key(n, point)] = {**run.new_record(n, "–", cfg.dtype), "status": "failed", "error": why}
    points.append((entry, cfg, rows))
  return points, impls, records


def run_cells(cells: list, epochs: list, device, label: str = "", ck=checkpoint.OFF, key="lever") -> tuple:
  """(points, partial): every cell's rows trained together, round-robin epoch by epoch
  (run.train_all), in an order balanced over rounds, then each cell's figures as a sweep
  point gives them, with the machine's load measured meanwhile. A Ctrl-C keeps what
  finished. Checkpointed as unit `key` of `ck`."""
  try:
    points, impls, records = _build(cells, device)
  except KeyboardInterrupt:
    return [], True
  records = run.restore(impls, records, ck, key)["records"]
  partial, load = False, {}
  try:
    run.train_all(impls, epochs, records, run.Progress(records, len(epochs), label), load,
                  lambda: ck.epoch_done(key, {"records": records}, impls, records))
  except KeyboardInterrupt:
    partial = True  # train_all marked what was running
  run.summarize(records, impls, baseline="")
  for entry, cfg, rows in points:
    recs = {n: records[_key(n, entry["point"])] for n in rows}
    entry["limits"] = limits.attach(recs, cfg)  # the frameworks' defaults: no lever
    # with the last epoch's perplexity: no lever but TF32 changes the arithmetic, so a reader
    # can see every other setting train the same numbers
    entry["impls"] = {n: sweep.costs(r, cfg) for n, r in recs.items()}
    entry["load"] = load or None  # the lever's cells trained together: one measurement for all
    if any(r["status"] in ("interrupted", "not run") for r in entry["impls"].values()):
      entry["status"] = "interrupted"  # stopped, or never reached, by a Ctrl-C
  return [entry for entry, _, _ in points], partial


def run_ablation(entries: list, base: C.Config, corpus, device, ck=checkpoint.OFF) -> tuple:
  """(entries with their results, the measured cells, partial): the whole ablation of
  `entries` (as plan gives them), one lever after another, each lever's cells side by
  side. The levers change no size, so every cell trains on the same minibatches. A Ctrl-C
  keeps the levers that finished. Each lever is unit "lever KEY" of the checkpoint `ck`."""
  points, partial = [], False
  epochs = data.training_epochs(corpus, base)
  for e in entries:
    key = f"lever {e['key']}"
    if e["cells"] and ck.done(key) is not None:
      points += ck.done(key)
    elif e["cells"] and not partial:
      gc.collect()  # the last lever's models, graphs and compiled programs go before this one's
      done, partial = run_cells(e["cells"], epochs, device, f"{e['key']}: ", ck, key)
      done = [{"lever": e["key"], **p} for p in done]
      points += done
      if not partial:
        ck.finish(key, done)
    e.pop("cells", None)
  return table(entries, points, base), points, partial


def results(entries: list, points: list) -> dict:
  """The ablation's own keys of results.json (report.common gives the others)."""
  return {"levers": entries, "points": points, "repeats": repeats(points)}


def lines(entries: list) -> list:
  """One console line per lever and row: every setting's steady tokens/s ("–" for a
  setting that timed no steady epoch, e.g. one cut short while compiling)."""
  def rate(cell):
    return f"{cell['steady_tokens_per_s']:,.0f}" if cell["steady_tokens_per_s"] else "–"
  return [f"{e['name']}, {row}: " + ", ".join(f"{c['setting']} {rate(c)}" for c in cells)
          for e in entries for row, cells in e["results"].items()]
