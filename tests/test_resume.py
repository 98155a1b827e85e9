"""The fault suite (slow: processes and signals). Kill-and-resume: every kind of run, SIGKILLed
at a random point after its first checkpoint, then `compare.py --resume`, finishes with
perplexities bit-identical to the same run left uninterrupted (timings excepted), for torch
and JAX rows alike, and leaves neither its checkpoint nor a worker process behind. Then the
other faults a careful user meets (docs/faults.md): a hung worker, ..."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from shared import checkpoint

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--preset", "quick", "--num-hiddens", "16", "--max-tokens", "3000", "--batch-size", "8",
        "--num-steps", "10", "--checkpoint-every", "0"]
KINDS = {  # kind -> (flags, seconds after the first checkpoint within which the kill falls)
    "compare-truth": (["--epochs", "20", "--truth", "--impls", "torch-scratch,jax-scratch,torch-cudnn,flax-gru"], 8),
    "seeds": (["--epochs", "8", "--seeds", "0,1,2", "--impls", "torch-scratch,jax-scratch"], 8),
    "sweep": (["--epochs", "8", "--sweep", "num_hiddens=8,16", "--impls", "torch-scratch,jax-scratch"], 5),
    "ablation": (["--epochs", "8", "--ablation", "unroll,threads", "--impls", "torch-scratch,jax-scratch"], 5),
    "data-parallel": (["--epochs", "8", "--devices", "2", "--impls", "torch-scratch,jax-scratch"], 8),
}


def _run(args, **kw):
  env = {**os.environ, "PYTHONPATH": ROOT}
  return subprocess.Popen([sys.executable, os.path.join(ROOT, "compare.py"), *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def _until_checkpoint(proc, out, deadline=float("inf")) -> None:
  """Waits until the run `proc` writing `out` has written its first checkpoint; fails with its
  output if it ends first or `deadline` (time.monotonic) passes."""
  while not checkpoint.path_for(out).exists():
    assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
    time.sleep(0.05)


def _perplexities(results: dict) -> dict:
  """Every trajectory of a report, keyed by where it sits (seed, phase, point, lever cell)."""
  out = {}
  blocks = results.get("runs") or ([results] if results["kind"] == "compare" else [])
  for b in blocks:
    for phase, recs in (("main", b.get("impls", {})), ("truth", (b.get("truth") or {}).get("impls", {}))):
      out.update({(b["seed"], phase, n): r["perplexity"] for n, r in recs.items()})
  for p in results.get("points", []):  # sweep points and ablation cells
    out.update({(p.get("lever"), json.dumps(p["point"]), n): r["perplexity"] for n, r in p.get("impls", {}).items()})
  return out


def _stat(pid) -> list:
  """/proc/PID/stat's fields after the command name: [state, parent pid, ...]; [] if gone."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()
  except (OSError, IndexError):
    return []


def _children(pid: int) -> list:
  """Processes whose parent is `pid` (a worker a killed harness might leave behind)."""
  return [int(e) for e in os.listdir("/proc") if e.isdigit() and _stat(e)[1:2] == [str(pid)]]


def _alive(pid: int) -> bool:
  """Running, not a zombie waiting for init to reap it."""
  return _stat(pid)[:1] not in ([], ["Z"])


@pytest.mark.parametrize("kind", list(KINDS))
def test_sigkill_then_resume_is_the_same_run(kind, tmp_path):
  flags, window = KINDS[kind]
  whole = _run(TINY + flags + ["--out", str(tmp_path / "whole")])
  assert whole.wait(timeout=900) == 0, whole.stdout.read()[-3000:]
  out = tmp_path / "killed"
  killed = _run(TINY + flags + ["--out", str(out)])
  deadline = time.monotonic() + 600
  _until_checkpoint(killed, out, deadline)
  seed = random.randrange(2**32)
  delay = random.Random(seed).uniform(0, window)  # a random point, not an epoch boundary; seed in the messages
  time.sleep(delay)
  assert killed.poll() is None, f"{kind}: the run finished within {delay:.1f} s (seed {seed}): no kill to resume from"
  workers = _children(killed.pid)
  os.kill(killed.pid, signal.SIGKILL)
  killed.wait()
  time.sleep(2)  # the kernel kills the workers with their parent; a zombie (reaped by init) is gone
  assert not [p for p in workers if _alive(p)], "a worker outlived the killed run"
  resumed = _run(["--resume", str(out)])
  log = resumed.communicate(timeout=900)[0]
  assert resumed.returncode == 0, log[-3000:]
  a = json.loads((tmp_path / "whole" / "results.json").read_text())
  b = json.loads((out / "results.json").read_text())
  assert _perplexities(a) and _perplexities(a) == _perplexities(b), f"{kind}: killed after {delay:.2f} s (seed {seed})"
  assert b["checkpoint"]["resumes"] and not checkpoint.path_for(out).exists()
  assert not list(tmp_path.glob(".*tmp-*")), "a half-written report was left behind"


# --- a hung worker -----------------------------------------------------------------------
def test_a_slow_call_keeps_its_worker_alive_and_a_silent_one_is_declared_hung():
  """A worker busy in a call longer than the silence allowed sends heartbeats and is waited
  for; stopped (SIGSTOP: alive, silent, no peer to time out on), it is declared hung after
  the silence allowed, in one line naming the row and the rank, and ended."""
  from shared import workers
  from tests import processes
  group = workers.WorkerGroup("sleeper", processes.build_sleeper, (), [{}], silence=2)
  group.gather(60)
  assert group.call("sleep", 5)[0][0] == 5  # 5 s busy, 2 s of silence allowed: its heartbeats count
  pids = group.pids()
  os.kill(pids[0], signal.SIGSTOP)
  start = time.monotonic()
  with pytest.raises(workers.WorkerFailed, match=r"sleeper: rank 0 sent nothing for 2 s \(hung"):
    group.call("sleep", 0)
  assert 1.9 < time.monotonic() - start < 3.5  # declared, and its process ended, within the silence allowed
  assert processes.gone(pids, within=1)


