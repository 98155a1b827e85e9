"""Threads chosen, equal and stated (shared/threads.py, {torch,jax}_impl/threads.py), the
machine's load measured (shared/timing.py), and the round-robin order rotating."""
import collections
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

import compare
from shared import threads, timing, training
from shared.records import Record
from shared.reports import sections

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--preset", "quick", "--device", "cpu", "--max-tokens", "2000", "--num-steps", "10", "--batch-size", "8",
        "--num-hiddens", "64"]


def test_the_environment_gives_both_frameworks_n_threads_and_passive_openmp(monkeypatch):
  monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
  monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
  one, four = threads.environment(1), threads.environment(4)
  assert {k: one[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PJRT_NPROC", threads.MARK)} == dict.fromkeys(
      ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PJRT_NPROC", threads.MARK), "1")
  assert one["OMP_WAIT_POLICY"] == "PASSIVE" and four["PJRT_NPROC"] == "4"
  assert one["XLA_FLAGS"] == "--xla_dump_to=/tmp/x " + threads.SINGLE_THREAD_XLA_FLAG
  assert four["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"  # the user's flags kept, ours only for one thread
  monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
  assert threads.environment(2)["OMP_WAIT_POLICY"] == "ACTIVE"  # a user's explicit choice stays


def test_bad_thread_counts(monkeypatch):
  with pytest.raises(ValueError, match="--threads must be >= 1"):
    threads.check(0)
  assert threads.check(threads.cores()) == ""
  assert "more than the" in threads.check(threads.cores() + 1)
  # this process starts torch with every core (tests/conftest.py): another count needs a new one
  import torch  # noqa: F401 - started, whatever ran before this test
  with pytest.raises(ValueError, match="needs a fresh process"):
    threads.configure(threads.cores() + 1)


def test_a_framework_started_with_other_threads_is_a_one_line_error(capsys):
  other = 1 if threads.cores() > 1 else 2
  with pytest.raises(SystemExit) as stop:
    compare.main([*TINY, "--threads", str(other), "--impls", "jax-scratch"])
  err = capsys.readouterr().err
  assert stop.value.code == 2 and "needs a fresh process" in err and err.count("\n") == 1


def test_jax_refuses_a_pool_it_was_not_started_with(monkeypatch):
  from jax_impl import threads as jax_threads
  monkeypatch.setenv("PJRT_NPROC", "3")
  with pytest.raises(ValueError, match="JAX's CPU pool has 3 threads in this process, not 1"):
    jax_threads.apply(1)


def _compare(*args, timeout=240):
  return subprocess.run([sys.executable, "compare.py", *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout, env={k: v for k, v in os.environ.items() if k != threads.MARK})


@pytest.mark.parametrize("args, match", [(("--threads", "0"), "--threads must be >= 1"),
                                         (("--threads", "-2"), "--threads must be >= 1")])
def test_zero_threads_is_refused_before_training(args, match):
  done = _compare(*TINY, *args)
  assert done.returncode == 2 and match in done.stderr and done.stderr.count("\n") == 1


def test_more_threads_than_cores_warns_in_one_line():
  done = _compare(*TINY, "--threads", str(threads.cores() + 1), "--epochs", "0")  # warned, then refused
  lines = done.stderr.splitlines()
  assert done.returncode == 2 and len(lines) == 2 and "more than the" in lines[0] and "--epochs" in lines[1]


@pytest.mark.slow
def test_one_thread_gives_each_framework_one_core(tmp_path):
  """--threads 1 in a fresh process: torch and XLA each get one compute thread, stated in
  the report, and the CPU time they use stays near one core."""
  out = tmp_path / "r"
  done = _compare(*TINY, "--threads", "1", "--epochs", "6", "--impls", "torch-scratch,jax-scratch", "--out", str(out))
  assert done.returncode == 0, done.stderr
  results = json.loads((out / "results.json").read_text())
  env = results["environment"]
  assert env["threads"]["threads"] == 1 and env["threads"]["PJRT_NPROC"] == "1"
  assert env["runtime"]["torch"]["threads"] == 1 and env["runtime"]["jax"]["threads"] == 1
  for name, rec in results["impls"].items():
    # measured 1.00 (torch-scratch) and 1.02 (jax-scratch: its dispatch thread wakes briefly)
    # on the 2-core EPYC; at the seed sizes with every core, 1.3 and 1.7
    assert rec["threads"] == 1 and 0.5 < rec["cores_used"] < 1.25, (name, rec["cores_used"])
  assert "1 per framework, in every process" in (out / "report.md").read_text()
  assert isinstance(env["loadavg_before"], float)  # read before the run's own imports


def test_a_busy_start_is_warned_and_stated_in_the_report():
  """The load average read as the run started goes into the environment block, with the
  same one-line warning the console printed when it was above LOADAVG_WARN."""
  busy, idle = timing.LOADAVG_WARN + 0.8, timing.LOADAVG_WARN / 2
  assert "the load average is" in timing.start_warning(busy) and timing.start_warning(idle) is None
  (_, busy_row), = sections.threads_rows({"loadavg_before": busy})
  (_, idle_row), = sections.threads_rows({"loadavg_before": idle})
  assert f"{busy:.2f} as it started; **warning: the load average is" in busy_row
  assert "warning" not in idle_row and f"{idle:.2f} as it started" in idle_row
  assert sections.threads_rows({"loadavg_before": None}) == []  # reports before this field: no row


def test_other_processes_cpu_time_is_measured():
  start = timing.load_start()
  busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"])
  time.sleep(2.0)
  load = timing.load_since(start)  # before the busy process is reaped: not yet this one's children
  busy.wait(timeout=30)
  assert load["seconds"] >= 1.9 and load["other_cores"] > 0.5, load  # one core for 1.5 of 2 s, startup included
  assert "other processes used" in timing.load_warning(load)
  assert timing.load_warning({**load, "other_cores": 0.1}) is None


@pytest.mark.parametrize("n", [2, 3, 4, 5, 9])
def test_the_round_order_is_balanced_every_row_follows_every_other_equally_often(n):
  names = [f"r{i}" for i in range(n)]
  orders = [training.round_order(names, k) for k in range(2, 2 + len(training.williams(n)))]
  assert all(sorted(o) == names for o in orders)  # each round runs every row once
  follows = collections.Counter((o[i], o[i + 1]) for o in orders for i in range(n - 1))
  assert len(follows) == n * (n - 1) and len(set(follows.values())) == 1, follows
  assert training.round_order(names, 2) != training.round_order(names, 3)  # the order changes every round


def test_train_all_runs_epochs_in_the_rotated_order():
  calls = []

  class Fake:
    execution, clipped_steps = "x", 0

    def __init__(self, name):
      self.name = name

    def prepare(self, batches):
      return 0.0

    def train_epoch(self, batches):
      calls.append(self.name)
      time.sleep(0.001)
      return 1.0

    def peak_memory_bytes(self):
      return None

  import numpy as np
  epochs = [(np.zeros((2, 3, 4), np.int32), np.zeros((2, 3, 4), np.int32))] * 4
  impls = {n: Fake(n) for n in "abc"}
  records = {n: Record("a row", "scratch", "torch", "cpu", "float32") for n in impls}

  class Quiet:
    def update(self, epoch):
      pass

    def close(self):
      pass
  load = {}
  training.train_all(impls, epochs, records, Quiet(), load)
  assert calls == list("abc") + [n for k in (2, 3, 4) for n in training.round_order(list("abc"), k)]
  assert calls[3:6] != calls[6:9] and load["seconds"] > 0 and load["cores"] >= 1
  assert all(len(r.epoch_cpu_seconds) == 4 and r.clipped_steps == [0] * 4 for r in records.values())
