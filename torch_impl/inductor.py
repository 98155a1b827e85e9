"""torch.compile as torch-compile runs it: the mode per device, one graph per step where this
torch can trace autograd into it, and Inductor's compiler and cache checked and set before
the first compile."""
import atexit
import contextlib
import os
import shutil
import tempfile

import torch

# The mode when --compile-mode is not given, per device. CPU: default, measured on the 2-core
# EPYC (reports/2026-11-29-cpu-torch-compile-modes.txt; README "NNX compiled two ways, and
# torch.compile's modes"): max-autotune bought nothing there, and reduce-overhead means CUDA
# graphs, nothing more on a CPU. GPU: reduce-overhead replays the compiled step as a CUDA
# graph, the lever the eager rows pull by hand; bench/gpu_run.sh measures all three modes.
COMPILE_MODES = {"cpu": "default", "cuda": "reduce-overhead"}
MODE_REASONS = {"cpu": "the fastest of the three on the 2-core CPU",
                "cuda": "CUDA graphs, as the eager rows; the GPU modes are not yet measured"}
# torch >= 2.11 can trace torch.autograd.grad into the graph: forward, backward, clipping
# and SGD become ONE graph, and fullgraph=True makes any break an error instead of a
# silent fall back to eager. Older torch breaks the graph at autograd.grad (two graphs).
ONE_GRAPH = hasattr(torch._dynamo.config, "trace_autograd_ops")
# Every (shape, dtype, lr, theta) compiles anew; a sweep or a test run meets many, and past
# the limit a fullgraph compile raises. The setting's name changed in torch 2.6.
LIMIT = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
DYNAMO_CONFIG = {LIMIT: 64, **({"trace_autograd_ops": True} if ONE_GRAPH else {})}


@contextlib.contextmanager
def patched(wrapper: str):
  """Dynamo's settings (DYNAMO_CONFIG) and Inductor's wrapper ("python" or "cpp": the code
  that calls the kernels) while inside: read when a graph compiles. The C++ wrapper calls its
  kernels past the dispatcher, where torch.profiler sees none: its kernel profile wraps each
  call in a RecordFunction (a flag test when no profiler runs; no change measured, 200 calls of
  a 35-step loop, 8.2-8.9 ms a call either way), so that the time split reads its products."""
  import torch._inductor.config as config
  cpp = wrapper == "cpp"
  with torch._dynamo.config.patch(**DYNAMO_CONFIG), config.patch(cpp_wrapper=cpp, **{"cpp.enable_kernel_profile": cpp}):
    yield


def inductor_compiler_problem():
  """None when Inductor finds a working C++ compiler ($CXX, else g++: its CPU kernels, and
  the launchers of its Triton ones), else a one-line message naming the fix. Inductor
  itself would fail only at the first compiled call."""
  from torch._inductor import cpp_builder, exc
  try:
    cpp_builder.get_cpp_compiler()
  except exc.InvalidCxxCompiler:
    return ("torch-compile needs a C++ compiler for Inductor and found none ($CXX, else g++); "
            "install one (e.g. apt install g++) or point CXX at it, or leave torch-compile out of --impls")
  return None


CACHE_PREFIX = os.path.join(tempfile.gettempdir(), "gru-parity-inductor-")


def fresh_inductor_cache() -> str:
  """Points this process's Inductor (and Triton) caches at a new folder, removed at exit,
  unless the user chose one: the first compile of each shape in the process is then a
  cold compile, as JAX's is; a later one may reuse kernels the process already built, as
  a user's would. Returns what the report says about the cache."""
  from torch._inductor.runtime.cache_dir_utils import default_cache_dir
  current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")  # importing dynamo sets it to the default
  if current and not current.startswith(CACHE_PREFIX) and os.path.abspath(current) != default_cache_dir():
    return f"Inductor cache {current} (the user's, possibly warm)"
  if not (current or "").startswith(CACHE_PREFIX):
    folder = tempfile.mkdtemp(prefix=os.path.basename(CACHE_PREFIX))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    os.environ["TRITON_CACHE_DIR"] = os.path.join(folder, "triton")
  return "Inductor cache new for this process"
