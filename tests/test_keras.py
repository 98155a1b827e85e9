"""The Keras rows (keras_impl/, its process.py): the conversion table, the registry's
view of them, their refusals, parity with torch-cudnn from the same weights, the known
deviations asserted with their measured size, and a killed Keras worker.

Each Keras row runs in a process of its own (Keras takes its backend once per process), so
the tests that train one start its worker: about 5 s each on the 2-core CPU."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from keras_impl import convert
from keras_impl import process
from shared import metrics, parity, registry, rows, runner, training
from shared import params as P
from shared.config import Config
from shared.protocol import Unavailable
from shared.kinds import compare as comparison
from shared.rows import Row
from tests.processes import gone

TOL = metrics.TOLERANCES["float32"]
CONFIG = Config(batch_size=4, num_steps=6, num_hiddens=16, num_epochs=2, vocab_size=28)


def _epoch(config=CONFIG, n=3, seed=5):
  rng = np.random.default_rng(seed)
  shape = (n, config.batch_size, config.num_steps)
  return rng.integers(0, 28, shape).astype(np.int32), rng.integers(0, 28, shape).astype(np.int32)


# --- NumPy only: the table, the registry, the refusals ---------------------------------------
def test_the_conversion_is_exact_both_ways_and_stacks_gates_z_r_n():
  p = P.init_params(P.BUILTIN, 3, 28, 16)
  kernel, recurrent, bias, w_out, b_out = convert.to_keras(p)
  assert kernel.shape == (28, 48) and recurrent.shape == (16, 48) and bias.shape == (2, 48)
  # Keras stacks z, r, h (torch's n); row 0 of the bias is the input side, row 1 the hidden side
  assert np.array_equal(kernel[:, :16], p["W_iz"]) and np.array_equal(kernel[:, 16:32], p["W_ir"])
  assert np.array_equal(recurrent[:, 32:], p["W_hn"]) and np.array_equal(bias[1, 32:], p["b_hn"])
  assert np.array_equal(bias[0, :16], p["b_iz"]) and np.array_equal(w_out, p["W_hq"])
  back = convert.from_keras([kernel, recurrent, bias, w_out, b_out])
  assert set(back) == set(P.BUILTIN_NAMES) and all(np.array_equal(back[k], p[k]) for k in p)


def test_the_keras_rows_join_the_builtin_group_and_are_paired_with_each_other():
  present = [Row(n) for n in ("torch-cudnn", "flax-gru", "keras-jax", "keras-torch")]
  pairs = [(g, r.name, a.name) for g, r, a in parity.pairs(present)]
  assert ("builtin", "keras-jax", "torch-cudnn") in pairs and ("builtin", "keras-torch", "torch-cudnn") in pairs
  assert ("keras backends", "keras-jax", "keras-torch") in pairs
  assert rows.IMPLS["keras-jax"].framework == "keras" and rows.IMPLS["keras-torch"].layout == P.BUILTIN
  assert [rows.IMPLS[n].runs_on for n in ("keras-jax", "keras-torch", "flax-gru")] == ["jax", "torch", "jax"]


def test_the_jax_backends_training_deviation_applies_only_when_the_state_is_carried():
  kj, kt, cudnn = Row("keras-jax"), Row("keras-torch"), Row("torch-cudnn")
  assert "stateful" in parity.training_deviation(kj, cudnn, carries_state=True)
  assert "stateful" in parity.training_deviation(kt, kj, carries_state=True)
  assert parity.training_deviation(kj, cudnn, carries_state=False) == ""
  assert parity.training_deviation(kt, cudnn, carries_state=True) == ""


def test_keras_rows_are_refused_in_float64_bf16_and_data_parallel_and_left_out_by_default():
  for arith in ("float64", "bf16"):
    with pytest.raises(ValueError, match=r"keras-jax cannot run in (float64|bf16).*leave it out of --impls"):
      rows.check(["torch-cudnn", "keras-jax"], CONFIG.set(precision=arith))
    assert not any(n.startswith("keras") for n in rows.select(None, Config(precision=arith)))
  assert {"keras-jax", "keras-torch"} <= set(rows.select(None, Config()))
  assert not any(n.startswith("keras") for n in rows.select(None, Config(devices=2)))
  truth = comparison.plan(Config(), [Row("torch-cudnn"), Row("keras-torch")], None, truth=True)[1]
  assert [r.name for r in truth.cells[0].rows] == ["torch-cudnn"]  # the float64 truth leaves them out


def test_without_keras_or_its_backend_the_row_is_unavailable_in_one_line(monkeypatch):
  import importlib.metadata

  def missing(name):
    raise importlib.metadata.PackageNotFoundError(name)
  monkeypatch.setattr(importlib.metadata, "version", missing)
  with pytest.raises(Unavailable, match=r"keras-jax needs Keras 3.*pip install .*keras"):
    registry.make_impl("keras-jax", CONFIG, "cpu")
  monkeypatch.undo()
  monkeypatch.setattr(process.importlib.util, "find_spec", lambda name: None)
  with pytest.raises(Unavailable, match=r"keras-torch runs Keras on torch, which is not installed"):
    process.check(rows.IMPLS["keras-torch"])


def test_a_missing_keras_leaves_the_other_rows_running(monkeypatch):
  monkeypatch.setattr(process, "check", lambda info: (_ for _ in ()).throw(
      Unavailable(f"{info.name} needs Keras 3, which is not installed")))
  built = runner.build([Row("torch-cudnn"), Row("keras-torch")], CONFIG, "cpu")
  assert list(built.impls) == ["torch-cudnn"] and "not installed" in built.records["keras-torch"].error
  assert built.records["keras-torch"].status == "failed"


def test_each_keras_process_gets_its_backend_threads_and_device():
  env = process.environment(rows.IMPLS["keras-torch"], CONFIG.set(threads=1), "cpu")
  assert env["KERAS_BACKEND"] == "torch" and env["OMP_NUM_THREADS"] == "1" and env["CUDA_VISIBLE_DEVICES"] == ""
  assert process.environment(rows.IMPLS["keras-jax"], CONFIG)["KERAS_BACKEND"] == "jax"


# --- the rows themselves, each in its process ------------------------------------------------
@pytest.fixture(scope="module")
def built():
  """torch-cudnn in this process and both Keras rows in theirs, from the same weights."""
  b = runner.build([Row("torch-cudnn"), Row("keras-jax"), Row("keras-torch")], CONFIG, "cpu")
  assert set(b.impls) == set(b.records), b.records
  yield b.impls
  runner.release(b)


def test_both_keras_rows_match_torch_cudnn_on_the_first_minibatch(built):
  X, Y = (a[0] for a in _epoch())
  H0 = np.random.default_rng(1).uniform(-0.9, 0.9, (CONFIG.batch_size, CONFIG.num_hiddens)).astype(np.float32)
  ref_logits, ref_H = built["torch-cudnn"].forward(X, H0)
  ref_loss, ref_grads, _ = built["torch-cudnn"].loss_and_grads(X, Y, H0)
  for name in ("keras-jax", "keras-torch"):
    logits, H = built[name].forward(X, H0)
    loss, grads, _ = built[name].loss_and_grads(X, Y, H0)
    assert logits.shape == ref_logits.shape  # time-major (T*B, V), as the protocol says
    assert metrics.rel_diff_arrays(logits, ref_logits) < TOL["logits_rel"], name
    assert metrics.rel_diff_arrays(H, ref_H) < TOL["logits_rel"], name
    assert abs(loss - ref_loss) / ref_loss < TOL["logits_rel"], name
    assert metrics.rel_diff_arrays(grads, ref_grads) < TOL["grads_rel"], name
    assert built[name].clipped_steps is None  # Keras's fit does not report it
    assert "model.fit" in built[name].execution and built[name].launch_seconds > 0


def _train(impl, batches, epochs=2) -> np.ndarray:
  impl.set_params(P.init_params(P.BUILTIN, 0, CONFIG.vocab_size, CONFIG.num_hiddens))
  return np.array([impl.train_epoch(batches) for _ in range(epochs)])


def test_keras_torch_tracks_torch_cudnn_and_keras_jax_trains_as_if_the_state_were_never_carried(built):
  """A few SGD steps with the state carried (the seed's sequential sampling). keras-torch
  follows torch-cudnn within round-off. keras-jax's losses are those of torch-cudnn with
  the state zeroed at every minibatch (random sampling's rule, on the same minibatches):
  the known deviation, whose size here is asserted above round-off."""
  batches = _epoch()
  ours = _train(built["torch-cudnn"], batches)
  assert metrics.rel_diff(_train(built["keras-torch"], batches), ours) < TOL["probe_losses_rel"]
  keras_jax = _train(built["keras-jax"], batches)
  zeroed = registry.make_impl("torch-cudnn", CONFIG.set(sampling="random"), "cpu")
  assert metrics.rel_diff(keras_jax, _train(zeroed, batches)) < TOL["probe_losses_rel"]
  assert metrics.rel_diff(keras_jax, ours) > 100 * TOL["probe_losses_rel"]  # the carry is far above round-off


def test_each_keras_row_is_profiled_by_its_backends_profiler_through_its_worker(built):
  """keras-torch's epoch read by torch.profiler (aten's products), keras-jax's by jax.profiler
  on its train step's program compiled again (keras_impl/profile.py), weights put back."""
  for name, read in (("keras-torch", "torch.profiler"), ("keras-jax", "jax.profiler")):
    before = built[name].get_params()
    split = training.time_split(built[name], _epoch())
    assert split["what"].startswith(read) and 0 < split["products_share"] < 1, (name, split)
    assert all(np.array_equal(before[k], v) for k, v in built[name].get_params().items())


def test_a_killed_keras_worker_fails_its_row_and_leaves_no_process(built):
  """Its own build, so that the module's rows stay whole."""
  b = runner.build([Row("keras-torch")], CONFIG, "cpu")
  impl, record = b.impls["keras-torch"], b.records["keras-torch"]
  pids = impl.group.pids()
  os.kill(pids[0], signal.SIGKILL)
  assert not training.train_epoch(impl, _epoch(), record)
  assert "keras-torch: rank 0 killed by SIGKILL" in record.error
  assert record.status == "failed" and gone(pids)


# --- Keras's own behaviour, asserted so that a release that changes it is noticed ------------
def _in_backend(backend: str, code: str) -> str:
  out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "KERAS_BACKEND": backend},
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_multiplies_float64_in_float32_on_both_backends(backend):
  """Why the Keras rows have no float64 truth: keras.ops.matmul of two float64 tensors
  returns float32, off by float32's round-off."""
  line = _in_backend(backend, "import numpy as np, keras; keras.config.set_floatx('float64'); "
                     "rng = np.random.default_rng(0); a, b = rng.standard_normal((4, 256)), rng.standard_normal((256, 28)); "
                     "t = lambda x: keras.ops.convert_to_tensor(x, dtype='float64'); "
                     "r = keras.ops.matmul(t(a), t(b)); "
                     "print(keras.backend.standardize_dtype(r.dtype), np.abs(keras.ops.convert_to_numpy(r) - a @ b).max())")
  dtype, gap = line.split()
  assert dtype == "float32" and 1e-7 < float(gap) < 1e-3, line


