"""The README's answer and docs/results.md are generated from the committed reports
(shared/reports/findings.py): every quoted figure is what its report holds today, every
report named is committed, and the hand-written text around them quotes no measured figure."""
import dataclasses
import math
import pathlib
import re
import shutil
import subprocess

import pytest
from scipy import stats as ss

from shared import stats
from shared.reports import findings, speed_answer

ROOT = pathlib.Path(__file__).resolve().parents[1]
# A measured figure in hand-written text: a speed ratio (1.29x) or a rate (30,385 tokens/s, 45k
# tokens/s, 38.7 GFLOP/s). Constants of the code (1e-5, 32 x 35, 500 epochs) are not figures.
MEASURED = re.compile(r"\b\d+\.\d+x\b|\b\d[\d,.]*k? ?(tokens/s|GFLOP/s)")
HAND_WRITTEN = ["README.md", *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").glob("*.md"))
                               if p.name != "results.md")]


def _outside_blocks(text: str) -> str:
  return re.sub(r"<!-- begin findings:(\w+).*?<!-- end findings:\1 -->", "", text, flags=re.S)


def test_every_generated_block_is_what_the_committed_reports_give():
  assert findings.stale(ROOT) == []


def test_every_report_the_readme_and_docs_name_is_committed():
  tracked = subprocess.run(["git", "ls-files", "reports"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
  texts = {f: (ROOT / f).read_text() for f in ["README.md", "PORTING.md", *(str(p.relative_to(ROOT)) for p in
                                                                            (ROOT / "docs").glob("*.md"))]}
  named = {(f, r) for f, t in texts.items() for r in findings.cited(t)}
  assert named, "the README names no report"
  missing = [f"{f}: reports/{r}" for f, r in sorted(named) if not any(t == f"reports/{r}" or
                                                                     t.startswith(f"reports/{r}/") for t in tracked)]
  assert missing == []


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_hand_written_text_quotes_no_measured_figure(name):
  found = MEASURED.findall(_outside_blocks((ROOT / name).read_text()))
  assert found == [], f"{name} quotes a measured figure outside a generated block: generate it, or link its report"


def test_the_figure_guard_and_the_block_guard_can_fail(tmp_path):
  assert MEASURED.search("JAX ran 1.29x faster") and MEASURED.search("at 30,385 tokens/s")
  assert not MEASURED.search("a tolerance of 1e-5 on 32 x 35 minibatches, 500 epochs")
  inside = "a\n<!-- begin findings:answer (x) -->\n1.29x\n<!-- end findings:answer -->\nb"
  assert _outside_blocks(inside) == "a\n\nb"
  # a figure changed by hand inside a block is caught, and names the command that fixes it
  for path in ("README.md", "docs/results.md"):
    (tmp_path / path).parent.mkdir(exist_ok=True)
    shutil.copy(ROOT / path, tmp_path / path)
  (tmp_path / "reports").symlink_to(ROOT / "reports")
  readme = (tmp_path / "README.md").read_text()
  begin = readme.index(findings.BEGIN.format("answer"))
  digit = re.compile(r"\d").search(readme, begin)
  (tmp_path / "README.md").write_text(readme[:digit.start()] + str((int(digit.group()) + 1) % 10)
                                      + readme[digit.end():])
  assert findings.stale(tmp_path) == ["README.md: block findings:answer differs from the reports; "
                                      "run python compare.py --findings"]


def test_a_block_without_its_markers_is_refused_with_the_markers_to_add():
  with pytest.raises(ValueError, match="add <!-- begin findings:answer"):
    findings.replace("no markers here", "answer", "x")
  text = f"a {findings.BEGIN.format('x')} old {findings.END.format('x')} b"
  assert findings.replace(text, "x", "new") == f"a {findings.BEGIN.format('x')}\n\nnew\n\n{findings.END.format('x')} b"


def _pair(**kw) -> dict:
  d = {"n": 10, "no_spread": False, "tost_p": 0.2, "ci_low": -0.01, "ci_high": 0.02, "known_deviation": ""}
  return {**d, **kw}


@pytest.mark.parametrize("pair, words", [
    (_pair(tost_p=0.001, ci_low=-0.002, ci_high=0.003), "**the same** within ±1%"),
    (_pair(), "**inconclusive** at ±1%"),
    (_pair(ci_low=0.02, ci_high=0.05), "**differs**"),
    (_pair(tost_p=0.001, ci_low=0.001, ci_high=0.002), "**differs**, by less than ±1%"),
    (_pair(n=2), "no verdict"),
    (_pair(ci_low=0.2, ci_high=0.3, known_deviation="Keras on JAX drops the state: because"),
     "**differs**, because Keras on JAX drops the state (a known deviation)")])
def test_the_verdict_words_follow_the_tests(pair, words):
  assert findings._words(pair).startswith(words)


def test_the_seeds_a_verdict_needs_follow_the_power_of_two_one_sided_tests():
  """The textbook case: sd equal to the margin, alpha 2.5% each side; power grows with n and
  tost_seeds is the first n that reaches the asked power."""
  powers = [stats.tost_power(1.0, 1.0, n) for n in range(3, 30)]
  assert powers == sorted(powers) and powers[0] == 0.0 and powers[-1] > 0.9
  n = stats.tost_seeds(1.0, 1.0, 0.8)
  assert stats.tost_power(1.0, 1.0, n) >= 0.8 > stats.tost_power(1.0, 1.0, n - 1)


def test_the_rows_table_marks_the_rows_that_depart():
  text = findings.rows_table()
  marked = {line.split("|")[1].strip() for line in text.splitlines() if "†" in line.split("|")[1]}
  assert marked == {"`flax-grucell`†", "`nnx-grucell`†", "`keras-jax`†"}


def test_tost_power_is_the_textbook_formula():          # T4 T5
  assert stats.tost_power(1.0, 1.0, 10) == pytest.approx(2 * ss.t.cdf(math.sqrt(10) - ss.t.ppf(0.975, 9), 9) - 1)
  assert stats.tost_power(1.0, 1.0, 10) == pytest.approx(0.6085, abs=1e-4)
  assert (stats.tost_seeds(1.0, 1.0, 0.8), stats.tost_seeds(1.0, 1.0, 0.5)) == (13, 10)


def test_checks_count_the_pairs_judged_checks_and_float64_lists_each_failure(monkeypatch):  # F1 F2 F5
  v = findings.Verdict("m", "x", "jax-scratch", "torch-scratch")
  run = {"parity": [{"impl": "jax-scratch", "anchor": "torch-scratch", "passed": True},
                    {"impl": "jax-scratch", "anchor": "torch-scratch", "passed": None},
                    {"impl": "jax-scratch", "anchor": "torch-reference", "passed": False}]}
  assert findings._checks({"runs": [run, run]}, v) == "2 of 2"
  text = findings.float64(ROOT)
  assert text.count("\n- ") == 2 and "flax-gru against torch-cudnn in float64, ppl_final_rel: 0.106" in text


def test_the_power_calculation_reads_the_five_seed_spread(monkeypatch):     # F3 F4
  rep = "2026-11-29-cpu-seed-5seeds-truth"
  vs = tuple(dataclasses.replace(v, report=rep) for v in findings.SOURCES.verdicts)
  monkeypatch.setattr(findings, "SOURCES", dataclasses.replace(findings.SOURCES, verdicts=vs, power=rep))
  text = findings.power(ROOT)
  assert "- jax-scratch − torch-scratch: standard deviation 0.0034 over 5 seeds against the margin ±0.0106: 4 seeds for 80% power" in text
  assert "- flax-gru − torch-cudnn: standard deviation 0.0391 over 5 seeds against the margin ±0.0106: 146 seeds for 80% power" in text


def test_a_power_never_rounds_to_a_certainty():
  assert [findings._pct(x) for x in (0.996, 0.5, 0.004)] == [">99%", "50%", "<1%"]


def test_interval_widths_are_geometric_half_widths():  # F6 F7
  reps = [{"speed": {"frameworks": [{"within": [[0.9, 1.1]], "ci": [0.8, 1.25]}]}}]
  assert "×/÷1.106" in speed_answer._widths(reps) and "×/÷1.250" in speed_answer._widths(reps)
  assert "wider: the process-to-process spread" in speed_answer._widths(reps)
  narrow = [{"speed": {"frameworks": [{"within": [[0.8, 1.25]], "ci": [0.9, 1.1]}]}}]
  assert "no wider" in speed_answer._widths(narrow)


def test_a_row_is_called_slower_with_more_threads_only_when_its_intervals_are_apart():
  def rep(rates):
    rows = {n: {"geomean": g, "ci": [lo, hi]} for n, (g, lo, hi) in rates.items()}
    return {"speed": {"rows": rows, "frameworks": [{"jax": "j", "torch": "t"}]}}
  one, two = rep({"j": (100, 95, 105), "t": (100, 95, 105)}), rep({"j": (99, 94, 104), "t": (50, 45, 55)})
  text = speed_answer._rates([one, two], [1, 2])
  assert "j 100 / 99; t 100 / 50" in text and "than with 1 (the intervals across processes apart): t;" in text


def test_the_tuned_rows_and_the_peak_shares_are_read_from_the_reports():
  tuned = {"row": "torch-tuned", "over": "torch-compile", "ratio": 1.5, "ci": [1.4, 1.6]}
  rep = {"speed": {"tuned": [tuned], "frameworks": [{"jax": "j", "torch": "t"}]},
         "limits": [{"kind": "peak", "precision": "float32", "framework": "numpy", "gflops": 100.0}],
         "impls": {"j": {"limits": {"share_of_peak": 0.5}}, "t": {"limits": {"share_of_peak": 0.25}}}}
  assert "at 2 threads torch-tuned / torch-compile 1.50x [1.40–1.60]" in speed_answer._tuned([rep], [2])
  assert "at 1 thread (100 GFLOP/s) t 25%, j 50%" in speed_answer._peaks([rep], [1])
  old = {**rep, "limits": [], "speed": {"frameworks": rep["speed"]["frameworks"]}}  # a report before issue 31
  assert speed_answer._tuned([old], [1]) == "" and speed_answer._peaks([old], [1]) == ""


def test_stale_sees_each_block_and_results_md(tmp_path, monkeypatch):  # F8 F9
  (tmp_path / "docs").mkdir()
  monkeypatch.setattr(findings, "blocks", lambda root: {("README.md", "answer"): "A"})
  monkeypatch.setattr(findings, "results_doc", lambda root: "R\n")
  (tmp_path / "README.md").write_text(findings.replace(f"{findings.BEGIN.format('answer')}{findings.END.format('answer')}", "answer", "A"))
  (tmp_path / "docs/results.md").write_text("R\n")
  assert findings.stale(tmp_path) == []
  (tmp_path / "docs/results.md").write_text("R edited\n")
  assert findings.stale(tmp_path) == ["docs/results.md differs from the reports; run python compare.py --findings"]
  (tmp_path / "README.md").write_text(findings.replace((tmp_path / "README.md").read_text(), "answer", "B"))
  assert len(findings.stale(tmp_path)) == 2


def test_cited_finds_report_links_only():                         # F10
  assert findings.cited("see reports/a.md, ../reports/b/report.md and myreports/c and x/reports/d") == ["a.md", "b"]
  assert findings.cited("the run is reports/e-30epochs. Then") == ["e-30epochs"]  # not the sentence's full stop


def test_a_forward_only_row_takes_its_anchors_model():              # F12
  line = next(l for l in findings.rows_table().splitlines() if "`flax-grucell`" in l)
  assert line.split("|")[3].strip() == "builtin"


def test_speed_refuses_reports_of_two_machines(monkeypatch):  # F6
  monkeypatch.setattr(speed_answer.machine, "label", lambda m: m)
  machines = iter("AB" * len(findings.SOURCES.speed))
  monkeypatch.setattr(findings, "load", lambda root, f: {"environment": {"machine": next(machines)}})
  with pytest.raises(ValueError, match="ran on different machines"):
    findings.speed(ROOT)


def _speed_report(threads, models, tuned=(), epochs=40, machine="A"):
  frameworks = [{"model": m, "jax": f"j-{m}", "torch": f"t-{m}", "ratio": r, "ci": [r - 0.1, r + 0.1], "within": []}
                for m, r in models.items()]
  return {"environment": {"machine": machine, "threads": {"threads": threads},
                          "calibration": {"product": "p", "gflops": {"torch": 90.0, "jax": 100.0}}},
          "config": {"num_epochs": epochs, "seed": 0}, "limits": [],
          "speed": {"processes": 5, "frameworks": frameworks, "rows": {}, "tuned": list(tuned)}}


def test_each_models_speed_comes_from_the_pair_that_timed_its_tuned_rows(monkeypatch):
  monkeypatch.setattr(speed_answer.machine, "label", lambda m: m)
  monkeypatch.setattr(speed_answer.machine, "short", lambda m: m)
  monkeypatch.setattr(speed_answer, "_rates", lambda s, t: "")
  monkeypatch.setattr(speed_answer, "_peaks", lambda s, t: "")
  tuned = {"model": "builtin", "row": "jax-tuned-builtin", "over": "flax-gru", "ratio": 1.2, "ci": None}
  main = [_speed_report(t, {"scratch": 1.1, "builtin": 1.4}) for t in (1, 2)]
  more = [_speed_report(t, {"builtin": 1.9}, [tuned]) for t in (1, 2)]
  text = speed_answer.answer([main, more], (("m1", "m2"), ("b1", "b2")), str)
  assert "| scratch | 1.10x [1.00–1.20] (j-scratch / t-scratch) |" in text
  assert "| builtin | 1.90x [1.80–2.00] (j-builtin / t-builtin) |" in text and "1.40x" not in text
  assert "scratch from m1 and m2; builtin from b1 and b2" in text and "jax-tuned-builtin / flax-gru 1.20x" in text
  assert "1 thread: torch 90, jax 100, then torch 90, jax 100" in text
  for bad in ([_speed_report(t, {"builtin": 1.9}, epochs=30) for t in (1, 2)],
              [_speed_report(t, {"builtin": 1.9}) for t in (1, 4)]):
    with pytest.raises(ValueError, match="differ in threads, epochs, seed or processes"):
      speed_answer.answer([main, bad], (("m1", "m2"), ("b1", "b2")), str)
