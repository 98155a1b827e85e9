"""The design card's import rules: shared/ imports neither framework, and each side
never imports the other. Checked in fresh interpreters."""
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _modules(code: str) -> str:
  return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                        check=True).stdout.strip()


def test_shared_imports_neither_framework():
  modules = ", ".join(".".join(p.relative_to(ROOT).with_suffix("").parts)
                      for p in sorted((ROOT / "shared").rglob("*.py")) if p.stem != "__init__")
  assert "shared.reports.report" in modules  # the subpackage is walked too
  code = (f"import sys, {modules}; "
          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'jax', 'flax', 'optax', 'keras')))")
  assert _modules(code) == "[]"


@pytest.mark.parametrize("package, forbidden", [("torch_impl", "jax"), ("jax_impl", "torch")])
def test_each_side_never_imports_the_other_framework(package, forbidden):
  modules = ", ".join(f"{package}.{p.stem}" for p in sorted((ROOT / package).glob("*.py")) if p.stem != "__init__")
  code = (f"import sys, {modules}; "
          f"print(sorted(m for m in sys.modules if m.split('.')[0] == '{forbidden}'))")
  assert _modules(code) == "[]"


def test_the_keras_side_starts_no_framework_until_a_backend_process_asks():
  """keras_impl's conversion table and threads are read by the harness and the tests; only
  model.py and train.py, imported in a Keras row's own process, start Keras and its backend."""
  code = ("import sys, keras_impl.convert, keras_impl.threads, shared.keras_rows; "
          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'jax', 'keras')))")
  assert _modules(code) == "[]"
