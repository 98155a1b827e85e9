"""The CPU's theoretical peak and NumPy's measured one: two of a report's three ceilings
(shared/bounds.py measures the frameworks' peaks and the per-shape bounds; standard library
and NumPy only).

Theoretical: FLOPs per cycle per core (vector width x FMA pipes x 2, by microarchitecture)
x the cores the run uses x the clock the OS reports. Under a hypervisor the reported clock is
the nominal one and the boost clock is hidden (KVM shows no cpufreq), so the figure can be
exceeded: where the measured peak exceeds it, the report says so and gives the clock that
the measured figure implies, and the figure is no ceiling.
"""
import pathlib
import time

import numpy as np
from threadpoolctl import threadpool_limits

# (vendor, family, model range): (float32 FLOPs per cycle per core, how). FMA: 2 FLOPs per lane.
# Zen 4 runs AVX-512 on two 256-bit FMA pipes (each 512-bit op takes two halves): the same 32
# FLOPs a cycle as Zen 2 and Zen 3; Zen 1 has two 128-bit pipes.
MICROARCHITECTURES = (
    ("AuthenticAMD", 23, range(0x00, 0x30), 16, "Zen 1: two 128-bit FMA pipes"),
    ("AuthenticAMD", 23, range(0x30, 0x100), 32, "Zen 2: two 256-bit FMA pipes"),
    ("AuthenticAMD", 25, range(0x10, 0x20), 32, "Zen 4: two 256-bit FMA pipes (AVX-512 in two halves)"),
    ("AuthenticAMD", 25, range(0x60, 0x80), 32, "Zen 4: two 256-bit FMA pipes (AVX-512 in two halves)"),
    ("AuthenticAMD", 25, range(0xa0, 0xb0), 32, "Zen 4: two 256-bit FMA pipes (AVX-512 in two halves)"),
    ("AuthenticAMD", 25, range(0x00, 0x100), 32, "Zen 3: two 256-bit FMA pipes"),
    ("AuthenticAMD", 26, range(0x00, 0x100), 64, "Zen 5: two 512-bit FMA pipes"),
)


def per_cycle(cpu: dict) -> tuple:
  """(float32 FLOPs per cycle per core, bf16 FLOPs per cycle per core, how) of a
  shared.machine.describe() dict. Intel and unknown CPUs: from the widest vector unit, two
  FMA pipes (server Xeons from Skylake-SP on; some smaller parts have one); bf16 x2 with
  AVX512-BF16 (two bf16 products per float32 lane), AMX's 1024 bf16 multiply-adds a cycle."""
  isa, vendor = cpu.get("isa") or [], cpu.get("vendor")
  family, model = int(cpu.get("family") or 0), int(cpu.get("model") or 0)
  known = [(f, how) for v, fam, models, f, how in MICROARCHITECTURES
           if v == vendor and fam == family and model in models]
  if known:
    fp32, how = known[0]
  else:
    width = 512 if "avx512f" in isa else 256 if "avx2" in isa else 128
    fp32, how = width // 32 * 2 * 2, f"two {width}-bit FMA pipes assumed (not in the table)"
  if "amx_bf16" in isa:
    return fp32, 2048, how + "; bf16 on AMX: 1024 multiply-adds a cycle"
  if "avx512_bf16" in isa:
    return fp32, 2 * fp32, how + "; bf16 dot products (AVX512-BF16): twice float32's"
  return fp32, fp32, how + "; no bf16 unit: bf16 at float32's rate at best"


def clock_mhz() -> float:
  """The clock the OS reports for the first core (/proc/cpuinfo), None where it reports none."""
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("cpu MHz"):
        return float(line.split(":")[1])
  except (OSError, ValueError, IndexError):
    pass
  return None


def theoretical(cpu: dict, threads: int) -> dict:
  """{"float32", "bf16": GFLOP/s at the reported clock on `threads` cores, "flops_per_cycle":
  (float32, bf16), "clock_mhz", "cores", "how"}; the GFLOP/s are None without a clock."""
  fp32, bf16, how = per_cycle(cpu)
  mhz = clock_mhz()
  peak = (lambda f: f * threads * mhz / 1e3) if mhz else (lambda f: None)
  return {"float32": peak(fp32), "bf16": peak(bf16), "flops_per_cycle": [fp32, bf16], "clock_mhz": mhz,
          "cores": threads, "how": how}


def implied_mhz(gflops: float, flops_per_cycle: int, cores: int) -> float:
  """The clock at least that `gflops` on `cores` cores at `flops_per_cycle` needs."""
  return gflops * 1e3 / (flops_per_cycle * cores)


def numpy_product(n: int, min_seconds: float, threads: int) -> float:
  """Seconds of one (n, n) @ (n, n) float32 product in NumPy's BLAS on `threads` threads
  (threadpoolctl: the BLAS sized its pool when NumPy was first imported, before the run set
  its threads, and would otherwise use every core): one warm-up, then products until
  `min_seconds` passed."""
  a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
  with threadpool_limits(limits=threads, user_api="blas"):
    a @ a
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds or not done:
      a @ a
      done += 1
  return elapsed / done
