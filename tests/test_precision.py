"""bf16 mixed precision: the shared casting policy is what every row does (dtypes inside both
frameworks), bf16 twins agree within the tolerances derived from 2^-8, a float32 row judged
against a bf16 one fails, and bad input is refused before training."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import compare
from shared import metrics, parity, precision, registry, rows, runner
from shared.config import Config
from shared.rows import Row

# Small, but large enough that bf16 roundings happen everywhere (16 hidden units, 5 steps).
SMALL = Config(batch_size=4, num_steps=5, num_hiddens=16, num_epochs=2, vocab_size=28, precision="bf16")
TINY = ["--preset", "quick", "--device", "cpu", "--max-tokens", "600", "--num-steps", "5", "--batch-size", "4",
        "--num-hiddens", "16"]


def _batch(config, seed=5):
  rng = np.random.default_rng(seed)
  shape = (config.batch_size, config.num_steps)
  return rng.integers(0, 28, shape).astype(np.int32), rng.integers(0, 28, shape).astype(np.int32)


# --- names and policy --------------------------------------------------------------------
def test_twin_names_split_order_and_pair_in_their_own_groups():
  twins = rows.run_rows(["torch-reference", "torch-scratch", "jax-scratch", "torch-cudnn", "flax-gru",
                         "flax-grucell"], Config(precision="bf16"))
  names = [r.name for r in twins]
  assert Row.parse("jax-scratch-bf16") == Row("jax-scratch", bf16=True) and not Row.parse("jax-scratch").bf16
  assert Row.parse("flax-gru-bf16").info.layout == "builtin" and Row.parse("torch-cudnn-bf16").info.framework == "torch"
  pairs = [(g, r.name, a.name) for g, r, a in parity.pairs(twins)]
  # torch-reference departs from the policy (its bf16_deviation): the bf16 scratch group is
  # anchored on torch-scratch-bf16, and torch-reference-bf16 is a reported forward-only pair
  assert ("scratch-bf16", "jax-scratch-bf16", "torch-scratch-bf16") in pairs
  assert ("builtin-bf16", "flax-gru-bf16", "torch-cudnn-bf16") in pairs
  assert not any(a == "torch-reference-bf16" or n == "torch-reference-bf16" for _, n, a in pairs)
  only = {(r.name, a.name): judged for _, r, a, _, judged in parity.forward_only_pairs(twins)}
  assert only[("torch-reference-bf16", "torch-scratch-bf16")] is False
  assert only[("flax-grucell-bf16", "torch-cudnn-bf16")] is True
  assert ("bf16 vs float32", Row("flax-gru", True), Row("flax-gru")) in parity.precision_pairs(twins)
  assert set(r.name for r in sorted(twins, key=Row.order)[:6]) == set(names[:6])  # float32 rows first


def test_row_config_gives_twins_bf16_and_rows_float32():
  cfg = Config(precision="bf16")
  assert Row("jax-scratch", bf16=True).config(cfg).precision == "bf16"
  assert Row("jax-scratch").config(cfg).precision == "highest"
  assert Row("jax-scratch").config(Config()).precision == "highest"
  assert precision.policy("float64") == {k: "float64" for k in precision.POLICY}
  assert metrics.TOLERANCES["bf16"]["logits_rms_rel"] == 2.0 ** -8 / 8


class DtypeLog(TorchDispatchMode):
  """Every aten op's name with its output dtype, as torch dispatched it."""

  def __init__(self):
    super().__init__()
    self.ops = []

  def __torch_dispatch__(self, func, types, args=(), kwargs=None):
    out = func(*args, **(kwargs or {}))
    first = out[0] if isinstance(out, (tuple, list)) and out else out
    if isinstance(first, torch.Tensor):
      self.ops.append((func.overloadpacket.__name__, first.dtype))
    return out


