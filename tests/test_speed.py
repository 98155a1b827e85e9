"""Speed that holds between runs (shared/kinds/speed.py): intervals across processes, the
framework ratio per model among the rows judged equal, and `compare.py --repeat` end to end."""
import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

import compare
from shared import records, stats
from shared.kinds import compare as K
from shared.kinds import speed
from shared.rows import Row

from tests.test_compare import TINY, _refused


def test_geometric_interval_is_the_t_interval_of_the_logs():
  mid, low, high = stats.geometric_interval([1.0, 2.0, 4.0])  # logs 0, ln2, 2 ln2: mean ln2
  half = scipy_stats.t.ppf(0.975, 2) * math.log(2) / math.sqrt(3)  # their sample std is ln 2
  assert mid == pytest.approx(2.0)
  assert (low, high) == (pytest.approx(2 * math.exp(-half)), pytest.approx(2 * math.exp(half)))
  assert stats.geometric_interval([1.0, 2.0])[1:] == (None, None)   # fewer than MIN_PAIRS
  assert stats.geometric_interval([3.0, 3.0, 3.0]) == (pytest.approx(3.0), None, None)  # no spread


def test_only_rows_that_train_the_reference_computation_and_pass_are_judged_equal():
  checks = [{"impl": "nnx-gru", "anchor": "torch-cudnn", "passed": False},
            {"impl": "jax-scratch", "anchor": "torch-reference", "passed": True}]
  names = ["torch-reference", "jax-scratch", "nnx-grucell", "flax-grucell", "keras-jax", "keras-torch",
           "jax-scratch-bf16"]
  assert speed.judged_equal([], names, True) == ["torch-reference", "jax-scratch", "keras-torch"]
  assert speed.judged_equal([], ["keras-jax"], False) == ["keras-jax"]  # no state carried: no deviation
  assert speed.judged_equal(checks, ["flax-gru", "nnx-gru", "torch-cudnn"], True) == ["flax-gru"]


def test_the_fastest_row_of_each_framework_per_model_is_never_a_departing_one():
  rates = {"torch-cudnn": 30.0, "flax-gru": 40.0, "nnx-grucell": 90.0, "nnx-gru": 45.0, "torch-scratch": 20.0,
           "torch-compile": 25.0, "jax-scratch": 50.0, "keras-jax": 99.0}
  assert speed.fastest(rates, [], True) == {"builtin": {"torch": "torch-cudnn", "jax": "nnx-gru"},
                                            "scratch": {"torch": "torch-compile", "jax": "jax-scratch"}}


def _record(rates: list) -> dict:
  return {"steady_tokens_per_s": float(np.median(rates[1:])), "tokens": [1000] * len(rates),
          "epoch_seconds": [1000 / r for r in rates]}


def test_the_framework_ratio_is_paired_within_each_process_and_taken_across_them():
  """Three processes where JAX runs 1.2x, 1.5x and 1.0x PyTorch's rate round by round: each
  process's ratio is its median paired ratio, the headline their geometric mean with the
  t-interval of their logs."""
  procs = []
  for ratio in (1.2, 1.5, 1.0):
    torch_rates = [10.0, 100, 101, 99, 102, 98, 100]
    procs.append({"torch-scratch": _record(torch_rates), "jax-scratch": _record([r * ratio for r in torch_rates])})
  s = speed.summary(procs, [], True)
  (f,) = s["frameworks"]
  assert (f["model"], f["jax"], f["torch"]) == ("scratch", "jax-scratch", "torch-scratch")
  assert f["per_process"] == [pytest.approx(1.2), pytest.approx(1.5), pytest.approx(1.0)]
  want = stats.geometric_interval([1.2, 1.5, 1.0])
  assert f["ratio"] == pytest.approx(want[0]) and f["ci"] == [pytest.approx(want[1]), pytest.approx(want[2])]
  assert all(w[0] == pytest.approx(w[1]) for w in f["within"])  # no spread within a process here
  assert s["rows"]["jax-scratch"]["per_process"][1] == pytest.approx(150.0)


def test_a_repeat_trains_every_row_in_fresh_processes_after_the_judged_run(tiny_config):
  rows = [Row("torch-scratch"), Row("jax-scratch")]
  units = K.plan(tiny_config, rows, None, truth=True, repeats=3)
  assert [u.key for u in units] == ["run main", "run repeat 2", "run repeat 3", "run truth"]
  assert [u.cells[0].process for u in units] == [True, True, True, False]
  assert [u.judged for u in units] == [True, False, False, True]
  assert units[1].needs == "run main" and K.plan(tiny_config, rows, None)[0].cells[0].process is False


@pytest.mark.parametrize("args, match", [(("--repeat", "0"), "--repeat takes N >= 1"),
                                         (("--repeat", "3", "--seeds", "0,1"), "drop --seeds"),
                                         (("--repeat", "2", "--sweep", "num_hiddens=8,16"), "drop --seeds, --sweep")])
