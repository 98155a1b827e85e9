"""Checkpoints (shared/checkpoint.py): written whole or not at all, verified before use,
refused with one line when they cannot be resumed, and a run crashed at a random epoch
resumes to the very same perplexities. The kill-and-resume of every kind of run, in
processes: tests/test_resume.py (slow)."""
import itertools
import json
import random
import subprocess
import sys

import numpy as np
import pytest

import compare
from shared import checkpoint, lock, metrics, records
from shared.kinds import compare as comparison
from shared.reports import checkpoint as checkpoint_md
from shared.reports import folder
from shared.config import Config
from shared.rows import Row


class Crash(BaseException):
  """Stands for the machine going away: nothing catches it."""


def _ck(tmp_path, every=0.0) -> checkpoint.Checkpoint:
  return checkpoint.Checkpoint(checkpoint.path_for(tmp_path / "report"), ["--preset", "quick"], every)


class _Impl:
  def __init__(self, params):
    self.params = params

  def get_params(self):
    return self.params


def test_a_checkpoint_reads_back_exactly(tmp_path):
  ck = _ck(tmp_path)
  params = {"W_xz": np.random.default_rng(0).standard_normal((28, 8)).astype(np.float32),
            "b_z": np.arange(8, dtype=np.float64) / 3}
  stored = {"a": {"status": "running", "perplexity": [27.123456789012345]}, "b": {"status": "failed"}}
  ck.epoch_done("run main", lambda: {"records": stored, "parity": []}, {"a": _Impl(params), "b": None})
  back = checkpoint.read(ck.path)
  state, arrays = back.live("run main")
  assert state["records"] == stored and set(arrays) == {"a"}  # a failed row keeps no weights
  for k, v in params.items():
    assert arrays["a"][k].dtype == v.dtype and np.array_equal(arrays["a"][k], v)
  back.finish("run main", {"done": 1})
  assert checkpoint.read(ck.path).done("run main") == {"done": 1} and checkpoint.read(ck.path).live("run main") is None
  largest = ck.summary()["bytes"]  # after the epoch's write, parameters included
  ck.finish("run main", {"done": 1})  # the parameters go: a smaller file; the report gives the largest
  assert ck.path.stat().st_size < largest == ck.summary()["bytes"] and ck.summary()["writes"] == 2


def test_a_crash_while_writing_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
  ck = _ck(tmp_path)
  ck.finish("seed 0", {"kept": True})
  before = ck.path.read_bytes()
  monkeypatch.setattr(checkpoint.os, "replace", lambda *a: (_ for _ in ()).throw(Crash()))
  with pytest.raises(Crash):
    ck.finish("seed 1", {"lost": True})
  assert ck.path.read_bytes() == before and checkpoint.read(ck.path).done("seed 0") == {"kept": True}


