"""The machine's limits (shared/limits.py): the step's matrix products counted by hand, the
two frameworks' micro-benchmarks of them, and the shares of the bounds."""
import importlib
import inspect
import math
import pathlib
import subprocess
import sys

import pytest

from shared import bounds, limits
from shared import params as P
from shared.config import Config
from shared.records import Record
from shared.rows import IMPLS

ROOT = pathlib.Path(__file__).resolve().parents[1]
# A size whose six products have two distinct shapes, (4, 4) @ (4, 12) and (4, 12) @ (12, 4)
# (B = h = T B, V = 3 h): JAX compiles one program per shape and precision, about a second on
# the 2-core CPU, and reuses it for the repeats.
TINY = Config(batch_size=4, num_steps=1, num_hiddens=4, vocab_size=12)
FAST = 0.02  # seconds per shape: enough to see a positive, finite rate, not to judge one


@pytest.mark.parametrize("B, T, h, V, per_token, per_step", [
    # per token: 3 (forward + 2x backward) x 2 FLOPs x (3 h^2 hidden + h V output) multiply-adds;
    # per step: 3 hidden products x T steps x 2 B h 3h, and 3 output products x 2 (T B) h V.
    (32, 35, 256, 28, 3 * 2 * (3 * 256 * 256 + 256 * 28),
     3 * 35 * (2 * 32 * 256 * 768) + 3 * (2 * 1120 * 256 * 28)),
    (4, 3, 8, 5, 3 * 2 * (3 * 8 * 8 + 8 * 5), 3 * 3 * (2 * 4 * 8 * 24) + 3 * (2 * 12 * 8 * 5))])
def test_flops_match_a_hand_count(B, T, h, V, per_token, per_step):
  config = Config(batch_size=B, num_steps=T, num_hiddens=h, vocab_size=V)
  assert limits.flops_per_token(config) == per_token
  assert limits.step_flops(limits.gemm_shapes(B, T, h, V)) == per_step == per_token * B * T
  assert limits.step_flops(limits.gemm_shapes(B, T, h, V)) == P.matmul_flops_per_token(V, h) * B * T


def test_the_step_shapes_are_the_gru_products():
  assert limits.gemm_shapes(4, 3, 8, 5) == (
      ("hidden forward", 4, 8, 24, 3, "NN"), ("hidden backward (state)", 4, 24, 8, 3, "NT"),
      ("hidden backward (weights)", 8, 4, 24, 3, "TN"), ("output forward", 12, 8, 5, 1, "NN"),
      ("output backward (state)", 12, 5, 8, 1, "NT"), ("output backward (weights)", 8, 12, 5, 1, "TN"))
  # the right operand is a weight (one matrix for every product) where the step reads W or W^T
  assert [limits.weight_operand(s[0]) for s in limits.gemm_shapes(4, 3, 8, 5)] == [True, True, False, True, True, False]