def _torch_dtypes(name):
  impl = registry.make_impl(name, SMALL)
  X, Y = _batch(SMALL)
  model_params = list(impl.model.parameters())
  with DtypeLog() as log:
    with impl._autocast():
      logits, H = impl._forward(impl._tensor(X), impl._zeros(SMALL.batch_size, SMALL.num_hiddens))
      loss = F.cross_entropy(logits, impl._tensor(Y).T.reshape(-1))
    grads = torch.autograd.grad(loss, model_params)
  gates = {dt for op, dt in log.ops if op in ("sigmoid", "sigmoid_", "tanh", "tanh_")}
  products = {dt for op, dt in log.ops if op in ("mm", "addmm")}
  return {"logits": logits.dtype, "state": H.dtype, "loss": loss.dtype, "gates": gates, "products": products,
          "grads": {g.dtype for g in grads}, "weights": {p.dtype for p in model_params}}


@pytest.mark.parametrize("name", ["torch-scratch-bf16", "torch-cudnn-bf16"])
def test_torch_autocast_follows_the_shared_policy(name):
  d = _torch_dtypes(name)
  bf16, f32 = torch.bfloat16, torch.float32
  assert (d["logits"], d["state"], d["loss"]) == (bf16, f32, f32)
  assert d["gates"] == {bf16} and d["products"] == {bf16}
  assert d["grads"] == {f32} and d["weights"] == {f32}


def test_torch_reference_is_the_known_deviation_float32_gates():
  """d2l's line-for-line code adds its biases outside the products: float32 gates and logits."""
  d = _torch_dtypes("torch-reference-bf16")
  assert d["gates"] == {torch.float32} and d["logits"] == torch.float32 and d["products"] == {torch.bfloat16}
  assert rows.IMPLS["torch-reference"].bf16_deviation


def _eqns(jaxpr):
  """Every equation of a jaxpr, those inside scans and other sub-programs included."""
  for e in jaxpr.eqns:
    yield e
    for p in e.params.values():
      for sub in (p if isinstance(p, (list, tuple)) else [p]):
        inner = getattr(sub, "jaxpr", None)
        if inner is not None:
          yield from _eqns(getattr(inner, "jaxpr", inner))


@pytest.mark.parametrize("name", ["jax-scratch-bf16", "flax-gru-bf16", "nnx-gru-bf16", "flax-grucell-bf16"])
def test_jax_rows_follow_the_shared_policy(name):
  impl = registry.make_impl(name, SMALL)
  X, Y = _batch(SMALL)
  H = jnp.zeros((SMALL.batch_size, SMALL.num_hiddens), jnp.float32)
  apply = impl.model.apply(impl.config, 1, jnp.bfloat16)
  logits, H_out = jax.eval_shape(apply, impl.state.params, X, H)
  assert (logits.dtype, H_out.dtype) == (jnp.bfloat16, jnp.float32)
  (loss, _), grads = jax.eval_shape(impl._grad, impl.state.params, X, Y, H)
  assert loss.dtype == jnp.float32 and {g.dtype for g in jax.tree.leaves(grads)} == {jnp.dtype("float32")}
  jaxpr = jax.make_jaxpr(apply)(impl.state.params, X, H).jaxpr
  eqns = list(_eqns(jaxpr))
  dots = [e for e in eqns if e.primitive.name == "dot_general"]
  assert dots and all(v.aval.dtype == jnp.bfloat16 for e in dots for v in e.invars)  # bf16 operands
  tanhs = [e for e in eqns if e.primitive.name == "tanh"]
  assert tanhs and all(e.outvars[0].aval.dtype == jnp.bfloat16 for e in tanhs)      # bf16 gates


# --- parity ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def first_minibatch():
  """The bf16 twins of both pairs, and two float32 rows for the case that must fail, at SMALL
  sizes: logits and gradients on the first minibatch."""
  twins = [Row(n, bf16=True) for n in ("torch-scratch", "jax-scratch", "torch-cudnn", "flax-gru")]
  impls = runner.build([Row("jax-scratch"), Row("torch-cudnn")] + twins, SMALL).impls
  X, Y = _batch(SMALL)
  return {n: (i.forward(X)[0], i.loss_and_grads(X, Y)[1]) for n, i in impls.items()}


