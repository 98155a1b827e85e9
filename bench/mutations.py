"""Do the report's checks catch real bugs? Each known-bad jax-scratch of tests/mutations.py
runs through compare.py --strict at the seed configuration against torch-reference, and
the unmutated code does too; then mutations of adjustable size find, per check, the
smallest one it catches. Writes a Markdown report of the measured figures.

    PYTHONPATH=. python bench/mutations.py [--epochs 10] [--out reports/DATE-cpu-mutations.md]
"""
import argparse
import contextlib
import io
import json
import pathlib
import sys
import tempfile

from shared import threads

threads.configure(threads.cores())  # before tests.mutations starts JAX: every core, compare.py's default

import compare  # noqa: E402 - after the thread settings
from shared import data  # noqa: E402
from shared.kinds import compare as comparison  # noqa: E402
from shared.reports import report  # noqa: E402
from shared.rows import Row  # noqa: E402
from shared.config import preset  # noqa: E402
from shared.text import table  # noqa: E402
from tests.mutations import FAMILIES, MUTATIONS, TUNED_CODE, none  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAIR = "torch-reference,jax-scratch"
HARNESS = "harness-compares-anchor-with-itself"
ROWS = [m for m in MUTATIONS if m != HARNESS and m not in TUNED_CODE]  # tests/test_mutations.py: the tuned rows'
NAMED = ([("none", "highest"), ("none", "float64")] + [(m, "highest") for m in ROWS] + [("clip-epsilon", "float64")]
         + [(f"reset-after-matmul+{HARNESS}", "highest")])  # a broken harness passes a broken row
SIZES = {  # family -> arithmetic -> sizes tried, largest first
    "hidden-weights-scaled": {"highest": [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7],
                              "float64": [1e-6, 1e-8, 1e-10, 1e-12, 1e-14]},
    "carry-scaled": {"highest": [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]},
    "clip-epsilon": {"float64": [1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 1e-14]},
}


def named(mutation: str, precision: str, epochs: int, folder: pathlib.Path) -> dict:
  """compare.py --strict with `mutation` (names joined by +) in force: its exit status and
  every judged check."""
  out = folder / f"{mutation}-{precision}"
  args = ["--impls", PAIR, "--epochs", str(epochs), "--device", "cpu", "--precision", precision, "--strict",
          "--out", str(out)]
  with contextlib.ExitStack() as stack:
    for name in mutation.split("+"):
      stack.enter_context(MUTATIONS[name]() if name != "none" else none())
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    code = compare.main(args)
  rows = json.loads((out / "results.json").read_text())["parity"]
  return {"mutation": mutation, "precision": precision, "exit": code,
          "checks": {c["check"]: (c["measured"], c["tolerance"], c["passed"]) for c in rows if c["passed"] is not None}}


def sized(family: str, size: float, precision: str, epochs: int, corpus, vocab) -> dict:
  """{check: measured} of a comparison with a mutation of `family` and `size` in force."""
  config = preset("seed", num_epochs=epochs, precision=precision, vocab_size=len(vocab))
  with FAMILIES[family](size), contextlib.redirect_stdout(io.StringIO()):
    block = comparison.run(config, [Row(n) for n in PAIR.split(",")], corpus, vocab, "cpu")
  return {c["check"]: (c["measured"], c["passed"]) for c in block["parity"] if c["passed"] is not None}


def smallest(results: dict) -> dict:
  """{check: smallest size it failed at} per (family, arithmetic), from {size: sized()}."""
  out = {}
  for size, checks in sorted(results.items()):
    for check, (_, passed) in checks.items():
      if passed is False and check not in out:
        out[check] = size
  return out


def render(env: dict, epochs: int, rows: list, sweeps: dict) -> str:
  lines = ["# Do the checks catch real bugs? Mutations of jax-scratch at the seed configuration\n",
           report.provenance(env) + f" {epochs} epochs per run, {PAIR} (jax-scratch mutated), CPU.\n",
           "## Named mutations, through `compare.py --strict`\n",
           "Every judged check: measured figure against its tolerance; failures in bold.\n"]
  checks = list(dict.fromkeys(c for r in rows for c in r["checks"]))
  body = [(r["mutation"], r["precision"], r["exit"],
           *(_cell(r["checks"].get(c)) for c in checks)) for r in rows]
  lines.append(table(("mutation", "arithmetic", "exit status", *checks), body))
  lines.append("## The smallest mutation each check catches\n")
  lines.append("Sizes tried in powers of ten; the smallest at which the check failed (– : none tried "
               "failed it).\n")
  for (family, precision), results in sweeps.items():
    found = smallest(results)
    lines.append(f"- **{family}** ({precision}, sizes {', '.join(f'{s:g}' for s in sorted(results, reverse=True))}): "
                 + (", ".join(f"{c} {found[c]:g}" for c in checks if c in found) or "no check failed") + ".")
  return "\n".join(lines) + "\n"


def _cell(entry) -> str:
  if entry is None:
    return "–"
  measured, tolerance, passed = entry
  text = "not finite" if measured is None else f"{measured:.1e}"
  return text if passed else f"**{text}**"


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--epochs", type=int, default=10, help="epochs per run (10: the first-epochs check's span)")
  p.add_argument("--out", help="Markdown file (default: print)")
  args = p.parse_args()
  corpus, vocab = data.load_corpus()
  with tempfile.TemporaryDirectory() as folder:
    rows = [named(m, prec, args.epochs, pathlib.Path(folder)) for m, prec in NAMED]
  for r in rows:
    print(r["mutation"], r["precision"], r["exit"], {c: v[0] for c, v in r["checks"].items() if v[2] is False},
          file=sys.stderr, flush=True)
  sweeps = {}
  for family, by_precision in SIZES.items():
    for precision, sizes in by_precision.items():
      sweeps[(family, precision)] = {s: sized(family, s, precision, args.epochs, corpus, vocab) for s in sizes}
      print(family, precision, smallest(sweeps[(family, precision)]), file=sys.stderr, flush=True)
  text = render(report.environment(ROOT, ("torch", "jax")), args.epochs, rows, sweeps)
  if args.out:
    pathlib.Path(args.out).write_text(text)
  print(text)


if __name__ == "__main__":
  main()
