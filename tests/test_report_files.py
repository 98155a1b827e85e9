"""A report ready for a write-up: every figure also as SVG, every table also as CSV with the
report's own numbers, the corpus and the minibatches per epoch stated, speed paired across
seeds, small differences in significant figures, and the index over reports with and
without these files. Offline: committed reports' results.json, no training."""
import copy
import csv
import json
import math
import pathlib
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from scipy import stats as sps

import compare
from shared import data
from shared.kinds import seeds
from shared.reports import folder as report_folder
from shared import rows
from shared.reports import compare_md, index, markdown, plots, report, sections, summary, tables
from shared.rows import Row
from shared.text import sig, table

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMPARE = ROOT / "reports" / "2026-11-30-cpu-seed-dp2-float64-10epochs"  # small, schema 4
SEEDS = ROOT / "reports" / "2026-11-30-cpu-seed-bf16-5seeds-20epochs"  # 5 seeds, bf16 twins


def _load(folder) -> dict:
  return json.loads((folder / "results.json").read_text())


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  """A committed comparison written again as a new report: figures, report.md, tables."""
  out = tmp_path_factory.mktemp("reports") / "new"
  report_folder.write_report(_load(COMPARE), out, markdown.render, plots.write_all)
  return out


def _csv(path) -> list:
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.reader(f))


def test_every_figure_is_also_an_svg_beside_its_png(written):
  pngs = sorted(p.stem for p in written.glob("*.png"))
  assert pngs == ["divergence", "perplexity", "throughput"]
  assert sorted(p.stem for p in written.glob("*.svg")) == pngs
  for stem in pngs:
    svg = written / f"{stem}.svg"
    assert ET.parse(svg).getroot().tag.endswith("svg") and svg.stat().st_size > 10_000
    assert "<dc:date>" not in svg.read_text()  # no date: the same figure gives the same file
  md = (written / "report.md").read_text()
  assert "![Per-epoch perplexity](perplexity.png)" in md and "(perplexity.svg)" not in md
  assert "Every figure is also an SVG" in md


def test_every_table_is_also_a_csv_with_the_reports_numbers(written):
  md = (written / "report.md").read_text()
  results = _load(written)
  paths = sorted((written / tables.FOLDER).glob("*.csv"))
  assert len(paths) == sum(line.startswith("|---") for line in md.splitlines()) == 7
  assert [p.name for p in paths[:4]] == ["01-configuration.csv", "02-environment.csv", "03-parity.csv",
                                         "04-throughput.csv"]
  config = dict(_csv(paths[0])[1:])
  assert config["batch_size"] == "32" and config["max_tokens"] == "10000"  # backticks dropped
  parity = _csv(paths[2])
  assert parity[0][:6] == ["group", "pair", "check", "measured", "tolerance", "result"]
  assert sum(r[5] == "PASS" for r in parity[1:]) == sum(c["passed"] is True for c in results["parity"]) > 20
  rate = results["impls"]["jax-scratch"]["steady_tokens_per_s"]
  row = next(r for r in _csv(paths[3]) if r[0] == "jax-scratch")
  assert row[1] == "ok" and row[2].startswith(f"{rate:,.0f}")  # the cell as report.md prints it
  assert f"| jax-scratch | ok | {row[2]} |" in md
  assert "also a CSV in `tables/`" in md


def test_tables_read_escaped_pipes_and_drop_emphasis(tmp_path):
  md = ("# A report\n\nno table here | at all\n\n## Parity: **x**\n\n"
        + table(("pair", "result"), [("a|b", "**FAIL**"), ("`c`", "PASS")])
        + "\n### next\n\n| x | y |\n|:--|--:|\n| 1 | 2,5 |\n")
  assert "a\\|b" in md  # the table writer escapes a pipe inside a cell
  found = tables.extract(md)
  assert found == [("Parity: **x**", [["pair", "result"], ["a|b", "FAIL"], ["c", "PASS"]]),
                   ("next", [["x", "y"], ["1", "2,5"]])]
  paths = tables.write(md, tmp_path)
  assert [p.name for p in paths] == ["01-parity-x.csv", "02-next.csv"]
  assert _csv(paths[0]) == found[0][1] and _csv(paths[1]) == found[1][1]
  assert tables.write("# none\n\ntext\n", tmp_path / "empty") == [] and not (tmp_path / "empty").exists()


