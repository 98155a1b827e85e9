"""The bench scripts' own logic on stored or synthetic data (their runs are the committed
reports): bench/rejudge.py on a committed report, bench/mutations.py's tables."""
import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _script(name: str):
  spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_rejudge_reads_a_committed_five_seed_report_with_todays_checks():
  rejudge = _script("rejudge")
  folder = ROOT / "reports" / "2026-11-29-cpu-seed-5seeds-truth"
  md = rejudge.render(folder, json.loads((folder / "results.json").read_text()))
  # the first-epochs check judged at today's 1e-4 instead of 1e-2
  assert ("| 0 | float32 | jax-scratch vs torch-scratch | ppl_first10_rel | 2.38e-07 | 1e-02 | PASS | 2.38e-07 | 1e-04 "
          "| PASS |") in md
  # the final perplexity as the median of the last ten epochs: seed 4's last-epoch spike (5.3%) no longer
  # decides it (0.03%), the last epoch stays reported; seed 0's six-epoch excursion of torch-cudnn
  # (epochs 491-496, perplexity up to 1.36) fills most of the window and fails the median instead
  assert "| 4 | float64 | jax-scratch vs torch-scratch | ppl_final_rel | 5.29e-02 | 5e-02 | **FAIL** | 3.10e-04 | 5e-02 | PASS |" in md
  assert "| 4 | float64 | jax-scratch vs torch-scratch | ppl_last_rel | – | – | – | 5.29e-02 | – | – |" in md
  assert "| 0 | float32 | flax-gru vs torch-cudnn | ppl_final_rel | 1.16e-02 | 5e-02 | PASS | 7.48e-02 | 5e-02 | **FAIL** |" in md
  # the final perplexity (median of ten) and the last epoch alone, each with its verdict; the epoch at 1.5; the gap
  assert md.count("- **jax-scratch vs torch-scratch**,") == 4 and "margin ±" in md and "Before (as committed)" in md
  assert "- **jax-scratch vs torch-scratch**, the last epoch's perplexity: inconclusive" in md


def test_mutations_report_names_the_smallest_size_each_check_catches():
  mutations = _script("mutations")
  sweep = {1e-2: {"logits_rel": (3e-3, False), "ppl_first10_rel": (2e-3, False)},
           1e-4: {"logits_rel": (3e-5, False), "ppl_first10_rel": (2e-5, True)},
           1e-6: {"logits_rel": (3e-7, True), "ppl_first10_rel": (2e-7, True)}}
  assert mutations.smallest(sweep) == {"logits_rel": 1e-4, "ppl_first10_rel": 1e-2}
  row = {"mutation": "state-not-carried", "precision": "highest", "exit": 1,
         "checks": {"logits_rel": (1e-7, 1e-5, True), "ppl_first10_rel": (2.6e-3, 1e-4, False)}}
  md = mutations.render({"packages": {}, "cpu": "x", "cpu_count": 2, "git_commit": "abc", "command": "c"}, 10,
                        [row], {("hidden-weights-scaled", "highest"): sweep})
  assert "| state-not-carried | highest | 1 | 1.0e-07 | **2.6e-03** |" in md
  assert "logits_rel 0.0001, ppl_first10_rel 0.01" in md


def test_dp_collectives_finds_the_loops_around_each_collective():
  dp_collectives = _script("dp_collectives")
  hlo = """body.1 {
  %all-reduce.1 = f32[4]{0} all-reduce(%x), to_apply=%add
}
outer.2 {
  %while.1 = (s32[]) while(%t), condition=%c, body=%body.1
  %all-gather.2 = f32[8]{0} all-gather(%y), dimensions={0}
}
ENTRY main.3 {
  %while.2 = (s32[]) while(%t), condition=%c, body=%outer.2
  %all-reduce.3 = f32[] all-reduce(%z), to_apply=%add
}"""
  assert dp_collectives.loops_of(hlo) == [("%all-reduce.1", "all-reduce", ["%while.1", "%while.2"]),
                                          ("%all-gather.2", "all-gather", ["%while.2"]),
                                          ("%all-reduce.3", "all-reduce", [])]