@pytest.mark.parametrize("impl, anchor", [("jax-scratch-bf16", "torch-scratch-bf16"),
                                          ("flax-gru-bf16", "torch-cudnn-bf16")])
def test_bf16_twins_agree_within_the_derived_tolerances(first_minibatch, impl, anchor):
  (la, ga), (lb, gb) = first_minibatch[impl], first_minibatch[anchor]
  tol = metrics.TOLERANCES["bf16"]
  assert metrics.rms_rel(la, lb) <= tol["logits_rms_rel"]
  assert metrics.rel_diff_arrays(la, lb) <= tol["logits_rel"]
  assert metrics.rel_diff_arrays(ga, gb) <= tol["grads_rel"]


@pytest.mark.parametrize("row, anchor", [("jax-scratch", "torch-scratch-bf16"), ("torch-cudnn", "flax-gru-bf16")])
def test_a_float32_row_judged_against_a_bf16_one_fails(first_minibatch, row, anchor):
  """Same model, same weights, other arithmetic: every logit differs by bf16's round-off."""
  measured = metrics.rms_rel(first_minibatch[row][0], first_minibatch[anchor][0])
  check = metrics.check("scratch-bf16", row, anchor, "logits_rms_rel", measured, "bf16")
  assert check["passed"] is False and measured > 4 * metrics.TOLERANCES["bf16"]["logits_rms_rel"]


def test_rms_rel_is_the_typical_gap_and_handles_zero_scales():
  a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 4.4])
  assert metrics.rms_rel(a, b) == pytest.approx(0.2 / np.sqrt((1 + 4 + 9 + 4.4 ** 2) / 4))
  assert metrics.rms_rel(np.zeros(3), np.zeros(3)) == 0.0 and metrics.rms_rel(np.ones(2), np.zeros(2)) == np.inf


def test_jax_bf16_sigmoid_is_correctly_rounded_as_torchs():
  from jax_impl import precision as jax_precision
  x = np.linspace(-8, 8, 4001).astype(np.float32)
  ours = np.asarray(jax_precision.sigmoid(jnp.asarray(x, jnp.bfloat16)).astype(jnp.float32))
  theirs = torch.sigmoid(torch.tensor(x).bfloat16()).float().numpy()
  assert np.array_equal(ours, theirs)


# --- runs and bad input ---------------------------------------------------------------------
@pytest.mark.slow
def test_a_bf16_run_reports_twins_and_limits(tmp_path, corpus_vocab):
  out = tmp_path / "bf16"
  assert compare.main([*TINY, "--epochs", "3", "--precision", "bf16",
                       "--impls", "torch-scratch,jax-scratch", "--out", str(out)]) == 0
  results = json.loads((out / "results.json").read_text())
  assert set(results["impls"]) == {"torch-scratch", "jax-scratch", "torch-scratch-bf16", "jax-scratch-bf16"}
  twin = results["impls"]["jax-scratch-bf16"]
  assert twin["precision"] == "bf16" and results["impls"]["jax-scratch"]["precision"] == "float32"
  assert twin["vs_float32"] > 0 and twin["limits"]["achieved_gflops"] > 0
  assert {(m["framework"], m["precision"]) for m in results["limits"] if m["kind"] == "shapes"} == {
      ("torch", "float32"), ("torch", "bf16"), ("jax", "float32"), ("jax", "bf16")}
  assert {(m["framework"], m["precision"]) for m in results["limits"] if m["kind"] != "shapes"} == {
      ("torch", "float32"), ("torch", "bf16"), ("jax", "float32"), ("jax", "bf16"), ("numpy", "float32"),
      ("cpu", "float32"), ("cpu", "bf16")}  # the measured peaks (bf16 too: the run has bf16 rows), the theory
  checks = {(c["impl"], c["check"]): c for c in results["parity"]}
  assert checks[("jax-scratch-bf16", "logits_rms_rel")]["passed"] is True
  assert checks[("jax-scratch-bf16", "logits_rel")]["arithmetic"] == "bf16"
  text = (out / "report.md").read_text()
  assert "## bf16 beside float32" in text and "## How far from the limit" in text


