"""compare.py end to end: a quick run's report, error paths, interrupts and failures."""
import contextlib
import io
import json
import os
import pathlib
import subprocess
import sys
from unittest import mock

import pytest

import compare
from shared import parity, records, rows
from tests.marks import COLD_COMPILE, OWN_PROCESS

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Tiny sizes on the real text: every row compiles and trains in seconds.
TINY = ["--preset", "quick", "--device", "cpu", "--max-tokens", "600", "--num-steps", "5", "--batch-size", "4",
        "--num-hiddens", "16"]
# Inductor's cold compile and the Keras rows' own processes: the slow suite (test_keras.py
# covers the Keras rows in make test)
EAGER = [n for n in rows.IMPLS if n not in COLD_COMPILE + OWN_PROCESS]


def _png_size(path):
  """(width, height) from a PNG's IHDR chunk, after checking the signature."""
  raw = path.read_bytes()
  assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
  return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory, corpus_vocab):
  """The fast suite's end-to-end run: every row but the compiled torch ones and Keras's, tiny sizes, 4 epochs."""
  out = tmp_path_factory.mktemp("reports") / "quick"
  assert compare.main([*TINY, "--epochs", "4", "--impls", ",".join(EAGER), "--out", str(out), "--strict"]) == 0
  return out


@pytest.mark.slow
def test_the_quick_preset_with_every_row_passes_strict(tmp_path, corpus_vocab):
  """`make compare ARGS="--preset quick"` as a user runs it: seed sizes, every row."""
  out = tmp_path / "quick"
  assert compare.main(["--preset", "quick", "--device", "cpu", "--out", str(out), "--strict"]) == 0
  results = json.loads((out / "results.json").read_text())
  records.validate(results)
  assert set(results["impls"]) == set(rows.IMPLS) and all(c["passed"] is not False for c in results["parity"])
  assert {c["impl"] for c in results["parity"] if c["check"] == "probe_update_rel"} >= {"torch-compile", "nnx-gru"}


def test_quick_run_writes_a_valid_results_json(quick_report):
  assert sorted(p.name for p in quick_report.iterdir()) == [
      "divergence.png", "divergence.svg", "perplexity.png", "perplexity.svg", "report.md", "results.json",
      "tables", "throughput.png", "throughput.svg", "time.png", "time.svg"]
  results = json.loads((quick_report / "results.json").read_text())
  records.validate(results)
  assert results["kind"] == "compare" and results["truth"] is None
  assert not results["partial"] and set(results["impls"]) == set(EAGER)
  for name, rec in results["impls"].items():
    assert rec["status"] == "ok" and len(rec["perplexity"]) == 4 and rec["steady_tokens_per_s"] > 0
    assert set(rec["samples"]) == {"time traveller", "traveller"}
    assert rec["threads"] == results["config"]["threads"] and len(rec["clipped_steps"]) == 4
    assert rec["cores_used"] > 0.2 and rec["tokens_per_s_ci"] is None  # 3 steady epochs: too few for one
  assert results["load"]["other_cores"] >= 0 and results["environment"]["threads"]["OMP_WAIT_POLICY"]
  assert set(results["environment"]["runtime"]) == {"torch", "jax"}
  assert results["impls"]["torch-reference"]["speedup_vs_reference"] == pytest.approx(1.0)
  checks = {(c["impl"], c["check"]) for c in results["parity"]}
  assert ("jax-scratch", "grads_rel") in checks and ("flax-gru", "ppl_final_rel") in checks
  assert ("flax-grucell", "logits_rel") in checks and ("flax-grucell", "grads_rel") not in checks
  assert ("jax-scratch", "probe_update_rel") in checks and ("nnx-grucell", "probe_logits_rel") in checks
  assert all(c["passed"] is not False for c in results["parity"])


def test_quick_run_plots_are_valid_images(quick_report):
  for name in ("perplexity.png", "throughput.png", "divergence.png"):
    width, height = _png_size(quick_report / name)
    assert width > 400 and height > 300


