"""Trains every implementation on identical data from identical weights, checks that the
frameworks agree, measures how fast each trains, and writes a report.

    python compare.py                      # the seed run: d2l's GRU chapter, 500 epochs
    python compare.py --preset quick       # the same sizes, 4 epochs
    python compare.py --truth              # and every implementation again in float64
    python compare.py --seeds 0,1,2,3,4    # the whole comparison once per seed, with statistics
    python compare.py --impls torch-cudnn,flax-gru --precision tf32 --epochs 50
    python compare.py --precision bf16 --truth   # every row beside its bf16 twin, and float64
    python compare.py --preset book --epochs 30 --num-hiddens 512   # sizes override the preset
    python compare.py --sweep num_hiddens=64,256,1024 --impls torch-scratch,jax-scratch
    python compare.py --ablation --precision tf32 --epochs 30   # what each speed lever buys
    python compare.py --devices 2          # each row beside its data-parallel twin on 2 devices
    python compare.py --devices 2 --processes 2 --impls jax-scratch,flax-gru   # jax.distributed
    python compare.py --sweep devices=1,2 --scaling weak --preset book --batch-size 256
    torchrun --nnodes 2 --nproc-per-node 1 ... compare.py --devices 2 --impls torch-scratch   # README
    python compare.py --resume reports/2026-11-30-cpu-seed-5seeds   # continue a run that stopped
    python compare.py --index              # regenerate reports/README.md

The front door only: flags, checks, then dispatch. A comparison is shared/run.py, several
seeds shared/seeds.py, a sweep shared/sweep.py, an ablation shared/ablation.py; the console
summary and exit status are shared/reports/summary.py, the index shared/reports/index.py, the report
shared/reports/report.py, markdown.py and plots.py; models live in torch_impl/ and jax_impl/.
"""
import argparse
import dataclasses
import os
import pathlib
import re
import shutil
import signal
import sys

from shared import checkpoint
from shared import config as C
from shared import data, distributed, metrics, precision, protocol, run, threads, timing, workers
from shared.reports import index, markdown, plots, report, summary
from shared import ablation as A
from shared import seeds as S
from shared import sweep as W

# Two frameworks share one GPU here: stop JAX from taking 75% of its memory up front
# (set before the registry first imports jax).
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
ROOT = pathlib.Path(__file__).resolve().parent


class Parser(argparse.ArgumentParser):
  def error(self, message):  # one line that names the fix, not the whole usage
    fail(f"{message} (see --help)")


