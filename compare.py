"""Trains every implementation on identical data from identical weights, checks that the
frameworks agree, measures how fast each trains, and writes a report.

    python compare.py                      # the seed run: d2l's GRU chapter, 500 epochs
    python compare.py --preset quick       # the same sizes, 4 epochs
    python compare.py --seeds 0,1,2,3,4    # the whole comparison once per seed, with statistics
    python compare.py --epochs 40 --repeat 5   # five fresh processes: speed with an interval across them
    python compare.py --resume reports/2026-11-30-cpu-seed-5seeds   # continue a run that stopped
    python compare.py --findings           # regenerate the README's answer from the committed reports

Every flag: `python compare.py --help` and the README. The front door only: the flags
(compare_flags.py), then dispatch. Each kind of run is a plan
of units (shared/kinds/) that one loop executes (shared/runner.py); the console summary and
exit status are shared/reports/summary.py, the report shared/reports/.
"""
import json
import os
import pathlib
import signal
import sys

import compare_flags as F
from compare_flags import fail, flagged
from shared import bounds, checkpoint, data, distributed, environment, interrupt, kinds, lock, memory, registry
from shared import rows, threads, timing, workers
from shared.kinds import ablation, compare, seeds, sweep
from shared.reports import findings, folder, index, report, summary
from shared.runner import Runner

# Two frameworks share one GPU here: stop JAX from taking 75% of its memory up front
# (set before the registry first imports jax).
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
ROOT = pathlib.Path(__file__).resolve().parent
parse_args, build_config = F.parse_args, F.build_config


def plan(args, device, n: int) -> tuple:
  """(the run the flags ask for on `n` threads: a shared.runner.Plan, its report folder's
  name, this process's place in a launched run or None), its bad input refused in one line
  before any training."""
  try:
    levers = ablation.parse(args.ablation) if args.ablation else None  # lever keys, not flags: unflagged
  except ValueError as e:
    fail(str(e))
  try:
    found = seeds.parse(args.seeds) if args.seeds else None
    config = build_config(args).set(threads=n)
    if args.sweep:
      return (*sweep_plan(args, config, device), None)
    names = rows.select(args.impls, config)
    launched = distributed.launch(args.coordinator, args.process_id, config)
    config, corpus, vocab = kinds.prepare(config.set(seed=found[0] if found else config.seed), names, device,
                                          launched, args.data_dir)
    if args.ablation:
      on_gpu = any(registry.sees_gpu(fw, device) for fw in {rows.IMPLS[n].framework for n in names})
      return ablation.make(config, names, levers, on_gpu, corpus, vocab), "ablation", None
  except (ValueError, data.DataError) as e:
    fail(flagged(str(e)))
  name = [args.preset] + [config.precision] * (config.precision != "highest") + [f"dp{config.devices}"] * (
      config.devices > 1) + ["jaxdist"] * bool(config.processes) + ["truth"] * args.truth
  if found:
    run = seeds.make(config, found, rows.run_rows(names, config), corpus, vocab, args.truth, launched)
    return run, "-".join(name + [f"{len(found)}seeds"]), launched
  run = compare.make(config, rows.run_rows(names, config), corpus, vocab, args.bench, args.truth, launched,
                     args.repeat)
  return run, "-".join(name + [f"{args.repeat}runs"] * (args.repeat > 1)), launched


def sweep_plan(args, config, device) -> tuple:
  """A sweep's points, each checked before any training (errors name the sweep's fields)."""
  _, vocab = data.load_corpus(2, args.data_dir)  # the vocabulary is the whole text's
  config = config.set(vocab_size=len(vocab)).validate()
  try:
    axes = sweep.parse_axes(args.sweep)
    names = rows.select(args.impls, config.set(devices=max(axes.get("devices", [config.devices]))))
    points, corpora = sweep.prepare_points(config, axes, args.data_dir, args.scaling)
    for _, cfg in points:
      rows.check(names, cfg)
      distributed.check(cfg, device)
      memory.check(cfg, [r.info.layout for r in rows.run_rows(names, cfg)])
  except (ValueError, data.DataError) as e:
    fail(str(e))
  return sweep.make(config, axes, names, points, corpora, vocab, args.scaling), "sweep-" + "-".join(axes)


