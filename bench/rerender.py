"""Rewrites committed reports' report.md, tables and figures from their own results.json with
today's renderers (the figures stay the run's: only how they are presented changes), so that
what a renderer learned since (marks on rows that do not train the reference computation, why
a chaotic final check failed) reaches the reports already committed.

    python bench/rerender.py reports/2026-12-01-cpu-seed-truth [more folders]

Each folder is rebuilt beside itself; the files the folder already holds are replaced by their
new versions, each atomically (a report from before SVGs and CSV tables gets none); results.json
is kept byte for byte.
"""
import json
import os
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared.reports import folder, markdown, plots  # noqa: E402 - after the path that finds them


def rerender(path: pathlib.Path) -> None:
  """Rebuilds report folder `path` from its results.json: each file it holds, but results.json,
  replaced by the new renderers' version."""
  new = path.with_name(f".{path.name}.rerender")
  shutil.rmtree(new, ignore_errors=True)
  try:
    folder.write_report(json.loads((path / "results.json").read_text()), new, markdown.render, plots.write_all)
    for made in new.rglob("*"):
      old = path / made.relative_to(new)
      if made.is_file() and old.is_file() and old.name != "results.json":
        os.replace(made, old)
  finally:
    shutil.rmtree(new, ignore_errors=True)


def main(argv) -> int:
  for name in argv:
    rerender(pathlib.Path(name))
    print(f"rerendered {name}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