def test_the_whole_texts_length_is_the_tokenized_corpus(corpus_vocab):
  assert len(data.load_corpus(-1)[0]) == data.CHARACTERS == 170_580


def test_the_report_states_the_corpus_and_the_minibatches_per_epoch():
  book = _load(ROOT / "reports" / "2026-11-29-cpu-book")  # the whole text, before corpus_characters
  text = sections.inputs(book, book)
  assert "the whole text, 170,580 characters" in text and "50 epochs of 152 minibatches each (32 x 35" in text
  seed = _load(COMPARE)
  text = sections.inputs(seed, seed)
  assert "the first 10,000 characters" in text and "10 epochs of 8 minibatches each" in text
  seed["inputs"].update(tokens=600, corpus_characters=600)
  assert "the first 600 characters" in sections.inputs(seed, seed)
  assert sections.corpus(-1, 170_580) == "the whole text, 170,580 characters"
  assert sections.corpus(500_000) == "the whole text, 170,580 characters"  # more asked than there is
  sweep = markdown.render(_load(ROOT / "reports" / "2026-11-30-cpu-sweep-devices-strong"))
  assert "Data: The Time Machine, the whole text, 170,580 characters." in sweep
  assert "| 1 | 10,867 | 11,874 | 15,277 | 13,359 | 1.29x | 19 | 329 |" in sweep  # 19 minibatches per epoch
  ablation = markdown.render(_load(ROOT / "reports" / "2026-11-30-cpu-ablation"))
  assert "on the first 10,000 characters of The Time Machine" in ablation


def _rates(runs, name) -> np.ndarray:
  return np.array([r["impls"][name]["steady_tokens_per_s"] for r in runs])


def test_several_seeds_pair_speed_as_they_pair_perplexity():
  results = _load(SEEDS)
  names = list(results["aggregate"]["impls"])
  agg = seeds.aggregate(results["runs"], [Row.parse(n) for n in names])
  got = {(p["numerator"], p["denominator"]): p for p in agg["speed_pairs"]}
  assert len(got) == 8 and ("jax-scratch", "torch-scratch") in got and ("flax-gru", "torch-cudnn") in got
  assert ("torch-scratch-bf16", "torch-scratch") in got  # a bf16 twin over its float32 row
  logs = np.log(_rates(results["runs"], "jax-scratch") / _rates(results["runs"], "torch-scratch"))
  low, high = sps.t.interval(0.95, len(logs) - 1, loc=logs.mean(), scale=sps.sem(logs))
  p = got[("jax-scratch", "torch-scratch")]
  assert p["n"] == 5 and p["seeds"] == [0, 1, 2, 3, 4] and p["excludes_one"] is True
  assert p["ratio"] == pytest.approx(math.exp(logs.mean()), rel=1e-12) and 2.0 < p["ratio"] < 2.4
  assert (p["ci_low"], p["ci_high"]) == pytest.approx((math.exp(low), math.exp(high)), rel=1e-9)
  assert p["sentence"] == (f"jax-scratch over torch-scratch: {p['ratio']:.3g}x (95% CI {p['ci_low']:.3g}x to "
                           f"{p['ci_high']:.3g}x, n = 5 seeds); the interval excludes 1: jax-scratch is faster.")
  assert got[("torch-scratch-bf16", "torch-scratch")]["sentence"].endswith("torch-scratch-bf16 is slower.")
  results["aggregate"] = agg
  md = markdown.render(results)
  assert "## Paired speed" in md and f"- {p['sentence']}\n" in md and f"- Speed, {p['sentence']}\n" in md
  assert f"| scratch | jax-scratch / torch-scratch | 5 | {p['ratio']:.3g}x | {p['ci_low']:.3g}x to " in md


