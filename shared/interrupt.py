"""A Ctrl-C that is never lost. Python raises KeyboardInterrupt wherever the main thread is
when SIGINT arrives; inside a callback (a framework's garbage-collection hook, a finalizer)
the exception is printed as "ignored" and the run trains on as if nothing had happened.
`install` puts a handler that remembers the signal before it raises, and `check` (called
between epochs, shared/training.py) raises it again if it was swallowed. Standard library only.
"""
import signal

_state = {"pending": False}


def _handler(signum, frame):
  _state["pending"] = True
  raise KeyboardInterrupt


def install() -> None:
  """From now on (main thread only) every SIGINT is remembered until `clear`."""
  _state["pending"] = False
  signal.signal(signal.SIGINT, _handler)


def check() -> None:
  """Raises KeyboardInterrupt if a Ctrl-C came and was swallowed where it landed."""
  if _state["pending"]:
    raise KeyboardInterrupt


def clear() -> None:
  """The Ctrl-C was handled (what it stopped is being kept)."""
  _state["pending"] = False
