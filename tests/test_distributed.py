"""Data parallelism (shared/distributed.py, shared/workers.py, {torch,jax}_impl/distributed.py):
the same function as one device, the cross-framework pairs, the launchers, bad input, and
a worker that dies."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

import compare
from shared import distributed, parity, registry, rows, runner, threads, training, workers
from shared.config import Config
from shared.kinds import sweep
from tests.processes import gone

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--preset", "quick", "--device", "cpu", "--max-tokens", "600", "--num-steps", "5", "--batch-size", "4",
        "--num-hiddens", "16"]
# float64 round-off: data parallel only reorders the gradient's sums (measured: 1e-16 to
# 4e-16 relative on these sizes, both frameworks, both models; 2.4e-15 at the seed sizes,
# reports/2026-11-30-cpu-seed-dp2-float64-10epochs), so 1e-12 is far above it and far
# below what a wrong reduction would give (a gradient not averaged: 1.0).
F64 = 1e-12


def _config(**kw):
  return Config(batch_size=4, num_steps=5, num_hiddens=8, num_epochs=2, vocab_size=28, devices=2).set(**kw)


def _rel(a, b) -> float:
  return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _batches(seed=0, n=3):
  rng = np.random.default_rng(seed)
  return tuple(rng.integers(0, 28, (n, 4, 5)).astype(np.int32) for _ in range(2))


def _same_function(one, dp) -> dict:
  """Largest relative gaps between a row and its data-parallel twin: first-minibatch logits
  and gradients from a carried-looking start, two epochs' losses, the weights after."""
  Xs, Ys = _batches()
  H = np.random.default_rng(1).uniform(-0.9, 0.9, (4, 8)).astype(one.config.dtype)
  gaps = {"logits": _rel(dp.forward(Xs[0], H)[0], one.forward(Xs[0], H)[0])}
  (l1, g1, h1), (l2, g2, h2) = one.loss_and_grads(Xs[0], Ys[0], H), dp.loss_and_grads(Xs[0], Ys[0], H)
  gaps["grads"] = max(_rel(g2[k], g1[k]) for k in g1 if np.abs(g1[k]).max() > 0)
  gaps["state"] = _rel(h2, h1)
  gaps["loss"] = abs(l2 - l1) / l1
  gaps["epochs"] = max(abs(dp.train_epoch((Xs, Ys)) - one.train_epoch((Xs, Ys))) for _ in range(2))
  p1, p2 = one.get_params(), dp.get_params()
  gaps["params"] = max(_rel(p2[k], p1[k]) for k in p1)
  return gaps


def _build(names, **kw):
  built = runner.build([rows.Row.parse(n) for n in names], _config(**kw))
  assert set(built.impls) == set(names)
  return built.impls


# --- names, pairs, settings: no framework ------------------------------------------------
def test_names_pairs_and_refusals():
  assert rows.Row.parse("torch-scratch-dp2") == rows.Row("torch-scratch", devices=2)
  assert rows.Row.parse("torch-scratch") == rows.Row("torch-scratch") and rows.Row("jax-scratch", True, 2).name == (
      "jax-scratch-bf16-dp2")
  with pytest.raises(ValueError, match="unknown implementation 'nosuch-dp2'"):
    rows.Row.parse("nosuch-dp2")
  assert rows.Row.parse("flax-gru-dp4").info.layout == rows.IMPLS["flax-gru"].layout
  assert [r.name for r in rows.run_rows(["torch-scratch", "jax-scratch"], Config(devices=2))] == [
      "torch-scratch", "torch-scratch-dp2", "jax-scratch", "jax-scratch-dp2"]
  twins = rows.run_rows(["torch-scratch", "torch-cudnn", "jax-scratch", "flax-gru"], Config(devices=2))
  pairs = [(g, r.name, a.name) for g, r, a in parity.pairs(twins)]
  assert ("scratch-dp2", "jax-scratch-dp2", "torch-scratch-dp2") in pairs
  assert ("builtin-dp2", "flax-gru-dp2", "torch-cudnn-dp2") in pairs
  assert ("data-parallel", "flax-gru-dp2", "flax-gru") in pairs and len(pairs) == 2 + 2 + 4
  assert rows.able(Config(devices=2)) == [n for n in rows.IMPLS
                                          if n not in ("torch-reference", "torch-compile", "torch-tuned",
                                                       "torch-tuned-builtin", "keras-jax", "keras-torch")]


