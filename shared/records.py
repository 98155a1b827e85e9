"""The shape of results.json, written down once: a row's record and a parity check as typed
records (what the runner fills while a run trains), the containers around them per kind of
report, and `validate`, which checks a loaded report against all of it.

    results.json = {schema_version, kind, created, device, preset, partial, config, environment,
                    checkpoint, ...the kind's own keys (KINDS)}
      compare: ...BLOCK's keys: one seed's comparison (its rows' Records under "impls", its
               Checks under "parity", the float64 truth as a second such phase under "truth")
      seeds:   runs: [BLOCK per seed, or {seed, status, error}], aggregate (shared/kinds/seeds.py)
      sweep:   points: [{point, config, status, error, impls: {row: a Record's figures at the
               point (SWEEP_IMPL)}}], series, efficiency (shared/kinds/sweep.py)
      ablation: levers, points (a lever's settings, as sweep points), repeats (shared/kinds/ablation.py)

Schema 4 (issues 16, 17): relative first-minibatch checks and the probes; steady_tokens_per_s is the
median epoch rate with tokens_per_s_ci; threads, CPU time, cores used, slow epochs, clipped steps,
paired speed-ups with intervals, the machine's load; equivalence margins across seeds. Later
additions that older readers may ignore, still 4: bf16 twins, logits_rms_rel, the matmul bounds
("limits"), speed_pairs and last_ppl of a seeds aggregate, checkpoints and resumes, the machine
and its calibration in the environment, a block's repeats and speed across processes (SPEED), a
row's profiled time split.
"""
import dataclasses

SCHEMA_VERSION = 4
STATUSES = ("ok", "failed", "interrupted", "not run")   # of a row
SEED_STATUSES = ("ok", "failed", "interrupted")          # of a seed, and of a sweep point


@dataclasses.dataclass
class Record:
  """One row's training in one unit of a run: under impls.<row> of results.json."""
  description: str
  layout: str
  framework: str
  device: str
  precision: str
  threads: int | None = None
  status: str = "not run"
  failed_epoch: int | None = None
  perplexity: list = dataclasses.field(default_factory=list)          # per epoch, epoch 1 first
  epoch_seconds: list = dataclasses.field(default_factory=list)       # wall, per epoch
  epoch_cpu_seconds: list = dataclasses.field(default_factory=list)   # the row's processes' CPU
  tokens: list = dataclasses.field(default_factory=list)              # per epoch
  clipped_steps: list = dataclasses.field(default_factory=list)       # per epoch (None: not reported)
  prepare_seconds: float | None = None                               # compile/capture, apart
  peak_memory_bytes: int | None = None
  samples: dict = dataclasses.field(default_factory=dict)             # prefix -> greedy text
  error: str | None = None
  execution: str = ""
  parallel: dict | None = None          # a data-parallel row's engine, backend, devices, processes
  launch_seconds: float | None = None   # starting a row's processes
  reduction: dict | None = None         # a data-parallel row's gradient all-reduce, profiled
  time_split: dict | None = None        # one epoch profiled: its matrix products' share (shared/profile.py)
  # a run resumed from a checkpoint: the epochs (1-based) right after a resume, kept out of the
  # steady figures, and the compile each resume cost
  resumed_epochs: list = dataclasses.field(default_factory=list)
  resume_prepare_seconds: list = dataclasses.field(default_factory=list)
  # after training: shared/metrics.py's throughput figures
  first_epoch_seconds: float | None = None
  steady_tokens_per_s: float | None = None   # the median steady epoch's rate
  tokens_per_s_ci: list | None = None
  total_tokens_per_s: float | None = None
  min_tokens_per_s: float | None = None
  max_tokens_per_s: float | None = None
  slow_epochs: list = dataclasses.field(default_factory=list)
  steady_seconds: float | None = None
  cpu_seconds: float | None = None
  cores_used: float | None = None
  train_seconds: float | None = None
  epoch_to_target_ppl: int | None = None
  seconds_to_target_ppl: float | None = None
  seconds_to_target_with_compile: float | None = None
  # ... and ratios paired round by round (shared/stats.py), with their intervals
  speedup_vs_reference: float | None = None
  speedup_ci: list | None = None
  vs_one_device: float | None = None    # a data-parallel row over its row on one device
  vs_one_device_ci: list | None = None
  vs_float32: float | None = None       # a bf16 twin over its float32 row
  vs_float32_ci: list | None = None
  limits: dict | None = None            # its distance from the matmul bounds (shared/limits.py)

  def rates(self) -> list:
    """Per-epoch tokens/s, epoch 1 first; None for the first epoch after a resume (it shared
    the machine's caches with a fresh compile), so that rates paired round by round leave
    that round out."""
    return epoch_rates(self.tokens, self.epoch_seconds, self.resumed_epochs)

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, d: dict) -> "Record":
    return cls(**d)


def epoch_rates(tokens, seconds, resumed=()) -> list:
  """tokens / seconds per epoch, None at the epochs (1-based) right after a resume."""
  return [None if k in set(resumed or ()) else t / s for k, (t, s) in enumerate(zip(tokens, seconds), 1)]


