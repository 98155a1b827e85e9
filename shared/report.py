"""Report writing: results.json, report.md and two figures, built in a temporary folder
and renamed into place, never over an earlier report.

Framework versions are read from installed package metadata, so nothing here imports
torch or jax; matplotlib is imported inside `write_plots` alone.
"""
import datetime
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile

from shared import markdown

SCHEMA_VERSION = 2  # 2: ppl_first_epochs, divergence_threshold, per-impl error
PACKAGES = ("torch", "jax", "jaxlib", "flax", "optax", "numpy", "matplotlib")


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


def environment(root) -> dict:
  """Python, package versions, CPU model, OS and git commit (devices come from the impls)."""
  versions = {}
  for pkg in PACKAGES:
    try:
      versions[pkg] = importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
      versions[pkg] = None
  return {"python": platform.python_version(), "packages": versions, "cpu": _cpu_model(),
          "cpu_count": os.cpu_count(), "os": platform.platform(), "git_commit": _git_commit(root),
          "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])}


def slug(text: str) -> str:
  return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def default_dir(root, device: str, preset: str) -> pathlib.Path:
  """reports/<date>-<device>-<preset>, with -2, -3, ... if taken (never overwritten)."""
  base = pathlib.Path(root) / "reports" / f"{datetime.date.today()}-{slug(device)}-{preset}"
  path, n = base, 1
  while path.exists():
    n += 1
    path = base.with_name(f"{base.name}-{n}")
  return path


def write_report(results: dict, out_dir) -> pathlib.Path:
  """Writes results.json, report.md, perplexity.png, throughput.png into `out_dir` atomically."""
  out_dir = pathlib.Path(out_dir)
  if out_dir.exists():
    raise FileExistsError(f"{out_dir} exists; reports are never overwritten: choose another --out")
  out_dir.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
  try:
    results = finite({"schema_version": SCHEMA_VERSION, **results})
    (tmp / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
    write_plots(results, tmp)
    (tmp / "report.md").write_text(markdown.render(results))
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


def write_plots(results: dict, folder) -> None:
  """perplexity.png (per-epoch, log scale, all impls) and throughput.png (steady tokens/s)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  impls = results["impls"]
  fig, ax = plt.subplots(figsize=(7, 4.2))
  for name, r in impls.items():
    if r["perplexity"]:
      ax.plot(range(1, len(r["perplexity"]) + 1), r["perplexity"], label=name, lw=1.2)
  ax.set(xlabel="epoch", ylabel="perplexity", yscale="log", title="Training perplexity per epoch")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(pathlib.Path(folder) / "perplexity.png", dpi=120)
  plt.close(fig)

  names = [n for n, r in impls.items() if r.get("steady_tokens_per_s")]
  rates = [impls[n]["steady_tokens_per_s"] for n in names]
  spread = [[r - impls[n]["min_tokens_per_s"] for n, r in zip(names, rates)],
            [impls[n]["max_tokens_per_s"] - r for n, r in zip(names, rates)]]
  fig, ax = plt.subplots(figsize=(7, 4.2))
  bars = ax.bar(names, rates, color="tab:blue", yerr=spread, capsize=4, ecolor="0.4")
  ax.bar_label(bars, labels=[f"{r / 1e3:,.0f}k" for r in rates], fontsize=8)
  ax.set(ylabel="tokens/s (steady state)",
         title="Training throughput (first epoch excluded; bars: min-max per epoch)")
  ax.tick_params(axis="x", labelrotation=20)
  fig.tight_layout()
  fig.savefig(pathlib.Path(folder) / "throughput.png", dpi=120)
  plt.close(fig)


# The shape of results.json (schema_version 2): key -> type, for the top level and for
# each implementation's record. `validate` checks a loaded file against it.
SCHEMA = {
    "schema_version": int, "created": str, "device": str, "preset": str, "partial": bool,
    "config": dict, "inputs": dict, "environment": dict, "baseline": str, "ppl_target": float,
    "tolerances": dict, "parity": list, "parity_judged": bool, "forward_only": dict,
    "ppl_first_epochs": int, "divergence_threshold": float, "sample_prefixes": list,
    "sample_length": int, "impls": dict,
}
IMPL_SCHEMA = {
    "description": str, "layout": str, "device": str, "precision": str, "status": str,
    "perplexity": list, "epoch_seconds": list, "tokens": list, "samples": dict,
    "steady_tokens_per_s": (float, type(None)), "median_tokens_per_s": (float, type(None)),
    "first_epoch_seconds": (float, type(None)), "train_seconds": float,
    "speedup_vs_reference": (float, type(None)), "seconds_to_target_ppl": (float, type(None)),
    "prepare_seconds": (float, type(None)), "peak_memory_bytes": (int, type(None)),
    "execution": str, "error": (str, type(None)),
}
PARITY_SCHEMA = {"group": str, "impl": str, "anchor": str, "check": str,
                 "measured": (float, type(None)),
                 "tolerance": (float, type(None)), "passed": (bool, type(None)), "note": str}
STATUSES = ("ok", "failed", "interrupted", "not run")


def validate(results: dict) -> None:
  """Raises ValueError naming the first key of `results` that does not fit SCHEMA."""
  def fit(obj, schema, where):
    for key, kind in schema.items():
      if key not in obj:
        raise ValueError(f"{where}: missing {key!r}")
      if not isinstance(obj[key], kind):
        raise ValueError(f"{where}.{key}: {type(obj[key]).__name__} is not {kind}")
  fit(results, SCHEMA, "results")
  if results["schema_version"] != SCHEMA_VERSION:
    raise ValueError(f"schema_version {results['schema_version']}, expected {SCHEMA_VERSION}")
  for name, rec in results["impls"].items():
    fit(rec, IMPL_SCHEMA, f"impls.{name}")
    if rec["status"] not in STATUSES:
      raise ValueError(f"impls.{name}.status {rec['status']!r} not in {STATUSES}")
  for i, row in enumerate(results["parity"]):
    fit(row, PARITY_SCHEMA, f"parity[{i}]")
