"""The matmul bounds of a run, measured after its rows trained: the training step's own
products timed in each framework that ran a row (its gemm module, which shared/registry.py
imports), at each precision, and each row's distance from them (shared/limits.py says what
the figures mean)."""
import json
import os
import pathlib
import subprocess
import sys

from shared import ceilings, limits, machine, registry, threads

ROOT = pathlib.Path(__file__).resolve().parents[1]


def measure(framework: str, precision: str, config, min_seconds: float = 0.3, device: str = "cpu",
            weights: str = "per step") -> dict:
  """Times one training step's products (gemm_shapes of `config`, a shared.config.Config, with
  the recurrent weights' gradients taken `weights`: limits.WEIGHT_GRADIENTS) in `framework`
  ("torch" or "jax", its `{framework}_impl.gemm` imported by name) at `precision` (one of
  limits.PRECISIONS) on `device` ("cpu" or "gpu"), each shape for at least `min_seconds`.
  Returns {"kind": "shapes", "framework", "precision", "weights", "gflops": step_flops / the
  seconds of one step's products, "seconds": those seconds, "shapes": [{"role", "m", "k",
  "n", "count", "gflops", "seconds"} per shape, "seconds" of one product], "what": what ran}.

  A data-parallel row's device multiplies its share of the rows: pass a config whose
  batch_size is the per-device batch for its bound.
  """
  if framework not in limits.FRAMEWORKS:
    raise ValueError(f"framework must be one of {limits.FRAMEWORKS}, got {framework!r}")
  if precision not in limits.PRECISIONS:
    raise ValueError(f"precision must be one of {limits.PRECISIONS}, got {precision!r}")
  shapes = limits.gemm_shapes(config.batch_size, config.num_steps, config.num_hiddens, config.vocab_size,
                              batched=weights == "batched")
  gemm = registry.module(framework, "gemm")
  out = limits.measure_shapes(gemm, shapes, precision, min_seconds, device)
  seconds = out["seconds"]
  return {"kind": "shapes", "framework": framework, "precision": precision, "weights": weights,
          "gflops": limits.step_flops(shapes) / seconds / 1e9 if seconds > 0 else None,
          "seconds": seconds, "shapes": out["shapes"], "what": out["what"]}


# Seconds each shape is timed for in a report (the tests set less: their sizes are tiny).
MIN_SECONDS = 0.3


