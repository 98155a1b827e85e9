"""How long a newcomer's first commands take: clones this repository's HEAD into a fresh
folder and times, one after another, the commands the README gives, writing what it measured
to a JSON file under reports/ (the README quotes it through `compare.py --findings`).

    python bench/setup_times.py --out reports/2026-12-07-cpu-setup.json

pip runs without its cache (PIP_NO_CACHE_DIR=1), as on a newcomer's machine; the text comes
from GRU_DATA_DIR when it is set (else the commands download it).
"""
import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared import environment, machine  # noqa: E402 - after the path that finds them

COMMANDS = (("make install", "creates .venv and installs the pinned versions"),
            ('make compare ARGS="--preset quick"', "every row at the seed sizes for 4 epochs, with its report"),
            ("make test", "the test suite without the slow tests"))


def timed(command: str, cwd) -> dict:
  """Runs `command` in a shell in `cwd`; its wall seconds, or an error with its output's tail."""
  env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
  start = time.perf_counter()
  done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True)
  seconds = time.perf_counter() - start
  if done.returncode:
    raise SystemExit(f"{command} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
  return {"seconds": round(seconds, 1)}


def packages() -> str:
  """Where pip took the packages from: a machine whose pip reads a local mirror (file://
  indexes, local find-links) installs without downloading, and the time says so."""
  found = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
  local = "file://" in found or any(pathlib.Path(p).is_dir() for p in os.environ.get("PIP_FIND_LINKS", "").split())
  return ("packages installed by pip without its cache from this machine's local package mirror (no download "
          "time included)" if local else "packages downloaded by pip without its cache")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", required=True, help="the JSON file to write (must not exist)")
  args = p.parse_args(argv)
  out = pathlib.Path(args.out)
  if out.exists():
    raise SystemExit(f"{out} exists: give another --out")
  with tempfile.TemporaryDirectory() as tmp:
    clone = pathlib.Path(tmp) / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    commit = environment.git_commit(clone)
    commands = []
    for command, what in COMMANDS:
      commands.append({"command": command, "what": what, **timed(command, clone)})
      print(f"{command}: {commands[-1]['seconds']:.0f} s", flush=True)
  data = "the text from GRU_DATA_DIR" if os.environ.get("GRU_DATA_DIR") else "the text downloaded"
  out.write_text(json.dumps({"created": datetime.datetime.now().isoformat(timespec="seconds"),
                             "git_commit": commit, "machine": machine.describe(), "commands": commands,
                             "network": f"{packages()}, {data}"}, indent=1) + "\n")
  print(f"wrote {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
