"""The design card's import rules. shared/ imports neither framework, each side never imports
the other, and the project's modules import only downward through LAYERS, with no cycle: read
from the source (every import statement, at any depth) and checked in fresh interpreters."""
import ast
import fnmatch
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Lowest first. A module may import modules of its own layer or of any layer below it, never
# above; within a layer the imports must still form no cycle. The framework packages sit just
# above what they build on (protocol, params, config, ...) and below the registry, which alone
# imports them, by name.
LAYERS = (
    ("foundation", ("shared", "shared.config", "shared.params", "shared.limits", "shared.machine", "shared.lock", "shared.interrupt", "shared.memory", "shared.data", "shared.stats", "shared.threads",
                    "shared.timing", "shared.precision", "shared.environment", "shared.records", "shared.levers",
                    "shared.text", "shared.profile", "shared.ceilings")),
    ("rows and the protocol", ("shared.rows", "shared.protocol", "shared.metrics", "shared.probes",
                               "shared.checkpoint", "shared.distributed", "shared.workers")),
    ("the frameworks", ("torch_impl*", "jax_impl*", "keras_impl*")),
    ("building and training", ("shared.registry", "shared.bounds", "shared.parity", "shared.training")),
    ("the one runner", ("shared.runner",)),
    ("kinds of run", ("shared.kinds*",)),
    ("reports", ("shared.reports*",)),
    ("the command line", ("compare_flags", "compare")),
)
PACKAGES = ("shared", "torch_impl", "jax_impl", "keras_impl", "compare", "compare_flags")


def _modules() -> dict:
  """{module: path} of every module of the project (bench/ and tests/ are its users)."""
  paths = [ROOT / "compare.py", ROOT / "compare_flags.py"]
  paths += [p for d in PACKAGES[:4] for p in sorted((ROOT / d).rglob("*.py"))]
  out = {}
  for p in paths:
    name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
    out[name.removesuffix(".__init__")] = p
  return out


def imports(path: pathlib.Path, known: dict) -> set:
  """The project's modules that `path` imports, anywhere in it (a function-level import counts)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names]
    found |= {n for n in names if n in known}
  return found


def layer(module: str) -> int:
  for k, (_, patterns) in enumerate(LAYERS):
    if any(fnmatch.fnmatchcase(module, p) for p in patterns):
      return k
  raise AssertionError(f"{module} is in no layer of tests/test_layout.py: add it to LAYERS")


def graph() -> dict:
  known = _modules()
  return {m: imports(p, known) - {m} for m, p in known.items()}


def cycle(edges: dict):
  """One import cycle as a list of modules, or None."""
  state, stack = {}, []

  def visit(m):
    state[m] = "open"
    stack.append(m)
    for d in sorted(edges[m]):
      if state.get(d) == "open":
        return stack[stack.index(d):] + [d]
      if d not in state and (found := visit(d)):
        return found
    stack.pop()
    state[m] = "done"
    return None
  return next((c for m in sorted(edges) if m not in state and (c := visit(m))), None)


def upward(edges: dict) -> list:
  """(importer, imported) where the imported module sits in a higher layer."""
  return sorted((m, d) for m, ds in edges.items() for d in ds if layer(d) > layer(m))


def test_imports_only_go_downward_and_form_no_cycle():
  edges = graph()
  assert {layer(m) for m in edges}  # every module has its layer
  assert upward(edges) == []
  assert cycle(edges) is None


def test_the_check_catches_a_cycle_and_an_upward_import():
  """Not vacuous: the import runner -> registry -> runner, and metrics -> reports."""
  edges = graph()
  looped = {**edges, "shared.registry": edges["shared.registry"] | {"shared.runner"}}
  assert cycle(looped) is not None and ("shared.registry", "shared.runner") in upward(looped)
  assert ("shared.metrics", "shared.reports.report") in upward({**edges, "shared.metrics": {"shared.reports.report"}})
  assert imports(ROOT / "shared" / "runner.py", _modules()) >= {"shared.registry", "shared.training"}


def test_only_the_registry_imports_a_framework_package_by_name():
  """importlib, and a static import of a framework package, appear in shared/ nowhere else."""
  offenders = []
  for p in sorted((ROOT / "shared").rglob("*.py")):
    text = p.read_text()
    uses = "importlib.import_module" in text or "__import__(" in text
    static = {n for n in imports(p, _modules()) if n.split(".")[0] in ("torch_impl", "jax_impl", "keras_impl")}
    if (uses and p.name != "registry.py") or static:
      offenders.append(p.relative_to(ROOT))
  assert offenders == []


def _modules_started(code: str) -> str:
  return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                        check=True).stdout.strip()


def test_shared_imports_neither_framework():
  modules = ", ".join(m for m in _modules() if m.startswith("shared."))
  assert "shared.reports.report" in modules and "shared.kinds.seeds" in modules  # the subpackages too
  code = (f"import sys, {modules}; "
          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'jax', 'flax', 'optax', 'keras')))")
  assert _modules_started(code) == "[]"


@pytest.mark.parametrize("package, forbidden", [("torch_impl", "jax"), ("jax_impl", "torch")])
def test_each_side_never_imports_the_other_framework(package, forbidden):
  modules = ", ".join(f"{package}.{p.stem}" for p in sorted((ROOT / package).glob("*.py")) if p.stem != "__init__")
  code = (f"import sys, {modules}; "
          f"print(sorted(m for m in sys.modules if m.split('.')[0] == '{forbidden}'))")
  assert _modules_started(code) == "[]"


def test_the_command_line_and_the_harness_start_no_framework_until_a_row_is_built():
  """Each framework's options, the Keras row's conversion table, threads and process start
  are read by the harness before any row is built; only building a row starts its framework."""
  code = ("import sys, compare, keras_impl.convert, keras_impl.threads, keras_impl.process, torch_impl.options, "
          "jax_impl.options, keras_impl.options; "
          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'jax', 'keras')))")
  assert _modules_started(code) == "[]"


def test_every_file_reads_in_one_sitting_and_every_function_on_one_screen():
  """The design card's limits: files under 400 lines, functions of 50 lines at most (the
  project's code: shared/, the framework packages, the command line, bench/)."""
  paths = list(_modules().values()) + sorted((ROOT / "bench").glob("*.py"))
  long_files = [(p.name, n) for p in paths if (n := p.read_text().count("\n")) > 400]
  long_functions = [(p.name, f.name, f.end_lineno - f.lineno + 1) for p in paths for f in ast.walk(ast.parse(p.read_text()))
                    if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.end_lineno - f.lineno >= 50]
  assert long_files == [] and long_functions == []