def parse_args(argv=None):
  p = Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--preset", choices=C.PRESETS, default="seed",
                 help="seed: d2l's GRU chapter, 500 epochs (default); quick: same sizes, 4 epochs; "
                      "book: the seed configuration on the whole text")
  p.add_argument("--epochs", type=int, help="number of epochs, overriding the preset's "
                                            f"(a sweep's default: {W.DEFAULT_EPOCHS})")
  sizes = p.add_argument_group("sizes and optimizer, overriding the preset's")
  for flag, kind, text in (("--batch-size", int, "minibatch rows"), ("--num-steps", int, "time steps per minibatch"),
                           ("--num-hiddens", int, "hidden units"), ("--lr", float, "SGD learning rate"),
                           ("--grad-clip", float, "theta of the global-norm clipping"),
                           ("--max-tokens", int, "characters of the text to use; -1: the whole text")):
    sizes.add_argument(flag, type=kind, help=text)
  p.add_argument("--impls", help=f"comma-separated implementations (default all; with --devices, all that run "
                                 f"data parallel): {', '.join(protocol.IMPLS)}")
  p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                 help="auto: the GPU when the framework sees one, else the CPU")
  p.add_argument("--threads", type=int, help=f"compute threads of each framework, in every process "
                                             f"(default: every core, here {threads.cores()})")
  dp = p.add_argument_group("data parallelism (shared/distributed.py; the README shows a run over two machines)")
  dp.add_argument("--devices", type=int, help="N > 1: each row also trains data parallel over N devices "
                                              "(`<row>-dpN`), judged against itself on one device")
  dp.add_argument("--processes", type=int, help="the JAX rows' processes: N (= --devices) runs jax.distributed "
                                                "with one device per process (default: one process, a Mesh)")
  dp.add_argument("--worker-timeout", type=int, help="seconds the engines wait for a start-up or a collective "
                                                     "before a row fails (default 300)")
  dp.add_argument("--coordinator", metavar="HOST:PORT", help="JAX over several machines: the coordinator "
                                                             "(process 0's host), with --process-id")
  dp.add_argument("--process-id", type=int, help="this process's rank, with --coordinator")
  dp.add_argument("--scaling", choices=("strong", "weak"), default="strong",
                  help="a devices sweep: strong keeps the global batch, weak the batch per device")
  p.add_argument("--seed", type=int, help="one integer seed for minibatches and initial weights (default 0)")
  p.add_argument("--seeds", help="several seeds, e.g. 0,1,2,3,4: the whole comparison once per seed, "
                                 "with statistics across seeds")
  p.add_argument("--truth", action="store_true",
                 help="also train every implementation in float64 (the exact trajectory) and report "
                      "each float32 run's distance from it")
  p.add_argument("--sampling", choices=C.SAMPLINGS, help="minibatch sampling (default sequential, as d2l)")
  p.add_argument("--precision", choices=C.PRECISIONS,
                 help="highest: full float32 (default, the parity setting); tf32: GPUs may use TF32 "
                      "matmuls; float64: everything in float64; bf16: every row also as its bfloat16 "
                      "mixed-precision twin <row>-bf16, side by side (shared/precision.py)")
  _lever_flags(p)
  p.add_argument("--data-dir", help="folder holding timemachine.txt (default: $GRU_DATA_DIR, the cache, a download)")
  p.add_argument("--out", help="report folder; must not exist (default reports/<date>-<device>-<run>)")
  p.add_argument("--bench", action="store_true", help="throughput only: skip parity and samples, write no report")
  p.add_argument("--strict", action="store_true",
                 help="exit with status 1 if any parity check fails or any implementation or seed does not finish")
  p.add_argument("--sweep", action="append", metavar="FIELD=V1,V2,...",
                 help=f"measure speed at every value of a size field ({', '.join(C.SIZE_FIELDS)}); "
                      "two --sweep flags make a grid")
  p.add_argument("--ablation", nargs="?", const="all", metavar="LEVER,...",
                 help="measure what each speed lever buys, on and off, on the rows it acts on (default all: "
                      + ", ".join(lever.key for lever in A.levers(C.Config())) + ")")
  p.add_argument("--resume", metavar="FOLDER", help="continue the run that was writing report FOLDER from its "
                                                   "checkpoint (FOLDER.checkpoint), with the flags that started it")
  p.add_argument("--checkpoint-every", type=float, metavar="SECONDS",
                 help=f"seconds of training between checkpoint writes (default {checkpoint.DEFAULT_EVERY:.0f}); "
                      "one is also written at every boundary between phases, seeds, sweep points and levers")
  p.add_argument("--index", nargs="?", const=str(ROOT / "reports"), metavar="FOLDER",
                 help="regenerate FOLDER/README.md, the index of its reports (default reports/), and exit")
  return p.parse_args(argv)


def _lever_flags(p) -> None:
  """The compilers' and speed levers' flags (shared/ablation.py measures each)."""
  p.add_argument("--unroll", type=int, help="JAX lax.scan unroll over time (default: 1 on CPU, all steps on GPU)")
  p.add_argument("--compile-mode", choices=C.COMPILE_MODES[1:],
                 help="torch.compile mode of torch-compile (default: default on CPU, reduce-overhead on GPU)")
  p.add_argument("--cuda-graph", choices=C.CUDA_GRAPHS[1:],
                 help="torch-scratch and torch-cudnn on a GPU: no CUDA graph, one per step (default), one per epoch")
  p.add_argument("--command-buffer", choices=C.COMMAND_BUFFERS[1:],
                 help="the JAX rows on a GPU: XLA command buffers off, or with while loops (default: XLA's own set)")
  p.add_argument("--jax-loop", choices=C.JAX_LOOPS[1:],
                 help="the JAX rows: the whole epoch in one call (default) or a jitted step per minibatch")
  p.add_argument("--xla-dot", choices=C.XLA_DOTS[1:],
                 help="the JAX rows on a CPU: XLA:CPU's dot library (default: jaxlib's, YNNPACK dots in 0.10.2)")
  p.add_argument("--thread-pool", choices=C.THREAD_POOLS[1:],
                 help="single: every op of every row on one thread (default: each framework's pool of --threads)")