def test_each_process_gets_its_share_of_the_threads():
  cfg = Config(devices=2, threads=2)
  torch_env = distributed.worker_env("torch", cfg, 1, 2, 1234)
  assert torch_env["OMP_NUM_THREADS"] == "1" and torch_env["RANK"] == "1" and torch_env["WORLD_SIZE"] == "2"
  assert torch_env["MASTER_PORT"] == "1234"
  mesh_env = distributed.worker_env("jax", cfg, 0, 1, 1234)  # one process drives both devices
  assert mesh_env["PJRT_NPROC"] == "2" and "--xla_force_host_platform_device_count=2" in mesh_env["XLA_FLAGS"]
  assert distributed.worker_env("jax", Config(devices=2, processes=2, threads=2), 0, 2, 1)["PJRT_NPROC"] == "1"


def test_a_devices_sweep_scales_strong_or_weak(corpus_vocab):
  base = Config(max_tokens=600, batch_size=4, num_steps=5)
  for scaling, batches in (("strong", [4, 4]), ("weak", [4, 8])):
    points, _ = sweep.prepare_points(base, {"devices": [1, 2]}, None, scaling)
    assert [cfg.batch_size for _, cfg in points] == batches
  (unit,) = sweep.plan([({"devices": 2}, Config(devices=2))], {10_000: None}, ["jax-scratch"])
  (cell,) = unit.cells  # the point's rows are data parallel; their records keep the row's own name
  assert [r.name for r in cell.rows] == ["jax-scratch-dp2"] and cell.key(cell.rows[0]) == "jax-scratch"
  done = [{"status": "ok", "point": {"devices": d}, "impls": {"a": {"steady_tokens_per_s": r}}}
          for d, r in ((1, 100.0), (2, 80.0))]
  assert sweep.efficiency(done, {"devices": [1, 2]}) == [{"point": {"devices": 2}, "vs_one_device": {"a": 0.8}}]


@pytest.mark.parametrize("args, match", [
    (["--devices", "3"], "--batch-size 4 does not split evenly over 3 --devices"),
    (["--devices", str(threads.cores() + 2), "--batch-size", str(4 * (threads.cores() + 2))],
     "needs a core per device"),
    (["--processes", "2"], "give --devices N --processes N"),
    (["--devices", "2", "--processes", "1"], "--processes 0 or equal to --devices"),
    (["--devices", "2", "--impls", "torch-reference"], "torch-reference does not run data parallel"),
    (["--devices", "2", "--impls", "torch-compile"], "torch-compile does not run data parallel"),
    (["--coordinator", "h:1"], "--coordinator and --process-id go together"),
    (["--devices", "2", "--processes", "2", "--coordinator", "nohostport", "--process-id", "0"], "HOST:PORT"),
    (["--devices", "2", "--processes", "2", "--coordinator", "localhost:9", "--process-id", "2"], "0..1"),
    (["--devices", "2", "--coordinator", "localhost:9", "--process-id", "0"], "--devices N --processes N"),
    (["--ablation", "--devices", "2"], "on one device"),
    (["--scaling", "weak"], "applies to a devices sweep"),
    (["--impls", "torch-scratch-dp2"], "give torch-scratch with --devices 2"),
    (["--devices", "2", "--processes", "2", "--coordinator", "localhost:70000", "--process-id", "0"], "1..65535"),
])
def test_bad_data_parallel_input_is_one_line_before_training(args, match, capsys):
  with pytest.raises(SystemExit) as e:
    compare.main([*TINY, *args])
  err = capsys.readouterr().err.strip()
  assert e.value.code == 2 and match in err and len(err.splitlines()) == 1, err


