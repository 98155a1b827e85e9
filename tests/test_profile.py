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
    (False, 1.5, "no device: ops for 50% of an epoch (timed under the profiler), the rest between them"),
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
  assert "no device:" in torch_row and "no device:" in jax_row  # XLA:CPU's thunks, read from the host plane
  # aten ops per step on a CPU: forward and backward of 5 time steps and the update are many
  assert float(torch_row.split("|")[6]) > 50
  assert "`aten::" in md and "sync-free eager loop" in md and "XLA:CPU thunks" in md and "`while" not in md


# --- where an epoch's time goes: the products' share from each framework's profiler ------------
def test_the_split_counts_overlapping_products_once_and_no_product_gives_no_share():
  two_threads = S.split("x", [(0.0, 2.0), (1.0, 2.0), (5.0, 1.0)], epoch_seconds=8.0)  # 0-3 and 5-6
  assert (two_threads["products_seconds"], two_threads["products_share"], two_threads["events"]) == (4.0, 0.5, 3)
  assert S.split("x", [(None, 1.0), (None, 3.0)], 8.0)["products_share"] == 0.5  # one thread: summed
  assert S.split("x", [], 8.0)["products_share"] is None  # a profiler that saw none is not "0%"


def _scan(with_dot: bool):
  """A jitted 5-step recurrence whose step multiplies matrices (or only adds), its reduce a fusion."""
  import jax
  import jax.numpy as jnp

  def f(h, w):
    def body(h, x):
      h = jnp.tanh((h @ w if with_dot else h * w[0]) + x)
      return h, h.sum()
    return jax.lax.scan(body, h, jnp.ones((5, 4, 8)))
  args = jnp.ones((4, 8)), jnp.full((8, 8), 0.1)
  compiled = jax.jit(f).lower(*args).compile()
  return compiled, lambda: jax.block_until_ready(compiled(*args))


def test_xla_products_are_read_from_the_compiled_program():
  from jax_impl import profile
  compiled, run = _scan(with_dot=True)
  ops = profile.product_ops(compiled.as_text())
  assert ops and all("reduce" not in o and "tanh" not in o for o in ops)  # the dot, not the sum's fusion
  split = profile.time_split(run, [compiled.as_text()])
  assert split["events"] == 5 and 0 < split["products_share"] < 1  # one product thunk a step, timed
  # can fail: a program without a product has none to find, and the same trace gives no share
  plain, run_plain = _scan(with_dot=False)
  assert profile.product_ops(plain.as_text()) == set()
  assert profile.time_split(run_plain, [plain.as_text()])["products_share"] is None
  # another program of the same name than the one that ran: refused, not misread
  wrong = profile.time_split(run, [plain.as_text()])
  assert wrong["products_share"] is None and "another program than the one read" in wrong["what"]


def test_nested_fusions_holding_a_dot_count_as_products():
  from jax_impl import profile
  hlo = "\n".join([
      "%inner (p: f32[2,2]) -> f32[2,2] {", "  ROOT %d = f32[2,2]{1,0} dot(%p, %p), lhs_contracting_dims={1}", "}",
      "%outer (q: f32[2,2]) -> f32[2,2] {", "  ROOT %f = f32[2,2]{1,0} fusion(%q), kind=kLoop, calls=%inner", "}",
      "%adds (r: f32[2,2]) -> f32[2,2] {", "  ROOT %a = f32[2,2]{1,0} add(%r, %r)", "}",
      "ENTRY %main (x: f32[2,2]) -> f32[2,2] {", "  %big = f32[2,2]{1,0} fusion(%x), kind=kCustom, calls=%outer",
      "  ROOT %small = f32[2,2]{1,0} fusion(%big), kind=kLoop, calls=%adds", "}"])
  assert profile.product_ops(hlo) == {"d", "f", "big"}


def test_torch_products_are_aten_matrix_ops_timed_by_the_profiler():
  import torch
  from torch_impl import profile
  w, h = torch.randn(64, 64), torch.randn(16, 64)
  split = profile.time_split(lambda: [torch.tanh(h @ w) for _ in range(20)])
  assert split["events"] == 20 and 0 < split["products_share"] < 1
  assert profile.time_split(lambda: [torch.tanh(h) for _ in range(20)])["products_share"] is None


def test_a_rows_time_split_puts_its_weights_back_and_a_failure_is_one_line():
  from shared import protocol, training

  class Impl:
    parallel, fatal = None, False
    weights_kept = protocol.GRUImpl.weights_kept  # the protocol's: what every row has

    def __init__(self, fail=False):
      self.params, self.fail = {"W": 1.0}, fail

    def get_params(self):
      return dict(self.params)

    def set_params(self, params):
      self.params = params

    def time_split(self, batches):
      self.params["W"] = 2.0  # an epoch trains
      if self.fail:
        raise RuntimeError("no trace\nmore")
      return {"products_share": 0.5}

  ok, bad = Impl(), Impl(fail=True)
  assert training.time_split(ok, None) == {"products_share": 0.5} and ok.params == {"W": 1.0}
  assert training.time_split(bad, None)["what"] == "profile failed: RuntimeError: no trace" and bad.params == {"W": 1.0}
  ok.parallel = {"devices": 2}
  assert training.time_split(ok, None) is None  # a data-parallel row: its reduction is profiled instead


@pytest.mark.parametrize("loop", ["epoch", "step"])
def test_a_jax_rows_split_reads_the_programs_its_loop_runs(loop, tiny_config):
  """The whole epoch compiled, or a jitted step per minibatch: either way the products are
  found in the programs that ran, and the row's weights come back."""
  import numpy as np
  from shared import registry, training
  impl = registry.make_impl("jax-scratch", tiny_config.set(jax_loop=loop))
  rng = np.random.default_rng(0)
  epoch = tuple(rng.integers(0, 28, (4, 3, 5)).astype(np.int32) for _ in range(2))  # (N, B, T) each
  impl.prepare(epoch)
  before = impl.get_params()
  split = training.time_split(impl, epoch)
  assert 0 < split["products_share"] < 1 and split["events"] > 0, split
  assert all(np.array_equal(before[k], v) for k, v in impl.get_params().items())
