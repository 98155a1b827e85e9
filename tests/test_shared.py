"""Config, parameter layouts and initializers, registry, timing tools, parity metrics."""
import numpy as np
import pytest

from shared import metrics, registry
from shared import params as P
from shared.config import PRESETS, Config, preset
from shared.rows import IMPLS


def test_seed_preset_is_the_d2l_chapter():
  c = PRESETS["seed"]
  assert (c.batch_size, c.num_steps, c.num_hiddens, c.lr, c.num_epochs, c.grad_clip,
          c.max_tokens, c.sampling, c.seed) == (32, 35, 256, 1.0, 500, 1.0, 10_000, "sequential", 0)
  assert PRESETS["quick"].num_epochs < 10


@pytest.mark.parametrize("override, match", [
    (dict(batch_size=0), "batch_size"), (dict(num_steps=-1), "num_steps"),
    (dict(max_tokens=1), "max_tokens"), (dict(sampling="shuffled"), "sampling"),
    (dict(precision="fp8"), "precision"), (dict(lr=0.0), "lr"), (dict(grad_clip=float("nan")), "grad_clip"),
    (dict(devices=3), "does not split evenly"), (dict(processes=1, devices=2), "processes 0 or equal")])
def test_impossible_configs_are_refused(override, match):
  with pytest.raises(ValueError, match=match):
    preset("seed", **override)


@pytest.mark.parametrize("name, value, match", [
    ("xla_dot", "onednn", "xla_dot"), ("thread_pool", "one", "thread_pool"), ("unroll", -2, "unroll must be >= 0"),
    ("compile_mode", "fast", "compile_mode"), ("cuda_graph", "minibatch", r"cuda_graph must be one of \('off', 'step', "
                                                                           r"'epoch'\)"),
    ("command_buffer", "on", "command_buffer"), ("jax_loop", "scan", "jax_loop"), ("keras_jit", "off", "keras_jit")])
def test_impossible_framework_settings_are_refused_by_their_declaration(name, value, match):
  option = {o.name: o for o in registry.options()}[name]
  option.check(option.default)  # each default is allowed
  with pytest.raises(ValueError, match=match):
    option.check(value)


def test_unknown_preset_lists_the_known_ones():
  with pytest.raises(ValueError, match="seed, quick"):
    preset("fast")


def test_unroll_default_depends_on_the_device():
  from jax_impl.options import scan_unroll
  assert scan_unroll(preset("seed"), "gpu") == 35 and scan_unroll(preset("seed"), "cpu") == 1
  assert scan_unroll(preset("seed", unroll=5), "gpu") == 5


def test_scratch_init_draws_the_seed_distribution():
  p = P.init_params(P.SCRATCH, 0, 28, 256)
  assert list(p) == list(P.SCRATCH_NAMES)
  assert all(p[n].dtype == np.float32 and p[n].shape == s for n, s in P.shapes(P.SCRATCH, 28, 256).items())
  assert all(not p[n].any() for n in p if n.startswith("b_"))
  weights = np.concatenate([p[n].ravel() for n in p if n.startswith("W_")])
  assert abs(weights.std() - 0.01) < 2e-4 and abs(weights.mean()) < 2e-4


def test_builtin_init_is_torch_default_uniform():
  p = P.init_params(P.BUILTIN, 0, 28, 256)
  assert list(p) == list(P.BUILTIN_NAMES) and len(p) == 14
  values = np.concatenate([v.ravel() for v in p.values()])
  k = 1 / 16  # 1/sqrt(256)
  assert values.min() >= -k and values.max() <= k and values.max() > 0.99 * k


def test_same_seed_same_weights_other_seed_other_weights():
  a, b, c = (P.init_params(P.SCRATCH, s, 28, 16) for s in (3, 3, 4))
  assert all(np.array_equal(a[n], b[n]) for n in a)
  assert not np.array_equal(a["W_hh"], c["W_hh"])


def test_fold_builtin_moves_hidden_gate_biases_to_the_input_side():
  p = P.init_params(P.BUILTIN, 1, 28, 8)
  q = P.fold_builtin(p)
  assert np.array_equal(q["b_ir"], p["b_ir"] + p["b_hr"]) and not q["b_hr"].any()
  assert np.array_equal(q["b_iz"], p["b_iz"] + p["b_hz"]) and not q["b_hz"].any()
  assert np.array_equal(q["b_hn"], p["b_hn"]) and np.array_equal(q["b_in"], p["b_in"])


def test_check_rejects_wrong_names_and_shapes():
  p = P.init_params(P.SCRATCH, 0, 28, 8)
  with pytest.raises(ValueError, match="layout needs"):
    P.check({**p, "W_extra": p["b_z"]}, P.SCRATCH, 28, 8)
  with pytest.raises(ValueError, match=r"W_hh must have shape \(8, 8\)"):
    P.check({**p, "W_hh": np.zeros((8, 9))}, P.SCRATCH, 28, 8)