def test_a_coordinator_port_in_use_is_refused_before_training(capsys):
  with socket.socket() as s:
    s.bind(("", 0))
    s.listen()
    port = s.getsockname()[1]
    with pytest.raises(SystemExit):
      compare.main([*TINY, "--devices", "2", "--processes", "2", "--coordinator", f"localhost:{port}",
                    "--process-id", "0", "--impls", "jax-scratch"])
  err = capsys.readouterr().err.strip()
  assert f"port {port} is in use" in err and len(err.splitlines()) == 1


# --- the same function as one device -------------------------------------------------------
def _ddp_group_of_one(monkeypatch):
  """(torch-scratch, its DDP twin as the one rank of a group of one in this process), float64."""
  from torch_impl import distributed as torch_dp
  monkeypatch.setenv("MASTER_ADDR", distributed.HOST)
  monkeypatch.setenv("MASTER_PORT", str(distributed.free_port()))
  for k, v in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0")):
    monkeypatch.setenv(k, v)
  config = Config(batch_size=4, num_steps=5, num_hiddens=8, num_epochs=2, vocab_size=28, precision="float64")
  dp = registry.build(rows.IMPLS["torch-scratch"], config, "cpu", cls="torch_impl.distributed:ROW")
  assert isinstance(dp, torch_dp.DDPImpl) and dp.name == "torch-scratch-dp1"
  return registry.make_impl("torch-scratch", config), dp


def test_ddp_as_a_group_of_one_equals_one_device_in_float64(monkeypatch):
  """The fast suite's DDP: one rank of a group of one, in this process (two processes, and
  JAX's Mesh and jax.distributed, are the slow suite's)."""
  one, dp = _ddp_group_of_one(monkeypatch)
  try:
    gaps = _same_function(one, dp)
    assert max(gaps.values()) < F64, gaps
    assert dp.reduction(_batches())["ms_per_step"] > 0  # gloo's all-reduce, seen by torch.profiler
  finally:
    dp.close()


@pytest.mark.slow
@pytest.mark.parametrize("name, processes, loop", [
    ("torch-scratch", 0, ""), ("jax-scratch", 0, ""), ("torch-cudnn", 0, ""), ("flax-gru", 0, ""),
    ("flax-gru", 2, ""), ("nnx-gru", 0, ""),
    ("jax-scratch", 2, ""), ("jax-scratch", 0, "step"), ("flax-gru", 2, "step")])
def test_data_parallel_equals_one_device_built_in_and_jax_distributed(name, processes, loop):
  impls = _build([name, f"{name}-dp2"], precision="float64", processes=processes, jax_loop=loop)
  gaps = _same_function(impls[name], impls[f"{name}-dp2"])
  assert max(gaps.values()) < F64, gaps
  impls[f"{name}-dp2"].release()


@pytest.mark.slow
@pytest.mark.parametrize("torch_name, jax_name", [("torch-scratch", "jax-scratch"), ("torch-cudnn", "flax-gru")])
def test_the_cross_framework_data_parallel_pair_agrees_in_float64(torch_name, jax_name):
  impls = _build([f"{torch_name}-dp2", f"{jax_name}-dp2"], precision="float64")
  a, b = impls[f"{torch_name}-dp2"], impls[f"{jax_name}-dp2"]
  b.set_params(a.get_params())
  gaps = _same_function(a, b)
  assert max(gaps.values()) < F64, gaps
  for impl in impls.values():
    impl.release()