def test_quick_run_markdown_holds_the_tables(quick_report):
  md = (quick_report / "report.md").read_text()
  results = json.loads((quick_report / "results.json").read_text())
  for heading in ("## Configuration", "## Environment", "## Parity", "## Throughput",
                  "## Generated text", "![Per-epoch perplexity](perplexity.png)"):
    assert heading in md
  assert md.count("| PASS |") == sum(c["passed"] is True for c in results["parity"])
  assert "flax-grucell** is checked on the forward pass only" in md
  rate = results["impls"]["jax-scratch"]["steady_tokens_per_s"]
  assert f"| jax-scratch | ok | {rate:,.0f} |" in md  # figures come from results.json


def test_quick_run_profiles_where_each_rows_time_goes(quick_report):
  """One epoch of every row under its framework's profiler, its weights put back: the products'
  share is a real fraction of that epoch, and the report and time.png show it."""
  results = json.loads((quick_report / "results.json").read_text())
  for name, rec in results["impls"].items():
    split = rec["time_split"]
    assert 0 < split["products_share"] < 1 and split["events"] > 0, (name, split)
    assert split["what"].startswith("torch.profiler" if rec["framework"] == "torch" else "jax.profiler")
  share = results["impls"]["jax-scratch"]["time_split"]["products_share"]
  md = (quick_report / "report.md").read_text()
  assert "## Where the time goes" in md and f"| jax-scratch | {share:.0%} |" in md
  assert "![Where the time goes" in md and f"jax-scratch {share:.0%}" in md.split("## Summary")[1].split("\n## ")[0]


@pytest.mark.slow
def test_the_profile_reads_the_products_through_inductors_cpp_wrapper(tmp_path, corpus_vocab):
  """torch-tuned's C++ wrapper calls its kernels past the dispatcher; its kernel profile
  (torch_impl/inductor.py) names them, or torch.profiler would see no product at all."""
  assert compare.main([*TINY, "--epochs", "2", "--impls", "torch-tuned", "--out", str(tmp_path / "t")]) == 0
  split = json.loads((tmp_path / "t" / "results.json").read_text())["impls"]["torch-tuned"]["time_split"]
  assert 0 < split["products_share"] < 1 and split["events"] > 0, split


def _run(*args, env=None):
  """compare.py in a process of its own: exit status, stdout and stderr as a user sees them."""
  return subprocess.run([sys.executable, "compare.py", *args], cwd=ROOT, capture_output=True,
                        text=True, env={**os.environ, **(env or {})}, timeout=120)


def _refused(*args, env=None):
  """compare.main in this process, for input refused before training (what the process-level
  test above shows for one case, without starting an interpreter for each)."""
  out, err = io.StringIO(), io.StringIO()
  with mock.patch.dict(os.environ, env or {}), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      code = compare.main(list(args))
    except SystemExit as e:
      code = e.code
  return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_unknown_implementation_is_one_line_listing_the_known_ones():
  out = _run("--impls", "torch-scratch,mxnet-gru")
  assert out.returncode == 2 and out.stdout == ""
  assert out.stderr.count("\n") == 1 and "mxnet-gru" in out.stderr and "flax-grucell" in out.stderr


def test_missing_data_names_gru_data_dir(tmp_path):
  out = _refused("--preset", "quick", env={"GRU_DATA_DIR": str(tmp_path)})
  assert out.returncode == 2 and out.stderr.count("\n") == 1 and "GRU_DATA_DIR" in out.stderr


@pytest.mark.parametrize("args, match", [(("--epochs", "0"), "--epochs must be >= 1"),
                                         (("--impls", ","), "--impls needs")])
def test_impossible_config_is_refused_before_training(args, match):
  out = _refused(*args)
  assert out.returncode == 2 and match in out.stderr and out.stdout == ""


def test_existing_out_folder_is_never_overwritten(tmp_path):
  out = _refused("--out", str(tmp_path))
  assert out.returncode == 2 and "never overwritten" in out.stderr


@pytest.mark.parametrize("args, match", [
    (("--out", "/proc/version/report"), "choose another --out"),   # parent cannot be made
    (("--bench", "--out", "x"), "--bench writes no report"),
    (("--seed", "-1"), "seed must be >= 0"),
    (("--precision", "fp8"), "invalid choice"),
    (("--seeds", "0,1,1"), "--seeds takes distinct integers"),
    (("--seeds", "0,x"), "--seeds takes distinct integers"),
    (("--seeds", "2,-1"), "--seeds takes distinct integers"),
    (("--seed", "1", "--seeds", "0,1"), "--seed and --seeds together"),
    (("--truth", "--precision", "float64"), "drop --truth"),
    (("--bench", "--seeds", "0,1"), "--bench writes no report")])
