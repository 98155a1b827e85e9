"""How far each row is from the machine's limit (standard library and NumPy only).

A row's training throughput in FLOPs (tokens/s x the model's matrix-product FLOPs per
token) is set beside the throughput of the training step's OWN matrix-product shapes,
measured in the same run, in the row's framework, at the row's precision (shared/bounds.py
measures them with torch_impl/gemm.py and jax_impl/gemm.py, which time this module's shapes).
Their ratio is the row's share of its framework's matmul bound; against the fastest
framework's figure for the same shapes and precision it is the row's share of the machine's
bound.

The bound is a bound on the products alone: the elementwise gate arithmetic, the loss,
clipping and the update cost time but no counted FLOPs (shared/params.py counts matrix
products only), so a share of 1 is out of reach, and how far below it a row sits is its
overhead (dispatch, small kernels, memory traffic) measured in the products' own units.
"""
import math
import time

import numpy as np

from shared import params as P

FRAMEWORKS = ("torch", "jax")
# The arithmetic of a product: full float32 (the parity setting, "highest"); float32 with
# TF32 products on a GPU (the same as float32 on a CPU); float64 (the ground truth); bf16:
# bfloat16 operands and a bfloat16 result, as mixed precision (torch.autocast, or bf16
# arrays in JAX) runs its products.
PRECISIONS = ("float32", "tf32", "float64", "bf16")
# How a row takes the recurrent weights' gradients (shared/rows.py, Impl.weight_gradients):
# T small products inside the backward recurrence (autodiff's way), or one after it.
WEIGHT_GRADIENTS = ("per step", "batched")
# Distinct operand pairs per shape: a few, so that no product reads the activations the
# previous one left in cache (the step's products read fresh ones), capped by the bytes they
# take so that a large sweep size cannot exhaust memory. A weight operand is one matrix for
# all of them (`weight`), as the step reads the same W at every time step: cycling 8 distinct
# (256 x 768) weights, 6 MiB, past a 2 MiB L2, measured XLA's hidden forward product 25-35%
# below the rows' own (the 2-core Zen 4, one thread: 53-64 GFLOP/s against 74-82 with one W).
PAIRS = 8
MAX_OPERAND_BYTES = 64 * 2**20
SEED = 0  # the operands' values: numpy.random.default_rng(SEED), one generator per shape


def gemm_shapes(batch_size: int, num_steps: int, num_hiddens: int, vocab_size: int, batched: bool = False) -> tuple:
  """The matrix products of ONE training step (a minibatch of B rows x T steps), forward
  and backward, by the equations of shared/params.py, as (role, m, k, n, count, layout):
  `count` products of an (m, k) by a (k, n) matrix, 2 m k n FLOPs each, with the operands
  as the backward pass holds them (layout "NN"; "NT": the right operand a transposed view,
  W^T; "TN": the left one, H^T). Kernels differ by layout: measured on the AVX2 EPYC, torch's
  bf16 (32 x 256) by (256 x 768) product ran at 1.2 GFLOP/s as NN, 6.0 as NT, 11.4 as TN.

  Per time step (count T): the hidden side H (B, h) @ [W_hz W_hr W_hh] (h, 3h), the three
  gates' hidden blocks counted as one (h, 3h) product (the scratch model runs it as an
  (h, 2h) and an (h, h) product, since the candidate's input R * H waits for R, and d2l's
  reference as three (h, h) ones: the same FLOPs), and its backward: dH = dG (B, 3h) @
  W^T (3h, h) and dW = H^T (h, B) @ dG (B, 3h). The output layer runs once per step on all
  T B rows (count 1): (T B, h) @ (h, V) forward, dH = dO (T B, V) @ W_hq^T (V, h) and
  dW_hq = H^T (h, T B) @ dO (T B, V) backward. The input projections x_t W_x* are row
  gathers of one-hot inputs (and their gradients scatter-adds): no FLOPs, no product here.
  6 shapes; step_flops of them is matmul_flops_per_token(V, h) x B x T. `batched`: the
  hidden weights' gradient taken once after the backward recurrence, H^T (h, T B) @ dG (T B,
  3h) (count 1), as the tuned rows take it (WEIGHT_GRADIENTS); the same FLOPs.
  """
  B, T, h, V = batch_size, num_steps, num_hiddens, vocab_size
  weights = ("hidden backward (weights)", h, T * B, 3 * h, 1, "TN") if batched else (
      "hidden backward (weights)", h, B, 3 * h, T, "TN")
  return (("hidden forward", B, h, 3 * h, T, "NN"),
          ("hidden backward (state)", B, 3 * h, h, T, "NT"),
          weights,
          ("output forward", T * B, h, V, 1, "NN"),
          ("output backward (state)", T * B, V, h, 1, "NT"),
          ("output backward (weights)", h, T * B, V, 1, "TN"))