# Config field -> the flag that sets it: build_config reads each flag into its field, and
# an error names the flag to change instead of the field.
FLAGS = {"num_epochs": "--epochs", "seed": "--seed", "sampling": "--sampling", "precision": "--precision",
         "batch_size": "--batch-size", "num_steps": "--num-steps", "num_hiddens": "--num-hiddens", "lr": "--lr",
         "grad_clip": "--grad-clip", "max_tokens": "--max-tokens", "unroll": "--unroll",
         "compile_mode": "--compile-mode", "cuda_graph": "--cuda-graph", "command_buffer": "--command-buffer",
         "jax_loop": "--jax-loop", "xla_dot": "--xla-dot", "thread_pool": "--thread-pool", "threads": "--threads",
         "devices": "--devices", "processes": "--processes", "worker_timeout": "--worker-timeout"}


def fail(message: str):
  print(f"compare.py: error: {message}", file=sys.stderr)
  sys.exit(2)


def flagged(message: str) -> str:
  """A config error with each field name replaced by the flag that sets it."""
  return re.sub(r"(?<![-\w])(" + "|".join(FLAGS) + r")\b", lambda m: FLAGS[m.group(1)], message)


def check_flags(args) -> None:
  """Flags that cannot go together, refused before anything is loaded or built."""
  if args.sweep and (args.bench or args.seeds or args.truth or args.strict):
    fail("a sweep measures speed only: drop --bench, --seeds, --truth and --strict, or drop --sweep")
  if args.ablation and (args.sweep or args.bench or args.seeds or args.truth or args.strict):
    fail("an ablation measures speed only: drop --sweep, --bench, --seeds, --truth and --strict, "
         "or drop --ablation")
  if args.bench and (args.out or args.seeds or args.truth):
    fail("--bench writes no report and runs one seed in one precision: drop --out, --seeds and --truth, "
         "or drop --bench")
  if args.ablation and args.devices:
    fail("an ablation measures speed levers on one device: drop --devices, or drop --ablation")
  if args.ablation and args.precision == "bf16":
    fail("an ablation measures its levers at one float precision: drop --precision bf16 (a comparison or a "
         "sweep with --precision bf16 puts bf16 beside float32), or drop --ablation")
  if (args.sweep or args.ablation) and (args.coordinator or "TORCHELASTIC_RUN_ID" in os.environ):
    fail("sweeps and ablations run on one machine: launch them without torchrun or --coordinator")
  if args.seed is not None and args.seeds:
    fail("--seed and --seeds together: give one seed with --seed or several with --seeds")
  if args.truth and args.precision == "float64":
    fail("--truth adds a float64 run beside a float32 (or bf16) one; with --precision float64 drop --truth")
  if args.processes is not None and args.devices is None:
    fail("--processes sets how the JAX rows spread over --devices; give --devices N --processes N")
  if (args.coordinator is None) != (args.process_id is None):
    fail("--coordinator and --process-id go together: every process names the coordinator and its own rank")
  if args.scaling == "weak" and not any(a.replace("-", "_").startswith("devices=") for a in args.sweep or ()):
    fail("--scaling weak applies to a devices sweep; add --sweep devices=1,2 or drop --scaling")


def parse_seeds(text: str) -> list:
  try:
    seeds = [int(s) for s in text.split(",") if s.strip()]
  except ValueError:
    seeds = []
  if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
    raise ValueError(f"--seeds takes distinct integers >= 0 separated by commas (e.g. 0,1,2,3,4), got {text!r}")
  return seeds


