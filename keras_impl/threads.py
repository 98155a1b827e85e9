"""The Keras rows' share of the CPU: the threads of the backend their process runs on, set as
that backend's own rows set them (torch_impl/threads.py, jax_impl/threads.py), and what the
report's environment block says of them. Importing this module starts no framework."""
import os

from shared import threads


def backend_side(backend: str):
  """The threads module of the side of the repository that `backend` ("jax", "torch") is."""
  if backend == "jax":
    from jax_impl import threads as side
  else:
    from torch_impl import threads as side
  return side


def apply(backend: str, n: int) -> int:
  """Gives the backend's compute pool n threads (0: every core); returns the count."""
  return backend_side(backend).apply(n)


def describe() -> dict:
  """The harness's view: each Keras row runs in a process of its own, on one backend,
  with the run's threads (the rows' own execution says what their products run on)."""
  return {"threads": int(os.environ.get(threads.MARK) or threads.cores()),
          "processes": "one per Keras row (Keras takes its backend once per process: KERAS_BACKEND)",
          "matmul": "the backend's own: XLA:CPU for keras-jax, ATen for keras-torch (as the jax and torch "
                    "rows' entries say)"}
