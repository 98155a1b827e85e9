"""Shared fixtures. Tests that need the real text find it through GRU_DATA_DIR (.ci/run
sets it); they skip with the reason only where no verified copy is present."""
import atexit
import shutil
import tempfile

import numpy as np
import pytest

from shared import bounds, data, threads
from shared.config import Config

# Before any test imports a framework: every core for both, as compare.py's default, so that
# tests may call compare.main in this process (other counts run in a subprocess).
threads.configure(threads.cores())


def _share_xla_programs() -> None:
  """The test suite builds the same tiny implementations many times, and each instance
  compiles its own XLA programs (new jitted functions), about a second each on the 2-core
  CPU. A persistent compilation cache for this session, in a folder removed at exit, lets
  an identical program compile once. Tests only: compare.py never sets it, so every
  report's compile time stays a cold compile."""
  import jax
  folder = tempfile.mkdtemp(prefix="gru-parity-tests-xla-")
  atexit.register(shutil.rmtree, folder, ignore_errors=True)
  jax.config.update("jax_compilation_cache_dir", folder)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


_share_xla_programs()
# Every report times its rows' matrix-product bound (shared/bounds.py) for 0.3 s a shape; the
# tests' tiny shapes need far less to give a figure, and make test runs many reports.
bounds.MIN_SECONDS = 0.02
bounds.CALIBRATION = 64  # the machine's calibrating product: the figure, not the machine's speed
bounds.PEAK = 64  # the measured peak's product: the figure and its table, not the machine's speed


@pytest.fixture(scope="session")
def corpus_vocab():
  try:
    data.locate(download=False)
  except data.DataError as e:
    pytest.skip(f"the Time Machine text is not available (set GRU_DATA_DIR): {e}")
  return data.load_corpus()


@pytest.fixture
def tiny_config():
  """Small sizes for function-level checks: 7 hidden units, batch 3, 5 steps."""
  return Config(batch_size=3, num_steps=5, num_hiddens=7, num_epochs=2, vocab_size=28)


@pytest.fixture
def tiny_batch(tiny_config):
  rng = np.random.default_rng(123)
  shape = (tiny_config.batch_size, tiny_config.num_steps)
  return (rng.integers(0, 28, shape).astype(np.int32), rng.integers(0, 28, shape).astype(np.int32))


@pytest.fixture
def ctrl_c_at_epoch(monkeypatch):
  """ctrl_c_at_epoch(n): the test's n-th call of JaxImpl.train_epoch (any instance) raises
  KeyboardInterrupt, as a Ctrl-C in that epoch would; the calls before it train."""
  from jax_impl.train import JaxImpl
  real = JaxImpl.train_epoch

  def arm(n: int) -> None:
    calls = []

    def interrupted(self, batches):
      calls.append(1)
      if len(calls) == n:
        raise KeyboardInterrupt
      return real(self, batches)
    monkeypatch.setattr(JaxImpl, "train_epoch", interrupted)
  return arm


@pytest.fixture
def build_fails_when(monkeypatch):
  """build_fails_when(predicate, error): building a row (shared.registry.make) raises `error`
  for every config where predicate(config) holds (out of memory, an option the version refuses)."""
  from shared import registry
  real = registry.make

  def arm(predicate, error: BaseException) -> None:
    def make(row, config, device=None, process=False):
      if predicate(config):
        raise error
      return real(row, config, device, process)
    monkeypatch.setattr(registry, "make", make)
  return arm