def regenerated(args) -> int:
  """--index FOLDER (the index of its reports) or --findings (the README's answer and
  docs/results.md): written from committed reports alone."""
  if args.findings:
    try:
      print("\n".join(f"findings: {p}" for p in findings.write(ROOT)))
    except (OSError, ValueError, KeyError) as e:
      fail(f"cannot write the findings: {e}")
    return 0
  if not pathlib.Path(args.index).is_dir():
    fail(f"--index {args.index} is not a folder; give the folder that holds the report folders")
  try:
    print(f"index: {index.write(args.index)}")
  except OSError as e:
    fail(f"cannot write {pathlib.Path(args.index) / 'README.md'} ({e.strerror or e}): free some space or make "
         "the folder writable")
  return 0


def merged(args) -> int:
  """--merge A,B --out C: several-seed reports of one run, split over processes, as one."""
  try:
    sources = {f: json.loads((pathlib.Path(f) / "results.json").read_text()) for f in args.merge.split(",")}
    results = seeds.merge(sources)
    out = folder.check_out(pathlib.Path(args.out))
  except (OSError, ValueError) as e:
    fail(f"cannot merge: {e}")
  summary.print_summary(results, args.verbose)
  folder.write(results, out, checkpoint.OFF, ROOT)
  return summary.exit_code(results, args.strict)


def resumed(args) -> tuple:
  """--resume FOLDER: (the flags that started the run with its folder as --out, its checkpoint);
  a flag given beside it, or a checkpoint that cannot be resumed, is refused."""
  defaults = vars(parse_args([]))
  extra = [k for k, v in defaults.items() if k not in ("resume", "checkpoint_every") and getattr(args, k) != v]
  if extra:
    fail(f"--resume continues a run with the flags that started it: drop --{extra[0].replace('_', '-')}")
  if "TORCHELASTIC_RUN_ID" in os.environ:
    fail("a run launched by torchrun keeps no checkpoint: launch it again without --resume")
  if F.bad_every(args):
    fail("--checkpoint-every takes a number of seconds >= 0")
  try:
    lock.hold(args.resume)  # a second resume of the same run is refused from its first second
    ck = checkpoint.resume(args.resume, args.checkpoint_every)
  except (ValueError, OSError) as e:
    fail(str(e))
  print(f"resuming {args.resume} from its checkpoint of {ck.state.get('written')}", flush=True)
  return parse_args(ck.state["argv"]), ck


def prepared(run, device) -> str:
  """Builds the run's first unit (bad input fails before any training); one line per row that
  cannot run here; returns the devices label ("cpu", "NVIDIA H200 + cpu")."""
  run.runner = Runner(run.units, device, run.vocab)
  try:
    unavailable = run.runner.prepare()
  except (ValueError, data.DataError, workers.WorkerFailed) as e:
    fail(flagged(str(e)))
  for name, why in unavailable.items():
    print(f"compare.py: {name} cannot run here and is reported failed: {why}", file=sys.stderr)
  if run.units and not run.runner.devices():
    fail("no implementation can run on this machine; see the lines above")
  return " + ".join(sorted(set(run.runner.devices()) - {"–"})) or device or "cpu"


def written(results: dict, out, ck) -> None:
  """The report into `out`; a full disk or a folder that cannot be written ends the run in one
  line (nothing half-written stays; the checkpoint, whole, writes the report on --resume)."""
  try:
    folder.write(results, out, ck, ROOT)
  except OSError as e:
    fail(f"cannot write the report {out} ({e.strerror or e}): free some space or make the folder writable, "
         f"then python compare.py --resume {out} writes it from the checkpoint {ck.path}")


def executed(run, ck, out) -> tuple:
  """run.runner.execute(ck). A Ctrl-C that reaches here (a second one, while what the first
  stopped was being kept) stops at once, in one line, exit status 130: the checkpoint, written
  atomically, is whole and resumes the run."""
  try:
    return run.runner.execute(ck)
  except KeyboardInterrupt:
    kept = (f"the checkpoint {ck.path} is whole: continue with --resume {out}" if ck is not checkpoint.OFF
            else "this run keeps no checkpoint")
    print(f"compare.py: interrupted again while keeping what finished: no report; {kept}", file=sys.stderr)
    raise SystemExit(130) from None


