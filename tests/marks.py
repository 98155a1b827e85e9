"""What is slow: the marker `make test` leaves out and `make test-all` (CI) runs. Slow are
several processes, long trajectories, cold compiles and mutation sweeps (pyproject.toml)."""
import pytest

from shared.rows import IMPLS

COLD_COMPILE = ("torch-compile", "torch-tuned", "torch-tuned-builtin")  # Inductor builds C++ kernels: over a minute cold on the 2-core CPU
# Each Keras row starts a process of its own (Keras and its backend, about 5 s): test_keras.py
# covers them in `make test`, the protocol-wide tests in `make test-all`.
OWN_PROCESS = tuple(n for n, i in IMPLS.items() if i.own_process)


def rows(names=tuple(IMPLS), slow=()) -> list:
  """`names` as pytest parameters, the cold-compiling rows and those in `slow` (covered by a
  sibling row of the same code path in `make test`) marked slow."""
  return [pytest.param(n, marks=pytest.mark.slow) if n in COLD_COMPILE + OWN_PROCESS + tuple(slow) else n
          for n in names]
