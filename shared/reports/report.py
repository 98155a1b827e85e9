"""What every report holds: the keys it starts with, its environment block, and the readings
its writers share (its blocks, its judged parity rows). The schema of results.json:
shared/records.py; writing a report's folder: shared/reports/folder.py.

Framework versions are read from installed package metadata, so nothing here imports
torch or jax.
"""
import datetime
import math
import os
import platform
import sys

from shared import config as C
from shared import environment as E
from shared import machine, registry, rows, threads


def environment(root, frameworks=(), calibration=None, commit=None) -> dict:
  """Python, package versions, the machine as the OS describes it (shared/machine.py) and
  its `calibration` (shared/bounds.py), OS, git commit, the thread settings, and per
  framework in `frameworks` its threads, parallel backend and matrix libraries
  (registry.runtime; devices come from the rows). `commit`: the git commit as the run
  started (the code it loaded), else as now."""
  return {"python": platform.python_version(), "packages": E.package_versions(), "cpu": E.cpu_model(),
          "cpu_count": os.cpu_count(), "machine": machine.describe(), "calibration": calibration,
          "os": platform.platform(), "git_commit": commit or E.git_commit(root),
          "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]), "threads": threads.settings(),
          "runtime": {fw: registry.runtime(fw) for fw in frameworks}}


def provenance(env: dict) -> str:
  """One sentence for a bench script's Markdown: when, where and with what it ran."""
  versions = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
  return (f"Run of {datetime.datetime.now():%Y-%m-%dT%H:%M:%S} on {env['cpu']} ({env['cpu_count']} logical "
          f"cores), git `{env['git_commit']}`, {versions}. `{env['command']}`.")


def finite(obj):
  """A copy of `obj` with every NaN or infinity replaced by None (JSON has neither)."""
  if isinstance(obj, dict):
    return {k: finite(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [finite(v) for v in obj]
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  return obj


def common(kind: str, device: str, preset: str, partial: bool, config: dict, root, frameworks=(),
           loadavg_before=None, calibration=None, commit=None) -> dict:
  """The keys every kind of report starts with (records.COMMON, less the schema version).
  `loadavg_before`: the 1-minute load average as the run started, before its own imports;
  `commit`: the git commit as it started (a long run's checkout may move on meanwhile)."""
  env = {**environment(root, frameworks, calibration, commit), "loadavg_before": loadavg_before}
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


def departures(results: dict, names) -> dict:
  """{name: why} for each of `names` (a report's rows) whose training is not its model's
  reference training (rows.Impl.departure, under the report's own sampling): its speed is
  another computation's, so it carries rows.MARK wherever a speed is shown."""
  carries = C.carries_state(results.get("config", {}).get("sampling", "sequential"))
  infos = {n: rows.implementation(n) for n in names}
  return {n: i.departure(carries) for n, i in infos.items() if i and i.departure(carries)}


def mark(name: str, departed: dict) -> str:
  """`name`, with rows.MARK after it when it is in `departed` (departures)."""
  return name + rows.MARK if name in departed else name


def departure_note(departed: dict) -> str:
  """The footnote under a speed table whose rows `departed` are marked; "" when none is."""
  return "".join(f"\n{rows.MARK} {n} does not train its model's reference computation: {why}.\n"
                 for n, why in departed.items())
