"""JAX's share of the CPU (shared/threads.py sets it for the process) and what its matrix
products run on, for the report's environment block."""
import os

import jax
import jaxlib

from shared import threads

# XLA:CPU's dot kernels are its own (Eigen contractions) unless an experimental fusion hands
# them to a library; jaxlib 0.10.2 hands them to YNNPACK by default (the compiled programs
# hold "__ynn_fusion"; a row's --xla-dot changes it per program). The flags, by name.
LIBRARY_FLAGS = {"onednn": "oneDNN", "xnn": "XNNPACK", "ynn": "YNNPACK"}


def pool() -> int:
  """The size of XLA:CPU's thread pool: PJRT_NPROC when set, else every core."""
  return int(os.environ.get("PJRT_NPROC") or 0) or threads.cores()


def apply(n: int) -> int:
  """Checks that XLA:CPU's pool has n threads (0: every core); returns the count. Its pool is
  sized when JAX's CPU client starts, so a different count is a one-line ValueError."""
  want = threads.resolve(n)
  if pool() != want:
    raise ValueError(f"JAX's CPU pool has {pool()} threads in this process, not {want}; "
                     "call shared.threads.configure before JAX starts (compare.py --threads does)")
  return want


def describe() -> dict:
  """Threads, the XLA flags in effect and what XLA:CPU's matrix products run on."""
  flags = os.environ.get("XLA_FLAGS", "")
  libraries = [name for key, name in LIBRARY_FLAGS.items() if f"xla_cpu_experimental_{key}" in flags]
  return {"threads": pool(), "pjrt_nproc": os.environ.get("PJRT_NPROC"), "xla_flags": flags or None,
          "platform": jax.devices("cpu")[0].platform,
          "matmul": ("XLA:CPU dot fusions through " + ", ".join(libraries) + " (XLA_FLAGS)") if libraries
                    else f"XLA:CPU's default dot fusions (jaxlib {jaxlib.__version__}: YNNPACK; no library flag "
                         "in XLA_FLAGS; each row's execution says what its programs use)"}



def gpu_available() -> bool:
  """Whether JAX sees a GPU in this process (its rows train there unless --device cpu)."""
  try:
    return bool(jax.local_devices(backend="gpu"))
  except RuntimeError:  # no GPU backend
    return False