def test_bad_repeats_are_refused_before_training(args, match):
  out = _refused("--preset", "quick", *args)
  assert out.returncode == 2 and match in out.stderr


@pytest.mark.slow
def test_repeat_writes_speed_across_processes(tmp_path, corpus_vocab, capsys):
  out = tmp_path / "r"
  assert compare.main([*TINY, "--epochs", "4", "--impls", "torch-scratch,jax-scratch", "--repeat", "3",
                       "--out", str(out)]) == 0
  results = json.loads((out / "results.json").read_text())
  records.validate(results)
  assert len(results["repeats"]) == 2 and results["speed"]["processes"] == 3
  (f,) = results["speed"]["frameworks"]
  assert len(f["per_process"]) == 3 and f["ratio"] > 0
  # every process trained the same numbers: a repeat is the same computation, timed again
  assert all(p["jax-scratch"]["perplexity"] == results["impls"]["jax-scratch"]["perplexity"]
             for p in results["repeats"])
  md = (out / "report.md").read_text()
  assert "### Across processes" in md and "geometric mean over 3 processes" in md
  assert "speed, scratch: jax-scratch / torch-scratch" in capsys.readouterr().out


def test_a_sweep_never_names_a_departing_row_fastest():
  from shared.kinds import sweep
  impls = {"nnx-grucell": {"steady_tokens_per_s": 99.0, "framework": "jax"},
           "flax-gru": {"steady_tokens_per_s": 50.0, "framework": "jax"},
           "torch-cudnn": {"steady_tokens_per_s": 40.0, "framework": "torch"}}
  assert sweep.fastest(impls) == {"jax": ("flax-gru", 50.0), "torch": ("torch-cudnn", 40.0)}
  assert sweep.fastest_ratio(impls) == pytest.approx(50 / 40)


def _record_of(rates):
  return {"steady_tokens_per_s": float(np.median(rates[1:])), "tokens": [1000] * len(rates),
          "epoch_seconds": [1000 / r for r in rates]}

def _procs():
  torch = [10.0, 100, 101, 99, 102, 98, 100]
  out = []
  for k, scale in enumerate((1.0, 1.1, 0.9)):
    jax = [100.0] + [t * f * scale for t, f in zip(torch[1:], (1.1, 1.2, 1.3, 1.4, 1.5, 1.6))]
    out.append({"torch-scratch": _record_of(torch), "jax-scratch": _record_of(jax),
                "torch-compile": _record_of([10.0] + [(120 if k == 0 else 80)] * 6)})
  return out


def test_the_ratio_leaves_out_the_first_epoch_and_each_process_keeps_its_own_interval():          # S7 S9 S10 S11
  procs = _procs()
  s = speed.summary(procs, [], True)
  (f,) = s["frameworks"]
  assert f["torch"] == "torch-scratch"   # compile: 120 in process 1 only, geomean 91.6 < 100
  for p, pp, w in zip(procs, f["per_process"], f["within"]):
    want = stats.paired_ratio(speed.rates(p["jax-scratch"])[1:], speed.rates(p["torch-scratch"])[1:])
    assert pp == pytest.approx(want[0]) and w == [pytest.approx(want[1]), pytest.approx(want[2])]
    assert w[0] < pp < w[1]
  assert f["per_process"][0] == pytest.approx(np.median([1.1, 1.2, 1.3, 1.4, 1.5, 1.6]))  # 1.35, warm-up left out
  r = s["rows"]["torch-compile"]
  want = stats.geometric_interval([120.0, 80.0, 80.0])
  assert r["ci"] == [pytest.approx(want[1]), pytest.approx(want[2])]


def test_a_row_missing_from_a_repeat_is_left_out():   # S8
  procs = _procs()
  procs[1]["jax-scratch"]["steady_tokens_per_s"] = None
  s = speed.summary(procs, [], True)
  assert "jax-scratch" not in s["rows"] and s["frameworks"] == []


def test_a_tuned_row_is_set_over_its_frameworks_fastest_untuned_row_and_a_twin_is_no_row_of_the_table():
  """torch-tuned at 1.5x torch-scratch, beside a bf16 twin (a name the table does not hold):
  its ratio is over torch-scratch; the twin is neither tuned nor judged."""
  rates = [10.0, 100, 101, 99, 102, 98, 100]
  procs = [{"torch-scratch": _record(rates), "torch-tuned": _record([1.5 * r for r in rates]),
            "torch-scratch-bf16": _record(rates)} for _ in range(3)]
  (t,) = speed.summary(procs, [], True)["tuned"]
  assert (t["model"], t["row"], t["over"]) == ("scratch", "torch-tuned", "torch-scratch")
  assert t["ratio"] == pytest.approx(1.5)
  failed = [{"impl": "torch-tuned", "anchor": "torch-reference", "passed": False}]
  assert speed.summary(procs, failed, True)["tuned"] == []  # a tuned row that failed a check is set over nothing