def test_the_bf16_section_pairs_each_twin_with_its_row():
  from shared.reports import compare_md as markdown
  rec = lambda rate, ppl, **kw: {"steady_tokens_per_s": rate, "tokens_per_s_ci": None, "perplexity": [ppl], **kw}
  block = {"impls": {"jax-scratch": rec(30000.0, 12.9),
                     "jax-scratch-bf16": rec(21000.0, 12.91, vs_float32=0.7, vs_float32_ci=[0.65, 0.75])}}
  text = markdown._bf16({}, block)
  assert "| jax-scratch-bf16 | 30,000 | 21,000 | 0.700x [0.650–0.750] | 12.9000 | 12.9100 |" in text
  assert markdown._bf16({}, {"impls": {"jax-scratch": rec(1.0, 1.0)}}) == ""


@pytest.mark.slow
def test_bf16_with_the_truth_measures_each_twin_against_its_rows_float64(tmp_path, corpus_vocab):
  out = tmp_path / "bf16-truth"
  assert compare.main([*TINY, "--epochs", "3", "--precision", "bf16", "--truth",
                       "--impls", "torch-cudnn,flax-gru", "--out", str(out)]) == 0
  results = json.loads((out / "results.json").read_text())
  assert set(results["truth"]["gaps"]) == set(results["impls"])  # each twin against its row's float64
  assert set(results["truth"]["impls"]) == {"torch-cudnn", "flax-gru"}
  assert any("bf16 runs stay closest" in v for v in results["truth"]["verdicts"])


@pytest.mark.parametrize("args, match", [
    (["--precision", "bf16", "--devices", "2", "--impls", "jax-scratch"], "data-parallel twins in bf16"),
    (["--impls", "jax-scratch-bf16"], "give jax-scratch with --precision bf16"),
    (["--ablation", "--precision", "bf16"], "drop --precision bf16"),
    (["--precision", "float64", "--truth"], "drop --truth"),
])
def test_bad_bf16_input_is_one_line_before_training(args, match, capsys):
  with pytest.raises(SystemExit) as e:
    compare.main([*TINY, *args])
  assert e.value.code == 2
  err = capsys.readouterr().err.strip()
  assert match in err and len(err.splitlines()) == 1


def test_a_row_that_cannot_run_bf16_is_refused_by_name(monkeypatch):
  monkeypatch.setitem(rows.IMPLS, "flax-gru", dataclasses.replace(rows.IMPLS["flax-gru"],
                                                                  no_bf16="no bf16 path (a test's stand-in)"))
  with pytest.raises(ValueError, match="flax-gru cannot run in bf16: no bf16 path"):
    rows.check(["jax-scratch", "flax-gru"], Config(precision="bf16"))
  rows.check(["jax-scratch", "flax-gru"], Config())  # float32: nothing to refuse


def test_cpu_torch_runs_bf16():
  from torch_impl import precision as torch_precision
  assert torch_precision.bf16_problem(torch.device("cpu")) is None


@pytest.mark.slow
def test_torch_compile_trains_bf16_as_eager_autocast_does():
  """The compiled step (Inductor, under autocast) against the eager one: two epochs' losses
  within the bf16 first-epochs tolerance."""
  impls = runner.build([Row("torch-compile", True), Row("torch-scratch", True)], SMALL).impls
  rng = np.random.default_rng(9)
  batches = tuple(rng.integers(0, 28, (3, SMALL.batch_size, SMALL.num_steps)).astype(np.int32) for _ in range(2))
  losses = {n: [i.train_epoch(batches) for _ in range(2)] for n, i in impls.items()}
  gap = metrics.rel_diff(np.exp(losses["torch-compile-bf16"]), np.exp(losses["torch-scratch-bf16"]))
  assert gap <= metrics.TOLERANCES["bf16"]["ppl_first10_rel"]
