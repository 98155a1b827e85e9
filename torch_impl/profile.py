"""What the device does during a PyTorch row's epochs, from torch.profiler (mirrors
jax_impl/profile.py; bench/profile_rows.py reports both)."""
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from shared.profile import summary


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
              if e.device_type == DeviceType.CPU and e.name.startswith("aten::")]
    what = "aten ops dispatched, self CPU time (no device on a CPU)"
  return {**summary(what, events), "device": cuda}

