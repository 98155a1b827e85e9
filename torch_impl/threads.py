"""PyTorch's share of the CPU (shared/threads.py sets it for the process) and what its
matrix products run on, for the report's environment block."""
import contextlib
import os
import re

import torch

from shared import threads


def apply(n: int) -> int:
  """Gives torch's intra-op pool n threads (0: every core); returns the count it runs with."""
  torch.set_num_threads(threads.resolve(n))
  return torch.get_num_threads()


@contextlib.contextmanager
def limited(n: int):
  """torch's intra-op pool at n threads while inside (0: as it is), put back after."""
  before = torch.get_num_threads()
  if n:
    torch.set_num_threads(n)
  try:
    yield
  finally:
    if n:
      torch.set_num_threads(before)


def describe() -> dict:
  """Threads, parallel backend, matrix libraries and CPU kernels of this torch build."""
  info, build = torch.__config__.parallel_info(), torch.__config__.show()
  backend = re.search(r"ATen parallel backend: (.+)", info)
  blas = re.search(r"BLAS_INFO=(\w+)", build)
  onednn = re.search(r"MKL-DNN (v[\d.]+)", build)
  return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
          "parallel_backend": backend.group(1).strip() if backend else "unknown",
          "blas": blas.group(1) if blas else "unknown",
          "onednn": f"oneDNN {onednn.group(1)}" if torch.backends.mkldnn.is_available() and onednn else "no",
          "cpu_capability": torch.backends.cpu.get_cpu_capability(),
          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY") or "OpenMP's default (active)",
          "matmul": f"mm/addmm through {blas.group(1) if blas else 'its BLAS'} (float32 sgemm, float64 dgemm); "
                    f"bf16 through {bf16_matmul()}"}


def bf16_matmul() -> str:
  """What torch's bf16 products run on here: oneDNN's bf16 kernels where this CPU has bf16
  units (AVX512-BF16 or AMX, as torch's own check says), else ATen's reference kernels,
  which on the 2-core AVX2 EPYC ran 40x slower than float32's sgemm (reports/*-bf16-*)."""
  if torch.ops.mkldnn._is_mkldnn_bf16_supported():
    return "oneDNN (the CPU has bf16 units)"
  return "ATen's reference kernels (no bf16 units for oneDNN: no AVX512-BF16, no AMX)"


def gpu_available() -> bool:
  """Whether torch sees a GPU (its rows train there unless --device cpu)."""
  return torch.cuda.is_available()
