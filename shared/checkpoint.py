"""Checkpoints: a run that loses its machine at any moment continues as the same run.

While compare.py trains, a checkpoint lies beside the report folder it will write
(`<folder>.checkpoint`). It holds the flags that started the run, the code and package
versions it ran with, every finished unit of work (a phase, a seed, a sweep point, an
ablation lever) with all its records, and the unit in progress: its records so far and
every row's parameters in the canonical layout of shared/params.py (SGD keeps no other
state; minibatches are drawn up front from the seed, so the epoch count is the data
position). `compare.py --resume FOLDER` rebuilds the run from its flags, skips what
finished, puts the parameters back and trains on from the next epoch: the same
arithmetic on the same minibatches, so the same perplexities, bit for bit.

One file, written atomically (a temporary file, fsync, rename): a crash while writing
leaves the previous checkpoint whole. Its first line is the SHA-256 of the rest, an
`.npz` archive (the state as JSON, the parameters as arrays), checked before anything is
read. Written after an epoch when `every` seconds have passed since the last write, and at
every boundary between units; removed once the report is written.
"""
import datetime
import hashlib
import io
import json
import os
import pathlib
import socket
import statistics
import time

import numpy as np

from shared import environment

# 2: one unit per phase of work ("run main", "seed 3 truth", "point 2", "lever unroll"), each
# stored as the runner's outcome (shared/runner.py); format 1 (before) stored seeds whole.
FORMAT = 2
MAGIC = b"gru-parity-checkpoint"
SUFFIX = ".checkpoint"
DEFAULT_EVERY = 60.0  # seconds of training between two writes
ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = ("compare.py", "compare_flags.py", "shared", "torch_impl", "jax_impl", "keras_impl")  # what a run depends on
PACKAGES = ("torch", "jax", "jaxlib", "flax", "optax", "keras", "numpy")  # whose versions change numbers


def path_for(folder) -> pathlib.Path:
  """The checkpoint of the report that will be written to `folder`."""
  folder = pathlib.Path(folder)
  return folder.with_name(folder.name + SUFFIX)


def fingerprint(root=ROOT) -> dict:
  """{file: SHA-256} of every Python source the run's numbers depend on: all but the report
  writers (shared/reports/), which draw the finished report from the stored numbers."""
  files = [root / f for f in SOURCES if f.endswith(".py")]
  files += [p for d in SOURCES if not d.endswith(".py") for p in sorted((root / d).rglob("*.py"))
            if "reports" not in p.relative_to(root).parts]
  return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def versions() -> dict:
  return environment.package_versions(PACKAGES)


