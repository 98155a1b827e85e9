"""Shared fixtures. Tests that need the real text find it through GRU_DATA_DIR (.ci/run
sets it); they skip with the reason only where no verified copy is present."""
import numpy as np
import pytest

from shared import data
from shared.config import Config


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