def test_a_damaged_checkpoint_fails_its_integrity_check(tmp_path):
  ck = _ck(tmp_path)
  ck.finish("seed 0", {"ppl": 1.5})
  blob = bytearray(ck.path.read_bytes())
  blob[-40] ^= 1
  ck.path.write_bytes(bytes(blob))
  with pytest.raises(ValueError, match="fails its integrity check"):
    checkpoint.read(ck.path)
  ck.path.write_bytes(bytes(blob[:len(blob) // 2]))  # cut short by a full disk
  with pytest.raises(ValueError, match="fails its integrity check"):
    checkpoint.resume(tmp_path / "report")


def test_resume_refuses_what_cannot_be_continued(tmp_path, monkeypatch):
  with pytest.raises(ValueError, match="is not a run that can be resumed: no checkpoint at"):
    checkpoint.resume(tmp_path / "report")
  finished = tmp_path / "done"
  finished.mkdir()
  (finished / "results.json").write_text(json.dumps({"partial": False}))
  with pytest.raises(ValueError, match="is a finished report: there is nothing to resume"):
    checkpoint.resume(finished)
  _ck(tmp_path).finish("seed 0", {})
  code = checkpoint.fingerprint()
  monkeypatch.setattr(checkpoint, "fingerprint", lambda: {**code, "shared/runner.py": "edited"})
  with pytest.raises(ValueError, match=r"written by other code \(shared/runner.py differ\)"):
    checkpoint.resume(tmp_path / "report")
  monkeypatch.setattr(checkpoint, "fingerprint", lambda: code)
  installed = checkpoint.versions()
  monkeypatch.setattr(checkpoint, "versions", lambda: {**installed, "torch": "9.9"})
  with pytest.raises(ValueError, match=r"other package versions: .*torch .* \(installed 9.9\)"):
    checkpoint.resume(tmp_path / "report")


def test_a_checkpoint_of_the_code_before_the_one_runner_is_refused_in_one_line(tmp_path, capsys):
  """Format 1 stored whole seeds and other units than today's runner keeps: such a file (here
  one written as it was, its format number 1) is refused, saying why and what to do."""
  old = _ck(tmp_path)
  old.state["format"] = 1
  old.save()
  with pytest.raises(ValueError, match=r"has checkpoint format 1, this code reads 2; start the run again"):
    checkpoint.resume(tmp_path / "report")
  with pytest.raises(SystemExit):
    compare.main(["--resume", str(tmp_path / "report")])
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "checkpoint format 1" in err


def test_resume_refuses_while_the_run_that_writes_the_checkpoint_still_runs(tmp_path):
  ck = _ck(tmp_path)
  ck.save()
  checkpoint.resume(tmp_path / "report")  # written by this process: a crashed run's checkpoint resumes here
  run_elsewhere = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "compare.py"])
  try:
    ck.state["writer"]["pid"] = run_elsewhere.pid
    ck.save()
    with pytest.raises(ValueError, match=f"still running \\(process {run_elsewhere.pid}\\)"):
      checkpoint.resume(tmp_path / "report")
  finally:
    run_elsewhere.kill()
    run_elsewhere.wait()
  checkpoint.resume(tmp_path / "report")  # once it is gone, the checkpoint resumes


def test_the_command_line_refuses_resume_with_other_flags_and_a_stale_checkpoint(tmp_path, capsys):
  with pytest.raises(SystemExit):
    compare.main(["--resume", str(tmp_path / "report"), "--epochs", "3"])
  assert "drop --epochs" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    compare.main(["--resume", str(tmp_path / "report")])
  assert "no checkpoint at" in capsys.readouterr().err
  _ck(tmp_path).finish("seed 0", {})
  with pytest.raises(SystemExit):
    compare.main(["--preset", "quick", "--impls", "torch-scratch", "--out", str(tmp_path / "report")])
  assert f"continue it with --resume {tmp_path / 'report'}" in capsys.readouterr().err


def test_steady_figures_leave_out_the_epoch_after_a_resume():
  seconds = [5.0, 1.0, 1.0, 4.0, 1.0]  # epoch 4 ran beside a fresh compile
  plain = metrics.throughput([100] * 5, seconds, [9.0] * 5)
  resumed = metrics.throughput([100] * 5, seconds, [9.0] * 5, resumed_epochs=[4])
  assert plain["min_tokens_per_s"] == 25.0 and resumed["min_tokens_per_s"] == 100.0
  assert records.rates({"tokens": [100] * 5, "epoch_seconds": seconds, "resumed_epochs": [4]})[3] is None


def test_a_crash_at_a_random_epoch_resumes_to_the_same_perplexities(tmp_path, corpus_vocab):
  """In this process, throughput only (--bench: no parity, probes or samples to wait for);
  with the float64 truth, seeds, sweeps, ablations and data parallel: tests/test_resume.py.
  The last write and the crash fall at random epochs (the seed is in the message): the
  epochs trained between them are trained again."""
  corpus, vocab = corpus_vocab
  config = Config(batch_size=4, num_steps=5, num_hiddens=8, num_epochs=5, vocab_size=len(vocab))
  rows, corpus = [Row("torch-scratch"), Row("jax-scratch")], corpus[:500]
  whole = comparison.run(config, rows, corpus, vocab, "cpu", bench=True)
  seed = random.randrange(2**32)
  write_at = random.Random(seed).randint(1, 8)  # of the 10 epochs in all (2 rows x 5 epochs)
  crash_at = random.Random(seed + 1).randint(write_at, 9)
  ck, calls = _ck(tmp_path), itertools.count(1)
  real = ck.epoch_done
  def epoch_done(*args):  # noqa: E306 - one write, then the crash
    n = next(calls)
    if n == write_at:
      real(*args)
    if n == crash_at:
      raise Crash
  ck.epoch_done = epoch_done
  with pytest.raises(Crash):
    comparison.run(config, rows, corpus, vocab, "cpu", bench=True, ck=ck)
  again = comparison.run(config, rows, corpus, vocab, "cpu", bench=True, ck=checkpoint.resume(tmp_path / "report"))
  for n in ("torch-scratch", "jax-scratch"):
    assert again["impls"][n]["perplexity"] == whole["impls"][n]["perplexity"], (n, seed, write_at, crash_at)
  assert any(r["resumed_epochs"] for r in again["impls"].values()), (seed, write_at)  # some row went on


def test_a_resume_on_other_threads_or_devices_is_refused(tmp_path):
  ck = _ck(tmp_path)
  ck.pin({"threads": 2, "devices": "cpu"})  # a new run writes its first checkpoint at once
  back = checkpoint.resume(tmp_path / "report")
  back.pin({"threads": 2, "devices": "cpu"})
  with pytest.raises(ValueError, match=r"other settings on this machine: threads 2 \(now 4\)"):
    back.pin({"threads": 4, "devices": "cpu"})


def test_a_default_folder_with_an_unfinished_runs_checkpoint_is_taken(tmp_path):
  first = folder.default_dir(tmp_path, "cpu", "seed")
  lock.release_all()  # the run that chose it ended without a report
  checkpoint.path_for(first).write_bytes(b"")
  assert folder.default_dir(tmp_path, "cpu", "seed").name == first.name + "-2"


def test_the_report_says_where_a_sweep_or_ablation_was_resumed():
  rec = {"resumed_epochs": [3], "resume_prepare_seconds": [1.25]}
  ck = {"path": "x.checkpoint", "every_seconds": 60.0, "writes": 4, "bytes": 2_000_000, "median_write_seconds": 0.05,
        "max_write_seconds": 0.08, "started": "t0", "argv": ["--sweep", "num_hiddens=8,16"],
        "resumes": [{"at": "t1", "checkpoint_written": "t0", "from": {"point 2": 2}, "units_done": 1}]}
  sweep = {"kind": "sweep", "impls": ["jax-scratch"], "checkpoint": ck,
           "points": [{"point": {"num_hiddens": 16}, "impls": {"jax-scratch": rec}}]}
  text = checkpoint_md.render(sweep)
  assert "| num_hiddens=16 | jax-scratch | 3 | 1.25 |" in text and "point 2 after epoch 2" in text
  ablation = {"kind": "ablation", "checkpoint": ck, "points": [{"lever": "unroll", "point": {"unroll": 5},
                                                                  "impls": {"jax-scratch": rec}}]}
  assert "| unroll: unroll=5 | jax-scratch | 3 | 1.25 |" in checkpoint_md.render(ablation)
