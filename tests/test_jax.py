"""JAX/Flax side (CPU): gradients against float64 finite differences, both directions of
the layout conversions, and the whole-epoch call against the stepped loop. Forward,
carry, training semantics and prediction of every implementation: test_protocol.py."""

import jax
import numpy as np
import pytest

from flax import nnx

from jax_impl import builtin
from jax_impl import nnx as nnx_models
from jax_impl.train import JaxImpl
from shared import data, metrics, registry
from shared import params as P
from shared.config import preset
from tests import numpy_gru
from tests.marks import rows

NAMES = ("jax-scratch", "flax-gru", "flax-grucell", "nnx-gru", "nnx-grucell")




@pytest.mark.parametrize("name", ["jax-scratch", "flax-gru", "nnx-gru"])
def test_gradients_match_float64_finite_differences(name, tiny_config, tiny_batch):
  """Every parameter of the layout (all fourteen for flax-gru), three entries each."""
  impl, p = numpy_gru.random_impl(name, tiny_config)
  X, Y = tiny_batch
  _, grads, _ = impl.loss_and_grads(X, Y)
  rng = np.random.default_rng(5)
  assert list(grads) == list(P.NAMES[impl.layout])
  for k, g in grads.items():
    for _ in range(3):
      index = tuple(int(rng.integers(0, n)) for n in g.shape)
      want = numpy_gru.finite_diff(numpy_gru.MODELS[impl.layout], p, X, Y, k, index)
      assert abs(g[index] - want) <= 2e-5 + 1e-4 * abs(want), (k, index, g[index], want)


def test_flax_gru_conversion_both_ways_is_exact(tiny_config):
  impl, p = numpy_gru.random_impl("flax-gru", tiny_config)
  back = impl.get_params()
  assert list(back) == list(P.BUILTIN_NAMES) and all(np.array_equal(back[k], p[k]) for k in p)
  assert np.array_equal(impl.state.params["cell"]["hn"]["bias"], p["b_hn"])
  assert np.array_equal(impl.state.params["iz"]["kernel"], p["W_iz"])


def test_flax_grucell_folds_on_the_way_in_and_returns_folded(tiny_config):
  impl, p = numpy_gru.random_impl("flax-grucell", tiny_config)
  cell = impl.state.params["cell"]
  assert "bias" not in cell["hr"] and "bias" not in cell["hz"]  # the stock cell's four biases
  assert np.allclose(cell["ir"]["bias"], p["b_ir"] + p["b_hr"], rtol=0, atol=0)
  back, folded = impl.get_params(), P.fold_builtin(p)
  assert all(np.array_equal(back[k], folded[k]) for k in P.BUILTIN_NAMES)


def _own_tree(model):
  """The parameters the Flax model initializes itself (Linen init, or NNX's state)."""
  if issubclass(model, nnx.Module):
    return nnx.state(model(28, 6, rngs=nnx.Rngs(0)), nnx.Param).to_pure_dict(), model.TABLE
  tree = model(28, 6).init(jax.random.key(0), np.zeros((2, 3), np.int32), np.zeros((2, 6), np.float32))["params"]
  return tree, model.TABLE


@pytest.mark.parametrize("model", [builtin.FlaxGRU, builtin.FlaxGRUCell, nnx_models.NnxGRU, nnx_models.NnxGRUCell])
def test_conversion_tables_match_the_flax_parameter_trees(model):
  """Every path of the table exists in the model's own parameters, with the canonical shape
  (a fused [r | z | n] array holds three), and every parameter of the model is in the table."""
  tree, table = _own_tree(model)
  shapes = P.shapes(P.BUILTIN, 28, 6)
  got = builtin.from_tree(tree, table)
  assert all(got[k].shape == shapes[k] for k in shapes)
  arrays = {path[:-1] if isinstance(path[-1], int) else path for path in table.values() if path is not None}
  assert len(jax.tree_util.tree_leaves(tree)) == len(arrays)
  assert builtin.to_tree(P.init_params(P.BUILTIN, 0, 28, 6), table).keys() == tree.keys()