def test_unknown_implementation_lists_the_known_ones(tiny_config):
  with pytest.raises(ValueError, match="torch-reference, torch-scratch, torch-cudnn, torch-compile, torch-tuned, torch-tuned-builtin, jax-scratch, flax-gru"):
    registry.make_impl("mxnet-gru", tiny_config)


def test_a_framework_setting_travels_in_the_config_and_a_report_states_it_flat():
  c = Config().set(unroll=5, lr=0.5)
  assert c.lr == 0.5 and c.option("unroll") == 5 and c.option("xla_dot", "") == ""
  assert c.as_dict()["unroll"] == 5 and c.as_dict()["lr"] == 0.5 and "options" not in c.as_dict()
  assert c.set(unroll=1).option("unroll") == 1 and c.set(unroll=1).options == (("unroll", 1),)
  assert preset("quick", unroll=3).option("unroll") == 3


def test_parity_metrics():
  a = {"x": np.array([3.0, 4.0]), "y": np.array([0.0])}
  b = {"x": np.array([3.0, 4.5]), "y": np.array([0.0])}
  assert metrics.grads_rel_diff(b, a) == pytest.approx(0.5 / 5.0)
  assert metrics.rel_diff([1.0, 2.0, 4.0], [1.0, 2.0, 5.0]) == pytest.approx(0.2)
  row = metrics.check("g", "i", "a", "logits_rel", 2e-5)
  assert row["passed"] is False and row["tolerance"] == metrics.TOLERANCES["float32"]["logits_rel"]
  assert metrics.check("g", "i", "a", "logits_rel", float("nan"))["passed"] is False
  assert metrics.check("g", "i", "a", "ppl_all_rel", 0.3)["passed"] is None


def test_relative_figures_judge_each_parameter_on_its_own_scale():
  """A gate bias whose gradient is 1000x smaller than the largest one, and wrong by 100%,
  is invisible against the global scale and plain on its own."""
  anchor = {"W": np.array([1.0, -2.0]), "b": np.array([0.002, 0.0])}
  dropped = {"W": np.array([1.0, -2.0]), "b": np.array([0.0, 0.0])}
  assert metrics.rel_diff_arrays(dropped, anchor) == pytest.approx(1.0)
  assert metrics.rel_diff_arrays(dropped, anchor, each=False) == pytest.approx(0.001)
  assert metrics.rel_diff_arrays(np.array([1.0, 3.0]), np.array([1.0, 4.0])) == pytest.approx(0.25)
  zero = {"b": np.zeros(2)}
  assert metrics.rel_diff_arrays(zero, zero) == 0.0 and metrics.rel_diff_arrays({"b": np.ones(2)}, zero) == np.inf


@pytest.mark.parametrize("where", [0, -1])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_value_on_either_side_fails_its_check_with_its_own_message(where, bad):
  """Python's built-in max drops a NaN unless it comes first; every figure here is NaN or
  infinite whatever the position, and the note names the side and the array."""
  good = {"W_xz": np.ones((2, 3)), "W_hq": np.ones((3, 2))}
  broken = {k: v.copy() for k, v in good.items()}
  broken["W_hq"].flat[where] = bad
  for a, b in ((broken, good), (good, broken)):
    for figure in (metrics.rel_diff_arrays(a, b), metrics.rel_diff_arrays(a, b, each=False),
                   metrics.grads_rel_diff(a, b), metrics.max_abs_diff(a["W_hq"], b["W_hq"])):
      assert not np.isfinite(figure)
      assert metrics.check("g", "i", "a", "grads_rel", figure)["passed"] is False
  assert metrics.nonfinite(broken, good, "jax-scratch", "torch-reference") == \
      "jax-scratch has non-finite values in W_hq (1)"
  assert metrics.nonfinite(good, good, "jax-scratch", "torch-reference") == ""