def step_flops(shapes) -> int:
  """FLOPs of one step's products: the sum over (role, m, k, n, count) of 2 m k n count."""
  return sum(2 * m * k * n * count for _, m, k, n, count, *_ in shapes)


def flops_per_token(config) -> int:
  """The model's training FLOPs per token (matrix products, forward and backward) of a
  shared.config.Config: shared.params.matmul_flops_per_token of its vocabulary and width."""
  return P.matmul_flops_per_token(config.vocab_size, config.num_hiddens)


def pairs(m: int, k: int, n: int, itemsize: int) -> int:
  """How many distinct (m, k), (k, n) operand pairs a shape is timed over: PAIRS, fewer
  (at least 1) where PAIRS pairs and their (m, n) results would pass MAX_OPERAND_BYTES."""
  per_pair = (m * k + k * n + m * n) * itemsize
  return max(1, min(PAIRS, MAX_OPERAND_BYTES // per_pair))


def operands(m: int, k: int, n: int, dtype: str, count: int, layout: str = "NN", weight: bool = False) -> tuple:
  """`count` stacked operand pairs of one shape as `layout` stores them: a (count, m, k)
  ((count, k, m) for "TN", whose product reads its transpose) and a (count, k, n) ((count,
  n, k) for "NT") NumPy array of small normals (standard deviation 0.1, so that bf16
  products stay finite), from numpy.random.default_rng(SEED): float64 for dtype "float64",
  else float32 (the framework casts to bfloat16 itself). With `weight` the right operand is
  a weight, one (1, k, n) matrix that every pair shares. Both frameworks multiply the same values."""
  rng = np.random.default_rng(SEED)
  np_dtype = np.float64 if dtype == "float64" else np.float32
  right = 1 if weight else count
  a = (rng.standard_normal((count, k, m) if layout == "TN" else (count, m, k)) * 0.1).astype(np_dtype)
  b = (rng.standard_normal((right, n, k) if layout == "NT" else (right, k, n)) * 0.1).astype(np_dtype)
  return a, b


def weight_operand(role: str) -> bool:
  """Whether a gemm_shapes role's right operand is the model's weight (W, W^T: the forward
  and the state gradients' products), not activations (the weight gradients' H^T @ dG)."""
  return "(weights)" not in role


# Timed rounds per shape: its figure is the fastest round's, so that a moment of load (another
# process, a worker going to sleep) lowers no ceiling; each round runs min_seconds / ROUNDS.
ROUNDS = 5


def seconds_per_product(call, products: int, min_seconds: float, warmup: int) -> float:
  """Seconds per product of `call()`, which runs `products` products and waits until they
  are computed: `warmup` calls first (compiling, a library's set-up), then ROUNDS rounds of
  calls, each until min_seconds / ROUNDS have passed; the fastest round's elapsed time over
  its products (the best the product reached: a ceiling)."""
  for _ in range(warmup):
    call()
  best = float("inf")
  for _ in range(ROUNDS):
    done, start = 0, time.perf_counter()
    while True:
      call()
      done += products
      elapsed = time.perf_counter() - start
      if elapsed >= min_seconds / ROUNDS:
        break
    best = min(best, elapsed / done)
  return best


def measure_shapes(gemm, shapes, precision: str, min_seconds: float, device: str = "cpu") -> dict:
  """{"seconds": one step's products (sum over shapes of count x seconds per product),
  "shapes": [{"role", "m", "k", "n", "count", "layout", "gflops", "seconds": one product}],
  "what"}: each (role, m, k, n, count, layout) of `shapes` timed by `gemm`, a framework's
  gemm module (its time_product and describe), at `precision` on `device`."""
  rows = []
  for role, m, k, n, count, layout in shapes:
    s = gemm.time_product(m, k, n, precision, min_seconds, device, layout, weight_operand(role))
    rows.append({"role": role, "m": m, "k": k, "n": n, "count": count, "layout": layout,
                 "gflops": 2 * m * k * n / s / 1e9, "seconds": s})
  return {"seconds": sum(r["count"] * r["seconds"] for r in rows), "shapes": rows,
          "what": gemm.describe(precision, device)}


def _finite(g) -> bool:
  return g is not None and math.isfinite(g) and g > 0


def kind(m: dict) -> str:
  """A measurement's kind: "shapes" (a per-shape bound; reports before issue 31 have only
  these, without the key), "peak" or "theoretical"."""
  return m.get("kind", "shapes")


def bounds(measured: list, weights: str = "per step") -> dict:
  """{precision: {"machine_gflops", "fastest": framework}} of `measure` results: per
  precision, the highest gflops any framework reached on the step's shapes with the weights'
  gradients taken `weights` (None and non-finite figures are left out; a precision with none
  is absent)."""
  out = {}
  for m in measured:
    if kind(m) != "shapes" or m.get("weights", "per step") != weights or not _finite(m.get("gflops")):
      continue
    best = out.get(m["precision"])
    if best is None or m["gflops"] > best["machine_gflops"]:
      out[m["precision"]] = {"machine_gflops": m["gflops"], "fastest": m["framework"]}
  return out


def best(measured: list, which: str, precision: str):
  """The highest finite gflops of `which` kind ("peak", "theoretical") at `precision`, or None."""
  found = [m["gflops"] for m in measured if kind(m) == which and m["precision"] == precision and _finite(m["gflops"])]
  return max(found, default=None)


# A row's shares, one per ceiling: (its key in figures, the ceiling's name in a report).
CEILINGS = (("share_of_framework_bound", "its framework's per-shape bound"),
            ("share_of_machine_bound", "the machine's per-shape bound"),
            ("share_of_peak", "the measured peak"), ("share_of_theoretical", "the theoretical peak"))


def figures(tokens_per_s, flops_per_token, measured: list, engine: str, precision: str,
            weights: str = "per step", conditions: dict = None) -> dict:
  """A row's distance from the ceilings `measured` (shared/bounds.py): {"flops_per_token",
  "achieved_gflops": tokens/s x FLOPs per token / 1e9, "gemm_gflops": the per-shape bound of
  its engine at its precision and weight gradients, "machine_gflops": the best engine's,
  "peak_gflops", "theoretical_gflops", a share of each (CEILINGS), and "above": the ceilings
  it exceeds (a share over 1: that figure is no ceiling for it)}. None where an input is.
  `conditions`: those its process ran its products under (shared/registry.py, conditions)."""
  tokens_per_s, flops_per_token = tokens_per_s or None, flops_per_token or None
  own = [m["gflops"] for m in measured if kind(m) == "shapes" and m["framework"] == engine and m["precision"] == precision
         and m.get("weights", "per step") == weights and m.get("conditions", {}) == (conditions or {})
         and _finite(m.get("gflops"))]
  ceilings = {"gemm_gflops": own[0] if own else None,
              "machine_gflops": (bounds(measured, weights).get(precision) or {}).get("machine_gflops"),
              "peak_gflops": best(measured, "peak", precision), "theoretical_gflops": best(measured, "theoretical", precision)}
  achieved = tokens_per_s * flops_per_token / 1e9 if tokens_per_s and flops_per_token else None
  shares = {share: achieved / c if achieved and c else None
            for (share, _), c in zip(CEILINGS, ceilings.values())}
  return {"flops_per_token": flops_per_token, "achieved_gflops": achieved, **ceilings, **shares,
          "above": [name for share, name in CEILINGS if (shares[share] or 0) > 1]}