@pytest.mark.slow
def test_the_torch_backends_fused_gru_cannot_train_a_stateful_layer():
  """Why keras_impl/model.py gives use_cudnn=False: with Keras's default ("auto") the
  stateful GRU's backward fails on the torch backend, on the CPU too (keras#23462)."""
  line = _in_backend("torch", "import numpy as np, keras, torch\n"
                     "gru = keras.layers.GRU(5, stateful=True)\n"
                     "x = torch.randn(2, 3, 4)\n"
                     "try:\n  gru(x).sum().backward(); print('trained')\n"
                     "except RuntimeError as e:\n  print('inplace' if 'inplace operation' in str(e) else str(e))\n")
  assert line == "inplace"


@pytest.mark.slow
def test_keras_on_jax_never_updates_a_stateful_gru_state_in_fit():
  """The training deviation itself: after a fit on the JAX backend the state is still zero
  (on torch it is not)."""
  code = ("import numpy as np, keras\n"
          "X = keras.Input(batch_shape=(2, 3), dtype='int32')\n"
          "gru = keras.layers.GRU(4, stateful=True, use_cudnn=False, return_sequences=True)\n"
          "m = keras.Model(X, keras.layers.Dense(5)(gru(keras.ops.one_hot(X, 5))))\n"
          "m.compile(optimizer='sgd', loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))\n"
          "rng = np.random.default_rng(0)\n"
          "m.fit(rng.integers(0, 5, (4, 3)), rng.integers(0, 5, (4, 3)), batch_size=2, shuffle=False, verbose=0)\n"
          "print(float(np.abs(keras.ops.convert_to_numpy(gru.states[0])).sum()))\n")
  assert float(_in_backend("jax", code)) == 0.0
  assert float(_in_backend("torch", code)) > 0.0