def build_config(args) -> C.Config:
  """The preset with every flag given applied; a sweep runs few epochs unless told."""
  fields = {field: getattr(args, flag[2:].replace("-", "_")) for field, flag in FLAGS.items()}
  if fields["num_epochs"] is None and (args.sweep or args.ablation):
    fields["num_epochs"] = W.DEFAULT_EPOCHS
  return C.preset(args.preset, **{k: v for k, v in fields.items() if v is not None})


def parse_impls(text, devices: int = 1, arith: str = "highest") -> list:
  """The rows of --impls; when not given, every row (with devices > 1, every row that runs
  data parallel; in bf16 or float64, every row that runs in it)."""
  if text is None:
    names = distributed.capable(protocol.IMPLS) if devices > 1 else list(protocol.IMPLS)
    names = precision.float64_rows(names) if arith == "float64" else names
    return [n for n in names if not (arith == "bf16" and n in precision.REFUSED)]
  names = [n.strip() for n in text.split(",") if n.strip()]
  for n in names:
    protocol.layout_of(n)  # ValueError listing the known names
    if protocol.split_name(n)[1] > 1:
      raise ValueError(f"--impls takes the rows' own names: for {n} give {protocol.split_name(n)[0]} "
                       f"with --devices {protocol.split_name(n)[1]}")
    if protocol.split_precision(n)[1]:
      raise ValueError(f"--impls takes the rows' own names: for {n} give {protocol.split_precision(n)[0]} "
                       "with --precision bf16")
  if not names or len(set(names)) != len(names):
    raise ValueError(f"--impls needs distinct names from: {', '.join(protocol.IMPLS)}")
  return names


def setup(args):
  """Everything that can fail on bad input, before any training: (config, seeds or None,
  names, corpus, vocab, the first seed's implementations as build_impls gives them)."""
  try:
    seeds = parse_seeds(args.seeds) if args.seeds else None
    config = build_config(args)
    names = parse_impls(args.impls, config.devices, config.precision)
    device = None if args.device == "auto" else args.device
    args.launched = distributed.launch(args.coordinator, args.process_id, config)
    precision.check(names, config, device)
    distributed.check(names, config, device, args.launched)
    if args.launched:
      distributed.check_launched(names, args.launched)
      distributed.join(args.launched, config, device)
    names = precision.expand(distributed.expand(names, config.devices), config.precision)
    corpus, vocab = data.load_corpus(config.max_tokens, args.data_dir)
    config = dataclasses.replace(config, vocab_size=len(vocab),
                                 seed=seeds[0] if seeds else config.seed).validate()
    data.check_sizes(corpus, config.batch_size, config.num_steps)
    built = run.build_impls(names, config, device)
  except (ValueError, data.DataError, workers.WorkerFailed) as e:
    fail(flagged(str(e)))
  return config, seeds, names, corpus, vocab, usable(built)


def usable(built: tuple) -> tuple:
  """build_impls' answer, after one line per implementation that cannot run here (the
  others run); an error if none can."""
  impls, unavailable = built
  for name, why in unavailable.items():
    print(f"compare.py: {name} cannot run here and is reported failed: {why}", file=sys.stderr)
  if not impls:
    fail("no implementation can run on this machine; see the lines above")
  return built


def devices_label(devices) -> str:
  """"cpu", "NVIDIA H200 + cpu", ...: the devices that ran ("–", an unavailable row's, left out)."""
  return " + ".join(sorted(set(devices) - {"–"}))


def frameworks(names) -> list:
  """The frameworks of `names` (implementation names), in their order."""
  return list(dict.fromkeys(protocol.framework_of(n) for n in names))


def impl_devices(impls: dict):
  return (impl.device_name for impl in impls.values())


def run_name(args, config, seeds) -> str:
  """The report folder's last part: preset, then what differs from a plain run."""
  parts = [args.preset] + ([config.precision] if config.precision != "highest" else [])
  parts += ([f"dp{config.devices}"] if config.devices > 1 else []) + (["jaxdist"] if config.processes else [])
  parts += (["truth"] if args.truth else []) + ([f"{len(seeds)}seeds"] if seeds else [])
  return "-".join(parts)


