"""How epochs are timed and how busy the machine was meanwhile.

An epoch's time is wall time (time.perf_counter) around a call that returns only when the
device has finished; its CPU time is this process's (time.process_time: every thread, so
a framework's thread pool counts). cores used = CPU seconds / wall seconds. The machine's
load is measured, not assumed: psutil reads the CPU time of the whole machine, so that
what other processes used while a phase trained is CPU time busy minus ours.
"""
import os
import time

import psutil

# Warn (one line, and the report says so) when other processes used more than this many
# cores on average while training ran: on the committed reports' 2-core VM, one other busy
# process cost PyTorch rows up to 50x their speed (issue 17), and a quarter of a core is
# already more than the machine's own background (0.00 cores, and 0.07 of steal time, over
# the 33 minutes of rounds of the quiet seed run reports/2026-11-30-cpu-seed).
OTHER_CORES_WARN = 0.25
# ... or when the 1-minute load average exceeded this before training started: something
# else had been running (load averages lag: a run that just ended counts for minutes).
LOADAVG_WARN = 0.5


def now(cpu=time.process_time) -> tuple:
  """(wall, CPU) clock readings for `since`; `cpu` the CPU clock (this process's, or an
  implementation's that trains in other processes: GRUImpl.cpu_seconds)."""
  return time.perf_counter(), cpu()


def since(start: tuple, cpu=time.process_time) -> tuple:
  """(wall seconds, CPU seconds) since `start` = now(cpu)."""
  wall, used = now(cpu)
  return wall - start[0], used - start[1]


def children_cpu_seconds() -> float:
  """CPU seconds of this process's running children, e.g. the worker processes of a
  data-parallel row; one that has ended counts 0."""
  total = 0.0
  for child in psutil.Process().children(recursive=True):
    try:
      if child.status() != psutil.STATUS_ZOMBIE:  # one that ended is no longer ours to count
        t = child.cpu_times()
        total += t.user + t.system
    except psutil.Error:
      pass
  return total


def _machine() -> dict:
  """CPU times of the cores this process may run on (its affinity: a container's or a
  taskset's other cores are not ours to count), of this process, and of its children
  that finished (Inductor's compiler processes are the run's own work, not load) or still
  run (the workers of data-parallel rows)."""
  mine = sorted(os.sched_getaffinity(0))
  per_cpu = psutil.cpu_times(percpu=True)
  cpus = [per_cpu[k] for k in mine if k < len(per_cpu)]
  total = lambda field: sum(getattr(t, field, 0.0) for t in cpus)
  own = os.times()
  own = own.user + own.system + own.children_user + own.children_system + children_cpu_seconds()
  return {"wall": time.perf_counter(), "own": own,
          "busy": sum(total(k) for k in ("user", "nice", "system", "irq", "softirq")), "steal": total("steal"),
          "loadavg": os.getloadavg()[0], "cores": len(cpus)}


def load_start() -> dict:
  """A reading of the machine to pass to `load_since` when the phase ends."""
  return _machine()


def load_since(start: dict) -> dict:
  """What the machine did since `start`: load averages (1 minute) at both ends, the cores
  other processes used on average (machine CPU time busy minus this process's), and the
  cores the hypervisor took away (steal time), over the phase's wall time."""
  end = _machine()
  wall = max(end["wall"] - start["wall"], 1e-9)
  others = (end["busy"] - start["busy"]) - (end["own"] - start["own"])
  return {"seconds": wall, "loadavg_start": start["loadavg"], "loadavg_end": end["loadavg"],
          "other_cores": max(others, 0.0) / wall, "steal_cores": (end["steal"] - start["steal"]) / wall,
          "cores": end["cores"]}


def load_warning(load: dict):
  """One sentence when other processes used more than OTHER_CORES_WARN cores while a
  phase trained, else None."""
  if load and load["other_cores"] > OTHER_CORES_WARN:
    return (f"other processes used {load['other_cores']:.2f} of {load['cores']} cores on average while it "
            f"trained (warning above {OTHER_CORES_WARN}): its speeds are not those of an idle machine")
  return None


def start_warning(load: float):
  """One sentence when the machine was busy before a run started (`load`, its 1-minute
  load average read before the run imported or built anything, above LOADAVG_WARN), else
  None."""
  if load > LOADAVG_WARN:
    return (f"the load average is {load:.2f} (warning above {LOADAVG_WARN}): something else is running or "
            "just ran; speeds measured now may not be those of an idle machine")
  return None
