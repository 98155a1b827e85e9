"""How many compute threads each framework gets: one number for both, set once per process
before either framework starts, and stated in every report.

Left alone, the two frameworks do not use the same share of a CPU. PyTorch runs an OpenMP
pool of one thread per core whose idle threads busy-wait (OpenMP's default), so it takes
every core while it runs and starves any other process, and collapses when another takes
one (issue 17: 672 against 33.6k tokens/s under one competing process, 2-core Xeon).
XLA:CPU sizes its own pool from the cores too, but its small GRU kernels use about one.
`configure(n)` gives both n threads: OpenMP's and MKL's pools (OMP_NUM_THREADS,
MKL_NUM_THREADS; torch.set_num_threads repeats it in torch_impl/threads.py), OpenMP
waiting passively (OMP_WAIT_POLICY=PASSIVE: an idle thread sleeps instead of spinning),
and XLA:CPU's pool (PJRT_NPROC, which its PJRT CPU client reads when it starts; with one
thread also --xla_cpu_multi_thread_eigen=false, which jaxlib 0.10.2 accepts and ignores,
measured in issue 19: PJRT_NPROC alone sizes the pool). These are read when a framework starts,
so they must be set before torch is imported and before JAX's CPU client exists.
Standard library only.
"""
import os
import sys

from shared import machine

MARK = "GRU_PARITY_THREADS"  # the count this process's frameworks were configured with
SINGLE_THREAD_XLA_FLAG = "--xla_cpu_multi_thread_eigen=false"


def cores() -> int:
  """The cores this process may run on (its CPU affinity)."""
  return len(os.sched_getaffinity(0))


def resolve(threads: int) -> int:
  """`threads`, or every core when it is 0 (the default)."""
  return threads or cores()


def check(threads) -> str:
  """"" or a one-line warning; ValueError naming the fix for a count that cannot be."""
  if threads is None or threads < 1:
    raise ValueError(f"--threads must be >= 1 (the default is every core: {cores()}), got {threads}")
  if threads > cores():
    return (f"--threads {threads} is more than the {cores()} cores this process may use: the frameworks' "
            "threads will share cores (oversubscribed), and the report says so")
  return ""


def start(threads) -> tuple:
  """(the count, a warning or ""): `threads` (None: every core) compute threads for every
  framework this process will start, set before either starts; ValueError naming the fix."""
  n = cores() if threads is None else threads
  warning = check(n)
  configure(n)
  return n, warning


def environment(n: int) -> dict:
  """The environment variables that give both frameworks n compute threads."""
  xla = os.environ.get("XLA_FLAGS", "").replace(SINGLE_THREAD_XLA_FLAG, "").strip()
  if n == 1:
    xla = f"{xla} {SINGLE_THREAD_XLA_FLAG}".strip()
  env = {"OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n), "PJRT_NPROC": str(n), MARK: str(n),
         "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY") or "PASSIVE"}  # a user's choice stays
  return {**env, "XLA_FLAGS": xla} if xla else env


def configure(n: int) -> None:
  """Sets n compute threads for every framework this process will start. Raises
  ValueError (one line naming the fix) if torch or jax was imported before with another
  setting, since neither can change its pools once started."""
  started = [fw for fw in ("torch", "jax") if fw in sys.modules]
  if started and os.environ.get(MARK) != str(n):
    had = f"{os.environ[MARK]} threads" if MARK in os.environ else "its own thread defaults"
    raise ValueError(f"{' and '.join(started)} already started in this process with {had}; "
                     f"--threads {n} needs a fresh process (run compare.py from the shell)")
  env = environment(n)
  os.environ.update(env)
  if "XLA_FLAGS" not in env:  # it held only our single-thread flag
    os.environ.pop("XLA_FLAGS", None)


def settings() -> dict:
  """What this process set, for the report's environment block."""
  keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "PJRT_NPROC", "XLA_FLAGS")
  return {"threads": int(os.environ[MARK]) if MARK in os.environ else None, "cores": cores(),
          "instruction_set": machine.describe()["isa"], **{k: os.environ.get(k) for k in keys}}
