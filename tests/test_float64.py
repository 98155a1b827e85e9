"""float64 end to end (CPU): every implementation against the NumPy GRUs at float64
round-off, the dtypes at the protocol's edges, torch against JAX trajectories, and JAX's
64-bit mode kept out of float32 runs in the same process."""
import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from shared import data, metrics, registry
from shared.config import Config
from shared.rows import able
from shared.config import preset
from tests import numpy_gru
from tests.marks import rows

# The rows that can train in float64: Keras computes float64 in float32 (shared/rows.py, its
# no_float64; tests/test_keras.py asserts it and the refusal).
NAMES = rows(able(Config(precision="float64")))
ROOT = pathlib.Path(__file__).resolve().parents[1]
# Measured on the tiny config: float64 logits within 6.7e-16 of NumPy's, gradients within
# 1.5e-16 of the gradient norm of the exact complex-step ones; float32 implementations
# measure 1.5e-7..2e-7 and 2e-8..7e-8. 1e-12 passes only float64 arithmetic.
F64_TOL = 1e-12


@pytest.fixture
def config64(tiny_config):
  return tiny_config.set(precision="float64")


@pytest.mark.parametrize("name", NAMES)
def test_float64_forward_and_gradients_match_numpy_exactly(name, config64, tiny_batch):
  impl, _ = numpy_gru.random_impl(name, config64)
  X, Y = tiny_batch
  model, p = numpy_gru.MODELS[impl.layout], impl.get_params()  # as held: see test_protocol
  logits, H = impl.forward(X)
  want, want_H = model(p, X, numpy_gru.zeros_state(X, p))
  assert metrics.max_abs_diff(logits, want) <= F64_TOL and metrics.max_abs_diff(H, want_H) <= F64_TOL
  loss, grads, _ = impl.loss_and_grads(X, Y)
  exact = numpy_gru.complex_step_grads(model, p, X, Y)
  for k in impl.missing:  # a parameter the model lacks has no gradient of its own
    exact[k] = np.zeros_like(exact[k])
  gap = metrics.grads_rel_diff(grads, exact)
  assert abs(loss - numpy_gru.mean_cross_entropy(want, Y)) <= F64_TOL and gap <= F64_TOL, gap


@pytest.mark.parametrize("name", NAMES)
def test_float64_runs_return_float64_at_every_edge(name, config64, tiny_batch):
  impl, _ = numpy_gru.random_impl(name, config64)
  X, Y = tiny_batch
  logits, H = impl.forward(X)
  _, grads, H2 = impl.loss_and_grads(X, Y)
  arrays = [logits, H, H2, *grads.values(), *impl.get_params().values()]
  assert impl.precision == "float64" and all(a.dtype == np.float64 for a in arrays)


def small_config(**overrides):
  return preset("seed", num_hiddens=32, batch_size=8, num_steps=10, max_tokens=1200, **overrides)


# torch against JAX in float64 over 4 epochs of a small configuration on the real text.
# Measured: 4e-16 (scratch) and 1.4e-15 (built-in) over 6 epochs; float32 measures 1e-7.
PAIRS = [("jax-scratch", "torch-scratch"), ("flax-gru", "torch-cudnn")]


@pytest.mark.parametrize("name, anchor", PAIRS)
def test_float64_trajectories_agree_across_frameworks(name, anchor, corpus_vocab):
  config = small_config(num_epochs=4, precision="float64")
  epochs = data.training_epochs(corpus_vocab[0][:config.max_tokens], config)
  a, b = (registry.make_impl(n, config, "cpu") for n in (name, anchor))
  pa = [math.exp(a.train_epoch(e)) for e in epochs]
  pb = [math.exp(b.train_epoch(e)) for e in epochs]
  gap = metrics.rel_diff(pa, pb)
  assert pb[-1] < pb[0] / 1.2 and gap <= F64_TOL, (gap, pb)


_ORDER_SCRIPT = """
import json, math, sys
from shared import data, registry
from shared.config import preset
corpus, _ = data.load_corpus(2000)
out = {}
for precision in sys.argv[1].split(","):
  config = preset("seed", num_hiddens=16, batch_size=8, num_steps=10, max_tokens=2000, num_epochs=2,
                  precision=precision)
  for name in ("jax-scratch", "flax-gru"):  # torch has no process-wide 64-bit switch to leak
    impl = registry.make_impl(name, config, "cpu")
    losses = [impl.train_epoch(e) for e in data.training_epochs(corpus, config)]
    out[f"{precision} {name}"] = [losses, {k: v.tolist() for k, v in impl.get_params().items()}]
print(json.dumps(out))
"""


def _in_fresh_process(precisions: str) -> dict:
  done = subprocess.run([sys.executable, "-c", _ORDER_SCRIPT, precisions], cwd=ROOT, capture_output=True,
                        text=True, check=True, timeout=300)
  return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_float64_run_leaves_later_float32_runs_of_the_process_bit_for_bit_unchanged(corpus_vocab):
  """JAX's 64-bit mode is switched on per float64 implementation call, never globally."""
  alone = _in_fresh_process("highest")
  after = _in_fresh_process("float64,highest")
  for key, (losses, params) in alone.items():
    assert after[key][0] == losses and after[key][1] == params, key  # exact, not approximate
  assert after["float64 jax-scratch"][0] != alone["highest jax-scratch"][0]  # float64 did run
