"""Several seeds: the statistics on numbers whose answer is known, the aggregation of
seed blocks, and `compare.py --seeds` end to end (report, interrupt, a failing seed)."""
import json

import numpy as np
import pytest

import compare
from shared import records, stats
from shared.reports import report, summary
from shared.kinds import seeds as S
from shared.rows import Row

TINY = ["--preset", "quick", "--device", "cpu", "--max-tokens", "600", "--num-steps", "5", "--batch-size", "4",
        "--num-hiddens", "16"]
# Student's t quantile t(0.975, 4 degrees of freedom), from tables: 2.776445105.
T975_4 = 2.776445105


def test_describe_gives_mean_sample_std_and_range():
  d = stats.describe([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
  assert (d["n"], d["mean"], d["min"], d["max"]) == (8, 5.0, 2.0, 9.0)
  assert d["std"] == pytest.approx(np.sqrt(32 / 7))  # ddof 1
  assert stats.describe([3.0])["std"] is None and stats.describe([None, None])["n"] == 0


def test_paired_interval_is_the_t_interval_of_the_differences():
  a, b = np.array([11.0, 12.0, 13.0, 14.0, 15.0]), np.full(5, 10.0)  # differences 1..5
  d = stats.paired_difference(a, b)
  half = T975_4 * np.sqrt(2.5) / np.sqrt(5)  # sample variance of 1..5 is 2.5
  assert d["n"] == 5 and d["mean"] == pytest.approx(3.0)
  assert (d["ci_low"], d["ci_high"]) == (pytest.approx(3 - half), pytest.approx(3 + half))
  assert 0 < d["p_value"] < 0.05  # mean 3, standard error 0.71: clearly not zero


def test_paired_interval_holds_zero_when_differences_cancel():
  d = stats.paired_difference([1.0, 2.0, 3.0, 4.0], [1.1, 1.9, 3.1, 3.9])  # +-0.1
  assert d["ci_low"] < 0 < d["ci_high"] and d["p_value"] > 0.5


def test_tost_is_the_larger_of_two_one_sided_t_tests_against_the_margin():
  """Differences 1..5 (mean 3, standard error sqrt(0.5)) against a margin of 6: the two
  one-sided tests are t = (3 + 6) / sqrt(0.5) and t = (3 - 6) / sqrt(0.5) on 4 degrees of
  freedom; TOST's p is the larger of their p-values. A margin of 2 cannot be shown."""
  a, b = np.arange(11.0, 16.0), np.full(5, 10.0)
  wide, narrow = stats.paired_difference(a, b, margin=6.0), stats.paired_difference(a, b, margin=2.0)
  from scipy.stats import t
  want = max(t.sf((3 + 6) / np.sqrt(0.5), 4), t.cdf((3 - 6) / np.sqrt(0.5), 4))
  assert wide["tost_p"] == pytest.approx(want) and wide["tost_p"] < 0.05 and wide["margin"] == 6.0
  assert narrow["tost_p"] > 0.5


def test_the_same_means_the_printed_interval_lies_within_the_margin():
  """TOST at 5% matches a 90% interval: differences 0.1..0.9 (90% interval to 0.67) against a
  margin of 0.69 pass it, while the 95% interval the report prints reaches 0.71. The verdict
  uses 2.5% on each side."""
  d = stats.paired_difference(np.arange(1, 10) / 10, np.zeros(9), margin=0.69)
  assert d["ci_high"] > 0.69 and 0.025 < d["tost_p"] < 0.05
  assert "not shown to be within the margin" in S.verdict(d, "a", "b", "final_ppl")


def test_paired_interval_edge_cases():
  assert stats.paired_difference([1.0], [2.0])["ci_low"] is None  # one pair: no interval
  same = stats.paired_difference([1.5, 2.5, 3.5], [1.0, 2.0, 3.0], margin=1.0)  # every difference 0.5
  assert same["no_spread"] and (same["ci_low"], same["ci_high"], same["p_value"], same["tost_p"]) == (None,) * 4


def _block(seed, finals: dict, reach: dict, failed=()) -> dict:
  impls = {n: {"status": "failed" if n in failed else "ok", "perplexity": [30.0] + [p] * 10,  # final = last = p
               "epoch_to_target_ppl": reach[n], "steady_tokens_per_s": 1000.0 + seed} for n, p in finals.items()}
  return {"seed": seed, "status": "ok", "impls": impls, "truth": None}


@pytest.fixture
def five_seeds():
  """Five seeds with answers known by construction: jax-scratch is torch-scratch plus noise of
  +-0.001 in final perplexity and +-10 epochs in reaching 1.5; flax-gru is torch-cudnn plus
  0.01 (+-0.001) and never reaches 1.5; a sixth seed where jax-scratch failed; a seventh
  that failed whole."""
  rng, runs = np.random.default_rng(0), []
  for seed in range(5):
    base = 1.05 + 0.02 * rng.standard_normal()  # seed-to-seed spread 0.02
    sign = (-1) ** seed
    finals = {"torch-scratch": base, "jax-scratch": base + 0.001 * sign, "torch-cudnn": base,
              "flax-gru": base + 0.01 + 0.001 * sign}
    runs.append(_block(seed, finals, {"torch-scratch": 100 + seed, "jax-scratch": 100 + seed + 10 * sign,
                                      "torch-cudnn": 90, "flax-gru": None}))
  runs.append(_block(5, {"torch-scratch": 1.1, "jax-scratch": 1.1, "torch-cudnn": 1.1, "flax-gru": 1.11},
                     {"torch-scratch": 99, "jax-scratch": 99, "torch-cudnn": 99, "flax-gru": None},
                     failed=("jax-scratch",)))
  runs.append({"seed": 6, "status": "failed", "error": "RuntimeError: boom"})
  return runs


def test_aggregate_pairs_each_group_member_with_its_anchor_per_seed(five_seeds):
  agg = S.aggregate(five_seeds, [Row(n) for n in ("torch-scratch", "jax-scratch", "torch-cudnn", "flax-gru")])
  assert agg["seeds_done"] == [0, 1, 2, 3, 4, 5]
  assert agg["impls"]["jax-scratch"]["final_ppl"]["n"] == 5 and agg["impls"]["torch-scratch"]["final_ppl"]["n"] == 6
  assert agg["impls"]["flax-gru"]["target_not_reached"] == 6
  pairs = {(p["impl"], p["metric"]): p for p in agg["pairs"]}
  scratch, builtin = pairs[("jax-scratch", "final_ppl")], pairs[("flax-gru", "final_ppl")]
  # margin: 1% of the anchor's mean final perplexity, declared in shared/seeds.py
  assert scratch["margin"] == pytest.approx(0.01 * np.mean([1.05 + 0.02 * x for x in
                                                            np.random.default_rng(0).standard_normal(5)]))
  assert scratch["anchor"] == "torch-scratch" and scratch["ci_low"] < 0 < scratch["ci_high"]
  assert scratch["tost_p"] < 0.025 and "the same within the margin" in scratch["verdict"]
  # the failed row's seed is named, not silently dropped from the pair
  assert scratch["seeds"] == [0, 1, 2, 3, 4] and "seed 5 (jax-scratch did not finish)" in scratch["verdict"]
  assert builtin["mean"] == pytest.approx(0.0102, abs=1e-4) and builtin["ci_low"] > 0.008
  # 0.0102 +- 0.001 against a margin of 0.0105: different, and not shown to be within it
  assert builtin["ci_high"] > builtin["margin"] and "a systematic difference, not shown to be within" in builtin["verdict"]
  noisy = pairs[("jax-scratch", "epoch_to_target")]  # +-10 epochs against a margin of about 2
  assert noisy["ci_low"] < 0 < noisy["ci_high"] and "inconclusive" in noisy["verdict"]
  # flax-gru never reached the target where torch-cudnn always did: a difference that no
  # interval over the (zero) seeds where both did could show, so it gets no verdict
  never = pairs[("flax-gru", "epoch_to_target")]
  assert never["n"] == 0 and never["one_sided"] == [0, 1, 2, 3, 4, 5]
  assert "no verdict" in never["verdict"] and "only one of them reached it at seed(s) 0, 1, 2, 3, 4, 5" in never["verdict"]


def test_no_verdict_from_fewer_than_three_pairs_or_from_no_spread(five_seeds):
  agg = S.aggregate(five_seeds[:2], [Row("torch-scratch"), Row("jax-scratch")])
  final = next(p for p in agg["pairs"] if p["impl"] == "jax-scratch" and p["metric"] == "final_ppl")
  assert final["n"] == 2 and final["verdict"].startswith("final perplexity: no verdict, 2 paired seed(s)")
  d = stats.paired_difference([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], margin=1.0)
  assert "no verdict, every seed gives the same difference (+0.5)" in S.verdict(d, "a", "b", "final_ppl")


@pytest.fixture(scope="module")
def seeds_report(tmp_path_factory, corpus_vocab):
  out = tmp_path_factory.mktemp("seeds") / "two"
  code = compare.main([*TINY, "--epochs", "2", "--seeds", "3,5", "--truth",
                       "--impls", "torch-scratch,jax-scratch", "--out", str(out), "--strict"])
  return code, out


@pytest.mark.slow
def test_seeds_run_writes_every_seed_the_aggregate_and_the_plots(seeds_report):
  code, out = seeds_report
  results = json.loads((out / "results.json").read_text())
  records.validate(results)
  assert code == 0 and results["kind"] == "seeds" and not results["partial"]
  assert [r["seed"] for r in results["runs"]] == [3, 5] and results["aggregate"]["seeds_done"] == [3, 5]
  first = [r["impls"]["jax-scratch"]["perplexity"][0] for r in results["runs"]]
  assert first[0] != first[1]  # each seed draws its own weights and minibatches
  for r in results["runs"]:  # within a seed, the same start: epoch 1 agrees to round-off
    p = {n: rec["perplexity"][0] for n, rec in r["impls"].items()}
    assert abs(p["jax-scratch"] - p["torch-scratch"]) <= 1e-5 * p["torch-scratch"]
    assert r["truth"]["gaps"]["jax-scratch"]["max"] < 1e-5
  assert results["aggregate"]["impls"]["jax-scratch"]["final_ppl"]["n"] == 2
  md = (out / "report.md").read_text()
  assert "## Paired differences" in md and "| 3 | ok |" in md and "| 5 | ok |" in md
  assert sorted(p.name for p in out.glob("*.png")) == ["divergence.png", "perplexity.png", "seeds.png",
                                                        "throughput.png"]


@pytest.mark.slow
def test_a_failing_seed_is_recorded_and_the_next_one_runs(tmp_path, build_fails_when, corpus_vocab):
  build_fails_when(lambda c: c.seed == 1, RuntimeError("out of memory\ndetail"))
  out = tmp_path / "r"
  code = compare.main([*TINY, "--epochs", "2", "--seeds", "0,1,2",
                       "--impls", "jax-scratch", "--out", str(out), "--strict"])
  results = json.loads((out / "results.json").read_text())
  assert code == 1 and not results["partial"]  # --strict: a seed failed
  assert [(r["seed"], r["status"]) for r in results["runs"]] == [(0, "ok"), (1, "failed"), (2, "ok")]
  assert results["runs"][1]["error"] == "RuntimeError: out of memory"
  assert results["aggregate"]["seeds_done"] == [0, 2]


@pytest.mark.slow
def test_ctrl_c_keeps_finished_seeds_and_their_aggregate(tmp_path, ctrl_c_at_epoch, corpus_vocab):
  ctrl_c_at_epoch(6)  # seed 0 ran epochs 1-2, its profiled epoch and its probe's 2; seed 1 is stopped in its first
  out = tmp_path / "r"
  code = compare.main([*TINY, "--epochs", "2", "--seeds", "0,1,2",
                       "--impls", "jax-scratch", "--out", str(out)])
  results = json.loads((out / "results.json").read_text())
  records.validate(results)
  assert code == 130 and results["partial"]
  assert [(r["seed"], r["status"]) for r in results["runs"]] == [(0, "ok"), (1, "interrupted")]
  assert results["aggregate"]["seeds_done"] == [0]
  assert results["aggregate"]["impls"]["jax-scratch"]["final_ppl"]["n"] == 1
  assert "PARTIAL" in (out / "report.md").read_text()


@pytest.mark.slow
def test_ctrl_c_in_a_seeds_float64_truth_keeps_its_float32_figures(tmp_path, monkeypatch, corpus_vocab):
  from jax_impl.train import JaxImpl
  real = JaxImpl.train_epoch

  def interrupted_in_seed_ones_truth(self, batches):
    if self.config.seed == 1 and self.config.precision == "float64":
      raise KeyboardInterrupt
    return real(self, batches)
  monkeypatch.setattr(JaxImpl, "train_epoch", interrupted_in_seed_ones_truth)
  out = tmp_path / "r"
  code = compare.main([*TINY, "--epochs", "2", "--seeds", "0,1,2", "--truth",
                       "--impls", "jax-scratch", "--out", str(out)])
  results = json.loads((out / "results.json").read_text())
  records.validate(results)
  assert code == 130 and results["partial"]
  assert [(r["seed"], r["status"]) for r in results["runs"]] == [(0, "ok"), (1, "interrupted")]
  agg = results["aggregate"]["impls"]["jax-scratch"]
  assert agg["final_ppl"]["n"] == 2 and agg["truth_median_gap"]["n"] == 1
  assert "- **seed 1: interrupted**" in (out / "report.md").read_text()


@pytest.mark.slow
def test_a_float64_twin_that_does_not_finish_is_reported_and_fails_strict(tmp_path, monkeypatch, corpus_vocab):
  from jax_impl.train import JaxImpl
  real = JaxImpl.train_epoch

  def nan_in_float64(self, batches):
    return float("nan") if self.config.precision == "float64" else real(self, batches)
  monkeypatch.setattr(JaxImpl, "train_epoch", nan_in_float64)
  out = tmp_path / "r"
  code = compare.main([*TINY, "--epochs", "2", "--truth", "--impls", "jax-scratch", "--out", str(out), "--strict"])
  results = json.loads((out / "results.json").read_text())
  assert results["impls"]["jax-scratch"]["status"] == "ok"
  assert results["truth"]["impls"]["jax-scratch"]["status"] == "failed"
  assert code == 1  # --strict: an implementation did not finish, here in float64
  assert "- **jax-scratch (float64): failed**" in (out / "report.md").read_text()


@pytest.mark.slow
def test_a_failing_float64_truth_keeps_the_float32_results(tmp_path, build_fails_when, corpus_vocab):
  build_fails_when(lambda c: c.precision == "float64", MemoryError("no room for the float64 twins"))
  out = tmp_path / "r"
  code = compare.main([*TINY, "--epochs", "2", "--truth", "--impls", "jax-scratch", "--out", str(out)])
  results = json.loads((out / "results.json").read_text())
  records.validate(results)
  assert code == 0 and not results["partial"] and results["truth"] is None
  assert results["truth_error"] == "MemoryError: no room for the float64 twins"
  assert len(results["impls"]["jax-scratch"]["perplexity"]) == 2
  assert "The float64 truth failed" in (out / "report.md").read_text()
  assert summary.exit_code(results, strict=True) == 1 and summary.exit_code(results, strict=False) == 0


def test_a_failing_sample_generation_keeps_the_trained_run(tmp_path, monkeypatch, corpus_vocab):
  from jax_impl.train import JaxImpl

  def broken(self, prefix, num_preds, vocab):
    raise ValueError("unknown character\nmore")
  monkeypatch.setattr(JaxImpl, "predict", broken)
  out = tmp_path / "r"
  assert compare.main([*TINY, "--epochs", "2", "--impls", "jax-scratch", "--out", str(out)]) == 0
  rec = json.loads((out / "results.json").read_text())["impls"]["jax-scratch"]
  assert rec["status"] == "ok" and rec["samples"]["traveller"] == "(generation failed: ValueError: unknown character)"


@pytest.mark.slow
def test_a_failed_check_is_counted_and_named_with_its_arithmetic(seeds_report):
  """A failure in any seed reaches the summary (the first thing a reader sees), naming the
  float32 or float64 run it came from."""
  from shared.reports import markdown
  _, out = seeds_report
  results = json.loads((out / "results.json").read_text())
  check = results["runs"][1]["truth"]["parity"][0]  # seed 5, float64
  check["passed"] = False
  md = markdown.render(results)
  judged = sum(c["passed"] is not None for r in results["runs"] for c in report.parity_rows(r))
  assert f"- Parity: {judged - 1} of {judged} judged checks pass; failed" in md
  assert f"seed 5: {check['impl']} vs {check['anchor']} {check['check']} at float64:" in md


def test_seeds_split_over_two_processes_merge_into_the_run_of_both(tmp_path, capsys, corpus_vocab):
  """Two processes over different seeds give, merged, the seeds' very runs and the aggregate of
  one run over both; reports that are not one run are refused in one line."""
  args = [*TINY, "--epochs", "2", "--impls", "torch-scratch,jax-scratch"]
  for name, found in (("a", "4"), ("b", "2"), ("both", "2,4")):
    assert compare.main([*args, "--seeds", found, "--out", str(tmp_path / name)]) == 0
  assert compare.main(["--merge", f"{tmp_path / 'a'},{tmp_path / 'b'}", "--out", str(tmp_path / "merged")]) == 0
  merged, both = (json.loads((tmp_path / f / "results.json").read_text()) for f in ("merged", "both"))
  records.validate(merged)
  assert merged["seeds"] == [2, 4] and [r["seed"] for r in merged["runs"]] == [2, 4]
  assert [r["impls"]["jax-scratch"]["perplexity"] for r in merged["runs"]] == [
      r["impls"]["jax-scratch"]["perplexity"] for r in both["runs"]]
  same = lambda agg: [(p["impl"], p["metric"], p["mean"], p["ci_low"]) for p in agg["pairs"]]  # noqa: E731
  assert same(merged["aggregate"]) == same(both["aggregate"])
  assert [m["seeds"] for m in merged["environment"]["merged_from"]] == [[4], [2]]
  assert compare.main([*args, "--seeds", "7", "--epochs", "3", "--out", str(tmp_path / "other")]) == 0
  capsys.readouterr()
  with pytest.raises(SystemExit):
    compare.main(["--merge", f"{tmp_path / 'a'},{tmp_path / 'other'}", "--out", str(tmp_path / "no")])
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "differs from" in err and "sizes and settings" in err


@pytest.mark.slow
def test_a_source_stopped_by_ctrl_c_gives_its_finished_seeds_to_a_merge(tmp_path, ctrl_c_at_epoch, corpus_vocab):
  """Two processes out of time: the one stopped in seed 1 gives seed 0; seed 1 is left out
  and named, and the merged report equals a run of the seeds it holds."""
  args = [*TINY, "--epochs", "2", "--impls", "jax-scratch"]
  for name, found in (("a", "4"), ("both", "0,4")):
    assert compare.main([*args, "--seeds", found, "--out", str(tmp_path / name)]) == 0
  ctrl_c_at_epoch(6)  # seed 0's 2 epochs, its profiled one and its probe's 2; stopped in seed 1's first
  assert compare.main([*args, "--seeds", "0,1,2", "--out", str(tmp_path / "p")]) == 130
  assert compare.main(["--merge", f"{tmp_path / 'a'},{tmp_path / 'p'}", "--out", str(tmp_path / "m")]) == 0
  merged, both = (json.loads((tmp_path / f / "results.json").read_text()) for f in ("m", "both"))
  records.validate(merged)
  assert not merged["partial"] and merged["seeds"] == [0, 4] and [r["status"] for r in merged["runs"]] == ["ok"] * 2
  assert [r["impls"]["jax-scratch"]["perplexity"] for r in merged["runs"]] == [
      r["impls"]["jax-scratch"]["perplexity"] for r in both["runs"]]
  assert [(m["seeds"], m["partial"], m["left_out"]) for m in merged["environment"]["merged_from"]] == [
      ([4], False, []), ([0], True, [1])]
  assert "stopped by Ctrl-C, seed(s) 1 left unfinished and left out" in (tmp_path / "m" / "report.md").read_text()


def test_judgement_at_three_pairs_and_without_spread():               # J1 J3
  d = {"n": 3, "no_spread": False, "tost_p": 0.001, "ci_low": -0.001, "ci_high": 0.002}
  assert S.judgement(d) == "same"
  assert S.judgement({**d, "n": 5, "no_spread": True, "tost_p": None, "ci_low": None, "ci_high": None}) == "none"
