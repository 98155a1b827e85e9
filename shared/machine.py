"""The machine a run ran on, as the OS describes it, so that reports from machines that differ
are never read as one: the project's 2-core VMs all call themselves "AMD EPYC" or "Intel
Xeon" and ran the same code 3-5x apart. The CPU's family, model and stepping, its cores and
threads per core, its caches, the instruction sets that decide what matrix products run on,
the hypervisor: util-linux's lscpu where it is installed, /proc/cpuinfo otherwise. A run
also times one large product per framework as it starts (shared/bounds.py, calibrate).
Standard library only.
"""
import json
import os
import pathlib
import subprocess

# The instruction-set extensions that decide what a CPU's matrix products can run on.
ISA = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
LSCPU = {"Model name:": "cpu", "Vendor ID:": "vendor", "CPU family:": "family", "Model:": "model",
         "Stepping:": "stepping", "Thread(s) per core:": "threads_per_core", "Core(s) per socket:": "cores_per_socket",
         "Socket(s):": "sockets", "Hypervisor vendor:": "hypervisor", "Virtualization type:": "virtualization",
         "L1d cache:": "L1d", "L1i cache:": "L1i", "L2 cache:": "L2", "L3 cache:": "L3", "Flags:": "flags"}


def _lscpu() -> dict:
  """lscpu's fields (LSCPU's names), {} where it cannot run."""
  try:
    out = subprocess.run(["lscpu", "-J"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {LSCPU[f["field"]]: f["data"] for f in json.loads(out)["lscpu"] if f["field"] in LSCPU}
  except (OSError, ValueError, KeyError, subprocess.SubprocessError):
    return {}


def _cpuinfo() -> dict:
  """The same fields from /proc/cpuinfo's first processor (no caches, no hypervisor vendor)."""
  try:
    first = pathlib.Path("/proc/cpuinfo").read_text().split("\n\n")[0]
  except OSError:
    return {}
  fields = {k.strip(): v for k, v in (line.split(":", 1) for line in first.splitlines() if ":" in line)}
  names = {"model name": "cpu", "vendor_id": "vendor", "cpu family": "family", "model": "model",
           "stepping": "stepping", "flags": "flags"}
  return {ours: fields[k].strip() for k, ours in names.items() if k in fields}


def describe() -> dict:
  """The CPU as the OS names it: "cpu" (its model name), vendor, family, model, stepping,
  logical and physical cores, threads per core, caches, "isa" (those of ISA it has),
  hypervisor (None on bare metal, as far as the OS can tell)."""
  info = {**_cpuinfo(), **_lscpu()}
  flags = info.pop("flags", "").split()
  per_socket, sockets = info.pop("cores_per_socket", None), info.pop("sockets", None)
  physical = int(per_socket) * int(sockets) if per_socket and sockets else None
  return {**{k: info.get(k) for k in ("cpu", "vendor", "family", "model", "stepping")},
          "logical_cores": os.cpu_count(), "physical_cores": physical,
          "threads_per_core": int(info["threads_per_core"]) if info.get("threads_per_core") else None,
          "caches": {k: info[k] for k in ("L1d", "L1i", "L2", "L3") if info.get(k)},
          "isa": [f for f in ISA if f in flags],
          "hypervisor": info.get("hypervisor") or ("unnamed" if "hypervisor" in flags else None)}


def label(m: dict) -> str:
  """One line that tells machines apart: "AMD EPYC (family 25, model 17, stepping 1; 2 cores, 1
  thread each; L2 2 MiB (2 instances), L3 32 MiB (1 instance); avx2, avx512f, avx512_bf16; KVM)"."""
  if not m:
    return "not recorded"
  cores = (f"{m['physical_cores'] or m['logical_cores']} cores"
           + (f", {m['threads_per_core']} thread{'s' * (m['threads_per_core'] != 1)} each"
              if m.get("threads_per_core") else ""))
  parts = [f"family {m['family']}, model {m['model']}, stepping {m['stepping']}", cores,
           ", ".join(f"{k} {v}" for k, v in m["caches"].items() if k in ("L2", "L3")),
           ", ".join(f for f in m["isa"] if f.startswith(("avx2", "avx512f", "avx512_bf16", "amx_bf16"))),
           m["hypervisor"] and f"hypervisor {m['hypervisor']}"]
  return f"{m['cpu']} ({'; '.join(p for p in parts if p)})"


def short(m: dict) -> str:
  """"AMD EPYC 25/17/1, avx512_bf16, KVM": the CPU's name, family/model/stepping, its widest
  matrix instructions and its hypervisor, for a table's cell."""
  if not m:
    return "not identified"
  widest = next((f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in m["isa"]), "")
  return ", ".join(p for p in (f"{m['cpu']} {m['family']}/{m['model']}/{m['stepping']}", widest, m["hypervisor"]) if p)