def test_the_check_catches_a_twin_that_does_not_reduce(monkeypatch):
  """Not vacuous: a DDP rank whose losses are summed over the ranks instead of averaged
  (here a group of one, its loss doubled) is caught at once, far above round-off."""
  from torch_impl import distributed as torch_dp
  monkeypatch.setattr(torch_dp.DDPImpl, "_mean", lambda self, t: 2 * t.detach())
  one, dp = _ddp_group_of_one(monkeypatch)
  try:
    gaps = _same_function(one, dp)
  finally:
    dp.close()
  assert gaps["loss"] == pytest.approx(1.0) and gaps["epochs"] > 1.0 and gaps["grads"] < F64, gaps


# --- faults ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_killed_worker_fails_its_row_only_and_leaves_no_process():
  built = runner.build([rows.Row("torch-scratch"), rows.Row("torch-scratch", devices=2)], _config())
  impls, records = built.impls, built.records
  dp = impls["torch-scratch-dp2"]
  batches = _batches()
  assert all(training.train_epoch(impls[n], batches, records[n]) for n in impls)
  pids = dp.group.pids()
  os.kill(pids[1], signal.SIGKILL)
  start = time.monotonic()
  assert not training.train_epoch(dp, batches, records["torch-scratch-dp2"])
  assert time.monotonic() - start < 30  # noticed at once, not after the engine's 300 s
  error = records["torch-scratch-dp2"].error
  assert "torch-scratch-dp2: rank 1 killed by SIGKILL" in error, error
  assert records["torch-scratch-dp2"].status == "failed" and len(records["torch-scratch-dp2"].perplexity) == 1
  assert training.train_epoch(impls["torch-scratch"], batches, records["torch-scratch"])  # the others go on
  assert gone(pids), [psutil.Process(p).status() for p in pids if psutil.pid_exists(p)]
  with pytest.raises(workers.WorkerFailed, match="stopped after an earlier failure"):
    dp.train_epoch(batches)


@pytest.mark.slow
def test_a_hung_worker_fails_its_row_within_the_worker_timeout():
  """A rank that stops answering (SIGSTOP: alive, silent) sends no heartbeat: it is declared
  hung after --worker-timeout seconds of silence (its peer, waiting in the all-reduce, would
  time out there too); the row fails with that line, and the group, the stopped rank
  included, is killed."""
  (dp,) = _build(["torch-scratch-dp2"], worker_timeout=5).values()
  batches = _batches()
  dp.train_epoch(batches)
  pids = dp.group.pids()
  os.kill(pids[1], signal.SIGSTOP)
  start = time.monotonic()
  with pytest.raises(workers.WorkerFailed, match=r"torch-scratch-dp2: rank 1 sent nothing for 5 s \(hung") as e:
    dp.train_epoch(batches)
  assert 4 < time.monotonic() - start < 30, e.value
  assert gone(pids)


def test_an_exception_in_a_worker_is_one_line_naming_row_and_rank():
  """The fast suite's worker processes: a JAX Mesh twin of two devices, started, asked, failed."""
  (dp,) = _build(["jax-scratch-dp2"]).values()
  assert dp.parallel["devices"] == 2 and dp.parallel["processes"] == 1 and dp.launch_seconds > 0
  pids = dp.group.pids()
  with pytest.raises(workers.WorkerFailed, match=r"jax-scratch-dp2: rank 0: ValueError: .*W_hq"):
    dp.set_params({**dp.get_params(), "W_hq": np.zeros((3, 3), np.float32)})
  assert gone(pids)


