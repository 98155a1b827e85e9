"""A report's folder: chosen, checked and held (shared/lock.py) before training, then written
whole (built in a temporary folder beside it and renamed into place, never over an earlier
report, never over a folder the run did not create), with the index of the folder it went
into refreshed."""
import datetime
import json
import os
import pathlib
import shutil
import sys
import tempfile

from shared import lock, records
from shared.reports import index, markdown, plots, report, tables
from shared.text import slug


def default_dir(root, device: str, name: str) -> pathlib.Path:
  """reports/<date>-<device>-<name>, with -2, -3, ... if taken (never overwritten), held."""
  return free(pathlib.Path(root) / "reports" / f"{datetime.date.today()}-{slug(device)}-{name}")


def free(base: pathlib.Path) -> pathlib.Path:
  """`base`, or base-2, base-3, ...: the first that neither exists, nor has a checkpoint (a run
  that did not finish), nor is held by another run; held by this one from now on."""
  path, n = base, 1
  while True:
    if not path.exists() and not path.with_name(path.name + ".checkpoint").exists():
      try:
        lock.hold(path)
        return path
      except ValueError:  # another run chose it a moment ago
        pass
    n += 1
    path = base.with_name(f"{base.name}-{n}")


def check_out(out: pathlib.Path, resuming: bool = False) -> pathlib.Path:
  """ValueError now, not after training, if the report could not be written to `out` (a resumed
  run may complete the partial report a Ctrl-C left there)."""
  try:
    out.parent.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise ValueError(f"cannot create {out.parent} ({e.strerror}); choose another --out") from None
  if not os.access(out.parent, os.W_OK):
    raise ValueError(f"{out.parent} is not writable; choose another --out")
  lock.hold(out)  # from now on no other run writes here
  ck = out.with_name(out.name + ".checkpoint")
  if out.exists() and not resuming:
    raise ValueError(f"--out {out} exists; reports are never overwritten: choose another folder")
  if ck.exists() and not resuming:
    raise ValueError(f"{ck} holds the checkpoint of a run that did not finish: continue it with --resume {out}, "
                     "or delete the file")
  return out


def write(results: dict, out: pathlib.Path, ck, root) -> None:
  """The report (markdown.render, plots.write_all), then the index of the folder it went
  into. A whole report removes its run's checkpoint `ck`; a partial one (a Ctrl-C) keeps it,
  and its resume replaces the partial report once the new one is written."""
  results["checkpoint"] = ck.summary()
  if out.exists() and not ck.state["resumes"]:  # not this run's: it was refused at the start
    taken, out = out, free(out)
    print(f"compare.py: warning: {taken} appeared while this run trained and is left as it is; the report goes "
          f"to {out}", file=sys.stderr)
  aside = out.with_name(f".{out.name}.partial-{os.getpid()}")
  if out.exists():  # the partial report of the run this one resumed
    os.rename(out, aside)
  for stale in [*out.parent.glob(f".{out.name}.tmp-*"), *out.parent.glob(f".{out.name}.partial-*")]:
    shutil.rmtree(stale, ignore_errors=True)  # a report half-built, or set aside, when a run was killed
  path = write_report(results, out, markdown.render, plots.write_all)
  shutil.rmtree(aside, ignore_errors=True)
  if not results["partial"]:
    ck.remove()
  print(f"report: {path}")
  written = index.refresh(path.parent, always=path.parent.resolve() == (pathlib.Path(root) / "reports").resolve())
  if written:
    print(f"index: {written}")


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
    results = report.finite({"schema_version": records.SCHEMA_VERSION, **results})
    (tmp / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
    draw(results, tmp)
    text = render(results)
    (tmp / "report.md").write_text(text)
    tables.write(text, tmp)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)  # mkdtemp's folder is the owner's alone; a report is as any folder
    os.rename(tmp, out_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return out_dir
