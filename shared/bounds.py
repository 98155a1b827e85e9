"""The matmul bounds of a run, measured after its rows trained: the training step's own
products timed in each framework that ran a row (its gemm module, which shared/registry.py
imports), at each precision, and each row's distance from them (shared/limits.py says what
the figures mean)."""
from shared import limits, registry


def measure(framework: str, precision: str, config, min_seconds: float = 0.3, device: str = "cpu") -> dict:
  """Times one training step's products (gemm_shapes of `config`, a shared.config.Config)
  in `framework` ("torch" or "jax", its `{framework}_impl.gemm` imported by name) at
  `precision` (one of limits.PRECISIONS) on `device` ("cpu" or "gpu"), each shape for at least
  `min_seconds`. Returns {"framework", "precision", "gflops": step_flops / the seconds of
  one step's products, "seconds": those seconds, "shapes": [{"role", "m", "k", "n",
  "count", "gflops", "seconds"} per shape, "seconds" of one product], "what": what ran}.

  A data-parallel row's device multiplies its share of the rows: pass a config whose
  batch_size is the per-device batch for its bound.
  """
  if framework not in limits.FRAMEWORKS:
    raise ValueError(f"framework must be one of {limits.FRAMEWORKS}, got {framework!r}")
  if precision not in limits.PRECISIONS:
    raise ValueError(f"precision must be one of {limits.PRECISIONS}, got {precision!r}")
  shapes = limits.gemm_shapes(config.batch_size, config.num_steps, config.num_hiddens, config.vocab_size)
  gemm = registry.module(framework, "gemm")
  out = limits.measure_shapes(gemm, shapes, precision, min_seconds, device)
  seconds = out["seconds"]
  return {"framework": framework, "precision": precision,
          "gflops": limits.step_flops(shapes) / seconds / 1e9 if seconds > 0 else None,
          "seconds": seconds, "shapes": out["shapes"], "what": out["what"]}


# Seconds each shape is timed for in a report (the tests set less: their sizes are tiny).
MIN_SECONDS = 0.3


def attach(records: dict, config, engines: dict, min_seconds: float = None) -> list:
  """Measures the matmul bound of every (framework, precision) among `records` (Records of
  one configuration, after training, so that no timing shares the machine with an epoch;
  `engines`: each record's framework whose kernels ran it, by name) and gives each record its
  `limits` (limits.figures): its own framework's bound at its precision, and the machine's (the
  fastest framework's at that precision, in this run). Returns the measurements. A
  measurement that fails is recorded with its reason; the trained figures stand."""
  min_seconds = MIN_SECONDS if min_seconds is None else min_seconds
  wanted = {(engines[n], r.precision, "cpu" if r.device == "cpu" else "gpu")
            for n, r in records.items() if r.steady_tokens_per_s}
  measured = []
  for framework, precision, device in sorted(wanted):
    try:
      measured.append({**measure(framework, precision, config, min_seconds, device), "device": device})
    except Exception as e:  # noqa: BLE001 - a bound that cannot be measured is reported as such
      measured.append({"framework": framework, "precision": precision, "device": device, "gflops": None,
                       "what": f"not measured: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"})
  best = limits.bounds(measured)
  own = {(m["framework"], m["precision"]): m["gflops"] for m in measured}
  for n, r in records.items():
    machine = (best.get(r.precision) or {}).get("machine_gflops")
    r.limits = limits.figures(r.steady_tokens_per_s, limits.flops_per_token(config), own.get((engines[n], r.precision)), machine)
  return measured


# The side of the square float32 product each framework times as a run starts: large enough to
# run at the BLAS's full speed (2 x 2048^3 = 17 GFLOP, a fraction of a second here).
CALIBRATION = 2048


def calibrate(frameworks, device: str = "cpu", min_seconds: float = None) -> dict:
  """The machine's speed as the run starts, in one figure per framework that tells two machines
  apart where their names do not: {"product", "gflops": {framework: GFLOP/s of one (N, N) @
  (N, N) float32 product at this process's threads, or None with "errors"}}."""
  n, min_seconds = CALIBRATION, MIN_SECONDS if min_seconds is None else min_seconds
  out = {"product": f"({n}, {n}) @ ({n}, {n}) float32", "device": device, "gflops": {}, "errors": {}}
  for fw in frameworks:
    try:
      seconds = registry.module(fw, "gemm").time_product(n, n, n, "float32", min_seconds, device, "NN")
      out["gflops"][fw] = 2 * n ** 3 / seconds / 1e9
    except Exception as e:  # noqa: BLE001 - a calibration that fails is reported as such
      out["gflops"][fw], out["errors"][fw] = None, f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"
  return out