def test_bad_arguments_fail_before_training(args, match):
  out = _refused("--preset", "quick", *args)
  assert out.returncode == 2 and match in out.stderr and "ppl" not in out.stdout


def test_interrupt_writes_what_finished_marked_partial(tmp_path, monkeypatch, corpus_vocab):
  from jax_impl.train import JaxImpl

  def interrupted(self, batches):
    raise KeyboardInterrupt
  real = JaxImpl.train_epoch
  monkeypatch.setattr(JaxImpl, "train_epoch", interrupted)
  out = tmp_path / "partial"
  code = compare.main([*TINY, "--epochs", "2", "--impls", "torch-scratch,jax-scratch,flax-gru", "--out", str(out),
                       "--checkpoint-every", "0"])
  results = json.loads((out / "results.json").read_text())
  records.validate(results)
  status = {n: r["status"] for n, r in results["impls"].items()}
  assert code == 130 and results["partial"]
  # Interrupted in jax-scratch's first epoch: torch-scratch had run its first one.
  assert status == {"torch-scratch": "interrupted", "jax-scratch": "interrupted", "flax-gru": "not run"}
  assert len(results["impls"]["torch-scratch"]["perplexity"]) == 1
  assert "PARTIAL" in (out / "report.md").read_text()
  assert not list(tmp_path.glob(".*tmp*"))  # no temporary folder left behind
  # The checkpoint stays (written after torch-scratch's first epoch); --resume completes the report.
  monkeypatch.setattr(JaxImpl, "train_epoch", real)
  assert compare.main(["--resume", str(out)]) == 0
  results = json.loads((out / "results.json").read_text())
  assert not results["partial"] and all(r["status"] == "ok" for r in results["impls"].values())
  assert results["impls"]["torch-scratch"]["resumed_epochs"] == [2] and results["checkpoint"]["resumes"]
  assert not (tmp_path / "partial.checkpoint").exists() and not list(tmp_path.glob(".*"))


def test_non_finite_loss_fails_that_implementation_and_the_rest_go_on(tmp_path, monkeypatch, corpus_vocab):
  from torch_impl.train import TorchImpl
  real = TorchImpl.train_epoch
  calls = []

  def blows_up(self, batches):
    if self.name == "torch-scratch":
      calls.append(1)
      return float("nan") if len(calls) == 2 else real(self, batches)
    return real(self, batches)
  monkeypatch.setattr(TorchImpl, "train_epoch", blows_up)
  out = tmp_path / "nan"
  code = compare.main([*TINY, "--epochs", "3", "--impls", "torch-scratch,torch-reference", "--out", str(out)])
  results = json.loads((out / "results.json").read_text())
  scratch, reference = results["impls"]["torch-scratch"], results["impls"]["torch-reference"]
  assert code == 0 and not results["partial"]
  assert scratch["status"] == "failed" and scratch["failed_epoch"] == 2 and len(scratch["perplexity"]) == 1
  assert reference["status"] == "ok" and len(reference["perplexity"]) == 3
  assert "failed at epoch 2" in (out / "report.md").read_text()


def test_an_error_in_one_implementation_fails_it_and_the_rest_go_on(tmp_path, monkeypatch, corpus_vocab):
  from jax_impl.train import JaxImpl

  def out_of_memory(self, batches):
    raise RuntimeError("RESOURCE_EXHAUSTED: out of memory\nmore detail")
  monkeypatch.setattr(JaxImpl, "train_epoch", out_of_memory)
  out = tmp_path / "error"
  args = [*TINY, "--epochs", "2", "--impls", "jax-scratch,torch-scratch"]
  assert compare.main(args + ["--out", str(out)]) == 0
  assert compare.main(args + ["--out", str(tmp_path / "strict"), "--strict"]) == 1  # not all ok
  results = json.loads((out / "results.json").read_text())
  jax_rec, torch_rec = results["impls"]["jax-scratch"], results["impls"]["torch-scratch"]
  assert jax_rec["status"] == "failed" and jax_rec["failed_epoch"] == 1
  assert jax_rec["error"] == "RuntimeError: RESOURCE_EXHAUSTED: out of memory"
  assert torch_rec["status"] == "ok" and len(torch_rec["perplexity"]) == 2
  assert "**jax-scratch: failed** (RuntimeError" in (out / "report.md").read_text()


