"""What the harness needs to start a Keras row's process (shared/registry.py), before any
Keras starts: whether it can run here, and the environment that gives it its backend.
Keras takes its backend once per process, from KERAS_BACKEND as it is imported, so each
Keras row trains in a process of its own (shared/workers.py). Standard library only."""
import importlib.metadata
import importlib.util

from shared import threads
from shared.protocol import Unavailable

MIN_VERSION = 3  # Keras 3: several backends, one model


def check(info) -> None:
  """Unavailable (one line naming the fix) when the Keras row `info` (a shared.rows.Impl)
  cannot run here: the other rows run."""
  try:
    version = importlib.metadata.version("keras")
  except importlib.metadata.PackageNotFoundError:
    raise Unavailable(f"{info.name} needs Keras 3, which is not installed: pip install -c constraints.txt "
                      "keras (make install does)") from None
  if int(version.split(".")[0]) < MIN_VERSION:
    raise Unavailable(f"{info.name} needs Keras 3 and this machine has Keras {version}: "
                      "pip install -c constraints.txt keras")
  if importlib.util.find_spec(info.engine) is None:
    raise Unavailable(f"{info.name} runs Keras on {info.engine}, which is not installed: "
                      f"install {info.engine} (make install does)")


def environment(info, config, device=None) -> dict:
  """The environment of the row's process: the run's threads (shared/threads.py), its
  backend, 64-bit JAX for a float64 run and, on `--device cpu`, no GPU."""
  env = threads.environment(threads.resolve(config.threads))
  env["KERAS_BACKEND"] = info.engine
  if config.dtype == "float64" and info.engine == "jax":
    env["JAX_ENABLE_X64"] = "1"  # else JAX silently makes Keras's float64 variables float32
  if device == "cpu":  # no GPU for this row, as --device cpu keeps the others off theirs
    env.update(JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
  return env
