"""Report writing: results.json, report.md, its tables (CSV) and the figures, built in a
temporary folder and renamed into place, never over an earlier report; the environment
block; the schema.

Framework versions are read from installed package metadata, so nothing here imports
torch or jax.
"""
import datetime
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile

from shared import protocol, threads
from shared.reports import tables
from shared.reports.text import slug


# 2: ppl_first_epochs, divergence_threshold, per-impl error. 3: kind ("compare", "seeds",
# "sweep"; later "ablation"), the float64 truth, several seeds, sweeps, per-precision tolerances and
# divergence thresholds. 4 (issues 16, 17): relative first-minibatch checks (logits_rel; grads_rel
# now per parameter) and the probes; steady_tokens_per_s is the median epoch rate (was total over
# total, now total_tokens_per_s) with tokens_per_s_ci; threads, CPU time, cores used, slow epochs,
# clipped steps, paired speed-ups with intervals, the machine's load; equivalence margins across seeds.
# Additions that older readers may ignore (issue 19, still 4): bf16 twins (precision "bf16",
# vs_float32), the logits_rms_rel check, and the matmul-bound figures ("limits", per record and block).
# Later, still 4: a seeds aggregate's "speed_pairs" and per-implementation "last_ppl".
SCHEMA_VERSION = 4
PACKAGES = ("torch", "jax", "jaxlib", "flax", "optax", "keras", "numpy", "scipy", "matplotlib", "tqdm")