@pytest.mark.slow
def test_strict_turns_a_parity_failure_into_exit_status_one(tmp_path, monkeypatch, corpus_vocab):
  from shared import metrics
  monkeypatch.setitem(metrics.TOLERANCES["float32"], "logits_rel", 0.0)  # any round-off now fails
  args = [*TINY, "--epochs", "2", "--impls", "torch-reference,jax-scratch"]
  assert compare.main(args + ["--out", str(tmp_path / "a")]) == 0
  assert compare.main(args + ["--out", str(tmp_path / "b"), "--strict"]) == 1
  assert "**FAIL**" in (tmp_path / "b" / "report.md").read_text()


def test_bench_prints_throughput_and_writes_no_report(tmp_path, capsys, corpus_vocab):
  args = [*TINY, "--epochs", "2", "--impls", "torch-cudnn", "--bench"]
  assert compare.main(args) == 0
  printed = capsys.readouterr().out
  row = [line.split() for line in printed.splitlines() if line.startswith("torch-cudnn ")][-1]
  assert row[1] == "ok" and float(row[3].replace(",", "")) > 1000  # steady tokens/s
  assert "parity" not in printed and "report:" not in printed


def test_tf32_runs_report_parity_unjudged():
  checks = [{"passed": True}, {"passed": False}]
  assert parity.judge(checks, ["float32", "float32"]) is True
  assert parity.judge(checks, ["float64", "float64"]) is True
  assert [c["passed"] for c in checks] == [True, False]
  assert parity.judge(checks, ["float32", "tf32"]) is False
  assert [c["passed"] for c in checks] == [None, None]


@pytest.mark.slow
def test_torch_compile_without_a_cxx_compiler_fails_that_row_alone(tmp_path, corpus_vocab):
  """Inductor on the CPU builds C++: with none found, torch-compile is reported failed with
  a one-line reason before training, and the other rows run."""
  out = tmp_path / "r"
  done = _run("--preset", "quick", "--epochs", "2", "--device", "cpu", "--impls", "torch-compile,torch-scratch",
              "--max-tokens", "600", "--num-steps", "5", "--batch-size", "4", "--out", str(out),
              env={"CXX": str(tmp_path / "no-such-compiler")})
  warnings = [line for line in done.stderr.splitlines()
              if line.startswith("compare.py:") and not line.startswith("compare.py: warning: the load")]
  assert done.returncode == 0 and len(warnings) == 1, done.stderr
  assert "torch-compile cannot run here" in warnings[0] and "install one" in warnings[0]
  results = json.loads((out / "results.json").read_text())
  compiled, eager = results["impls"]["torch-compile"], results["impls"]["torch-scratch"]
  assert compiled["status"] == "failed" and "needs a C++ compiler" in compiled["error"]
  assert eager["status"] == "ok" and len(eager["perplexity"]) == 2


def test_the_report_names_the_commit_the_run_started_from(tmp_path, monkeypatch, corpus_vocab):
  """A long run's checkout may move on while it trains: the report records the code it loaded."""
  from shared import environment
  commits = iter(["started", "moved-on", "moved-on", "moved-on"])
  monkeypatch.setattr(environment, "git_commit", lambda root: next(commits))
  assert compare.main([*TINY, "--epochs", "2", "--impls", "torch-scratch", "--out", str(tmp_path / "r")]) == 0
  assert json.loads((tmp_path / "r" / "results.json").read_text())["environment"]["git_commit"] == "started"