def test_speed_pairs_say_when_the_interval_holds_one_or_is_missing():
  results = _load(SEEDS)
  runs = copy.deepcopy(results["runs"])
  for r, f in zip(runs, (1.02, 0.97, 1.01, 0.99, 1.005)):  # the same speed within the noise
    r["impls"]["jax-scratch"]["steady_tokens_per_s"] = r["impls"]["torch-scratch"]["steady_tokens_per_s"] * f
  p = seeds.speed_pairs(runs, [Row("torch-scratch"), Row("jax-scratch")])[0]
  assert p["ci_low"] < 1 < p["ci_high"] and p["excludes_one"] is False
  assert p["sentence"].endswith("the interval holds 1: no difference in speed shown.")
  two = seeds.speed_pairs(runs[:2], [Row("torch-scratch"), Row("jax-scratch")])[0]
  assert two["n"] == 2 and two["ci_low"] is None and two["ratio"] == pytest.approx(math.sqrt(1.02 * 0.97))
  assert two["sentence"].endswith("no interval from fewer than 3 seeds.")


def test_the_seeds_report_gives_the_last_epoch_beside_the_judged_final_perplexity():
  results = _load(SEEDS)
  old = markdown.render(results)  # its stored aggregate predates the median and the speed pairs
  assert "predates the final perplexity as the median" in old and "## Paired speed" not in old
  results["aggregate"] = seeds.aggregate(results["runs"], [Row.parse(n) for n in results["aggregate"]["impls"]])
  md = markdown.render(results)
  a = results["aggregate"]["impls"]["jax-scratch"]
  last = [r["impls"]["jax-scratch"]["perplexity"][-1] for r in results["runs"]]
  assert a["last_ppl"]["mean"] == pytest.approx(np.mean(last)) and a["last_ppl"]["mean"] != a["final_ppl"]["mean"]
  assert "| final perplexity | last epoch's perplexity |" in md and "median of the last 10 epochs" in md
  assert f"| jax-scratch | 5 | {a['final_ppl']['mean']:.4f} ± " in md and f"| {a['last_ppl']['mean']:.4f} ± " in md


def test_a_tiny_difference_is_printed_in_significant_figures_not_rounded_to_zero():
  assert (sig(3.2e-6, True), sig(-0.0123, True), sig(2.21), sig(None)) == ("+3.2e-06", "-0.0123", "2.21", "–")
  results = _load(SEEDS)
  for r, jitter in zip(results["runs"], (0.0, 1e-7, -1e-7, 2e-7, -2e-7)):
    torch = r["impls"]["torch-scratch"]["perplexity"]
    r["impls"]["jax-scratch"]["perplexity"] = [p + 3.2e-6 + jitter for p in torch]
  results["aggregate"] = seeds.aggregate(results["runs"], [Row.parse(n) for n in results["aggregate"]["impls"]])
  pair = next(p for p in results["aggregate"]["pairs"] if p["impl"] == "jax-scratch" and p["metric"] == "final_ppl")
  assert pair["mean"] == pytest.approx(3.2e-6, rel=1e-6) and pair["ci_low"] > 0
  assert "jax-scratch minus torch-scratch is +3.2e-06 (95% CI +" in pair["verdict"]
  md = markdown.render(results)
  assert "| scratch | jax-scratch − torch-scratch | final_ppl | 5 | +3.2e-06 | +" in md
  assert "is +0 (" not in md and "+0 to +0" not in md


