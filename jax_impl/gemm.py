"""JAX's matmul bound: the training step's own matrix-product shapes timed as jnp.matmul
inside one jitted lax.scan per shape (shared/limits.py asks by name; the mirror of
torch_impl/gemm.py)."""
import contextlib
import functools

import jax
import jax.numpy as jnp

from jax_impl import threads
from shared import limits
from shared.config import resolve_device

DTYPES = {"float32": jnp.float32, "tf32": jnp.float32, "float64": jnp.float64, "bf16": jnp.bfloat16}
# jax.default_matmul_precision per precision: float32 products at full precision unless
# TF32 is asked for; bf16 operands take XLA's default (their products are bf16 anyway).
MATMUL_PRECISION = {"float32": "highest", "tf32": "tensorfloat32", "float64": "highest", "bf16": "default"}
WARMUP = 1  # calls before timing: the first compiles the program and pays the set-up


@contextlib.contextmanager
def precision_scope(precision: str):
  """The precision's matmul precision, with 64-bit types switched on for float64 and
  explicitly off otherwise (jit caches key on both; nothing leaks out of the scope)."""
  with jax.enable_x64(precision == "float64"), jax.default_matmul_precision(MATMUL_PRECISION[precision]):
    yield


def _device(device: str) -> jax.Device:
  """"cpu" or "gpu" (shared.config.resolve_device's words) -> this process's JAX device."""
  try:
    gpus = jax.local_devices(backend="gpu")
  except RuntimeError:  # no GPU backend
    gpus = []
  if resolve_device(device, bool(gpus), "JAX") == "gpu":
    return gpus[0]
  return jax.local_devices(backend="cpu")[0]


def _threads(dev: jax.Device) -> str:
  """The threads a CPU's products run on, in words (the GPU's kind on a GPU)."""
  return f"XLA:CPU pool of {threads.pool()} threads" if dev.platform == "cpu" else dev.device_kind


def _sync(out: jax.Array) -> None:
  """Waits until `out`, the last call's products, is computed (dispatch is asynchronous)."""
  out.block_until_ready()


def _products(a: jax.Array, b: jax.Array, layout: str = "NN") -> jax.Array:
  """R stacked operand pairs (shared/limits.py's operands for `layout`) -> the sum of their R
  (m, n) products: one product per scan step, each added into the carry, as the weight
  gradient accumulates over time steps, so that XLA can neither fold repeats nor skip a
  result, and writes no stack of results the step does not write; a transposed operand is
  the dot's own dimension numbers, as XLA's autodiff emits them (no copy). bf16 operands
  are summed in float32 (preferred_element_type), as the rows' products are
  (jax_impl/precision.py); other dtypes in their own. One right operand (a weight every pair
  shares) is read inside the loop as the step reads W: not sliced from a stack."""
  summed, weight = jnp.promote_types(a.dtype, jnp.float32), b.shape[0] == 1 < a.shape[0]

  def step(carry, ab):
    x, y = (ab, b[0]) if weight else ab
    x, y = (x.T if layout == "TN" else x), (y.T if layout == "NT" else y)
    return carry + jnp.matmul(x, y, preferred_element_type=summed), None
  m, n = (a.shape[2] if layout == "TN" else a.shape[1]), (b.shape[1] if layout == "NT" else b.shape[2])
  return jax.lax.scan(step, jnp.zeros((m, n), summed), a if weight else (a, b))[0]


@functools.lru_cache(maxsize=None)
def _jitted(layout: str):
  """One jitted `_products` per layout for the process: jit's cache then compiles each
  shape and dtype once, however many runs (seeds, sweep points, cells) measure it."""
  return jax.jit(functools.partial(_products, layout=layout))


def time_product(m: int, k: int, n: int, precision: str, min_seconds: float, device: str = "cpu",
                 layout: str = "NN", weight: bool = False) -> float:
  """Seconds of one (m, k) @ (k, n) jnp.matmul at `precision`, its operands as `layout`
  holds them (shared/limits.py): one jitted call runs the product on each of limits.pairs
  distinct operand pairs (`weight`: one right operand for all); calls repeat until
  `min_seconds` passed (after a compiling warm-up), the time per product is the elapsed / products."""
  dev, dtype = _device(device), DTYPES[precision]
  count = limits.pairs(m, k, n, jnp.dtype(dtype).itemsize)
  a, b = limits.operands(m, k, n, "float64" if precision == "float64" else "float32", count, layout, weight)
  with precision_scope(precision):
    a, b = jax.device_put(a, dev).astype(dtype), jax.device_put(b, dev).astype(dtype)
    run = _jitted(layout)
    return limits.seconds_per_product(lambda: _sync(run(a, b)), count, min_seconds, WARMUP)


def describe(precision: str, device: str = "cpu") -> str:
  """What runs the products at `precision` on `device`, in words, for the report."""
  dev = _device(device)
  result = "float32 sums" if precision == "bf16" else "result"
  return (f"jnp.matmul, {jnp.dtype(DTYPES[precision]).name} operands and {result} ({precision}, matmul "
          f"precision {MATMUL_PRECISION[precision]!r}) on {dev.platform}, {_threads(dev)}; one jitted "
          f"lax.scan over up to {limits.PAIRS} distinct stacked operand pairs per call: no Python dispatch "
          f"per product, as a jitted step runs its products in one program; each product added into one "
          f"carry, operands laid out as the backward pass holds them, a weight operand one matrix for all")

