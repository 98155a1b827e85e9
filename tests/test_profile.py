"""The profile that says what bounds a row (bench/profile_rows.py, shared/profile.py, and each
framework's profiler reader): its arithmetic, and a tiny run of both frameworks on the CPU."""
import importlib.util
import pathlib

import pytest

from shared import profile as S

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_summary_counts_events_and_orders_names_by_time():
  s = S.summary("ops", [("gemm", None, 3.0), ("tanh", None, 1.0), ("gemm", None, 2.0), ("copy", None, 0.5)])
  assert (s["events"], s["seconds"], s["event_seconds"]) == (4, 6.5, 6.5)
  assert s["top"] == [("gemm", 5.0, 2), ("tanh", 1.0, 1), ("copy", 0.5, 1)]


def test_busy_time_counts_overlapping_kernels_once():
  # a copy on a second stream overlaps a gemm: busy 0-4 and 5-6, 5 s; the kernels sum to 7
  s = S.summary("kernels", [("gemm", 0.0, 3.0), ("copy", 1.0, 1.5), ("tanh", 2.5, 1.5), ("gemm", 5.0, 1.0)])
  assert (s["seconds"], s["event_seconds"]) == (5.0, 7.0)


@pytest.mark.parametrize("device, seconds, verdict", [
    (True, 0.3, "host-bound: the device idles 90% of an epoch"),  # busy 0.1 s of a 1 s epoch
    (True, 2.4, "device-bound: gemm takes 67% of device time"),  # busy 0.8 s
    (False, 1.5, "no device: ops for 50% of an epoch (timed under the profiler), the rest Python"),
    (False, None, "no events traced"),
    (True, 0.0, "no events traced")])
def test_the_verdict_reads_the_busy_fraction(device, seconds, verdict):
  events = None if seconds is None else 12 if seconds else 0
  prof = {"what": "x", "device": device, "events": events, "seconds": seconds, "event_seconds": seconds,
          "top": [("gemm", 2 * seconds / 3, 8), ("tanh", seconds / 3, 4)] if seconds else []}
  f = S.figures("row", "how", wall=1.0, steps=2, tokens=1000, prof=prof, times=3)  # busy = seconds / 3
  assert f["verdict"] == verdict and f["tokens_per_s"] == 1000
  assert f["events_per_step"] == {None: None, 0.0: 0.0}.get(seconds, 2.0)  # 12 events, 3 epochs of 2 steps


def test_a_tiny_profile_of_both_frameworks_on_the_cpu(tmp_path, corpus_vocab):
  spec = importlib.util.spec_from_file_location("bench_profile", ROOT / "bench" / "profile_rows.py")
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  out = tmp_path / "profile.md"
  assert bench.main(["--impls", "torch-scratch,jax-scratch", "--device", "cpu", "--epochs", "2",
                     "--num-hiddens", "8", "--max-tokens", "2000", "--out", str(out)]) == 0
  md = out.read_text()
  torch_row = next(line for line in md.splitlines() if line.startswith("| torch-scratch |"))
  jax_row = next(line for line in md.splitlines() if line.startswith("| jax-scratch |"))
  assert "no device:" in torch_row and "no events traced" in jax_row
  # aten ops per step on a CPU: forward and backward of 5 time steps and the update are many
  assert float(torch_row.split("|")[6]) > 50
  assert "`aten::" in md and "sync-free eager loop" in md
