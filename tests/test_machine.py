"""The machine a report names (shared/machine.py) and its calibration (shared/bounds.py): enough
to tell the project's VMs apart, from lscpu or, without it, /proc/cpuinfo."""
import subprocess

import pytest

from shared import bounds, machine

ZEN2 = {"cpu": "AMD EPYC", "vendor": "AuthenticAMD", "family": "23", "model": "49", "stepping": "0",
        "logical_cores": 2, "physical_cores": 2, "threads_per_core": 1, "caches": {"L2": "1 MiB", "L3": "16 MiB"},
        "isa": ["avx", "avx2", "fma"], "hypervisor": "KVM"}
ZEN4 = {**ZEN2, "family": "25", "model": "17", "stepping": "1", "isa": ["avx2", "fma", "avx512f", "avx512_bf16"]}


def test_two_machines_of_one_name_are_told_apart():
  assert machine.label(ZEN2) != machine.label(ZEN4) and machine.short(ZEN2) != machine.short(ZEN4)
  assert machine.short(ZEN4) == "AMD EPYC 25/17/1, avx512_bf16, KVM"
  assert "family 23, model 49, stepping 0; 2 cores, 1 thread each; L2 1 MiB, L3 16 MiB; avx2; hypervisor KVM" in (
      machine.label(ZEN2))
  assert machine.label({}) == "not recorded" and machine.short(None) == "not identified"


def test_this_machine_is_described_by_the_os():
  m = machine.describe()
  assert m["cpu"] and m["logical_cores"] >= 1 and set(m["isa"]) <= set(machine.ISA)
  assert m["family"] is not None and m["model"] is not None  # the fields that tell same-named CPUs apart


def test_without_lscpu_proc_cpuinfo_still_names_the_cpu(monkeypatch):
  def missing(*args, **kwargs):
    raise FileNotFoundError("lscpu")
  monkeypatch.setattr(subprocess, "run", missing)
  m = machine.describe()
  assert m["cpu"] and m["family"] and m["caches"] == {}  # /proc/cpuinfo names no caches


def test_the_calibration_times_one_product_per_framework_and_says_why_one_fails():
  c = bounds.calibrate(("torch", "jax", "nosuch"))
  assert c["gflops"]["torch"] > 0 and c["gflops"]["jax"] > 0 and c["gflops"]["nosuch"] is None
  assert "ModuleNotFoundError" in c["errors"]["nosuch"] and c["product"].startswith(f"({bounds.CALIBRATION}")


@pytest.mark.parametrize("key", ["family", "model", "stepping"])
def test_the_index_names_the_machine_and_its_calibration(key):
  from shared.reports import index
  results = {"device": "cpu", "environment": {"machine": ZEN4, "calibration": {"gflops": {"torch": 95.4, "jax": 123.6}}}}
  cell = index._machine(results)
  assert cell == "cpu: AMD EPYC 25/17/1, avx512_bf16, KVM; torch 95, jax 124" and str(ZEN4[key]) in cell
  assert index._machine({"device": "cpu", "environment": {"cpu": "AMD EPYC"}}) == "cpu: AMD EPYC, not identified"