def check_out(out: pathlib.Path, resuming: bool = False) -> pathlib.Path:
  """Fails now, not after training, if the report could not be written to `out` (a resumed
  run may complete the partial report a Ctrl-C left there)."""
  if out.exists() and not resuming:
    fail(f"--out {out} exists; reports are never overwritten: choose another folder")
  if checkpoint.path_for(out).exists() and not resuming:
    fail(f"{checkpoint.path_for(out)} holds the checkpoint of a run that did not finish: continue it with "
         f"--resume {out}, or delete the file")
  try:
    out.parent.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    fail(f"cannot create {out.parent} ({e.strerror}); choose another --out")
  if not os.access(out.parent, os.W_OK):
    fail(f"{out.parent} is not writable; choose another --out")
  return out


def header(args, config, impls) -> dict:
  """The keys every comparison report starts with."""
  return {**report.common("compare", devices_label(impl_devices(impls)), args.preset, False,
                          dataclasses.asdict(config), ROOT, frameworks(impls), args.loadavg),
          "baseline": protocol.BASELINE, "launched": args.launched,
          "ppl_target": metrics.PPL_TARGET, "tolerances": metrics.TOLERANCES,
          "divergence_thresholds": metrics.DIVERGENCE, "ppl_first_epochs": metrics.FIRST_EPOCHS,
          "forward_only": {n: f.why for n, f in protocol.FORWARD_ONLY.items() if n in impls},
          "training_deviations": {n: d.why for n, d in protocol.TRAINING_DEVIATIONS.items()
                                  if n in impls and config.carries_state},
          "sample_prefixes": list(run.SAMPLE_PREFIXES), "sample_length": run.SAMPLE_LENGTH}


def sweep_setup(args):
  """The sweep's bad input, refused before any training: (config, names, points, corpora,
  vocab, the first point's implementations)."""
  try:
    config = build_config(args)
    _, vocab = data.load_corpus(2, args.data_dir)  # the vocabulary is the whole text's
    config = dataclasses.replace(config, vocab_size=len(vocab)).validate()
  except (ValueError, data.DataError) as e:
    fail(flagged(str(e)))
  if config.num_epochs < 2:
    fail("a sweep needs --epochs >= 2: the first epoch (compiling, warming up) is left out of tokens/s")
  try:  # errors of sweep points name the sweep's fields, not the flags
    axes = W.parse_axes(args.sweep)
    names = parse_impls(args.impls, max(axes.get("devices", [config.devices])), config.precision)
    points, corpora = W.prepare_points(config, axes, args.data_dir, args.scaling)
    device = None if args.device == "auto" else args.device
    for _, cfg in points:
      precision.check(names, cfg, device)
      distributed.check(names, cfg, device)
    built = run.build_impls(W.point_names(names, points[0][1]), points[0][1], device)
  except (ValueError, data.DataError, workers.WorkerFailed) as e:
    fail(str(e))
  return config, axes, names, points, corpora, vocab, usable(built)[0]


def sweep_main(args, out) -> int:
  config, axes, names, points, corpora, vocab, impls = sweep_setup(args)
  out = out or check_out(report.default_dir(ROOT, devices_label(impl_devices(impls)), "sweep-" + "-".join(axes)))
  print(f"sweep of {len(points)} points x {len(precision.expand(names, config.precision))} implementations x "
        f"{config.num_epochs} epochs, "
        f"devices: {devices_label(impl_devices(impls))}", flush=True)
  ck = keep_checkpoint(args, out, devices_label(impl_devices(impls)))
  warn_if_busy(args)
  del impls  # built to check the device and names; each point builds its own
  done, partial = W.run_sweep(points, corpora, vocab, names, None if args.device == "auto" else args.device, ck)
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # what finished is written, whatever comes now
  device = devices_label(r["device"] for p in done for r in p.get("impls", {}).values()) or args.device
  results = {**report.common("sweep", device, args.preset, partial, dataclasses.asdict(config), ROOT,
                             frameworks(names), args.loadavg),
             **W.results(done, axes, names, len(points), args.scaling)}
  print("\n".join(W.lines(done)))
  write(results, out, ck)
  return 130 if partial else 0


