"""A helper of the tests that start worker processes."""
import time

import psutil


def gone(pids, within: float = 20.0) -> bool:
  """True once none of `pids` runs (a zombie counts as gone) within `within` seconds."""
  deadline = time.monotonic() + within
  while time.monotonic() < deadline:
    if not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
      return True
    time.sleep(0.2)
  return False


class Sleeper:
  """A worker's implementation that only waits: how long a call may take, and what a
  silent worker looks like (tests/test_faults.py)."""
  clipped_steps = 0

  def sleep(self, seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def build_sleeper() -> Sleeper:
  return Sleeper()