def test_nnx_grucell_conversion_folds_and_drops_b_hn(tiny_config):
  impl, p = numpy_gru.random_impl("nnx-grucell", tiny_config)
  cell = impl.state.params["rnn"]["cell"]
  assert set(cell["dense_h"]) == {"kernel"}  # the stock cell's hidden side has no bias at all
  assert np.array_equal(cell["dense_i"]["bias"][:7], p["b_ir"] + p["b_hr"])
  assert np.array_equal(cell["dense_h"]["kernel"][:, 14:], p["W_hn"])
  back = impl.get_params()
  assert impl.missing == ("b_hr", "b_hz", "b_hn") and not back["b_hn"].any()
  assert all(np.array_equal(back[k], p[k]) for k in p if k.startswith("W_") or k in ("b_in", "b_q"))



@pytest.mark.parametrize("name", rows(NAMES, slow=("flax-gru", "flax-grucell", "nnx-gru", "nnx-grucell")))
def test_whole_epoch_call_equals_the_stepped_loop(name, corpus_vocab):
  corpus, _ = corpus_vocab
  config = preset("seed", num_epochs=3, num_hiddens=64)
  epochs = data.training_epochs(corpus, config)
  fused, stepped = (registry.make_impl(name, config.set(jax_loop=loop), "cpu") for loop in ("epoch", "step"))
  for batches in epochs:
    a, b = fused.train_epoch(batches), stepped.train_epoch(batches)
    assert abs(a - b) <= 1e-6 * abs(b)
  pa, pb = fused.get_params(), stepped.get_params()
  assert metrics.max_abs_diff_all(pa, pb) <= 1e-5


def test_the_epoch_loop_and_the_command_buffers_come_from_the_config(tiny_config):
  from jax_impl.xla import COMMAND_BUFFER_OPTIONS, compiler_options
  stepped = registry.make_impl("jax-scratch", tiny_config.set(jax_loop="step"), "cpu")
  assert stepped.loop == "step" and stepped.execution.startswith("jitted step in a Python loop")
  assert registry.make_impl("jax-scratch", tiny_config, "cpu").loop == "epoch"
  with pytest.raises(ValueError, match="command_buffer 'off' is an XLA GPU setting"):
    registry.make_impl("jax-scratch", tiny_config.set(command_buffer="off"), "cpu")
  # XLA checks the names of every command type on any platform: a name this jaxlib does not
  # know fails here, not on the GPU machine (the GPU image's jaxlib is newer; they are old types).
  f = jax.jit(lambda x: 2 * x)
  for setting in COMMAND_BUFFER_OPTIONS:
    options = compiler_options(tiny_config.set(command_buffer=setting), "gpu")
    assert float(f.lower(1.0).compile(compiler_options=options)(1.0)) == 2.0
  with pytest.raises(Exception, match="not a valid enum value"):
    f.lower(1.0).compile(compiler_options={"xla_gpu_enable_command_buffer": "WHILE_LOOP"})


@pytest.mark.slow
@pytest.mark.parametrize("per_step", [False, True])
def test_nnx_jit_on_the_module_trains_exactly_as_the_nnx_gru_row(per_step, tiny_config):
  """bench/nnx_styles.py times the two ways of compiling NNX: they must compute the same."""
  from jax_impl.train import NnxJitTrainer
  row, _ = numpy_gru.random_impl("nnx-gru", tiny_config)
  other = NnxJitTrainer(row, per_step=per_step)
  corpus = np.random.default_rng(3).integers(0, 28, 200).astype(np.int32)
  for batches in data.training_epochs(corpus, tiny_config):
    a, b = row.train_epoch(batches), other.train_epoch(batches)
    assert abs(a - b) <= 1e-6 * a
  pa, pb = row.get_params(), other.get_params()
  assert metrics.max_abs_diff_all(pa, pb) <= 1e-6


