"""Ablations: the levers, the cells they need (each configuration trained once), the ratio
table, bad input refused before training, and a tiny ablation end to end on the CPU."""
import json

import pytest

import compare
from shared import levers, records, registry
from shared.kinds import ablation as A
from shared.reports import index
from shared.config import Config

TINY = ["--device", "cpu", "--max-tokens", "600", "--num-steps", "5", "--batch-size", "4", "--num-hiddens", "8"]
ALL = ["torch-reference", "torch-scratch", "torch-cudnn", "torch-compile", "jax-scratch", "flax-gru"]


def test_every_lever_parses_and_a_wrong_name_lists_the_known_ones():
  assert [lever.key for lever in A.parse("all")] == [lever.key for lever in registry.all_levers()]
  assert [lever.key for lever in A.parse("unroll, tf32")] == ["unroll", "tf32"]
  for bad in ("unrol", "tf32,tf32", ","):
    with pytest.raises(ValueError, match="distinct levers from cuda-graph, epoch-graph"):
      A.parse(bad)
  # unroll runs to the configuration's own number of steps
  (unroll,) = A.parse("unroll")
  assert [o["unroll"] for _, o in unroll.settings_for(Config(num_steps=3))] == [1, 3]
  # the levers that compile for minutes come last: an ablation cut short keeps the others
  assert [lever.key for lever in registry.all_levers()][-2:] == ["compile-mode", "keras-jit"]


def test_every_lever_sets_options_its_frameworks_declare_and_acts_on_table_rows():
  declared = {o.name for o in registry.options()} | {"precision"}
  for lever in registry.all_levers():
    assert all(set(o) <= declared for _, o in lever.settings_for(Config())), lever.key
    assert any(lever.key in i.levers for i in A.IMPLS.values()), lever.key


def test_each_lever_has_a_cell_per_setting_on_its_own_rows():
  base = Config()
  entries = A.plan(A.parse("cuda-graph,epoch-graph,tf32"), base, ALL, on_gpu=True)
  assert [[c.point for c in e["cells"]] for e in entries] == [
      [{"cuda_graph": "off"}, {"cuda_graph": "step"}], [{"cuda_graph": "step"}, {"cuda_graph": "epoch"}],
      [{"precision": "highest"}, {"precision": "tf32"}]]
  assert entries[2]["cells"][1].config == base.set(precision="tf32")
  assert [r.name for r in entries[2]["cells"][1].rows] == ["torch-scratch", "torch-cudnn", "jax-scratch", "flax-gru"]
  assert entries[2]["cells"][1].key(entries[2]["cells"][1].rows[0]) == "torch-scratch | precision=tf32"
  assert all(e["skipped"] is None for e in entries)


def test_gpu_levers_are_skipped_on_a_cpu_and_so_are_levers_without_their_rows():
  base = Config()
  entries = A.plan(A.parse("tf32,jax-loop,compile-mode"), base, ["torch-scratch"], on_gpu=False)
  assert [e["skipped"] for e in entries] == ["GPU only, skipped on a CPU", "none of its rows is in --impls",
                                             "none of its rows is in --impls"]
  assert all(e["cells"] == [] for e in entries)


def test_the_table_gives_each_setting_against_the_reference():
  base = Config()
  entries = A.plan(A.parse("unroll"), base, ["jax-scratch"], on_gpu=False)
  point = lambda u, rates, status="ok": {
      "lever": "unroll", "config": base.set(unroll=u).as_dict(), "status": status, "error": None,
      "impls": {"jax-scratch": {"status": status, "error": None, "steady_tokens_per_s": rates[-1],
                                "prepare_seconds": 1.0, "execution": "x", "precision": "float32",
                                "final_perplexity": 3.0, "epoch_rates": rates}}}
  # round by round, unroll 5 ran 1.4x, 1.5x, 1.55x and 1.5x as fast (epoch 1 left out)
  cells = [point(1, [50.0, 100.0, 100.0, 110.0, 90.0]), point(5, [60.0, 140.0, 150.0, 170.0, 135.0])]
  (e,) = A.table(entries, cells, base)  # unroll 35's cell never ran
  cells = e["results"]["jax-scratch"]
  assert [(c["setting"], c["ratio"], c["status"]) for c in cells] == [
      ("1", 1.0, "ok"), ("5", pytest.approx(1.5), "ok"), ("35", None, "not run")]
  assert cells[1]["ratio_ci"] is None  # four rounds: too few for an interval (shared/stats.py)


