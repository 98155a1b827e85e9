"""What a PyTorch row's epochs spend their time on, from torch.profiler (mirrors
jax_impl/profile.py): the device's events for bench/profile_rows.py, the matrix products'
share of an epoch for every report (`time_split`)."""
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from shared.profile import split, summary, timed

# The aten ops that multiply matrices (their own kernels: aten::matmul and aten::linear only
# dispatch to these, and their self time is the dispatch), as the dispatcher records them and as
# Inductor's C++ wrapper names its calls of them under its kernel profile (torch_impl/inductor.py).
OPS = ("mm", "addmm", "bmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "_addmm_activation")
PRODUCTS = {f"aten::{op}" for op in OPS} | {f"aoti_torch_cpu_{op}_out" for op in OPS}


def device_profile(run, times: int, on_gpu: bool) -> dict:
  """Calls `run()` `times` times under torch.profiler. On CUDA: every kernel, copy and
  memset the device ran (CUPTI), their count and total seconds, and the names that took
  longest. On a CPU there is no device: the aten ops dispatched, by self CPU time (their
  count is what a GPU would launch, near enough, without CUDA graphs).

  Returns shared.profile.summary's dict and "device", over all calls.
  """
  cuda = on_gpu and torch.cuda.is_available()
  activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
  with profile(activities=activities) as prof:
    for _ in range(times):
      run()
  if cuda:  # user annotations (record_function ranges) are device-typed too, and overlap kernels
    events = [(e.name, e.time_range.start / 1e6, e.time_range.elapsed_us() / 1e6) for e in prof.events()
              if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False)]
    what = "CUDA kernels, copies and memsets (CUPTI)"
  else:
    events = [(e.name, None, e.self_cpu_time_total / 1e6) for e in prof.events()
              if e.device_type == DeviceType.CPU and e.name.startswith(("aten::", "aoti_torch_", "graph_"))]
    what = "aten ops dispatched (and Inductor's C++ wrapper's calls), self CPU time (no device on a CPU)"
  return {**summary(what, events), "device": cuda}


def time_split(run) -> dict:
  """Where an epoch's time goes: `run()` (one epoch) under torch.profiler, the time inside the
  aten ops that multiply matrices (PRODUCTS; an op inside another counts once) against the
  epoch's wall seconds; on a CPU only. shared.profile.split's dict.

  Read from the profiler's raw results: prof.events() builds a Python object per event, 6 s
  for the 93,000 events of 3,000 tiny steps here, the raw results 0.14 s."""
  with profile(activities=[ProfilerActivity.CPU]) as prof:
    seconds = timed(run)
  products = [(e.start_ns() / 1e9, e.duration_ns() / 1e9) for e in prof.profiler.kineto_results.events()
              if e.device_type() == DeviceType.CPU and e.name() in PRODUCTS]
  what = ("torch.profiler: time inside aten's matrix-product ops" if products else
          "torch.profiler recorded no matrix-product op")
  return split(what, products, seconds)
