"""What the device does during a JAX row's epochs, from jax.profiler (mirrors
torch_impl/profile.py; bench/profile_rows.py reports both)."""
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

  XLA runs its command buffers op by op while a profiler is active: the kernels are the
  same, only their launches differ from an unprofiled epoch.

  Returns shared.profile.summary's dict and "device", over all calls.
  """
  with tempfile.TemporaryDirectory() as folder:
    with jax.profiler.trace(folder):
      for _ in range(times):
        run()
    (trace,) = pathlib.Path(folder).rglob("*.xplane.pb")
    data = ProfileData.from_file(str(trace))
  devices = [p for p in data.planes if p.name.startswith("/device:GPU")]
  if not devices:
    why = ("no GPU plane in the trace (another profiler may hold CUPTI: profile each framework in its own "
           "process)" if on_gpu else "no device trace (XLA:CPU records no kernels)")
    return {"what": why, "device": False, "events": None, "seconds": None, "event_seconds": None, "top": []}
  events = [(e.name, e.start_ns / 1e9, e.duration_ns / 1e9) for p in devices for line in p.lines
            if line.name.startswith("Stream") for e in line.events]
  return {**summary("XLA GPU kernels and copies on the device's streams (CUPTI)", events), "device": True}