def test_nnx_jit_on_the_module_returns_float64_in_a_float64_run(tiny_config):
  from jax_impl.train import NnxJitTrainer
  config64 = tiny_config.set(precision="float64")
  row, _ = numpy_gru.random_impl("nnx-grucell", config64)
  params = NnxJitTrainer(row).get_params()
  assert {v.dtype for v in params.values()} == {np.dtype(np.float64)}


@pytest.mark.parametrize("per_step", [False, True])
def test_nnx_jit_on_the_module_compiles_once(per_step, tiny_config, caplog):
  """A second compile on the second call (uncommitted state meeting committed batches)
  once cost bench/nnx_styles.py a 0.5 s epoch, counted as steady state."""
  import logging
  from jax_impl.train import NnxJitTrainer
  row, _ = numpy_gru.random_impl("nnx-gru", tiny_config)
  trainer = NnxJitTrainer(row, per_step=per_step)
  corpus = np.random.default_rng(3).integers(0, 28, 200).astype(np.int32)
  name = "jit(step)" if per_step else "jit(epoch)"
  batches = data.training_epochs(corpus, tiny_config)[0]  # one shape: epochs' lengths vary
  with jax.log_compiles(True), caplog.at_level(logging.WARNING, logger="jax"):
    for _ in range(3):
      trainer.train_epoch(batches)
  assert sum(f"Compiling {name}" in r.getMessage() for r in caplog.records) == 1


def test_the_step_loop_compiles_in_prepare_and_never_in_an_epoch(tiny_config, caplog):
  """prepare() runs an epoch of the step loop on a copy of the state: jit compiles there,
  so the compile is timed apart (it used to fall in epoch 1, reported as 0 s)."""
  import logging
  impl, _ = numpy_gru.random_impl("jax-scratch", tiny_config.set(jax_loop="step"))
  before = impl.get_params()
  batches = data.training_epochs(np.random.default_rng(3).integers(0, 28, 200).astype(np.int32),
                                 tiny_config)[0]
  with jax.log_compiles(True), caplog.at_level(logging.WARNING, logger="jax"):
    assert impl.prepare(batches) > 0
    compiled = sum(r.getMessage().startswith("Compiling ") for r in caplog.records)
    assert all(np.array_equal(before[k], v) for k, v in impl.get_params().items())  # the copy trained
    assert impl.prepare(batches) == 0.0
    impl.train_epoch(batches)
  messages = [r.getMessage() for r in caplog.records]
  assert any(m.startswith("Compiling jit(train_step)") for m in messages)
  assert sum(m.startswith("Compiling ") for m in messages) == compiled  # nothing compiled in the epoch


def test_every_epoch_shape_compiles_before_the_timed_epochs(tiny_config, monkeypatch):
  """An epoch's minibatch count varies with the random offset ({12, 13} here); a compile
  inside a timed epoch once counted as a slow steady-state epoch."""
  from shared import training
  from shared.records import Record
  impl, _ = numpy_gru.random_impl("jax-scratch", tiny_config)
  corpus = np.random.default_rng(3).integers(0, 28, 200).astype(np.int32)
  epochs = data.training_epochs(corpus, tiny_config.set(num_epochs=6))
  assert len({b[0].shape for b in epochs}) == 2
  events, real_prepare, real_train = [], JaxImpl.prepare, JaxImpl.train_epoch
  monkeypatch.setattr(JaxImpl, "prepare", lambda self, b: events.append("prepare") or real_prepare(self, b))
  monkeypatch.setattr(JaxImpl, "train_epoch", lambda self, b: events.append("train") or real_train(self, b))
  records = {"jax-scratch": Record("a row", "scratch", "jax", "cpu", "float32")}
  quiet = type("Quiet", (), {"update": lambda self, k: None, "close": lambda self: None})()
  training.train_all({"jax-scratch": impl}, epochs, records, quiet)
  assert records["jax-scratch"].status == "ok" and len(impl._compiled) == 2
  assert events[:2] == ["prepare", "prepare"] and "prepare" not in events[2:]
