"""The theoretical and measured peaks (shared/ceilings.py), a bound measured under a row's own
conditions (shared/bounds.py, measure_where), and what a report says when a figure is exceeded."""
import pytest

from shared import bounds, ceilings
from shared.config import Config
from shared.reports import limits as limits_md

ZEN4 = {"vendor": "AuthenticAMD", "family": "25", "model": "17", "isa": ["avx2", "avx512f", "avx512_bf16"]}


@pytest.mark.parametrize("cpu, fp32, bf16", [
    (ZEN4, 32, 64),                                                                   # AVX-512 in two halves
    ({"vendor": "AuthenticAMD", "family": "23", "model": "49", "isa": ["avx2"]}, 32, 32),  # Zen 2
    ({"vendor": "AuthenticAMD", "family": "23", "model": "1", "isa": ["avx2"]}, 16, 16),   # Zen 1
    ({"vendor": "GenuineIntel", "family": "6", "model": "143", "isa": ["avx512f", "amx_bf16"]}, 64, 2048),
    ({"vendor": "GenuineIntel", "family": "6", "model": "85", "isa": ["avx2"]}, 32, 32)])
def test_flops_per_cycle_follow_the_microarchitecture(cpu, fp32, bf16):
  assert ceilings.per_cycle(cpu)[:2] == (fp32, bf16)


def test_the_theoretical_peak_is_cycles_times_cores_times_the_clock(monkeypatch):
  monkeypatch.setattr(ceilings, "clock_mhz", lambda: 2500.0)
  t = ceilings.theoretical(ZEN4, 2)
  assert t["float32"] == pytest.approx(32 * 2 * 2.5) and t["bf16"] == pytest.approx(64 * 2 * 2.5)
  monkeypatch.setattr(ceilings, "clock_mhz", lambda: None)
  assert ceilings.theoretical(ZEN4, 2)["float32"] is None
  assert ceilings.implied_mhz(160.0, 32, 2) == pytest.approx(2500.0)


def test_numpy_times_a_product_on_the_runs_threads(monkeypatch):
  """NumPy's BLAS sized its pool at import, before a run sets its threads: the measured peak
  limits it to the run's, or a one-thread run's NumPy peak would use every core."""
  import contextlib
  import threadpoolctl
  seen = []

  @contextlib.contextmanager
  def limits(**kwargs):
    with threadpoolctl.threadpool_limits(**kwargs):
      seen.append({p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"})
      yield
  monkeypatch.setattr(ceilings, "threadpool_limits", limits)
  assert 0 < ceilings.numpy_product(32, 0.01, 1) < 1
  assert seen == [{1}]


def test_a_theoretical_peak_below_the_measured_one_is_said_to_be_no_ceiling():
  block = [{"kind": "theoretical", "framework": "cpu", "precision": "float32", "gflops": 100.0, "clock_mhz": 2500.0,
            "cores": 2, "flops_per_cycle": 20, "what": "t"},
           {"kind": "peak", "framework": "numpy", "precision": "float32", "gflops": 120.0, "what": "p"}]
  note = limits_md._exceeded(block)
  assert "no ceiling here" in note and "3,000 MHz or more" in note
  assert limits_md._exceeded(block[:1] + [{**block[1], "gflops": 90.0}]) == ""


def test_a_bound_under_a_rows_conditions_is_measured_in_a_process_that_has_them(monkeypatch):
  """A fresh process measures the row's sizes and weight gradients; one that fails raises
  with its last line."""
  small = Config(batch_size=2, num_steps=2, num_hiddens=8, vocab_size=5, threads=1)
  m = bounds.measure_where({"GOMP_SPINCOUNT": "300000"}, "torch", "float32", small, 0.01, "cpu", "batched")
  assert m["gflops"] > 0 and m["weights"] == "batched" and m["shapes"][2]["m"] == 8 and m["shapes"][2]["count"] == 1
  monkeypatch.setattr(bounds, "_IN_PROCESS", "raise SystemExit('no such measurement')")
  with pytest.raises(RuntimeError, match="no such measurement"):
    bounds.measure_where({"X": "1"}, "torch", "float32", small, 0.01, "cpu", "per step")