@pytest.mark.slow
def test_killing_the_harness_leaves_no_worker_behind(tmp_path):
  proc = subprocess.Popen([sys.executable, "compare.py", *TINY, "--epochs", "500", "--devices", "2",
                           "--impls", "torch-scratch", "--bench"], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  for line in proc.stdout:  # the workers are up once training starts
    if "implementations x" in line:
      break
  children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
  assert len(children) >= 2
  proc.kill()
  proc.wait()
  assert gone(children, within=15)


# --- launched runs: torchrun and the JAX coordinator, as two processes on one machine ---------
def _two_processes(command, tmp_path) -> list:
  env = {**os.environ, "PYTHONPATH": str(ROOT)}
  procs = [subprocess.Popen(command(rank), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True) for rank in (0, 1)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outs)
  results = json.loads((tmp_path / "r0" / "results.json").read_text())
  assert not (tmp_path / "r1").exists()  # rank 0 writes the report
  return results


@pytest.mark.slow
def test_jax_over_two_processes_with_the_coordinator(tmp_path, corpus_vocab):
  port = distributed.free_port()
  results = _two_processes(lambda r: [sys.executable, "compare.py", *TINY, "--epochs", "2", "--threads", "1",
                                      "--devices", "2", "--processes", "2", "--coordinator", f"localhost:{port}",
                                      "--process-id", str(r), "--impls", "jax-scratch,flax-gru",
                                      "--out", str(tmp_path / f"r{r}"), "--strict"], tmp_path)
  assert results["launched"] == {"framework": "jax", "rank": 0, "world": 2}
  assert results["impls"]["flax-gru-dp2"]["parallel"]["processes"] == 2
  dp = [c for c in results["parity"] if c["group"] == "data-parallel"]
  assert all(c["passed"] is not False for c in dp)
  assert {(c["impl"], c["check"]) for c in dp} >= {("jax-scratch-dp2", "grads_rel"), ("flax-gru-dp2", "probe_update_rel")}


@pytest.mark.slow
def test_torch_over_two_nodes_with_torchrun(tmp_path, corpus_vocab):
  port = distributed.free_port()
  results = _two_processes(lambda r: [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
                                      "--nproc-per-node", "1", "--node-rank", str(r), "--master-addr", "127.0.0.1",
                                      "--master-port", str(port), "compare.py", *TINY, "--epochs", "2",
                                      "--threads", "1", "--devices", "2", "--impls", "torch-scratch,torch-cudnn",
                                      "--out", str(tmp_path / f"r{r}"), "--strict"], tmp_path)
  assert results["launched"] == {"framework": "torch", "rank": 0, "world": 2}
  assert results["impls"]["torch-cudnn-dp2"]["parallel"]["backend"] == "gloo"
  dp = [c for c in results["parity"] if c["group"] == "data-parallel"]
  assert all(c["passed"] is not False for c in dp)
  assert {(c["impl"], c["check"]) for c in dp} >= {("torch-scratch-dp2", "grads_rel"), ("torch-cudnn-dp2", "ppl_first10_rel")}


# --- end to end on one machine -----------------------------------------------------------------
@pytest.mark.slow
def test_compare_with_two_devices_judges_and_reports_the_twins(tmp_path, corpus_vocab):
  out = tmp_path / "dp"
  assert compare.main([*TINY, "--epochs", "3", "--devices", "2", "--impls", "torch-scratch,torch-cudnn,jax-scratch,"
                       "flax-gru", "--out", str(out), "--strict"]) == 0
  results = json.loads((out / "results.json").read_text())
  dp = [n for n in results["impls"] if n.endswith("-dp2")]
  assert len(dp) == 4 and all(results["impls"][n]["vs_one_device"] > 0 for n in dp)
  assert all(results["impls"][n]["launch_seconds"] > 0 for n in dp)
  assert results["impls"]["torch-scratch-dp2"]["reduction"]["ms_per_step"] > 0
  assert results["impls"]["jax-scratch-dp2"]["reduction"]["ms_per_step"] > 0  # XLA:CPU's all-reduce thunks
  checks = {(c["group"], c["check"]) for c in results["parity"]}
  assert {("data-parallel", "grads_rel"), ("scratch-dp2", "ppl_first10_rel"), ("builtin-dp2", "probe_update_rel")} <= checks
  assert "## Data parallel" in (out / "report.md").read_text()