def test_xla_dot_libraries_names_the_signal_that_ended_a_child():
  libraries = _script("xla_dot_libraries")
  killed = libraries.subprocess.CompletedProcess([], -4, stdout="fusions 1\n", stderr="")
  assert libraries.outcome(killed) == "fusions 1; killed by SIGILL"
  shell = libraries.subprocess.CompletedProcess([], 132, stdout="", stderr="")  # a shell's 128 + 4
  assert libraries.outcome(shell) == "nothing printed; killed by SIGILL"
  ran = libraries.subprocess.CompletedProcess([], 0, stdout="fusions 0\nran, max 0.0\n", stderr="")
  assert libraries.outcome(ran) == "fusions 0; ran, max 0.0; exit 0"
  assert set(libraries.PROGRAMS) == {"c + a @ b", "p * q + a @ b"}


def test_the_behaviour_diff_leaves_out_timings_and_sets_apart_what_the_same_code_varies(tmp_path, capsys):
  behaviour = _script("behaviour")
  check = {"group": "scratch", "impl": "jax-scratch", "anchor": "torch-scratch", "check": "logits_rel",
           "measured": 1e-7}
  base = {"kind": "compare", "created": "t0", "impls": {"jax-scratch": {"perplexity": [27.0, 20.0],
                                                                        "steady_tokens_per_s": 5e4}},
          "parity": [check], "checkpoint": {"started": "t0", "writes": 3}}
  timed = {**base, "created": "t1", "impls": {"jax-scratch": {"perplexity": [27.0, 20.0], "steady_tokens_per_s": 6e4}},
           "checkpoint": {"started": "t1", "writes": 4}}
  assert behaviour.differences(*(behaviour.mask(behaviour.normal(r)) for r in (base, timed))) == []
  moved = {**base, "impls": {"jax-scratch": {"perplexity": [27.0, 20.000001], "steady_tokens_per_s": 5e4}},
           "parity": [{**check, "measured": 2e-7}]}
  for folder, results in (("before", base), ("after", moved), ("again", {**base, "parity": [{**check, "measured": 3e-7}]})):
    (tmp_path / folder / "quick").mkdir(parents=True)
    (tmp_path / folder / "quick" / "results.json").write_text(json.dumps(results))
  assert behaviour.diff(tmp_path / "before", tmp_path / "after", [tmp_path / "again"]) == 1  # the rest is missing
  out = capsys.readouterr().out
  assert "quick: 1 differences" in out and ".impls.jax-scratch.perplexity[1] = 20.0 -> 20.000001" in out
  assert "(same code differs) .parity.scratch | jax-scratch vs torch-scratch | logits_rel.measured" in out


def test_rerender_rewrites_a_report_from_its_own_results_and_keeps_them(tmp_path):
  import shutil
  rerender = _script("rerender")
  folder = tmp_path / "r"
  shutil.copytree(ROOT / "reports" / "2026-12-01-cpu-ablation-keras-jit", folder)
  raw = (folder / "results.json").read_bytes()
  (folder / "report.md").write_text("stale")
  files = sorted(p.relative_to(folder) for p in folder.rglob("*"))
  rerender.rerender(folder)
  assert (folder / "results.json").read_bytes() == raw
  assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == files  # no file added, none left behind
  assert "keras-torch jit_compile=True" in (folder / "report.md").read_text()
  assert not list(tmp_path.glob(".r.*"))


def test_setup_times_times_a_command_and_stops_on_a_failing_one(tmp_path):
  import pytest
  setup = _script("setup_times")
  assert setup.timed("true", tmp_path)["seconds"] >= 0
  with pytest.raises(SystemExit, match="false failed"):
    setup.timed("false", tmp_path)


def test_setup_times_says_whether_pip_downloaded_or_read_a_local_mirror(tmp_path, monkeypatch):
  import types
  setup = _script("setup_times")
  monkeypatch.setattr(setup.subprocess, "run", lambda *a, **k: types.SimpleNamespace(stdout=""))
  monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
  assert setup.packages() == "packages downloaded by pip without its cache"
  monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
  assert "local package mirror" in setup.packages()
  monkeypatch.setenv("PIP_FIND_LINKS", "")
  monkeypatch.setattr(setup.subprocess, "run", lambda *a, **k: types.SimpleNamespace(
      stdout="global.extra-index-url='file:///opt/pypi/simple'"))
  assert "local package mirror" in setup.packages()
