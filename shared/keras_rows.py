"""The Keras rows, keras-jax and keras-torch: one Keras 3 model (keras_impl/) on each backend.

Keras takes its backend once per process, from KERAS_BACKEND as it is imported, so each
Keras row trains in a process of its own: shared/workers.py's machinery, the one the
data-parallel rows run on, with one worker. Its environment gives it the backend, the
run's threads (shared/threads.py), 64-bit JAX for a float64 run and, on `--device cpu`,
no GPU. A machine without Keras, or without the backend's package, gets a one-line
protocol.Unavailable naming the fix before any process starts; the other rows run.
Standard library only.
"""
import importlib.metadata
import importlib.util

from shared import protocol, threads, workers

BACKENDS = {"keras-jax": "jax", "keras-torch": "torch"}
MODULE = "keras_impl.train"
MIN_VERSION = 3  # Keras 3: several backends, one model


def backend(name: str) -> str:
  return BACKENDS[protocol.split_precision(protocol.split_name(name)[0])[0]]


def check_available(name: str) -> None:
  """protocol.Unavailable (one line naming the fix) when row `name` cannot run here."""
  try:
    version = importlib.metadata.version("keras")
  except importlib.metadata.PackageNotFoundError:
    raise protocol.Unavailable(f"{name} needs Keras 3, which is not installed: pip install -c constraints.txt "
                               "keras (make install does)") from None
  if int(version.split(".")[0]) < MIN_VERSION:
    raise protocol.Unavailable(f"{name} needs Keras 3 and this machine has Keras {version}: "
                               "pip install -c constraints.txt keras")
  if importlib.util.find_spec(backend(name)) is None:
    raise protocol.Unavailable(f"{name} runs Keras on {backend(name)}, which is not installed: "
                               f"install {backend(name)} (make install does)")


def worker_env(name: str, config, device=None) -> dict:
  """The environment of row `name`'s process, set before Keras or its backend starts."""
  env = threads.environment(threads.resolve(config.threads))
  env["KERAS_BACKEND"] = backend(name)
  if config.dtype == "float64" and backend(name) == "jax":
    env["JAX_ENABLE_X64"] = "1"  # else JAX silently makes Keras's float64 variables float32
  if device == "cpu":  # no GPU for this row, as --device cpu keeps the others off theirs
    env.update(JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
  return env


def make(name: str, config, device=None) -> workers.RemoteImpl:
  """The registry's constructor of a Keras row: its process, started here (a failure to
  start fails the build with its one line)."""
  check_available(name)
  return workers.RemoteImpl(name, MODULE, config, device, [worker_env(name, config, device)])