def test_the_index_builds_over_reports_with_and_without_the_new_files(tmp_path, written):
  folder = tmp_path / "reports"
  (folder / "old").mkdir(parents=True)
  shutil.copy(COMPARE / "results.json", folder / "old" / "results.json")  # no SVG, no tables/
  shutil.copytree(written, folder / "new")
  assert (folder / "new" / "tables").is_dir() and not (folder / "old" / "tables").exists()
  assert compare.main(["--index", str(folder)]) == 0
  md = (folder / "README.md").read_text()
  rows = {line.split("|")[-2].strip(): line for line in md.splitlines() if line.startswith("| ") and "](" in line}
  assert set(rows) == {"[old](old/report.md)", "[new](new/report.md)"}
  judged = sum(c["passed"] is True for c in report.parity_rows(_load(COMPARE)))
  for line in rows.values():  # the same results, with or without the files beside them
    assert "compare (schema 4)" in line and f"all {judged} pass" in line and "unreadable" not in line
  assert rows["[old](old/report.md)"].split("|")[1:-2] == rows["[new](new/report.md)"].split("|")[1:-2]
  assert index.MARKER in md


def test_rows_that_depart_are_marked_wherever_speed_shows_and_never_named_fastest(monkeypatch):
  """The committed 2026-12-01 report, where nnx-grucell (no b_hn) had the highest rate and
  keras-jax (state never carried) trained too: marked in the throughput table, the plot and
  the console, each with its reason; the fastest per model is a row judged equal."""
  results = json.loads((ROOT / "reports" / "2026-12-01-cpu-seed-truth" / "results.json").read_text())
  md = compare_md.render(results)
  assert "| nnx-grucell† | ok |" in md and "| keras-jax† | ok |" in md and "| flax-gru | ok |" in md
  assert "† keras-jax does not train its model's reference computation: Keras 3.15.1" in md
  assert "Fastest builtin row on this machine, among the rows judged equal to their anchor: flax-gru" in md
  assert "nnx-grucell, 40,942" not in md
  assert "nnx-grucell" not in " ".join(index._fastest(results, {n: r["steady_tokens_per_s"] for n, r in
                                                                 results["impls"].items()}, results["impls"]).values())
  drawn = {}
  monkeypatch.setattr(plots, "_save", lambda fig, folder, name: drawn.setdefault(name, [
      t.get_text() for ax in fig.axes for t in ax.get_xticklabels()] + [t.get_text() for t in fig.texts]))
  plots.throughput(results, None)
  assert "nnx-grucell†" in drawn["throughput.png"] and "flax-gru" in drawn["throughput.png"]
  assert any(t.startswith("† not the model's reference training") for t in drawn["throughput.png"])


def test_the_console_gives_a_verdict_per_pair_and_every_failure_in_full(capsys):
  results = json.loads((ROOT / "reports" / "2026-12-01-cpu-seed-truth" / "results.json").read_text())
  summary.print_summary(results)
  out = capsys.readouterr().out
  assert "parity PASS" not in out and out.count("parity FAIL") == 2
  assert "parity FAIL: seed 0 flax-gru vs torch-cudnn ppl_final_rel (float64) 1.06e-01 (tolerance 5e-02)" in out
  line = next(x for x in out.splitlines() if x.startswith("flax-gru vs torch-cudnn") and "float64" in x)
  assert line.split()[4] == "8/9" and "2.13 of its tolerance (ppl_final_rel" in line
  assert "nnx-grucell†" in out and "† keras-jax: not its model's reference training" in out
  summary.print_summary(results, verbose=True)
  assert capsys.readouterr().out.count("parity PASS") == 63 + 45


TRUTH = json.loads((ROOT / "reports/2026-12-01-cpu-seed-truth/results.json").read_text())


def test_the_worst_check_is_the_one_nearest_its_tolerance():              # U2 U3 U6
  assert summary.margin({"measured": float("nan"), "tolerance": 1e-5}) == math.inf
  assert summary.margin({"measured": None, "tolerance": 1e-5}) == math.inf
  assert summary.margin({"measured": 1e-9, "tolerance": 0}) == math.inf
  assert summary.margin({"measured": 0.0, "tolerance": 0}) == 0.0
  c = lambda chk, m, t: {"impl": "a", "anchor": "b", "arithmetic": "float32", "check": chk, "measured": m,
                         "tolerance": t, "passed": m <= t}
  ((*_, worst),) = summary.verdicts([(0, c("big", 0.5, 1.0)), (0, c("tight", 1e-4, 1e-5))])
  assert worst[1]["check"] == "tight"