def ablation_main(args, out) -> int:
  config, _, names, corpus, vocab, (impls, _) = setup(args)
  try:
    chosen = A.parse(args.ablation, config)
    on_gpu = any(impl.device_name != "cpu" for impl in impls.values())
    entries = A.plan(chosen, config, names, on_gpu)  # every cell's config checked before training
  except ValueError as e:
    fail(flagged(str(e)))
  if config.num_epochs < 2:
    fail("an ablation needs --epochs >= 2: the first epoch (compiling, warming up) is left out of tokens/s")
  device_label = devices_label(impl_devices(impls))
  out = out or check_out(report.default_dir(ROOT, device_label, "ablation"))
  ck = keep_checkpoint(args, out, device_label)
  del impls  # built to check the device and names; each cell builds its own
  warn_if_busy(args)
  print(f"ablation of {len(chosen)} levers, {config.num_epochs} epochs a cell, devices: {device_label}", flush=True)
  entries, points, partial = A.run_ablation(entries, config, corpus, None if args.device == "auto" else args.device,
                                            ck)
  if partial and not points:
    fail("interrupted before training: nothing to report")
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # what finished is written, whatever comes now
  results = {**report.common("ablation", device_label, args.preset, partial, dataclasses.asdict(config), ROOT,
                             frameworks(names), args.loadavg),
             **A.results(entries, points)}
  print("\n".join(A.lines(entries)))
  write(results, out, ck)
  return 130 if partial else 0


def write(results: dict, out: pathlib.Path, ck=checkpoint.OFF) -> None:
  """The report, then the index of the folder it went into (see shared/reports/index.py).
  A whole report removes its run's checkpoint; a partial one (a Ctrl-C) keeps it, and its
  resume replaces the partial report once the new one is written."""
  results["checkpoint"] = ck.summary()
  aside = out.with_name(f".{out.name}.partial-{os.getpid()}")
  if out.exists():  # the partial report of the run this one resumed
    os.rename(out, aside)
  for stale in [*out.parent.glob(f".{out.name}.tmp-*"), *out.parent.glob(f".{out.name}.partial-*")]:
    shutil.rmtree(stale, ignore_errors=True)  # a report half-built, or set aside, when a run was killed
  path = report.write_report(results, out, markdown.render, plots.write_all)
  shutil.rmtree(aside, ignore_errors=True)
  if not results["partial"]:
    ck.remove()
  print(f"report: {path}")
  written = index.refresh(path.parent, always=path.parent.resolve() == (ROOT / "reports").resolve())
  if written:
    print(f"index: {written}")


def set_threads(args) -> None:
  """Both frameworks get args.threads compute threads (default every core), set before
  either starts; a count that cannot be is refused, more than the cores warned of."""
  args.threads = threads.cores() if args.threads is None else args.threads
  try:
    warning = threads.check(args.threads)
    threads.configure(args.threads)
  except ValueError as e:
    fail(str(e))
  if warning:
    print(f"compare.py: warning: {warning}", file=sys.stderr)


def warn_if_busy(args) -> None:
  """One line before training when the machine was busy as the run started (its load
  average read before anything was imported or built; shared/timing.py)."""
  warning = timing.start_warning(args.loadavg)
  if warning:
    print(f"compare.py: warning: {warning}", file=sys.stderr)


