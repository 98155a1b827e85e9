"""What the harness needs to start a PyTorch row in a process of its own (shared/registry.py),
before torch starts there: OpenMP reads its wait policy once per process, so a row that
chooses another one than the run's (the omp_spin option, torch_impl/options.py) trains in a
process of its own. Standard library only.

The run's policy is OMP_WAIT_POLICY=PASSIVE (shared/threads.py: an idle OpenMP thread sleeps
at once, so that PyTorch never starves XLA's threads or another process of a core). "spin" adds
GOMP_SPINCOUNT=300000, GNU OpenMP's own default spin before sleeping when no policy is set:
each of the step's small products wakes the pool's threads, and sleeping between them is what
made the PyTorch rows slower at two threads than at one on the 2-core EPYC (measured:
torch-compile 25.8k tokens/s passive, 57.7k with the spin, 43.4k on one thread).
"""
from shared import threads

SPIN = {"passive": {}, "spin": {"GOMP_SPINCOUNT": "300000"}}


def spin(info, config) -> str:
  """The row's OpenMP wait: the omp_spin option, else the table's choice for the row."""
  return config.option("omp_spin", "") or ("spin" if info.own_process else "passive")


def conditions(info, config) -> dict:
  """What of the row's process changes how its products run, against the run's own process:
  its OpenMP spin (shared/bounds.py measures its per-shape bound under it)."""
  return SPIN[spin(info, config)]


def check(info) -> None:
  """Every PyTorch row can run in a process of its own."""


def environment(info, config, device=None) -> dict:
  """The row's process: the run's threads (shared/threads.py) and its OpenMP wait; on
  `--device cpu`, no GPU."""
  env = {**threads.environment(threads.resolve(config.threads)), **SPIN[spin(info, config)]}
  if device == "cpu":
    env["CUDA_VISIBLE_DEVICES"] = ""
  return env