def test_throughput_is_the_median_epoch_with_an_interval():
  rates = [1000.0 + 10 * k for k in range(12)]
  r = metrics.throughput([100] * 13, [10.0] + [100 / x for x in rates], [30.0] * 12 + [1.4],
                         [0.0] + [200 / x for x in rates], prepare_seconds=5.0)
  low, high = r["tokens_per_s_ci"]
  assert r["steady_tokens_per_s"] == pytest.approx(np.median(rates)) and low <= r["steady_tokens_per_s"] <= high
  assert min(rates) <= low < high <= max(rates) and high - low < max(rates) - min(rates)
  assert (r["min_tokens_per_s"], r["max_tokens_per_s"]) == (pytest.approx(1000), pytest.approx(1110))
  assert r["cores_used"] == pytest.approx(2.0) and r["slow_epochs"] == []
  assert r["first_epoch_seconds"] == 10.0 and r["epoch_to_target_ppl"] == 13
  assert r["seconds_to_target_with_compile"] == pytest.approx(r["seconds_to_target_ppl"] + 5.0)
  few = metrics.throughput([100, 100, 100], [10.0, 1.0, 0.5], [30.0, 1.4, 1.2])
  assert few["steady_tokens_per_s"] == pytest.approx(150) and few["tokens_per_s_ci"] is None  # 2 epochs: none
  assert few["seconds_to_target_ppl"] == 11.0 and few["cores_used"] is None
  assert metrics.throughput([100], [1.0], [3.0])["seconds_to_target_ppl"] is None


def test_a_slow_epoch_is_flagged_and_moves_the_median_less_than_total_over_total():
  seconds = [5.0] + [0.1] * 20
  calm = metrics.throughput([1000] * 21, seconds, [9.0] * 21)
  stalled = metrics.throughput([1000] * 21, seconds[:7] + [2.0] + seconds[8:], [9.0] * 21)  # epoch 8: 20x
  assert calm["slow_epochs"] == [] and stalled["slow_epochs"] == [8]
  median_shift = abs(stalled["steady_tokens_per_s"] / calm["steady_tokens_per_s"] - 1)
  total_shift = abs(stalled["total_tokens_per_s"] / calm["total_tokens_per_s"] - 1)
  assert median_shift == 0.0 and total_shift > 0.4  # 20 epochs of 0.1 s, one of 2 s: 2.0/3.9


def test_non_finite_figures_become_null_in_results_json():
  from shared.reports import report
  out = report.finite({"a": [1.0, float("nan")], "b": {"c": float("inf"), "d": "x"}, "e": (2,)})
  assert out == {"a": [1.0, None], "b": {"c": None, "d": "x"}, "e": [2]}


def test_first_divergence_names_the_first_epoch_past_the_threshold():
  assert metrics.first_divergence([1.0, 1.0005, 1.01, 1.0], [1.0, 1.0, 1.0, 1.0]) == 3
  assert metrics.first_divergence([2.0, 2.0], [2.0, 2.0]) is None
  assert metrics.check("g", "i", "a", "ppl_diverge_epoch", None)["measured"] is None


def test_a_report_says_how_far_the_target_was_when_no_run_reached_it():
  import math
  from shared.reports import compare_md as markdown
  ppl = [2.0 * 0.99 ** k for k in range(21)]  # falls 1% per epoch, never below 1.5
  (line,) = markdown._target_line({"ppl_target": 1.5}, {"a": {"perplexity": ppl, "epoch_to_target_ppl": None}}, 21)
  more = math.log(1.5 / ppl[-1]) / math.log(0.99)
  assert "lowest was 1.636 (a)" in line and "-1.00% per epoch" in line and f"about {more:,.0f} more" in line
  reached = {"a": {"perplexity": [1.4], "epoch_to_target_ppl": 1}}
  assert markdown._target_line({"ppl_target": 1.5}, reached, 1) == []


def test_colours_are_fixed_per_implementation_and_grouped_by_framework():
  from shared.reports import plots
  colours = {n: plots.color(n) for n in IMPLS}
  assert len(set(colours.values())) == len(colours)  # every row its own colour
  for n, c in colours.items():
    assert c in plots.PALETTES[IMPLS[n].framework]
  assert plots.color("torch-reference") == plots.PALETTES["torch"][0]  # registry order, not report order
  assert plots.color("no-such-row") == "0.5"


def test_a_huge_finite_loss_is_named_for_what_it_is_and_a_failed_rows_line_is_printed_once(capsys):
  """A loss of 1.5e30 is finite: its row fails because exp(loss) overflows, and says so; in a
  log, a failed row's progress line appears once, not every tenth of the run."""
  from shared import training
  from shared.records import Record

  class Diverged:
    name, clipped_steps = "diverged", 0

    def train_epoch(self, batches):
      return 1.5e30
  rec = Record("d", "scratch", "torch", "cpu", "float32", 1)
  rec.status = "running"
  assert not training.train_epoch(Diverged(), [np.zeros((2, 2))], rec)
  assert rec.status == "failed" and "loss 1.5e+30: finite, but its perplexity exp(loss) overflows" in rec.error
  progress = training.Progress({"diverged": rec}, 20)
  for epoch in range(1, 21):
    progress.update(epoch)
  lines = capsys.readouterr().out.splitlines()
  assert len([x for x in lines if x.startswith("diverged ")]) == 1  # one progress line after the failure's own