class Checkpoint:
  """A run's checkpoint. Units are named by keys ("run main", "seed 3 truth", "point 2",
  "lever unroll": shared/runner.py); `done(key)` gives a finished unit's result, `live(key)`
  the unit in progress, `epoch_done(...)` records progress after an epoch, `finish(key,
  result)` closes a unit. Every method is a no-op on OFF (a run that keeps no checkpoint)."""

  def __init__(self, path, argv, every=DEFAULT_EVERY, state=None, arrays=None):
    self.path, self.every = pathlib.Path(path), float(every)
    self.state = state or {"format": FORMAT, "argv": list(argv), "every": self.every, "code": fingerprint(),
                           "packages": versions(), "started": _now(), "done": {}, "live": {}, "resumes": [],
                           "write_seconds": [], "bytes": None, "writer": _writer()}
    self.arrays = arrays or {}  # live unit key -> {row: {parameter: array}}
    self.last_write = time.monotonic()

  # --- units ---------------------------------------------------------------------------
  def pin(self, settings: dict) -> None:
    """Settings the run resolved on this machine as it started (threads, devices): stored on
    a new run and written at once, so that a crash in the first minute can be resumed; on a
    resumed run, checked: other threads or devices would not give the same numbers."""
    stored = self.state.setdefault("settings", settings)
    differ = [f"{k} {stored.get(k)!r} (now {v!r})" for k, v in settings.items() if stored.get(k) != v]
    if differ:
      raise ValueError(f"{self.path} was trained with other settings on this machine: {', '.join(differ)}; "
                       "resume it where it ran (the same cores, devices and thread count), or start again")
    if not self.state["resumes"]:
      self.save()

  def done(self, key: str):
    return self.state["done"].get(key)

  def live(self, key: str):
    """(state, {row: params}) of unit `key` as last written, or None."""
    if key not in self.state["live"]:
      return None
    return self.state["live"][key], self.arrays.get(key, {})

  def epoch_done(self, key: str, state, impls: dict) -> None:
    """After an epoch of unit `key`: writes `state()` (JSON: its "records" by name and whatever
    else the unit needs) and the parameters of every row still training (`impls` by name), if
    `every` seconds have passed since the last write."""
    if time.monotonic() - self.last_write < self.every:
      return
    self.state["live"][key] = json.loads(json.dumps(state()))  # a snapshot, consistent with the arrays
    records = self.state["live"][key]["records"]
    self.arrays[key] = {n: impl.get_params() for n, impl in impls.items() if records[n]["status"] == "running"}
    self.save()

  def finish(self, key: str, result) -> None:
    """Unit `key` is complete with `result` (JSON); its own units ("key ...") go."""
    for store in (self.state["done"], self.state["live"], self.arrays):
      for k in [k for k in store if k == key or k.startswith(key + " ")]:
        del store[k]
    self.state["done"][key] = result
    self.save()

  # --- the file -----------------------------------------------------------------------
  def save(self) -> None:
    """Writes the whole checkpoint atomically; the previous one stays whole until the rename."""
    start = time.perf_counter()
    names, arrays = {}, {}
    for key, rows in self.arrays.items():
      for row, params in rows.items():
        for p, a in params.items():
          names.setdefault(key, {}).setdefault(row, {})[p] = f"a{len(arrays)}"
          arrays[f"a{len(arrays)}"] = np.asarray(a)
    state = json.dumps({**self.state, "written": _now(), "arrays": names}).encode()
    buffer = io.BytesIO()
    np.savez(buffer, state=np.frombuffer(state, np.uint8), **arrays)
    payload = buffer.getvalue()
    tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
    try:
      with open(tmp, "wb") as f:
        f.write(MAGIC + b" " + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
        f.flush()
        os.fsync(f.fileno())
      os.replace(tmp, self.path)
    except OSError as e:  # a full disk, a folder made read-only: the previous checkpoint is whole
      tmp.unlink(missing_ok=True)
      raise SystemExit(f"compare.py: error: cannot write the checkpoint {self.path} ({e.strerror or e}): free "
                       "some space or make the folder writable, then resume the run with --resume") from None
    _fsync_dir(self.path.parent)
    self.last_write = time.monotonic()
    self.state["bytes"] = max(self.state["bytes"] or 0, self.path.stat().st_size)  # the largest written
    self.state["write_seconds"].append(time.perf_counter() - start)  # every session's, for the report

  def remove(self) -> None:
    self.path.unlink(missing_ok=True)
    self.sweep()

  def sweep(self) -> None:
    """Removes what a killed writer left: half-written checkpoints (a kill inside `save`)."""
    for stale in self.path.parent.glob(f".{self.path.name}.tmp-*"):
      stale.unlink(missing_ok=True)

  def summary(self) -> dict:
    """What results.json says of this run's checkpoints."""
    w = self.state["write_seconds"]
    return {"path": self.path.name, "every_seconds": self.every, "writes": len(w), "bytes": self.state["bytes"],
            "median_write_seconds": statistics.median(w) if w else None, "max_write_seconds": max(w, default=None),
            "resumes": self.state["resumes"], "started": self.state["started"], "argv": self.state["argv"]}


class _Off(Checkpoint):
  def __init__(self):  # noqa: D107 - no file, no state
    self.state, self.arrays = {"done": {}, "live": {}, "resumes": []}, {}

  def pin(self, settings) -> None:
    pass

  def epoch_done(self, *args) -> None:
    pass

  def finish(self, key, result) -> None:
    pass

  def save(self) -> None:
    pass

  def remove(self) -> None:
    pass

  def sweep(self) -> None:
    pass

  def summary(self):
    return None


OFF = _Off()


def _writer() -> dict:
  """The process that writes the checkpoint: a resume refuses while it still runs."""
  return {"host": socket.gethostname(), "pid": os.getpid()}


def _still_running(writer: dict) -> bool:
  """Whether `writer` is a compare.py process alive on this machine (its command line is
  read, so that a process id reused by another program does not count)."""
  if not writer or writer["host"] != socket.gethostname() or writer["pid"] == os.getpid():
    return False
  try:
    return b"compare.py" in pathlib.Path(f"/proc/{writer['pid']}/cmdline").read_bytes()
  except OSError:
    return False


def _now() -> str:
  return datetime.datetime.now().isoformat(timespec="seconds")


def _fsync_dir(folder: pathlib.Path) -> None:
  """The rename itself survives a power cut once the folder is synced (POSIX)."""
  try:
    fd = os.open(folder, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def read(path) -> Checkpoint:
  """The checkpoint at `path`, its integrity checked; ValueError (one line) if it fails."""
  path = pathlib.Path(path)
  blob = path.read_bytes()
  head, _, payload = blob.partition(b"\n")
  magic, _, digest = head.partition(b" ")
  if magic != MAGIC or hashlib.sha256(payload).hexdigest().encode() != digest:
    raise ValueError(f"{path} fails its integrity check (not a whole checkpoint of this project: its SHA-256 "
                     "does not match); it cannot be resumed: start the run again")
  try:
    with np.load(io.BytesIO(payload)) as z:
      state = json.loads(z["state"].tobytes())
      arrays = {key: {row: {p: z[a] for p, a in params.items()} for row, params in rows.items()}
                for key, rows in state.pop("arrays").items()}
    if state.get("format") != FORMAT:
      raise ValueError(f"{path} has checkpoint format {state.get('format')}, this code reads {FORMAT}; "
                       "start the run again")
    return Checkpoint(path, state["argv"], state.get("every", DEFAULT_EVERY), state=state, arrays=arrays)
  except (KeyError, TypeError, AttributeError) as e:
    raise ValueError(f"{path} is not a checkpoint this code can read ({type(e).__name__}: {e}); "
                     "start the run again") from None


def resume(folder, every=None) -> Checkpoint:
  """The checkpoint of the run that writes `folder`, ready to continue; ValueError naming
  the fix when it cannot be: a finished report, a folder that is not a run, a damaged
  checkpoint, other code or other package versions."""
  folder = pathlib.Path(folder)
  if _finished(folder / "results.json"):
    raise ValueError(f"{folder} is a finished report: there is nothing to resume (start a new run instead)")
  path = path_for(folder)
  if not path.exists():
    raise ValueError(f"{folder} is not a run that can be resumed: no checkpoint at {path} (a run keeps one "
                     "beside its report folder while it trains); give the report folder a run was writing")
  ck = read(path)
  if _still_running(ck.state.get("writer")):
    raise ValueError(f"the run writing {path} is still running (process {ck.state['writer']['pid']}): "
                     "let it finish, or stop it, before resuming")
  _same_versions(ck, path)
  ck.state["writer"] = _writer()
  ck.every = ck.state["every"] if every is None else float(every)
  ck.sweep()
  ck.state["resumes"].append({"at": _now(), "checkpoint_written": ck.state.get("written"),
                              "from": {k: _epochs(v) for k, v in ck.state["live"].items()},
                              "units_done": len(ck.state["done"])})
  return ck


def _finished(results: pathlib.Path) -> bool:
  """Whether `results` is a finished report's results.json. One that cannot be read (damaged
  bytes, not an object) is taken for the partial report it replaces: the checkpoint beside it
  holds the whole run, and the resume writes the report anew."""
  try:
    stored = json.loads(results.read_text())
  except (OSError, UnicodeDecodeError, ValueError):
    return False
  return isinstance(stored, dict) and not stored.get("partial")


def _epochs(live: dict) -> int:
  """The epoch a live unit resumes after: the fewest epochs any of its training rows ran."""
  running = [len(r["perplexity"]) for r in live["records"].values() if r["status"] == "running"]
  return min(running, default=0)


def _same_versions(ck: Checkpoint, path) -> None:
  code, now = ck.state["code"], fingerprint()
  changed = sorted(f for f in set(code) | set(now) if code.get(f) != now.get(f))
  if changed:
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    raise ValueError(f"{path} was written by other code ({shown} differ): resume it with the code that "
                     "started it (git checkout), or start the run again")
  packages, installed = ck.state["packages"], versions()
  other = [f"{p} {packages.get(p)} (installed {installed.get(p)})" for p in sorted(set(packages) | set(installed))
           if packages.get(p) != installed.get(p)]
  if other:
    raise ValueError(f"{path} was written with other package versions: {', '.join(other)}; install those "
                     "to resume it, or start the run again")