def test_the_console_shows_the_last_seed_and_the_speed_across_processes():   # U1 U5
  b0, b1 = copy.deepcopy(TRUTH), copy.deepcopy(TRUTH)
  b0["seed"], b1["seed"] = 0, 1
  b1["impls"]["jax-scratch"]["steady_tokens_per_s"] = 99999.0
  res = {**copy.deepcopy(TRUTH), "kind": "seeds", "runs": [b0, b1],
         "speed": {"processes": 3, "frameworks": [{"model": "scratch", "jax": "jax-scratch", "torch": "torch-scratch",
                                                    "ratio": 1.5, "ci": [1.2, 1.8]}]}}
  res.pop("aggregate", None)
  import io, contextlib
  buf = io.StringIO()
  with contextlib.redirect_stdout(buf):
    summary.print_summary(res)
  out = buf.getvalue()
  assert "99,999" in out
  assert "speed, scratch: jax-scratch / torch-scratch 1.50x [1.20x-1.80x]" in out


def test_departures_follow_the_reports_sampling_and_a_points_label():    # R1 R2
  assert set(report.departures({"config": {"sampling": "random"}}, ["keras-jax", "flax-grucell", "flax-gru"])) == {"flax-grucell"}
  assert set(report.departures({"config": {"sampling": "sequential"}}, ["keras-jax", "flax-gru"])) == {"keras-jax"}
  assert rows.implementation("flax-grucell xyz").name == "flax-grucell"
  assert set(report.departures({"config": {}}, ["flax-grucell unroll=8", "flax-gru unroll=8"])) == {"flax-grucell unroll=8"}


def test_a_row_that_failed_a_check_is_never_named_fastest():  # C1
  r = copy.deepcopy(TRUTH)
  next(c for c in r["parity"] if (c["impl"], c["anchor"]) == ("flax-gru", "torch-cudnn") and c["passed"])["passed"] = False
  md = compare_md.render(r)
  assert "judged equal to their anchor: nnx-gru, 30,863" in md


def test_a_chaotic_final_failure_is_explained_with_its_figures():                   # C6 C7 C8 C9
  md = compare_md.render(copy.deepcopy(TRUTH))
  assert md.count("fails its final perplexity") == 2
  assert ("**Why flax-gru vs torch-cudnn fails its final perplexity**: the two agree over the first epochs (9.9e-16) "
          "and part at epoch 240") in md
  assert "flax-gru peaks at a perplexity of 1.354 against torch-cudnn's 1.066" in md
  r = copy.deepcopy(TRUTH)
  for c in r["truth"]["parity"]:
    if (c["impl"], c["check"]) == ("flax-gru", "ppl_first10_rel"):
      c["passed"] = False
  assert "Why flax-gru vs torch-cudnn" not in compare_md.render(r)


def test_the_across_processes_tables_mark_and_pair_their_intervals():                  # C3 C4 C5
  r = copy.deepcopy(TRUTH)
  r["speed"] = {"processes": 3,
                "rows": {"keras-jax": {"per_process": [1.0, 2.0, 3.0], "geomean": 2.0, "ci": [1.0, 3.0]}},
                "frameworks": [{"model": m, "jax": "jax-scratch", "torch": "torch-scratch", "per_process": [1.1, 1.2, 1.3],
                                "within": [[1.0, 1.15], None, None], "ratio": 1.2, "ci": [1.0, 1.4]}
                               for m in ("scratch", "builtin")]}
  md = compare_md.render(r)
  assert "| keras-jax† |" in md.split("### Across processes")[1]
  assert "| 1.10x [1.00–1.15] | 1.20x | 1.30x |" in md
  assert "- scratch: jax-scratch / torch-scratch 1.20x" in md and "- builtin: jax-scratch / torch-scratch 1.20x" in md
  r["speed"]["processes"] = 1
  assert "- scratch: jax-scratch / torch-scratch" not in compare_md.render(r)