def _cpu_model() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _git_commit(root) -> str:
  try:
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, timeout=10)
    # Changes under reports/ (where this report is being written) do not make the code dirty.
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no",
                            "--", ".", ":!reports"], capture_output=True, text=True, timeout=10).stdout.strip()
    return (out.stdout.strip() or "unknown") + ("+dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def package_versions(packages=PACKAGES) -> dict:
  """{package: installed version, or None}, from package metadata (nothing is imported)."""
  versions = {}
  for pkg in packages:
    try:
      versions[pkg] = importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
      versions[pkg] = None
  return versions


def environment(root, frameworks=()) -> dict:
  """Python, package versions, CPU model and instruction set, OS, git commit, the thread
  settings, and per framework in `frameworks` its threads, parallel backend and matrix
  libraries (protocol.runtime; devices come from the impls)."""
  return {"python": platform.python_version(), "packages": package_versions(), "cpu": _cpu_model(),
          "cpu_count": os.cpu_count(), "os": platform.platform(), "git_commit": _git_commit(root),
          "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]), "threads": threads.settings(),
          "runtime": {fw: protocol.runtime(fw) for fw in frameworks}}


def provenance(env: dict) -> str:
  """One sentence for a bench script's Markdown: when, where and with what it ran."""
  versions = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
  return (f"Run of {datetime.datetime.now():%Y-%m-%dT%H:%M:%S} on {env['cpu']} ({env['cpu_count']} logical "
          f"cores), git `{env['git_commit']}`, {versions}. `{env['command']}`.")


def default_dir(root, device: str, name: str) -> pathlib.Path:
  """reports/<date>-<device>-<name>, with -2, -3, ... if taken (never overwritten)."""
  base = pathlib.Path(root) / "reports" / f"{datetime.date.today()}-{slug(device)}-{name}"
  path, n = base, 1
  while path.exists() or path.with_name(path.name + ".checkpoint").exists():  # a run that did not finish
    n += 1
    path = base.with_name(f"{base.name}-{n}")
  return path


def write_report(results: dict, out_dir, render, draw) -> pathlib.Path:
  """Writes results.json, report.md (`render(results)`), its tables as CSV (tables/) and the
  figures (`draw(results, folder)`) into `out_dir` atomically: built in a temporary folder
  beside it, then renamed."""
  out_dir = pathlib.Path(out_dir)
  if out_dir.exists():
    raise FileExistsError(f"{out_dir} exists; reports are never overwritten: choose another --out")
  out_dir.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
  try:
    results = finite({"schema_version": SCHEMA_VERSION, **results})
    (tmp / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
    draw(results, tmp)
    text = render(results)
    (tmp / "report.md").write_text(text)
    tables.write(text, tmp)
    os.rename(tmp, out_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return out_dir


def finite(obj):
  """A copy of `obj` with every NaN or infinity replaced by None (JSON has neither)."""
  if isinstance(obj, dict):
    return {k: finite(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [finite(v) for v in obj]
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  return obj


# The shape of results.json (schema_version 3): key -> type, for the top level of every
# kind of report, for each kind's own keys, for one seed's block (a "compare" report is
# one such block; a "seeds" report holds one per seed under "runs"), and for each
# implementation's record and parity row. `validate` checks a loaded file against it.
COMMON_SCHEMA = {
    "schema_version": int, "kind": str, "created": str, "device": str, "preset": str,
    "partial": bool, "config": dict, "environment": dict,
}
KIND_SCHEMA = {
    "compare": {"baseline": str, "ppl_target": float, "tolerances": dict, "divergence_thresholds": dict,
                "ppl_first_epochs": int, "forward_only": dict, "sample_prefixes": list,
                "sample_length": int},
    "seeds": {"seeds": list, "runs": list, "aggregate": dict},
}
KIND_SCHEMA["seeds"].update(KIND_SCHEMA["compare"])
KIND_SCHEMA["sweep"] = {"axes": dict, "num_points": int, "impls": list, "points": list, "series": list}
KIND_SCHEMA["ablation"] = {"levers": list, "points": list, "repeats": list}
LEVER_SCHEMA = {"key": str, "name": str, "framework": str, "settings": list, "rows": list,
                "skipped": (str, type(None)), "results": dict}
POINT_SCHEMA = {"point": dict, "config": dict, "status": str, "error": (str, type(None))}
SWEEP_IMPL_SCHEMA = {"status": str, "framework": str, "steady_tokens_per_s": (float, type(None)),
                     "us_per_token": (float, type(None)), "ms_per_step": (float, type(None)),
                     "gflops": (float, type(None)), "speedup": (float, type(None)),
                     "prepare_seconds": (float, type(None)), "peak_memory_bytes": (int, type(None))}
BLOCK_SCHEMA = {"seed": int, "inputs": dict, "parity": list, "parity_judged": bool, "impls": dict,
                "truth": (dict, type(None)), "load": (dict, type(None))}
TRUTH_SCHEMA = {"impls": dict, "parity": list, "parity_judged": bool, "gaps": dict, "verdicts": list}
OPTIONAL_FLOAT, OPTIONAL_LIST = (float, type(None)), (list, type(None))
IMPL_SCHEMA = {
    "description": str, "layout": str, "framework": str, "device": str, "precision": str,
    "threads": (int, type(None)), "status": str, "perplexity": list, "epoch_seconds": list,
    "epoch_cpu_seconds": list, "tokens": list, "clipped_steps": list, "samples": dict,
    "steady_tokens_per_s": OPTIONAL_FLOAT, "tokens_per_s_ci": OPTIONAL_LIST, "total_tokens_per_s": OPTIONAL_FLOAT,
    "slow_epochs": list, "cpu_seconds": OPTIONAL_FLOAT, "cores_used": OPTIONAL_FLOAT,
    "first_epoch_seconds": OPTIONAL_FLOAT, "train_seconds": float,
    "speedup_vs_reference": OPTIONAL_FLOAT, "speedup_ci": OPTIONAL_LIST, "seconds_to_target_ppl": OPTIONAL_FLOAT,
    "seconds_to_target_with_compile": OPTIONAL_FLOAT,
    "epoch_to_target_ppl": (int, type(None)), "prepare_seconds": OPTIONAL_FLOAT,
    "peak_memory_bytes": (int, type(None)), "execution": str, "error": (str, type(None)),
}
PARITY_SCHEMA = {"group": str, "impl": str, "anchor": str, "check": str, "arithmetic": str,
                 "measured": (float, type(None)), "tolerance": (float, type(None)),
                 "passed": (bool, type(None)), "known_deviation": bool, "note": str}
STATUSES = ("ok", "failed", "interrupted", "not run")
SEED_STATUSES = ("ok", "failed", "interrupted")  # of a seed, and of a sweep point


def common(kind: str, device: str, preset: str, partial: bool, config: dict, root, frameworks=(),
           loadavg_before=None) -> dict:
  """The keys every kind of report starts with (COMMON_SCHEMA, less the schema version).
  `loadavg_before`: the 1-minute load average as the run started, before its own imports."""
  env = {**environment(root, frameworks), "loadavg_before": loadavg_before}
  return {"kind": kind, "created": datetime.datetime.now().isoformat(timespec="seconds"), "device": device,
          "preset": preset, "partial": partial, "config": config, "environment": env}


def blocks(results: dict) -> list:
  """The per-seed blocks of a comparison report: the report itself for one seed, each
  seed's that trained for several."""
  if results["kind"] == "seeds":
    return [r for r in results["runs"] if r.get("impls")]
  return [results]


def judged_rows(rows: list) -> list:
  """The parity rows that carry a verdict (a TF32 run's and known deviations' do not)."""
  return [r for r in rows if r.get("passed") is not None]


def tally(judged: list) -> str:
  """"20 of 21": how many of the judged rows passed."""
  return f"{sum(r['passed'] for r in judged)} of {len(judged)}"


def parity_rows(block: dict) -> list:
  """Every parity row of one seed's block: float32 (or TF32) and, where it ran, float64."""
  return block.get("parity", []) + ((block.get("truth") or {}).get("parity") or [])


def _fit(obj, schema, where):
  for key, kind in schema.items():
    if key not in obj:
      raise ValueError(f"{where}: missing {key!r}")
    if not isinstance(obj[key], kind):
      raise ValueError(f"{where}.{key}: {type(obj[key]).__name__} is not {kind}")


def _validate_phase(phase: dict, where: str) -> None:
  for name, rec in phase["impls"].items():
    _fit(rec, IMPL_SCHEMA, f"{where}.impls.{name}")
    if rec["status"] not in STATUSES:
      raise ValueError(f"{where}.impls.{name}.status {rec['status']!r} not in {STATUSES}")
  for i, row in enumerate(phase["parity"]):
    _fit(row, PARITY_SCHEMA, f"{where}.parity[{i}]")


def _validate_block(block: dict, where: str) -> None:
  _fit(block, BLOCK_SCHEMA, where)
  _validate_phase(block, where)
  if block["truth"] is not None:
    _fit(block["truth"], TRUTH_SCHEMA, f"{where}.truth")
    _validate_phase(block["truth"], f"{where}.truth")


def validate(results: dict) -> None:
  """Raises ValueError naming the first key of `results` that does not fit the schema."""
  _fit(results, COMMON_SCHEMA, "results")
  if results["schema_version"] != SCHEMA_VERSION:
    raise ValueError(f"schema_version {results['schema_version']}, expected {SCHEMA_VERSION}")
  if results["kind"] not in KIND_SCHEMA:
    raise ValueError(f"results.kind {results['kind']!r} not in {tuple(KIND_SCHEMA)}")
  _fit(results, KIND_SCHEMA[results["kind"]], "results")
  if results["kind"] == "compare":
    _validate_block(results, "results")
  elif results["kind"] == "seeds":
    for i, r in enumerate(results["runs"]):
      if r["status"] not in SEED_STATUSES:
        raise ValueError(f"results.runs[{i}].status {r['status']!r} not in {SEED_STATUSES}")
      if "impls" in r:
        _validate_block(r, f"results.runs[{i}]")
  else:
    for i, lever in enumerate(results.get("levers", [])):
      _fit(lever, LEVER_SCHEMA, f"results.levers[{i}]")
    for i, p in enumerate(results["points"]):
      _fit(p, POINT_SCHEMA, f"results.points[{i}]")
      if p["status"] not in SEED_STATUSES:
        raise ValueError(f"results.points[{i}].status {p['status']!r} not in {SEED_STATUSES}")
      for name, rec in p.get("impls", {}).items():
        _fit(rec, SWEEP_IMPL_SCHEMA, f"results.points[{i}].impls.{name}")