@pytest.mark.parametrize("weight", [False, True])
@pytest.mark.parametrize("layout", ["NN", "NT", "TN"])
def test_each_layout_multiplies_the_same_numbers_in_both_frameworks(layout, weight):
  """A transposed operand is read as its transpose: the torch and the JAX sums of the same
  stacked pairs agree, and equal NumPy's product of the logical (m, k) and (k, n) operands."""
  import functools
  import jax
  import numpy as np
  import torch
  from jax_impl import gemm as jax_gemm
  a, b = limits.operands(3, 4, 5, "float64", 2, layout, weight)
  assert len(b) == (1 if weight else 2)  # a weight: one matrix that both products read
  logical_a = np.swapaxes(a, 1, 2) if layout == "TN" else a
  logical_b = np.swapaxes(b, 1, 2) if layout == "NT" else b
  want = sum(x @ y for x, y in zip(logical_a, [*logical_b] * (2 // len(b))))
  with jax.enable_x64(True):
    got = np.asarray(jax.jit(functools.partial(jax_gemm._products, layout=layout))(a, b))
  assert np.allclose(got, want, rtol=1e-12)
  from torch_impl import gemm as torch_gemm
  products = torch_gemm._products([torch.from_numpy(x) for x in a], [torch.from_numpy(y) for y in b], layout)
  assert np.allclose(sum(products).numpy(), want, rtol=1e-12)


def _check(result, framework, precision):
  """A measure() result: positive finite rates, exactly the step's shapes, consistent seconds."""
  assert (result["framework"], result["precision"]) == (framework, precision)
  assert result["gflops"] > 0 and math.isfinite(result["gflops"]) and result["what"]
  shapes = limits.gemm_shapes(TINY.batch_size, TINY.num_steps, TINY.num_hiddens, TINY.vocab_size)
  assert [(s["role"], s["m"], s["k"], s["n"], s["count"], s["layout"]) for s in result["shapes"]] == list(shapes)
  assert all(s["gflops"] > 0 and math.isfinite(s["gflops"]) for s in result["shapes"])
  assert result["seconds"] == pytest.approx(sum(s["count"] * s["seconds"] for s in result["shapes"]))
  assert result["gflops"] == pytest.approx(limits.step_flops(shapes) / result["seconds"] / 1e9)


@pytest.mark.parametrize("framework", limits.FRAMEWORKS)
@pytest.mark.parametrize("precision", ["float32", pytest.param("bf16", marks=pytest.mark.slow)])
def test_each_framework_measures_the_step_shapes(framework, precision):
  _check(bounds.measure(framework, precision, TINY, min_seconds=FAST), framework, precision)


@pytest.mark.slow
def test_jax_float64_runs_and_leaves_float32_alone():
  import jax.numpy as jnp
  _check(bounds.measure("jax", "float64", TINY, min_seconds=FAST), "jax", "float64")
  assert jnp.zeros(1).dtype == jnp.float32  # 64-bit types were switched on inside only


def test_torch_puts_its_matmul_precision_back():
  import torch
  before = torch.get_float32_matmul_precision()
  _check(bounds.measure("torch", "float64", TINY, min_seconds=FAST), "torch", "float64")
  assert torch.get_float32_matmul_precision() == before


def test_bad_requests_name_the_choices():
  with pytest.raises(ValueError, match="precision must be one of"):
    bounds.measure("torch", "fp16", TINY)
  with pytest.raises(ValueError, match="framework must be one of"):
    bounds.measure("numpy", "float32", TINY)


def test_the_two_gemm_modules_mirror_each_other():
  sides = [importlib.import_module(f"{fw}_impl.gemm") for fw in limits.FRAMEWORKS]
  names = [{n for n, f in vars(m).items() if inspect.isfunction(f) and f.__module__ == m.__name__}
           for m in sides]
  assert names[0] == names[1]
  for name in names[0]:
    assert (inspect.signature(getattr(sides[0], name)).parameters.keys()
            == inspect.signature(getattr(sides[1], name)).parameters.keys()), name


def test_bounds_take_the_fastest_framework_per_precision():
  measured = [{"framework": "torch", "precision": "float32", "gflops": 50.0},
              {"framework": "jax", "precision": "float32", "gflops": 20.0},
              {"framework": "torch", "precision": "bf16", "gflops": 1.5},
              {"framework": "jax", "precision": "bf16", "gflops": 12.0},
              {"framework": "jax", "precision": "float64", "gflops": None}]
  assert limits.bounds(measured) == {"float32": {"machine_gflops": 50.0, "fastest": "torch"},
                                     "bf16": {"machine_gflops": 12.0, "fastest": "jax"}}


def _measured(own=10.0, other=20.0, peak=100.0, theory=150.0):
  """Ceilings as shared/bounds.py measures them: torch's and jax's per-shape bounds, a peak, a theory."""
  return [{"kind": "shapes", "framework": "torch", "precision": "float32", "weights": "per step", "gflops": own},
          {"kind": "shapes", "framework": "jax", "precision": "float32", "weights": "per step", "gflops": other},
          {"kind": "peak", "framework": "numpy", "precision": "float32", "gflops": peak},
          {"kind": "theoretical", "framework": "cpu", "precision": "float32", "gflops": theory}]


def test_figures_are_the_shares_of_the_ceilings():
  f = limits.figures(1000.0, 1_222_656, _measured(), "torch", "float32")
  assert f["flops_per_token"] == 1_222_656 and f["gemm_gflops"] == 10.0
  assert f["achieved_gflops"] == pytest.approx(1.222656)
  assert f["share_of_framework_bound"] == pytest.approx(0.1222656)
  assert f["share_of_machine_bound"] == pytest.approx(0.0611328)
  assert f["share_of_peak"] == pytest.approx(0.01222656) and f["share_of_theoretical"] == pytest.approx(1.222656 / 150)
  assert f["above"] == []


def test_a_row_above_a_ceiling_is_named_and_its_bound_is_the_one_of_its_weight_gradients():
  measured = _measured(own=1.0) + [{"kind": "shapes", "framework": "torch", "precision": "float32",
                                     "weights": "batched", "gflops": 30.0}]
  f = limits.figures(1000.0, 1_222_656, measured, "torch", "float32")
  assert f["above"] == ["its framework's per-shape bound"] and f["share_of_framework_bound"] > 1
  batched = limits.figures(1000.0, 1_222_656, measured, "torch", "float32", "batched")
  assert batched["gemm_gflops"] == 30.0 and batched["machine_gflops"] == 30.0 and batched["above"] == []


def test_a_bound_measured_under_other_conditions_is_not_the_rows():
  measured = [{**m, "conditions": {"GOMP_SPINCOUNT": "300000"}} for m in _measured()[:1]] + _measured()[1:]
  assert limits.figures(1000.0, 1_222_656, measured, "torch", "float32")["gemm_gflops"] is None
  spun = limits.figures(1000.0, 1_222_656, measured, "torch", "float32", conditions={"GOMP_SPINCOUNT": "300000"})
  assert spun["gemm_gflops"] == 10.0


@pytest.mark.parametrize("args, none", [
    ((None, 1_222_656), {"achieved_gflops", *(k for k, _ in limits.CEILINGS)}),
    ((1000.0, 0), {"flops_per_token", "achieved_gflops", *(k for k, _ in limits.CEILINGS)})])
def test_figures_are_none_where_an_input_is_missing(args, none):
  f = limits.figures(*args, _measured(), "torch", "float32")
  assert {k for k, v in f.items() if v is None} == none
  assert limits.figures(1000.0, 1, _measured(), "jax", "bf16")["gemm_gflops"] is None


def test_limits_imports_neither_framework():
  code = "import shared.limits, sys; assert 'torch' not in sys.modules and 'jax' not in sys.modules"
  subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_attach_gives_every_trained_row_its_shares_and_survives_a_failed_measurement(monkeypatch):
  rates = {("torch", "float32"): 40.0, ("jax", "float32"): 50.0, ("torch", "bf16"): None}

  def fake(conditions, framework, precision, config, min_seconds, device, weights):
    if rates[(framework, precision)] is None:
      raise RuntimeError("no bf16 here\nsecond line")
    return {"framework": framework, "precision": precision, "gflops": rates[(framework, precision)], "what": "x"}
  monkeypatch.setattr(bounds, "measure_where", fake)
  monkeypatch.setattr(bounds, "peaks", lambda *a: [])
  rec = lambda prec, rate: Record("a row", "scratch", "x", "cpu", prec, steady_tokens_per_s=rate)
  records = {"a": rec("float32", 2e4), "b": rec("float32", 3e4), "c": rec("bf16", 1e3),
             "d": rec("float32", None)}  # d trained nothing: measured for no one, figures None
  infos = {"a": IMPLS["torch-scratch"], "b": IMPLS["jax-scratch"], "c": IMPLS["torch-scratch"], "d": IMPLS["jax-scratch"]}
  measured = bounds.attach(records, Config(), infos)
  per_token = limits.flops_per_token(Config())
  assert records["a"].limits["share_of_framework_bound"] == pytest.approx(2e4 * per_token / 1e9 / 40.0)
  assert records["a"].limits["share_of_machine_bound"] == pytest.approx(2e4 * per_token / 1e9 / 50.0)
  assert records["c"].limits["gemm_gflops"] is None and records["d"].limits["achieved_gflops"] is None
  assert {m["what"] for m in measured if m["gflops"] is None} == {"not measured: RuntimeError: no bf16 here"}