def _failed(entry: dict, e: Exception) -> dict:
  """A measurement that failed, with its reason: the trained figures stand."""
  return {**entry, "gflops": None, "what": f"not measured: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}


def attach(records: dict, config, rows: dict, min_seconds: float = None) -> list:
  """Measures the ceilings of `records` (Records of one configuration, after training, so
  that no timing shares the machine with an epoch; `rows`: each record's shared.rows.Impl):
  the per-shape bound of every (engine, precision, device, weight gradients) among them, and
  on a CPU the measured and theoretical peaks (`peaks`); gives each record its `limits`
  (limits.figures: its share of each). Returns the measurements."""
  min_seconds = MIN_SECONDS if min_seconds is None else min_seconds
  keys = {n: (i.runs_on, records[n].precision, "cpu" if records[n].device == "cpu" else "gpu", i.weight_gradients,
              tuple(sorted(registry.conditions(i, config).items())))
          for n, i in rows.items() if records[n].steady_tokens_per_s}
  measured = []
  for framework, precision, device, weights, conditions in sorted(set(keys.values())):
    entry = {"kind": "shapes", "framework": framework, "precision": precision, "device": device, "weights": weights,
             **({"conditions": dict(conditions)} if conditions else {})}
    try:
      measured.append({**measure_where(dict(conditions), framework, precision, config, min_seconds, device, weights),
                       **entry})
    except Exception as e:  # noqa: BLE001 - a bound that cannot be measured is reported as such
      measured.append(_failed(entry, e))
  if keys and all(k[2] == "cpu" for k in keys.values()):
    measured += peaks(sorted({k[0] for k in keys.values()}), sorted({k[1] for k in keys.values()}), config, min_seconds)
  for n, r in records.items():
    r.limits = limits.figures(r.steady_tokens_per_s, limits.flops_per_token(config), measured, rows[n].runs_on,
                              r.precision, rows[n].weight_gradients, dict(keys[n][4]) if n in keys else {})
  return measured


# A measurement in a process of the row's own conditions: it prints measure's result as JSON.
_IN_PROCESS = ("import json, sys, types; from shared import threads; a = json.load(sys.stdin); "
               "threads.configure(a['threads']); from shared import bounds; "
               "print(json.dumps(bounds.measure(*a['args'], types.SimpleNamespace(**a['config']), *a['rest'])))")


def measure_where(conditions: dict, framework, precision, config, min_seconds, device, weights) -> dict:
  """`measure`, here, or with `conditions` (environment variables: registry.conditions) in a
  fresh process that has them, as the rows it bounds train (it ends before this returns)."""
  if not conditions:
    return measure(framework, precision, config, min_seconds, device, weights)
  sizes = {k: getattr(config, k) for k in ("batch_size", "num_steps", "num_hiddens", "vocab_size")}
  request = {"threads": threads.resolve(config.threads), "args": [framework, precision], "config": sizes,
             "rest": [min_seconds, device, weights]}
  out = subprocess.run([sys.executable, "-c", _IN_PROCESS], input=json.dumps(request), capture_output=True,
                       text=True, timeout=600, cwd=ROOT, env={**os.environ, **conditions}, check=False)
  if out.returncode:
    raise RuntimeError(f"the measuring process failed: {out.stderr.strip().splitlines()[-1:] or out.returncode}")
  return json.loads(out.stdout.strip().splitlines()[-1])


# The side of the square products whose best is the measured peak: large enough for every
# BLAS to reach its full speed (2 x 2048^3 = 17 GFLOP, a fraction of a second here).
PEAK = 2048


def peaks(frameworks: list, precisions: list, config, min_seconds: float) -> list:
  """The CPU's measured peaks (kind "peak"): a (PEAK, PEAK) @ (PEAK, PEAK) product in each of
  `frameworks` and in NumPy's BLAS, in float32 and, where `precisions` has bf16, bf16 (NumPy
  has none), at the run's threads; and its theoretical peak (kind
  "theoretical", shared/ceilings.py) on those threads."""
  n, out = PEAK, []
  for framework in frameworks:
    for precision in ["float32"] + (["bf16"] if "bf16" in precisions else []):
      entry = {"kind": "peak", "framework": framework, "precision": precision, "device": "cpu"}
      try:
        gemm = registry.module(framework, "gemm")
        seconds = gemm.time_product(n, n, n, precision, min_seconds, "cpu", "NN")
        out.append({**entry, "gflops": 2 * n ** 3 / seconds / 1e9,
                    "what": f"({n}, {n}) @ ({n}, {n}); " + gemm.describe(precision, "cpu").split(";")[0]})
      except Exception as e:  # noqa: BLE001 - reported as not measured
        out.append(_failed(entry, e))
  seconds = ceilings.numpy_product(n, min_seconds, threads.resolve(config.threads))
  out.append({"kind": "peak", "framework": "numpy", "precision": "float32", "device": "cpu",
              "gflops": 2 * n ** 3 / seconds / 1e9, "what": f"({n}, {n}) @ ({n}, {n}) numpy.matmul, NumPy's BLAS on {threads.resolve(config.threads)} threads"})
  cpu = machine.describe()
  theory = ceilings.theoretical(cpu, threads.resolve(config.threads))
  for precision in ("float32", "bf16"):
    out.append({"kind": "theoretical", "framework": "cpu", "precision": precision, "device": "cpu",
                "gflops": theory[precision], "clock_mhz": theory["clock_mhz"], "cores": theory["cores"],
                "flops_per_cycle": theory["flops_per_cycle"][precision == "bf16"],
                "what": f"{theory['how']}; x {theory['cores']} cores x {theory['clock_mhz'] or 0:.0f} MHz, the clock the "
                        "OS reports (a hypervisor hides the boost clock)"})
  return out


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
