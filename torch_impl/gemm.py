"""PyTorch's matmul bound: the training step's own matrix-product shapes timed with
torch.mm, eager, one Python dispatch per product (shared/limits.py asks by name; the mirror
of jax_impl/gemm.py)."""
import contextlib

import torch

from shared import limits
from shared.config import resolve_device

DTYPES = {"float32": torch.float32, "tf32": torch.float32, "float64": torch.float64, "bf16": torch.bfloat16}
WARMUP = 3  # calls before timing: the BLAS's first calls pay its set-up


@contextlib.contextmanager
def precision_scope(precision: str):
  """Float32 products at full precision unless `precision` is "tf32" (TF32 on a GPU); the
  process-wide switches are put back on leaving. float32_matmul_precision also governs
  oneDNN's reduced-precision float32 products on the CPU, so it is set either way."""
  tf32 = precision == "tf32"
  saved = torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()
  torch.backends.cuda.matmul.allow_tf32 = tf32
  torch.set_float32_matmul_precision("high" if tf32 else "highest")
  try:
    yield
  finally:
    torch.backends.cuda.matmul.allow_tf32 = saved[0]
    torch.set_float32_matmul_precision(saved[1])


def _device(device: str) -> torch.device:
  """"cpu" or "gpu" (shared.config.resolve_device's words) -> the torch device."""
  return torch.device("cuda" if resolve_device(device, torch.cuda.is_available(), "torch") == "gpu" else "cpu")


def _threads(dev: torch.device) -> str:
  """The threads a CPU's products run on, in words (the GPU's name on a GPU)."""
  return f"intra-op pool of {torch.get_num_threads()} threads" if dev.type == "cpu" else torch.cuda.get_device_name(dev)


def _sync(out: list) -> None:
  """Waits until `out`, the products of one `_products` call, are computed (a CPU has
  computed them before returning)."""
  if out[-1].is_cuda:
    torch.cuda.synchronize(out[-1].device)


def _products(a: list, b: list, layout: str = "NN") -> list:
  """R stacked operand pairs (shared/limits.py's operands for `layout`; one right operand: a
  weight every pair shares) -> R (m, n) results: one torch.mm per pair, each a Python dispatch
  and a result allocation, as eager code runs its products; a transposed operand is a view
  (.t()), as autograd passes W^T and H^T."""
  b = b * (len(a) // len(b))  # a shared weight: the same tensor for every pair
  return [torch.mm(x.t() if layout == "TN" else x, y.t() if layout == "NT" else y) for x, y in zip(a, b)]


def time_product(m: int, k: int, n: int, precision: str, min_seconds: float, device: str = "cpu",
                 layout: str = "NN", weight: bool = False) -> float:
  """Seconds of one (m, k) @ (k, n) torch.mm at `precision`, its operands as `layout` holds
  them (shared/limits.py: "NT" a transposed view on the right, "TN" on the left, as autograd
  passes W^T and H^T): one `_products` call runs the product on each of limits.pairs
  distinct operand pairs (`weight`: one right operand for all); calls repeat until
  `min_seconds` passed (after a warm-up), the time per product is the elapsed / products."""
  dev, dtype = _device(device), DTYPES[precision]
  count = limits.pairs(m, k, n, torch.empty((), dtype=dtype).element_size())
  a, b = limits.operands(m, k, n, "float64" if precision == "float64" else "float32", count, layout, weight)
  a = [x.to(dev, dtype) for x in torch.from_numpy(a).unbind()]
  b = [x.to(dev, dtype) for x in torch.from_numpy(b).unbind()]
  with precision_scope(precision):
    return limits.seconds_per_product(lambda: _sync(_products(a, b, layout)), count, min_seconds, WARMUP)


def describe(precision: str, device: str = "cpu") -> str:
  """What runs the products at `precision` on `device`, in words, for the report."""
  dev = _device(device)
  return (f"torch.mm, {str(DTYPES[precision]).removeprefix('torch.')} operands and result ({precision}) on {dev.type}, "
          f"{_threads(dev)}; eager: one Python dispatch and one result allocation "
          f"per product, as PyTorch's eager rows run theirs; operands laid out as the backward pass holds "
          f"them (transposed views for W^T and H^T), up to "
          f"{limits.PAIRS} distinct pairs cycled per shape, a weight operand one matrix for all, as the step reads it")

