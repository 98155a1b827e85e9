"""What a JAX row's epochs spend their time on, from jax.profiler (mirrors
torch_impl/profile.py): the device's events for bench/profile_rows.py, the matrix products'
share of an epoch for every report (`time_split`)."""
import pathlib
import re
import tempfile

import jax
from jax.profiler import ProfileData

from shared.profile import covered, split, summary, timed


def device_profile(run, times: int, on_gpu: bool) -> dict:
  """Calls `run()` `times` times under jax.profiler.trace. On a GPU: every event on the
  device's stream lines (kernels and copies, CUPTI), their count and total seconds, and
  the names that took longest. On a CPU: the thunks XLA:CPU's runtime ran (one event per HLO
  instruction, on the host's threads: `_thunks`).

  XLA runs its command buffers op by op while a profiler is active: the kernels are the
  same, only their launches differ from an unprofiled epoch.

  Returns shared.profile.summary's dict and "device", over all calls.
  """
  data = _trace(lambda: [run() for _ in range(times)])
  devices = [p for p in data.planes if p.name.startswith("/device:GPU")]
  if not devices:
    if on_gpu:
      return {"what": "no GPU plane in the trace (another profiler may hold CUPTI: profile each framework in its "
                      "own process)", "device": False, "events": None, "seconds": None, "event_seconds": None, "top": []}
    events = [(s["hlo_op"], e.start_ns / 1e9, e.duration_ns / 1e9) for s, e in _thunks(data)
              if not s["hlo_op"].startswith(CONTAINERS)]
    return {**summary("XLA:CPU thunks (an HLO instruction each) on the host's threads", events), "device": False}
  events = [(e.name, e.start_ns / 1e9, e.duration_ns / 1e9) for p in devices for line in p.lines
            if line.name.startswith("Stream") for e in line.events]
  return {**summary("XLA GPU kernels and copies on the device's streams (CUPTI)", events), "device": True}


# Thunks that run others (a loop's body, a branch): their events span their contents'.
CONTAINERS = ("while", "conditional", "call")


def all_reduce(run) -> dict:
  """`run()` (one epoch) under jax.profiler: XLA:CPU's all-reduce thunks, {"events", "seconds":
  the time at least one device was in one (the devices of one process reduce side by side)}."""
  events = [e for s, e in _thunks(_trace(run)) if s["hlo_op"].startswith("all-reduce")]
  return {"events": len(events), "seconds": covered(sorted((e.start_ns / 1e9, (e.start_ns + e.duration_ns) / 1e9)
                                                           for e in events))}


def _trace(run) -> ProfileData:
  """`run()` under jax.profiler.trace: the trace it wrote, read."""
  with tempfile.TemporaryDirectory() as folder:
    with jax.profiler.trace(folder):
      run()
    (trace,) = pathlib.Path(folder).rglob("*.xplane.pb")
    return ProfileData.from_file(str(trace))


def _thunks(data: ProfileData) -> list:
  """(stats, event) of every thunk XLA:CPU ran: the host plane's events that name an HLO
  instruction ("hlo_op") of a module ("hlo_module")."""
  events = [(dict(e.stats), e) for p in data.planes if p.name == "/host:CPU" for line in p.lines for e in line.events]
  return [(s, e) for s, e in events if "hlo_op" in s and "hlo_module" in s]


_COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$")    # "%fused_computation.1 (...) -> f32[..] {"
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = ")     # "  %ynn_fusion.1 = f32[32,256]{1,0} fusion(.."
_CALLS = re.compile(r"calls=%?([\w.\-]+)")


def _multiplies(line: str) -> bool:
  return " dot(" in line or " convolution(" in line or ("custom-call(" in line and "matmul" in line)


def product_ops(hlo: str) -> set:
  """The instructions of a compiled HLO module (its text, `Compiled.as_text()`) that run a
  matrix product: dots, convolutions, custom calls to a matmul (oneDNN), and the fusions whose
  computations hold one (XLA:CPU's YNNPACK and loop fusions: a product fused with the
  elementwise work around it counts whole)."""
  body, current = {}, None  # computation -> [(instruction, multiplies, computations it calls)]
  for line in hlo.splitlines():
    if (i := _INSTRUCTION.match(line)) and current is not None:
      body[current].append((i.group(1), _multiplies(line), set(_CALLS.findall(line))))
    elif c := _COMPUTATION.match(line):
      current = c.group(1)
      body[current] = []
  holds, new = set(), True
  while new:  # fusions inside fusions: until no computation is added
    new = {c for c, ops in body.items() if c not in holds and any(m or callees & holds for _, m, callees in ops)}
    holds |= new
  return {n for ops in body.values() for n, m, callees in ops if m or callees & holds}


def time_split(run, programs: list) -> dict:
  """Where an epoch's time goes: `run()` (one epoch) under jax.profiler, the thunks of the
  `programs` it runs (their compiled HLO texts) that multiply matrices (product_ops), each
  timed by XLA:CPU's runtime on its own thread, against the epoch's wall seconds.
  shared.profile.split's dict; no share when a traced thunk of a program's module is not
  among that program's instructions (the program given is not the one that ran)."""
  products, names = {}, {}
  for text in programs:
    module = text.split(",", 1)[0].split()[-1]
    products.setdefault(module, set()).update(product_ops(text))
    names.setdefault(module, set()).update(m.group(1) for line in text.splitlines() if (m := _INSTRUCTION.match(line)))
  seconds = []
  data = _trace(lambda: seconds.append(timed(run)))
  ops = [(s, e) for s, e in _thunks(data) if s["hlo_module"] in products]
  stray = sorted({s["hlo_op"] for s, _ in ops if s["hlo_op"] not in names[s["hlo_module"]]})
  if stray:
    return {"what": f"not profiled: the trace ran thunks its program does not hold ({', '.join(stray[:3])}): "
                    "another program than the one read", "products_share": None}
  found = [(e.start_ns / 1e9, e.duration_ns / 1e9) for s, e in ops if s["hlo_op"] in products[s["hlo_module"]]]
  what = ("jax.profiler: XLA:CPU's thunks that multiply matrices (dots and the fusions that hold one)"
          if ops else "jax.profiler recorded no thunk of the row's programs")
  return split(what, found, seconds[0])

