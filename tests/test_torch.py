"""PyTorch side (CPU): gradcheck in float64, the nn.GRU layout round trip, the clipping
rule, the fast loop against the plain loop. Forward, carry, training semantics and
prediction of every implementation: test_protocol.py."""
import math

import numpy as np
import pytest
import torch

from shared import data, metrics
from shared import params as P
from shared.config import preset
from tests import numpy_gru
from tests.marks import rows
from torch_impl import builtin, tuned
from shared import registry
from shared.rows import IMPLS
from torch_impl.d2l import Accumulator, grad_clipping_d2l
from torch_impl.train import TorchImpl, clip_and_sgd_, precision_scope

NAMES = ("torch-reference", "torch-scratch", "torch-cudnn")




@pytest.mark.parametrize("name", rows(NAMES, slow=("torch-reference", "torch-cudnn")))
def test_gradcheck_in_float64(name, tiny_config, tiny_batch):
  impl, _ = numpy_gru.random_impl(name, tiny_config)
  model, X = impl.model.double(), torch.as_tensor(tiny_batch[0]).long()
  names = [n for n, _ in model.named_parameters()]
  forward = model.forward_d2l if name == "torch-reference" else model.forward

  def f(*tensors):
    with torch.nn.utils.stateless._reparametrize_module(model, dict(zip(names, tensors))):
      return forward(X, torch.zeros(3, 7, dtype=torch.float64))
  inputs = tuple(p.detach().clone().requires_grad_() for p in model.parameters())
  assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


def test_builtin_layout_round_trips_through_nn_gru_exactly():
  p = numpy_gru.random_params(P.shapes(P.BUILTIN, 28, 6), np.random.default_rng(2))
  model = builtin.BuiltinGRU(28, 6)
  model.load_canonical(p)
  sd = model.state_dict()
  assert torch.equal(sd["rnn.weight_ih_l0"][6:12], torch.as_tensor(p["W_iz"]).T)  # rows r, z, n
  assert torch.equal(sd["rnn.weight_hh_l0"][12:], torch.as_tensor(p["W_hn"]).T)
  assert torch.equal(sd["rnn.bias_hh_l0"][:6], torch.as_tensor(p["b_hr"]))
  assert torch.equal(sd["linear.weight"], torch.as_tensor(p["W_hq"]).T)
  back = {k: v.detach().numpy() for k, v in model.canonical().items()}
  assert list(back) == list(P.BUILTIN_NAMES)
  assert all(np.array_equal(back[k], p[k]) for k in p)


@pytest.mark.parametrize("scale, clipped", [(3.0, True), (0.1, False)])
def test_clipping_scales_exactly_above_theta_and_never_below(scale, clipped):
  g = [torch.randn(4, 5, generator=torch.Generator().manual_seed(0)) * scale, torch.ones(5) * scale]
  norm = math.sqrt(sum(float((t.double() ** 2).sum()) for t in g))
  assert (norm > 1.0) == clipped
  params = [torch.nn.Parameter(torch.zeros_like(t)) for t in g]
  for p, t in zip(params, g):
    p.grad = t.clone()
  assert grad_clipping_d2l(params, 1.0) is clipped
  targets = [torch.zeros_like(t) for t in g]
  assert float(clip_and_sgd_(targets, [t.clone() for t in g], 1.0, lr=1.0)) == clipped  # SGD from 0: -clipped grads
  for p, t, q in zip(params, g, targets):
    want = t * (1.0 / norm) if clipped else t
    assert torch.allclose(p.grad, want, rtol=1e-6, atol=0) and torch.allclose(-q, want, rtol=1e-6, atol=0)
    if not clipped:
      assert torch.equal(p.grad, t) and torch.equal(-q, t)  # untouched, bit for bit
  if clipped:
    assert math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params)) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("layout_name", ["torch-scratch", "torch-cudnn"])
def test_fast_loop_equals_plain_loop(layout_name, corpus_vocab):
  corpus, _ = corpus_vocab
  config = preset("seed", num_epochs=3, num_hiddens=64)
  epochs = data.training_epochs(corpus, config)
  fast = TorchImpl(IMPLS[layout_name], config, "cpu", loop="fast")
  plain = TorchImpl(IMPLS[layout_name], config, "cpu", loop="plain")
  for batches in epochs:
    a, b = fast.train_epoch(batches), plain.train_epoch(batches)
    assert abs(a - b) <= 1e-6 * abs(b)
  pa, pb = fast.get_params(), plain.get_params()
  assert metrics.max_abs_diff_all(pa, pb) <= 1e-5


def test_d2l_forward_equals_fast_forward(tiny_config, tiny_batch):
  impl, _ = numpy_gru.random_impl("torch-scratch", tiny_config)
  X = torch.as_tensor(tiny_batch[0])
  H = torch.zeros(3, 7)
  with torch.no_grad():
    (a, ha), (b, hb) = impl.model.forward_d2l(X, H), impl.model.forward(X, H)
  assert torch.allclose(a, b, atol=1e-6) and torch.allclose(ha, hb, atol=1e-6)