def stopped(why: str) -> int:
  """A Ctrl-C before anything trained: one line, and the exit status of an interrupt."""
  print(f"compare.py: {why}", file=sys.stderr)
  return 130


def keep_checkpoint(args, out, ck, argv: list, pins: dict):
  """The run's checkpoint beside `out` (shared/checkpoint.py): the resumed one `ck`, a new one
  for the flags `argv`, or none (OFF: no report). The threads and devices this machine
  resolved (`pins`) are pinned: a resume elsewhere is refused."""
  if out is None:
    return checkpoint.OFF
  every = checkpoint.DEFAULT_EVERY if args.checkpoint_every is None else args.checkpoint_every
  ck = ck or checkpoint.Checkpoint(checkpoint.path_for(out), argv, every)
  try:
    ck.pin(pins)
  except ValueError as e:
    fail(str(e))
  print(f"checkpoint: {ck.path} (if this run stops, continue it with: python compare.py --resume {out})", flush=True)
  return ck


def main(argv=None) -> int:
  """compare.py's run; every report folder it held is let go when it returns (or ends)."""
  handler = signal.getsignal(signal.SIGINT)
  try:
    return _main(list(sys.argv[1:] if argv is None else argv))
  except KeyboardInterrupt:  # while starting (imports, data, building the rows): nothing trained yet
    return stopped("interrupted before training: nothing to report")
  finally:
    lock.release_all()
    signal.signal(signal.SIGINT, handler)  # a caller's own (a test's) is back


def _main(argv: list) -> int:
  interrupt.install()  # no Ctrl-C is lost, from the first second (shared/interrupt.py)
  args = parse_args(argv)
  given = args.resume or args.out  # a resumed run writes the folder it was writing
  args, ck = resumed(args) if args.resume else (args, None)
  if args.index is not None or args.findings:
    return regenerated(args)
  if args.merge:
    F.refuse(args)
    return merged(args)
  loadavg = os.getloadavg()[0]  # before this run's own imports and builds add to it
  commit = environment.git_commit(ROOT)  # the code this process loads; the checkout may move on while it trains
  device = None if args.device == "auto" else args.device
  F.refuse(args)
  try:
    n, warning = threads.start(args.threads)  # before either framework starts
    print(f"compare.py: warning: {warning}", file=sys.stderr) if warning else None
    out = folder.check_out(pathlib.Path(given), resuming=bool(ck)) if given else None
    run, name, launched = plan(args, device, n)
    devices = prepared(run, device)
    if out is None and not args.bench and not launched:
      out = folder.check_out(folder.default_dir(ROOT, devices, name))
  except ValueError as e:
    fail(str(e))
  out = None if (launched or {}).get("rank") else out  # a launched run's rank 0 writes the report
  print(f"{run.what}, devices: {devices}", flush=True)
  if timing.start_warning(loadavg):
    print(f"compare.py: warning: {timing.start_warning(loadavg)}", file=sys.stderr)
  try:
    calibration = bounds.calibrate(("torch", "jax"), "cpu" if devices == "cpu" else "gpu")  # the machine's speed
  except KeyboardInterrupt:
    run.runner.release()
    return stopped("interrupted before training: nothing to report")
  ck = keep_checkpoint(args, None if launched else out, ck, argv, {"threads": n, "devices": devices})
  outcomes, partial = executed(run, ck, out)
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # what finished is written, whatever comes now
  try:
    results = {**report.common(run.kind, devices, args.preset, partial, run.config.as_dict(), ROOT,
                               run.frameworks, loadavg, calibration, commit), **run.results(outcomes, partial)}
  except ValueError as e:  # nothing to report: interrupted before training, or the first unit failed
    if partial and not ck.state["done"]:
      ck.remove()  # it holds nothing that trained: the same --out is free for a new run
    return stopped(str(e)) if partial else fail(str(e))
  if run.lines:
    print("\n".join(run.lines(results)))
  else:
    summary.print_summary(results, args.verbose)
  if out is not None:
    written(results, out, ck)
  return (130 if partial else 0) if run.lines else summary.exit_code(results, args.strict)


if __name__ == "__main__":
  sys.exit(main())
