"""What the device does during a JAX row's epochs, from jax.profiler (mirrors
torch_impl/profile.py; bench/profile_rows.py reports both)."""
import collections
import pathlib
import tempfile

import jax
from jax.profiler import ProfileData

from shared.profile import summary


def device_profile(run, times: int, on_gpu: bool) -> dict:
  """Calls `run()` `times` times under jax.profiler.trace. On a GPU: every event on the
  device's stream lines (kernels and copies, CUPTI), their count and total seconds, and
  the names that took longest. XLA's CPU runtime records no per-kernel events: on a CPU
  the counts are None.

  Returns {"what", "device", "events", "seconds", "top": [(name, seconds, count)]} over
  all calls (shared/profile.py).
  """
  with tempfile.TemporaryDirectory() as folder:
    with jax.profiler.trace(folder):
      for _ in range(times):
        run()
    (trace,) = pathlib.Path(folder).rglob("*.xplane.pb")
    data = ProfileData.from_file(str(trace))
  devices = [p for p in data.planes if p.name.startswith("/device:GPU")] if on_gpu else []
  if not devices:
    return {"what": "no device trace (XLA:CPU records no kernels)", "device": False, "events": None,
            "seconds": None, "top": []}
  events = [(e.name, e.duration_ns / 1e9) for p in devices for line in p.lines
            if line.name.startswith("Stream") for e in line.events]
  return {**summary("XLA GPU kernels and copies on the device's streams (CUPTI)", events), "device": True}