def test_each_implementation_sets_its_tf32_switches_around_its_own_calls():
  """torch's TF32 switches are process-wide: a TF32 implementation must not leave them on
  for a full-float32 one built or run after it (JAX's 64-bit mode, likewise: test_float64)."""
  before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.get_float32_matmul_precision())
  with precision_scope("tf32"):
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert torch.get_float32_matmul_precision() == "high"
    with precision_scope("highest"):
      assert not torch.backends.cuda.matmul.allow_tf32 and torch.get_float32_matmul_precision() == "highest"
    assert torch.backends.cudnn.allow_tf32  # the outer setting is back
  assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
          torch.get_float32_matmul_precision()) == before


@pytest.mark.parametrize("graph", ["step", "epoch"])
def test_a_graph_per_step_or_per_epoch_replays_the_eager_epoch(graph, tiny_config, monkeypatch):
  """The CUDA-graph loop's own logic (static buffers, one graph per shape, H and the loss
  sum zeroed per epoch, each minibatch copied in) on the CPU: `_record` is replaced by a
  'graph' whose replay runs the recorded body eagerly. Recording itself needs CUDA."""
  class Replay:
    def __init__(self, body):
      self.replay = body
  monkeypatch.setattr(TorchImpl, "_record", lambda self, body: Replay(body))
  rng = np.random.default_rng(0)
  epochs = [tuple(rng.integers(0, 28, (n, 3, 5)) for _ in "XY") for n in (4, 3, 4)]  # two epoch shapes
  before = [tuple(a.copy() for a in batches) for batches in epochs]
  eager, graphed = (TorchImpl(IMPLS["torch-scratch"], tiny_config, "cpu") for _ in "ab")
  graphed.cuda_graph = graph  # as on CUDA
  for batches in epochs:
    assert graphed.train_epoch(batches) == pytest.approx(eager.train_epoch(batches), rel=1e-6)
  # the static buffers are the graph's own: the caller's minibatches are never written
  assert all(np.array_equal(a, b) for e, f in zip(epochs, before) for a, b in zip(e, f))
  assert len(graphed._graphs) == {"step": 1, "epoch": 2}[graph]  # (B, T) or (N, B, T)
  a, b = eager.get_params(), graphed.get_params()
  assert metrics.max_abs_diff_all(a, b) <= 1e-6


def test_cuda_graphs_asked_for_on_a_cpu_are_refused_by_the_rows_that_have_them(tiny_config):
  for name in ("torch-scratch", "torch-cudnn"):
    with pytest.raises(ValueError, match="cuda_graph 'epoch' needs a CUDA device"):
      registry.make_impl(name, tiny_config.set(cuda_graph="epoch"), "cpu")
    assert registry.make_impl(name, tiny_config.set(cuda_graph="off"), "cpu").execution == "sync-free eager loop"
  # the d2l loop has no graph to switch: the setting does not concern it
  assert registry.make_impl("torch-reference", tiny_config.set(cuda_graph="step"), "cpu").cuda_graph == "off"


@pytest.mark.parametrize("mode, why", [("", "the fastest of the three on the 2-core CPU"),
                                       ("max-autotune", "set by --compile-mode")])
def test_torch_compile_says_which_mode_runs_and_why(mode, why, tiny_config):
  """The report's execution column names the mode and where the choice came from
  (compiling is lazy: constructing the row compiles nothing)."""
  impl = registry.make_impl("torch-compile", tiny_config.set(compile_mode=mode), "cpu")
  assert f"mode {mode or 'default'}: {why};" in impl.execution


def test_the_d2l_accumulator_sums_per_variable():
  acc = Accumulator(2)
  acc.add(1.5, 2)
  acc.add(0.5, 3)
  assert (acc[0], acc[1]) == (2.0, 5.0)


def test_torch_compile_refuses_an_nn_gru_so_the_tuned_row_keeps_its_parameters_in_a_plain_module():
  """PORTING.md item 11: torch.compile will not trace an nn.GRU module, even one whose forward
  only reads its parameters; torch-tuned-builtin holds the same Parameters, under nn.GRU's
  names (so the canonical conversion is BuiltinGRU's), in a plain module, and compiles."""
  X, H = torch.randint(0, 28, (2, 3)), torch.zeros(2, 8)
  wrapped = tuned.TunedBuiltinGRU(28, 8)
  wrapped.rnn = torch.nn.GRU(28, 8)  # the module the plain one stands in for
  with pytest.raises(Exception, match="Attempted to wrap RNN, GRU, or LSTM"):
    torch.compile(wrapped, backend="eager", fullgraph=True)(X, H)
  model = tuned.TunedBuiltinGRU(28, 8)
  assert [n for n, _ in model.named_parameters()] == [n for n, _ in builtin.BuiltinGRU(28, 8).named_parameters()]
  eager = model(X, H)
  assert all(torch.equal(a, b) for a, b in zip(torch.compile(model, backend="eager", fullgraph=True)(X, H), eager))