def test_cells_that_ran_the_same_computation_measure_the_noise():
  def cell(point, rate, execution="scan, unroll 1", status="ok"):
    rec = {"status": status, "steady_tokens_per_s": rate, "execution": execution, "precision": "float32"}
    return {"lever": next(iter(point)), "point": point, "impls": {"jax-scratch": rec}}
  points = [cell({"jax_loop": "epoch"}, 100.0), cell({"unroll": 1}, 103.0), cell({"unroll": 5}, 90.0, "unroll 5"),
            cell({"unroll": 35}, 1.0, status="failed")]
  (same,) = A.repeats(points)
  assert same["impl"] == "jax-scratch" and same["cells"] == ["jax_loop: jax_loop=epoch", "unroll: unroll=1"]
  assert same["spread"] == pytest.approx(0.03)


def test_cells_whose_processes_differ_are_not_the_same_computation():
  """OpenMP's spin changes neither the execution nor the arithmetic, only the process: its two
  settings are the lever's effect (2x in reports/2026-12-07-cpu-ablation-omp-spin-builtin), not noise."""
  def cell(spin, rate):
    rec = {"status": "ok", "steady_tokens_per_s": rate, "execution": "sync-free eager loop", "precision": "float32"}
    return {"lever": "omp-spin", "point": {"omp_spin": spin}, "config": {"threads": 2, "omp_spin": spin},
            "impls": {"torch-cudnn": rec}}
  assert A.repeats([cell("passive", 100.0), cell("spin", 200.0)]) == []
  # can fail: the run's own policy in another lever's cell is the same computation as "passive"
  (same,) = A.repeats([cell("passive", 100.0), {**cell("", 101.0), "lever": "other"}])
  assert same["spread"] == pytest.approx(0.01)


@pytest.mark.parametrize("args, match", [
    (("--ablation", "warp-drive"), "--ablation takes 'all' or distinct levers"),
    (("--ablation", "--truth"), "an ablation measures speed only"),
    (("--ablation", "--epochs", "1"), "an ablation needs --epochs >= 2"),
    (("--cuda-graph", "epoch", "--impls", "torch-scratch"), "--cuda-graph 'epoch' needs a CUDA device"),
    (("--command-buffer", "while", "--impls", "jax-scratch"), "--command-buffer 'while' is an XLA GPU setting")])
def test_bad_input_is_one_line_before_training(args, match, capsys, corpus_vocab):
  with pytest.raises(SystemExit) as stop:
    compare.main([*TINY, *args])
  err = capsys.readouterr()
  assert stop.value.code == 2 and match in err.err and err.err.count("\n") == 1, err.err
  assert "tokens/s" not in err.out


def test_a_tiny_ablation_writes_its_table_report_and_index_row(tmp_path, corpus_vocab):
  out = tmp_path / "abl"
  assert compare.main(["--ablation", "jax-loop,tf32", "--impls", "jax-scratch", "--epochs", "2", *TINY,
                       "--out", str(out)]) == 0
  results = json.loads((out / "results.json").read_text())
  records.validate(results)
  assert results["kind"] == "ablation" and not results["partial"]
  loop, tf32 = results["levers"]
  assert tf32["skipped"] == "GPU only, skipped on a CPU" and tf32["results"] == {}
  step, epoch = loop["results"]["jax-scratch"]
  assert step["execution"].startswith("jitted step in a Python loop") and step["ratio"] == 1.0
  assert epoch["execution"].startswith("one jitted call per epoch")
  assert epoch["ratio"] == pytest.approx(epoch["steady_tokens_per_s"] / step["steady_tokens_per_s"])
  # the two settings trained side by side on the same minibatches, to the same numbers
  assert epoch["final_perplexity"] == pytest.approx(step["final_perplexity"], rel=1e-6)
  md = (out / "report.md").read_text()
  assert "### The whole epoch in one compiled call" in md and "Skipped: GPU only" in md
  assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  row = index.row(out, "abl/report.md")
  assert row[2] == f"ablation (schema {records.SCHEMA_VERSION})" and row[-2] == "not judged (ablation)" and "jax-scratch" in row[8]


