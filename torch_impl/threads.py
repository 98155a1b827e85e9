"""PyTorch's share of the CPU (shared/threads.py sets it for the process) and what its
matrix products run on, for the report's environment block."""
import os
import re

import torch

from shared import threads


def apply(n: int) -> int:
  """Gives torch's intra-op pool n threads (0: every core); returns the count it runs with."""
  torch.set_num_threads(threads.resolve(n))
  return torch.get_num_threads()


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
          "matmul": f"mm/addmm through {blas.group(1) if blas else 'its BLAS'} (float32 sgemm, float64 dgemm)"}