def rates(rec: dict) -> list:
  """Record.rates of a stored record (a dict)."""
  return epoch_rates(rec["tokens"], rec["epoch_seconds"], rec.get("resumed_epochs"))


@dataclasses.dataclass
class Check:
  """One parity check of a row against its anchor: an element of a phase's "parity" list.
  `passed` is None where the figure is reported, not judged (no tolerance, a TF32 run, or a
  known deviation: `known_deviation`)."""
  group: str
  impl: str
  anchor: str
  check: str
  arithmetic: str
  measured: float | None
  tolerance: float | None
  passed: bool | None
  known_deviation: bool
  note: str


# The containers, key -> type: the top of every report, each kind's own keys, one seed's
# comparison (a "compare" report is one; a "seeds" report holds one per seed under "runs"),
# the float64 truth inside it, a sweep point (or ablation cell) and its rows, a lever.
COMMON = {"schema_version": int, "kind": str, "created": str, "device": str, "preset": str,
          "partial": bool, "config": dict, "environment": dict}
_COMPARE = {"baseline": str, "ppl_target": float, "tolerances": dict, "divergence_thresholds": dict,
            "ppl_first_epochs": int, "forward_only": dict, "sample_prefixes": list, "sample_length": int}
KINDS = {"compare": _COMPARE, "seeds": {"seeds": list, "runs": list, "aggregate": dict, **_COMPARE},
         "sweep": {"axes": dict, "num_points": int, "impls": list, "points": list, "series": list},
         "ablation": {"levers": list, "points": list, "repeats": list}}
BLOCK = {"seed": int, "inputs": dict, "parity": list, "parity_judged": bool, "impls": dict,
         "truth": dict | None, "load": dict | None}
# A block's speed across processes (shared/kinds/speed.py); blocks before --repeat have none.
SPEED = {"processes": int, "rows": dict, "frameworks": list}
TRUTH = {"impls": dict, "parity": list, "parity_judged": bool, "gaps": dict, "verdicts": list}
POINT = {"point": dict, "config": dict, "status": str, "error": str | None}
SWEEP_IMPL = {"status": str, "framework": str, "steady_tokens_per_s": float | None, "us_per_token": float | None,
              "ms_per_step": float | None, "gflops": float | None, "speedup": float | None,
              "prepare_seconds": float | None, "peak_memory_bytes": int | None}
LEVER = {"key": str, "name": str, "framework": str, "settings": list, "rows": list, "skipped": str | None,
         "results": dict}


def _types(cls) -> dict:
  return {f.name: f.type for f in dataclasses.fields(cls)}


def _fit(obj, schema: dict, where: str) -> None:
  if not isinstance(obj, dict):
    raise ValueError(f"{where}: {type(obj).__name__} is not an object")
  for key, kind in schema.items():
    if key not in obj:
      raise ValueError(f"{where}: missing {key!r}")
    if not isinstance(obj[key], kind):
      raise ValueError(f"{where}.{key}: {type(obj[key]).__name__} is not {kind}")


def _status(value, allowed, where: str) -> None:
  if value not in allowed:
    raise ValueError(f"{where}.status {value!r} not in {allowed}")


def _phase(phase: dict, where: str) -> None:
  for name, rec in phase["impls"].items():
    _fit(rec, _types(Record), f"{where}.impls.{name}")
    _status(rec["status"], STATUSES, f"{where}.impls.{name}")
  for i, row in enumerate(phase["parity"]):
    _fit(row, _types(Check), f"{where}.parity[{i}]")


def _block(block: dict, where: str) -> None:
  _fit(block, BLOCK, where)
  _phase(block, where)
  if block["truth"] is not None:
    _fit(block["truth"], TRUTH, f"{where}.truth")
    _phase(block["truth"], f"{where}.truth")
  if block.get("speed") is not None:
    _fit(block["speed"], SPEED, f"{where}.speed")


def validate(results: dict) -> None:
  """Raises ValueError naming the first key of `results` that does not fit the schema."""
  _fit(results, COMMON, "results")
  if results["schema_version"] != SCHEMA_VERSION:
    raise ValueError(f"schema_version {results['schema_version']}, expected {SCHEMA_VERSION}")
  if results["kind"] not in KINDS:
    raise ValueError(f"results.kind {results['kind']!r} not in {tuple(KINDS)}")
  _fit(results, KINDS[results["kind"]], "results")
  if results["kind"] == "compare":
    _block(results, "results")
  for i, r in enumerate(results.get("runs", [])):
    _status(r["status"], SEED_STATUSES, f"results.runs[{i}]")
    if "impls" in r:
      _block(r, f"results.runs[{i}]")
  for i, lever in enumerate(results.get("levers", [])):
    _fit(lever, LEVER, f"results.levers[{i}]")
  for i, p in enumerate(results.get("points", [])):
    _fit(p, POINT, f"results.points[{i}]")
    _status(p["status"], SEED_STATUSES, f"results.points[{i}]")
    for name, rec in p.get("impls", {}).items():
      _fit(rec, SWEEP_IMPL, f"results.points[{i}].impls.{name}")
