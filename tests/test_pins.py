"""The tested versions stay pinned: every dependency the project declares (and the test
runner, and jaxlib) has one exact version in constraints.txt, which `make install` uses."""
import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pins() -> dict:
  pins = {}
  for line in (ROOT / "constraints.txt").read_text().splitlines():
    if line.strip() and not line.startswith("#"):
      name, _, version = line.partition("==")
      assert version and re.fullmatch(r"[0-9][0-9A-Za-z.]*", version), f"not an exact pin: {line!r}"
      pins[name.lower().replace("_", "-")] = version
  return pins


def test_every_declared_dependency_has_an_exact_pin():
  project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
  extras = project["optional-dependencies"]
  declared = project["dependencies"] + extras["test"] + extras["keras"] + ["jaxlib"]
  names = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower() for d in declared}
  assert names <= set(_pins()), sorted(names - set(_pins()))


def test_the_makefile_installs_with_the_constraints():
  makefile = (ROOT / "Makefile").read_text()
  assert "CONSTRAINTS ?= constraints.txt" in makefile and "$(PIN)" in makefile.split("-e \".[test,keras]\"")[0]