@pytest.mark.parametrize("where", ["building the rows", "calibration", "first checks"])
def test_a_ctrl_c_before_training_is_one_line_and_leaves_no_report(where, tmp_path, monkeypatch, capsys,
                                                                    corpus_vocab):
  """An early Ctrl-C (while the rows are built, while the machine is calibrated, or while the
  first minibatch is checked) stops the run with the interrupt's exit status and one line, and
  leaves neither a report nor a checkpoint that would block the same --out."""
  from shared import bounds, checkpoint, parity, registry

  def interrupt(*args, **kwargs):
    raise KeyboardInterrupt
  monkeypatch.setattr(*{"building the rows": (registry, "make"), "calibration": (bounds, "calibrate"),
                        "first checks": (parity, "first_minibatch")}[where], interrupt)
  out = tmp_path / "r"
  code = compare.main([*TINY, "--epochs", "2", "--impls", "torch-scratch,jax-scratch", "--out", str(out)])
  assert code == 130 and not out.exists() and not checkpoint.path_for(out).exists()
  assert capsys.readouterr().err.strip().splitlines()[-1] == "compare.py: interrupted before training: nothing to report"


def test_a_ctrl_c_swallowed_where_it_landed_still_stops_the_run(tmp_path, monkeypatch, corpus_vocab):
  """A SIGINT whose KeyboardInterrupt a callback swallowed (as JAX's garbage-collection hook
  once did): the run stops after that epoch, partial, instead of training to the end."""
  import signal as sig
  from jax_impl.train import JaxImpl
  real, calls = JaxImpl.train_epoch, []

  def swallowing(self, batches):
    calls.append(1)
    if len(calls) == 3:
      try:
        sig.raise_signal(sig.SIGINT)
      except KeyboardInterrupt:
        pass  # "Exception ignored in ...": the epoch goes on
    return real(self, batches)
  monkeypatch.setattr(JaxImpl, "train_epoch", swallowing)
  code = compare.main([*TINY, "--epochs", "20", "--impls", "jax-scratch", "--out", str(tmp_path / "r")])
  results = json.loads((tmp_path / "r" / "results.json").read_text())
  assert code == 130 and results["partial"] and len(results["impls"]["jax-scratch"]["perplexity"]) == 3

@pytest.mark.slow
def test_a_first_ctrl_c_after_the_training_keeps_a_partial_report_and_the_resume_completes_it(
    tmp_path, monkeypatch, capsys, corpus_vocab):
  """A Ctrl-C that lands while the matmul bounds are measured (all epochs trained) is the first
  one: the report of what trained is written, marked partial, and --resume completes it;
  before, it was taken for a second Ctrl-C and no report was written."""
  from shared import bounds
  real, calls = bounds.attach, []

  def interrupted_once(*args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
      raise KeyboardInterrupt
    return real(*args, **kwargs)
  monkeypatch.setattr(bounds, "attach", interrupted_once)
  out = tmp_path / "r"
  code = compare.main([*TINY, "--epochs", "3", "--impls", "jax-scratch", "--out", str(out), "--checkpoint-every", "0"])
  results = json.loads((out / "results.json").read_text())
  assert code == 130 and results["partial"] and "interrupted again" not in capsys.readouterr().err
  assert len(results["impls"]["jax-scratch"]["perplexity"]) == 3 and results["limits"] == []
  assert compare.main(["--resume", str(out)]) == 0
  resumed = json.loads((out / "results.json").read_text())
  assert not resumed["partial"] and resumed["limits"]
  assert resumed["impls"]["jax-scratch"]["perplexity"] == results["impls"]["jax-scratch"]["perplexity"]



def test_a_second_ctrl_c_while_keeping_what_finished_stops_at_once_and_the_checkpoint_resumes(
    tmp_path, monkeypatch, capsys, ctrl_c_at_epoch, corpus_vocab):
  from shared import bounds, checkpoint

  def interrupted_again(*args, **kwargs):
    raise KeyboardInterrupt
  ctrl_c_at_epoch(4)
  monkeypatch.setattr(bounds, "attach", interrupted_again)  # the matmul bounds, measured after training
  out = tmp_path / "r"
  with pytest.raises(SystemExit) as e:
    compare.main([*TINY, "--epochs", "20", "--impls", "jax-scratch", "--out", str(out), "--checkpoint-every", "0"])
  last = capsys.readouterr().err.strip().splitlines()[-1]  # (a load warning may come before it)
  assert e.value.code == 130 and last.startswith("compare.py: interrupted again while keeping what finished")
  assert last.endswith(f"--resume {out}") and not out.exists()
  assert checkpoint.read(checkpoint.path_for(out)).state["live"]  # whole, with the epochs that ran
