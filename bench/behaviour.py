"""Does a change of structure change behaviour? Runs one fixed plan of small compare.py runs
(every kind of run) in a checkout, then compares two such folders' results.json field by
field, every figure that a clock or the machine's load sets left out.

    python bench/behaviour.py run CHECKOUT OUT [--only quick,seeds]   # one results.json per run
    python bench/behaviour.py diff BEFORE AFTER [--noise BEFORE2]     # exit 1 on any difference

What must be equal: perplexities bit for bit, parity rows and their figures, statuses,
records, samples, aggregates, schema. What is left out: wall and CPU times and everything
computed from them (tokens/s, ratios and their intervals, matmul bounds, the machine's
load, checkpoint write times), the creation time, the git commit and the command line
(its --out differs); an ablation's levers are compared by their keys, not their order. Both
runs must use the same machine and thread count: float summation order depends on the
threads.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

SMALL = ["--preset", "quick", "--epochs", "3", "--num-hiddens", "32"]
PLAN = {  # name -> compare.py flags (each run writes OUT/<name>/results.json)
    "quick": ["--preset", "quick"],
    "truth": ["--preset", "quick", "--truth"],
    "seeds": SMALL + ["--seeds", "0,1,2", "--truth"],
    "sweep": ["--sweep", "num_hiddens=16,32", "--sweep", "batch_size=16,32", "--epochs", "3"],
    "ablation": SMALL + ["--ablation"],
    "dp2": SMALL + ["--devices", "2"],
    "bf16": SMALL + ["--precision", "bf16", "--truth"],
    "float64": SMALL + ["--precision", "float64", "--impls", "torch-scratch,jax-scratch,torch-cudnn,flax-gru"],
}
# Keys whose values a clock sets (or that are computed from clock readings), anywhere.
TIMED = {
    "created", "epoch_seconds", "epoch_cpu_seconds", "steady_tokens_per_s", "tokens_per_s_ci",
    "total_tokens_per_s", "min_tokens_per_s", "max_tokens_per_s", "slow_epochs", "steady_seconds",
    "cpu_seconds", "cores_used", "train_seconds", "first_epoch_seconds", "seconds_to_target_ppl",
    "seconds_to_target_with_compile", "prepare_seconds", "resume_prepare_seconds", "speedup_vs_reference",
    "speedup_ci", "vs_one_device", "vs_one_device_ci", "vs_float32", "vs_float32_ci", "launch_seconds",
    "epoch_rates", "us_per_token", "ms_per_step", "gflops", "speedup", "jax_over_torch", "point_seconds",
    "ratio", "ratio_ci", "git_commit", "command", "loadavg_before", "tokens_per_s",
    "summary",  # a sweep's series: how the time per step grows along an axis, in words
}
# Subtrees measured by a clock as a whole: their numbers are left out, their shape is kept,
# and so are these keys of theirs (a sentence with a ratio in it, a time of day, a path).
TIMED_TREES = {"limits", "load", "checkpoint", "reduction", "speed_pairs", "repeats", "efficiency", "elasticity"}
TIMED_IN_TREES = {"sentence", "p_value", "excludes_one", "argv", "path", "started", "at", "checkpoint_written"}
MASK = "<timed>"


def mask(obj, timed: bool = False):
  """`obj` with every timed value replaced by MASK (keys and list lengths kept)."""
  if isinstance(obj, dict):
    return {k: MASK if k in TIMED or (timed and k in TIMED_IN_TREES) else mask(v, timed or k in TIMED_TREES)
            for k, v in obj.items()}
  if isinstance(obj, list):
    return [mask(v, timed) for v in obj]
  if timed and isinstance(obj, (int, float)) and not isinstance(obj, bool):
    return MASK
  return obj


def normal(obj):
  """`obj` with parity checks keyed by what they check ("group: row vs anchor check") instead
  of their place in a list, and an ablation's levers and cells in the order of their keys: the
  order levers are measured in is no figure of theirs (each lever's settings are paired among
  themselves). A difference then names the same figure in every run of the plan."""
  if isinstance(obj, list):
    return [normal(v) for v in obj]
  if not isinstance(obj, dict):
    return obj
  out = {k: normal(v) for k, v in obj.items()}
  if isinstance(out.get("parity"), list):
    out["parity"] = {f"{c['group']} | {c['impl']} vs {c['anchor']} | {c['check']}": c for c in out["parity"]}
  if out.get("kind") == "ablation":
    out["levers"] = sorted(out["levers"], key=lambda e: e["key"])
    out["points"] = sorted(out["points"], key=lambda p: (p["lever"], json.dumps(p["point"], sort_keys=True)))
  return out


def differences(a, b, where: str = "") -> list:
  """Every place where two masked JSON values differ, as "path = before -> after" lines."""
  if isinstance(a, dict) and isinstance(b, dict):
    out = [f"{where}.{k} = only before" for k in a if k not in b]
    out += [f"{where}.{k} = only after" for k in b if k not in a]
    return out + [d for k in a if k in b for d in differences(a[k], b[k], f"{where}.{k}")]
  if isinstance(a, list) and isinstance(b, list):
    if len(a) != len(b):
      return [f"{where} = {len(a)} items -> {len(b)}"]
    return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
  return [] if a == b else [f"{where} = {json.dumps(a)[:120]} -> {json.dumps(b)[:120]}"]


def run(checkout: pathlib.Path, out: pathlib.Path, only) -> int:
  env = {**os.environ, "PYTHONUNBUFFERED": "1"}
  failed = 0
  for name, flags in PLAN.items():
    if only and name not in only:
      continue
    if (out / name / "results.json").exists():
      print(f"{name}: done before", flush=True)
      continue
    command = [sys.executable, "compare.py", *flags, "--threads", "2", "--out", str(out / name)]
    print(f"{name}: {' '.join(command[1:])}", flush=True)
    with open(out / f"{name}.log", "w") as log:
      rc = subprocess.run(command, cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    print(f"{name}: exit {rc}", flush=True)
    failed += rc != 0
  return 1 if failed else 0


def _load(path: pathlib.Path) -> dict:
  return mask(normal(json.loads(path.read_text())))


def diff(before: pathlib.Path, after: pathlib.Path, noise=()) -> int:
  """Every difference between the two plans' results; with `noise` (more runs of the code
  `before` ran, each `run` again into another folder), the figures that differ between two
  runs of the same code too, in any run of the plan, are set apart as that code's own
  nondeterminism."""
  same_code = {d.split(" = ")[0] for f in noise or () for name in PLAN
               if (before / name / "results.json").exists() and (f / name / "results.json").exists()
               for d in differences(_load(before / name / "results.json"), _load(f / name / "results.json"))}
  found = 0
  for name in PLAN:
    a, b = before / name / "results.json", after / name / "results.json"
    if not (a.exists() and b.exists()):
      print(f"{name}: not compared ({a if not a.exists() else b} is missing)")
      found += 1
      continue
    lines = differences(_load(a), _load(b))
    noisy = [d for d in lines if d.split(" = ")[0] in same_code]
    lines = [d for d in lines if d not in noisy]
    print(f"{name}: {'the same' if not lines else f'{len(lines)} differences'}"
          + (f" ({len(noisy)} more where two runs of the same code differ too)" if noisy else ""))
    print("".join(f"  {line}\n" for line in lines[:40]), end="")
    print("".join(f"  (same code differs) {d}\n" for d in noisy), end="")
    found += bool(lines)
  return 1 if found else 0


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  sub = p.add_subparsers(dest="verb", required=True)
  r = sub.add_parser("run", help="run the plan in CHECKOUT, writing OUT/<run>/")
  r.add_argument("checkout", type=pathlib.Path)
  r.add_argument("out", type=pathlib.Path)
  r.add_argument("--only", help=f"comma-separated runs of {', '.join(PLAN)}")
  d = sub.add_parser("diff", help="compare two folders that `run` wrote")
  d.add_argument("before", type=pathlib.Path)
  d.add_argument("after", type=pathlib.Path)
  d.add_argument("--noise", type=pathlib.Path, action="append", help="another run of BEFORE's code (repeatable): "
                 "what differs there too is that code's own nondeterminism, set apart")
  args = p.parse_args(argv)
  if args.verb == "run":
    args.out.mkdir(parents=True, exist_ok=True)
    return run(args.checkout.resolve(), args.out.resolve(), set(args.only.split(",")) if args.only else None)
  return diff(args.before, args.after, args.noise)


if __name__ == "__main__":
  sys.exit(main())