def _workers(pid: int) -> list:
  """The worker processes (multiprocessing's spawned interpreters) of harness `pid`."""
  def cmdline(c):
    try:
      with open(f"/proc/{c}/cmdline", "rb") as f:
        return f.read()
    except OSError:
      return b""
  return [c for c in _children(pid) if b"spawn_main" in cmdline(c)]


def test_a_hung_row_fails_alone_and_the_others_train_on(tmp_path):
  """compare.py with each row in a process of its own (--repeat) whose worker is stopped
  mid-training: that row fails after --worker-timeout seconds of silence, in one line, the
  other row trains to the end, and no process stays behind."""
  proc = _run(["--preset", "quick", "--epochs", "40", "--threads", "1", "--impls", "torch-scratch,jax-scratch",
               "--repeat", "2", "--worker-timeout", "5", "--out", str(tmp_path / "r")])
  deadline = time.monotonic() + 120
  while len(_workers(proc.pid)) < 2 and time.monotonic() < deadline:
    time.sleep(0.2)
  time.sleep(10)  # both rows built and training
  stopped = _workers(proc.pid)[-1]
  os.kill(stopped, signal.SIGSTOP)
  out, _ = proc.communicate(timeout=600)
  results = json.loads((tmp_path / "r" / "results.json").read_text())
  statuses = {n: r["status"] for n, r in results["impls"].items()}
  assert sorted(statuses.values()) == ["failed", "ok"], (statuses, out[-2000:])
  failed = next(r for r in results["impls"].values() if r["status"] == "failed")
  assert "sent nothing for 5 s (hung" in failed["error"]
  assert not _alive(stopped) and _workers(proc.pid) == []


# --- one run per report folder -------------------------------------------------------------
def _holding(folder) -> subprocess.Popen:
  """Another process that holds report folder `folder` (shared/lock.py) until it is killed."""
  code = f"import sys, time; from shared import lock; lock.hold({str(folder)!r}); print('held', flush=True); time.sleep(60)"
  proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


def test_a_held_folder_is_refused_naming_its_holder_and_free_again_once_it_dies(tmp_path):
  from shared import lock
  from shared.reports import folder
  other = _holding(tmp_path / "r")
  with pytest.raises(ValueError, match=rf"r is being written by process {other.pid} \(.*lock.hold"):
    lock.hold(tmp_path / "r")
  assert folder.free(tmp_path / "r") == tmp_path / "r-2"  # two default-named runs never share a folder
  other.kill()
  other.wait()
  lock.hold(tmp_path / "r")  # the kernel let go with the process
  lock.release_all()
  assert not lock.path_of(tmp_path / "r").exists()


def test_a_second_resume_of_the_same_run_is_refused_at_once(tmp_path):
  out = tmp_path / "r"
  first = _run(TINY + ["--epochs", "400", "--impls", "torch-scratch", "--out", str(out)])
  _until_checkpoint(first, out)
  first.kill()
  first.wait()
  resumed = _run(["--resume", str(out)])
  time.sleep(3)  # well before its first checkpoint write records its pid
  second = subprocess.run([sys.executable, "compare.py", "--resume", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
  assert second.returncode == 2 and f"is being written by process {resumed.pid}" in second.stderr, second.stderr
  assert second.stderr.count("\n") == 1
  resumed.kill()
  resumed.wait()


def test_a_folder_that_appears_at_out_during_a_run_is_left_alone(tmp_path):
  out = tmp_path / "r"
  run = _run(TINY + ["--epochs", "60", "--impls", "torch-scratch", "--out", str(out)])
  _until_checkpoint(run, out)
  out.mkdir()
  (out / "mine.txt").write_text("a user's file")
  log = run.communicate(timeout=300)[0]
  assert run.returncode == 0, log[-3000:]
  assert (out / "mine.txt").read_text() == "a user's file" and not (out / "results.json").exists()
  assert (tmp_path / "r-2" / "results.json").exists() and f"{out} appeared while this run trained" in log


def test_a_dead_rank_is_named_itself_not_a_peer_the_group_then_killed():
  """SIGKILL of rank 1, found as its pipe refuses the next call: the line names rank 1 and its
  signal; rank 0, terminated with the group afterwards, is not blamed."""
  from shared import workers
  from tests import processes

  class Broken:  # rank 1's end of the pipe, as the kernel reports it once rank 1 is gone
    def __init__(self, conn):
      self.conn = conn

    def send(self, message):
      raise BrokenPipeError(32, "Broken pipe")

    def __getattr__(self, name):
      return getattr(self.conn, name)
  group = workers.WorkerGroup("pair", processes.build_sleeper, (), [{}, {}], silence=30)
  group.gather(60)
  pids = group.pids()
  os.kill(pids[1], signal.SIGKILL)
  assert processes.gone(pids[1:])
  group.conns[1] = Broken(group.conns[1])
  with pytest.raises(workers.WorkerFailed, match=r"^pair: rank 1 killed by SIGKILL"):
    group.call("sleep", 0)
  assert processes.gone(pids)