@pytest.mark.slow
def test_a_cell_that_cannot_be_built_fails_alone_and_the_others_run(tmp_path, build_fails_when, corpus_vocab):
  build_fails_when(lambda c: c.option("unroll") == 5, RuntimeError("INVALID_ARGUMENT: no such option\ndetail"))
  out = tmp_path / "abl"
  assert compare.main(["--ablation", "unroll", "--impls", "jax-scratch", "--epochs", "2", *TINY,
                       "--out", str(out)]) == 0
  (lever,) = json.loads((out / "results.json").read_text())["levers"]
  cells = lever["results"]["jax-scratch"]
  assert [(c["setting"], c["status"]) for c in cells] == [("1", "ok"), ("5", "failed")]  # num_steps is 5
  assert cells[1]["error"] == "RuntimeError: INVALID_ARGUMENT: no such option" and cells[1]["ratio"] is None
  assert "unroll, cell unroll=5: failed" in (out / "report.md").read_text()


@pytest.mark.slow
def test_ctrl_c_in_an_ablation_keeps_the_levers_that_finished(tmp_path, ctrl_c_at_epoch, corpus_vocab):
  ctrl_c_at_epoch(7)  # jax-loop's two cells ran their 3 epochs; unroll is stopped in its first
  out = tmp_path / "abl"
  code = compare.main(["--ablation", "jax-loop,unroll", "--impls", "jax-scratch", "--epochs", "3", *TINY,
                       "--out", str(out)])
  results = json.loads((out / "results.json").read_text())
  assert code == 130 and results["partial"]
  assert [(p["lever"], p["status"]) for p in results["points"]] == [
      ("jax-loop", "ok"), ("jax-loop", "ok"), ("unroll", "interrupted"), ("unroll", "interrupted")]
  loop, unroll = results["levers"]
  assert loop["results"]["jax-scratch"][1]["ratio"] > 0 and unroll["results"]["jax-scratch"][1]["ratio"] is None
  assert "PARTIAL" in (out / "report.md").read_text()


def test_the_console_line_marks_a_setting_that_timed_nothing():
  entries = [{"name": "torch.compile mode", "results": {"torch-compile": [
      {"setting": "default", "steady_tokens_per_s": 23466.4}, {"setting": "max-autotune", "steady_tokens_per_s": None}]}}]
  assert A.lines(entries) == ["torch.compile mode, torch-compile: default 23,466, max-autotune –"]


@pytest.mark.slow
def test_the_xla_dot_lever_changes_the_compiled_program_not_the_numbers():
  """jaxlib's default hands the GRU's dots to YNNPACK; "eigen" takes them back (the HLO says
  which), and the epoch's loss is the same to float32 round-off."""
  import jax
  import numpy as np
  cfg = Config(batch_size=4, num_steps=5, num_hiddens=16, num_epochs=2, vocab_size=28)
  rng = np.random.default_rng(3)
  batches = tuple(rng.integers(0, 28, (2, 4, 5)).astype(np.int32) for _ in range(2))
  hlo, losses = {}, {}
  for dot in ("", "eigen"):
    impl = registry.make_impl("jax-scratch", cfg.set(xla_dot=dot))
    shapes = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in batches]
    with impl.scope():
      hlo[dot] = impl._epoch.lower(impl.state, *shapes).compile().as_text()
    losses[dot] = impl.train_epoch(batches)
  assert "__ynn_fusion" in hlo[""] and "__ynn_fusion" not in hlo["eigen"]
  assert abs(losses[""] - losses["eigen"]) <= 1e-6 * abs(losses[""])


def test_the_thread_lever_gives_torch_one_thread_around_its_calls_and_refuses_jax():
  import torch
  cfg = Config(batch_size=4, num_steps=5, num_hiddens=16, num_epochs=2, vocab_size=28).set(thread_pool="single")
  impl = registry.make_impl("torch-scratch", cfg)
  before = torch.get_num_threads()
  with impl.scope():
    assert torch.get_num_threads() == 1
  assert torch.get_num_threads() == before and "one thread" in impl.execution
  levers.refusals(registry.options(), cfg, {"torch"})  # torch rows alone: nothing to refuse
  with pytest.raises(ValueError, match="thread_pool 'single' acts on PyTorch's pool only.*leave the jax rows out"):
    levers.refusals(registry.options(), cfg, {"torch", "jax"})