def resume_args(args):
  """--resume FOLDER: the flags that started the run, with its report folder and checkpoint
  (args.ck); a flag given beside it, or a checkpoint that cannot be resumed, is refused."""
  defaults = vars(parse_args([]))
  extra = [k for k, v in defaults.items() if k not in ("resume", "checkpoint_every") and getattr(args, k) != v]
  if extra:
    fail(f"--resume continues a run with the flags that started it: drop --{extra[0].replace('_', '-')}")
  if "TORCHELASTIC_RUN_ID" in os.environ:
    fail("a run launched by torchrun keeps no checkpoint: launch it again without --resume")
  try:
    ck = checkpoint.resume(args.resume, args.checkpoint_every)
  except (ValueError, OSError) as e:
    fail(str(e))
  resumed = parse_args(ck.state["argv"])
  resumed.out, resumed.ck, resumed.argv = args.resume, ck, ck.state["argv"]
  print(f"resuming {args.resume} from its checkpoint of {ck.state.get('written')}", flush=True)
  return resumed


def keep_checkpoint(args, out, devices: str):
  """The run's checkpoint beside `out` (shared/checkpoint.py): the resumed one, a new one,
  or none (no report; a launched rank, whose peers would need the same file). The threads
  and `devices` this machine resolved are pinned: a resume elsewhere is refused."""
  if out is None or args.launched:
    return checkpoint.OFF
  every = checkpoint.DEFAULT_EVERY if args.checkpoint_every is None else args.checkpoint_every
  ck = args.ck or checkpoint.Checkpoint(checkpoint.path_for(out), args.argv, every)
  try:
    ck.pin({"threads": args.threads, "devices": devices})
  except ValueError as e:
    fail(str(e))
  print(f"checkpoint: {ck.path} (if this run stops, continue it with: python compare.py --resume {out})",
        flush=True)
  return ck


def main(argv=None) -> int:
  args = parse_args(argv)
  args.argv, args.ck = list(sys.argv[1:] if argv is None else argv), None
  if args.resume:
    args = resume_args(args)
  if args.index is not None:
    if not pathlib.Path(args.index).is_dir():
      fail(f"--index {args.index} is not a folder; give the folder that holds the report folders")
    print(f"index: {index.write(args.index)}")
    return 0
  args.loadavg = os.getloadavg()[0]  # before this run's own imports and builds add to it
  args.launched = None  # set by setup() in a process that torchrun or --coordinator launched
  check_flags(args)
  set_threads(args)
  out = check_out(pathlib.Path(args.out), resuming=bool(args.ck)) if args.out else None
  if args.checkpoint_every is not None and args.checkpoint_every < 0:
    fail(f"--checkpoint-every takes seconds >= 0, got {args.checkpoint_every}")
  if args.sweep:
    return sweep_main(args, out)
  if args.ablation:
    return ablation_main(args, out)
  config, seeds, names, corpus, vocab, built = setup(args)
  impls = built[0]
  if args.launched and args.launched["rank"] != 0:
    out = None  # every rank trains alike; rank 0 writes the report
  elif out is None and not args.bench:
    out = check_out(report.default_dir(ROOT, devices_label(impl_devices(impls)), run_name(args, config, seeds)))
  device = None if args.device == "auto" else args.device
  print(f"{len(impls)} implementations x {config.num_epochs} epochs, seed(s) {seeds or config.seed}"
        f"{', with the float64 truth' if args.truth else ''}, devices: {devices_label(impl_devices(impls))}",
        flush=True)
  results = {**header(args, config, impls)}
  ck = keep_checkpoint(args, out, devices_label(impl_devices(impls)))
  warn_if_busy(args)
  if seeds:
    runs, partial = S.run_seeds(config, seeds, names, corpus, vocab, device, args.truth, built, ck)
    results.update(kind="seeds", partial=partial, seeds=seeds, runs=runs,
                   aggregate=S.aggregate(runs, names, config.carries_state))
  else:
    block = run.compare_once(config, names, corpus, vocab, device, args.bench, args.truth, built=built, ck=ck)
    if block["partial"] and not any(r["perplexity"] for r in block["impls"].values()):
      fail("interrupted before training: nothing to report")
    results.update(kind="compare", **block)
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # what finished is written, whatever comes now
  summary.print_summary(results)
  if out is not None:
    write(results, out, ck)
  return summary.exit_code(results, args.strict)


if __name__ == "__main__":
  sys.exit(main())
