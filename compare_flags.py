"""compare.py's flags, in argparse groups, each group with the refusals of what cannot go
with it (a row's and a lever's own refusals are declared with them: shared/rows.py,
shared/levers.py), and the run's configuration built from them."""
import argparse
import math
import os
import pathlib
import re
import sys

from shared import checkpoint, registry, rows, threads
from shared import config as C
from shared.kinds import sweep

ROOT = pathlib.Path(__file__).resolve().parent
OPTIONS = registry.options()  # each framework's own settings, with their flags (shared/levers.py)
SIZES = (("--batch-size", int, "minibatch rows"), ("--num-steps", int, "time steps per minibatch"),
         ("--num-hiddens", int, "hidden units"), ("--lr", float, "SGD learning rate"),
         ("--grad-clip", float, "theta of the global-norm clipping"),
         ("--max-tokens", int, "characters of the text to use; -1: the whole text"))
# Config field -> the flag that sets it: an error names the flag to change instead of the field.
FLAGS = {"num_epochs": "--epochs", "seed": "--seed", "sampling": "--sampling", "precision": "--precision",
         **{f[2:].replace("-", "_"): f for f, _, _ in SIZES}, "threads": "--threads", "devices": "--devices",
         "processes": "--processes", "worker_timeout": "--worker-timeout",
         **{o.name: o.flag for o in OPTIONS if o.flag}}


class Parser(argparse.ArgumentParser):
  def error(self, message):  # one line that names the fix, not the whole usage
    fail(f"{message} (see --help)")


def fail(message: str):
  print(f"compare.py: error: {message}", file=sys.stderr)
  sys.exit(2)


def flagged(message: str) -> str:
  """A config error with each field name replaced by the flag that sets it."""
  return re.sub(r"(?<![-\w])(" + "|".join(FLAGS) + r")\b", lambda m: FLAGS[m.group(1)], message)


def parse_args(argv=None):
  return PARSER.parse_args(argv)


def refuse(args) -> None:
  """Flags that cannot go together, each declared beside its flags, refused before anything loads."""
  for when, message in REFUSALS:
    if when(args):
      fail(message)


def _run_flags(p) -> list:
  p.add_argument("--preset", choices=C.PRESETS, default="seed",
                 help="seed: d2l's GRU chapter, 500 epochs (default); quick: same sizes, 4 epochs; "
                      "book: the seed configuration on the whole text")
  p.add_argument("--epochs", type=int, help=f"number of epochs, overriding the preset's (a sweep's or an "
                                            f"ablation's default: "
                                            f"{sweep.DEFAULT_EPOCHS})")
  p.add_argument("--impls", help=f"comma-separated implementations (default all that can run as asked): "
                                 f"{', '.join(rows.IMPLS)}")
  p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                 help="auto: the GPU when the framework sees one, else the CPU")
  p.add_argument("--threads", type=int, help=f"compute threads of each framework, in every process "
                                             f"(default: every core, here {threads.cores()})")
  p.add_argument("--seed", type=int, help="one integer seed for minibatches and initial weights (default 0)")
  p.add_argument("--sampling", choices=C.SAMPLINGS, help="minibatch sampling (default sequential, as d2l)")
  p.add_argument("--precision", choices=C.PRECISIONS,
                 help="highest: full float32 (default, the parity setting); tf32: GPUs may use TF32 "
                      "matmuls; float64: everything in float64; bf16: every row also as its bfloat16 "
                      "mixed-precision twin <row>-bf16, side by side (shared/precision.py)")
  p.add_argument("--data-dir", help="folder holding timemachine.txt (default: $GRU_DATA_DIR, the cache, a download)")
  return [(lambda a: a.truth and a.precision == "float64",
           "--truth adds a float64 run beside a float32 (or bf16) one; with --precision float64 drop --truth")]


def _kind_flags(p) -> list:
  g = p.add_argument_group("kinds of run (default: one comparison)")
  g.add_argument("--seeds", help="several seeds, e.g. 0,1,2,3,4: the whole comparison once per seed, "
                                 "with statistics across seeds")
  g.add_argument("--truth", action="store_true", help="also train every implementation in float64 (the exact "
                                                      "trajectory) and report each run's distance from it")
  g.add_argument("--sweep", action="append", metavar="FIELD=V1,V2,...",
                 help=f"measure speed at every value of a size field ({', '.join(C.SIZE_FIELDS)}); "
                      "two --sweep flags make a grid")
  g.add_argument("--ablation", nargs="?", const="all", metavar="LEVER,...",
                 help="measure what each speed lever buys, on and off, on the rows it acts on (default all: "
                      + ", ".join(lever.key for lever in registry.all_levers()) + ")")
  g.add_argument("--merge", metavar="FOLDER,FOLDER,...", help="several-seed reports of one run split over processes "
                 "(each over its own --seeds) as one report at --out, the statistics taken over every seed")
  g.add_argument("--repeat", type=int, default=1, metavar="N",
                 help="N >= 2: train the comparison N times, every row in a fresh process each time, and give "
                      "speed an interval across those processes (shared/kinds/speed.py); parity is judged on the first")
  g.add_argument("--bench", action="store_true", help="throughput only: skip parity and samples, write no report")
  g.add_argument("--index", nargs="?", const=str(ROOT / "reports"), metavar="FOLDER",
                 help="regenerate FOLDER/README.md, the index of its reports (default reports/), and exit")
  g.add_argument("--findings", action="store_true",
                 help="regenerate the README's answer and docs/results.md from the committed reports "
                      "(shared/reports/findings.py), and exit")
  g.add_argument("--resume", metavar="FOLDER", help="continue the run that was writing report FOLDER from its "
                                                   "checkpoint (FOLDER.checkpoint), with the flags that started it")
  return [(lambda a: a.sweep and (a.bench or a.seeds or a.truth or a.strict),
           "a sweep measures speed only: drop --bench, --seeds, --truth and --strict, or drop --sweep"),
          (lambda a: a.ablation and (a.sweep or a.bench or a.seeds or a.truth or a.strict),
           "an ablation measures speed only: drop --sweep, --bench, --seeds, --truth and --strict, or drop --ablation"),
          (lambda a: a.bench and (a.out or a.seeds or a.truth), "--bench writes no report and runs one seed in "
           "one precision: drop --out, --seeds and --truth, or drop --bench"),
          (lambda a: a.ablation and a.devices, "an ablation measures speed levers on one device: drop --devices, "
           "or drop --ablation"),
          (lambda a: a.ablation and a.precision == "bf16", "an ablation measures its levers at one float precision: "
           "drop --precision bf16 (a comparison or a sweep with --precision bf16 puts bf16 beside float32), or "
           "drop --ablation"),
          (lambda a: (a.sweep or a.ablation) and (a.coordinator or "TORCHELASTIC_RUN_ID" in os.environ),
           "sweeps and ablations run on one machine: launch them without torchrun or --coordinator"),
          (lambda a: a.repeat < 1, "--repeat takes N >= 1 runs of the comparison"),
          (lambda a: a.repeat > 1 and (a.seeds or a.sweep or a.ablation or a.merge),
           "--repeat repeats one comparison for its speed: drop --seeds, --sweep, --ablation and --merge, or drop --repeat"),
          (lambda a: a.repeat > 1 and (a.coordinator or "TORCHELASTIC_RUN_ID" in os.environ),
           "--repeat runs on one machine: launch it without torchrun or --coordinator"),
          (lambda a: a.merge and not a.out, "--merge writes one report from several: give it --out FOLDER"),
          (lambda a: a.seed is not None and a.seeds,
           "--seed and --seeds together: give one seed with --seed or several with --seeds"),
          (lambda a: a.sweep and a.epochs is not None and a.epochs < 2,
           "a sweep needs --epochs >= 2: the first epoch (compiling, warming up) is left out of tokens/s"),
          (lambda a: a.ablation and a.epochs is not None and a.epochs < 2,
           "an ablation needs --epochs >= 2: the first epoch (compiling, warming up) is left out of tokens/s")]


def _size_flags(p) -> list:
  g = p.add_argument_group("sizes and optimizer, overriding the preset's")
  for flag, kind, text in SIZES:
    g.add_argument(flag, type=kind, help=text)
  return []


def _dp_flags(p) -> list:
  g = p.add_argument_group("data parallelism (shared/distributed.py; the README shows a run over two machines)")
  g.add_argument("--devices", type=int, help="N > 1: each row also trains data parallel over N devices "
                                             "(`<row>-dpN`), judged against itself on one device")
  g.add_argument("--processes", type=int, help="the JAX rows' processes: N (= --devices) runs jax.distributed "
                                               "with one device per process (default: one process, a Mesh)")
  g.add_argument("--worker-timeout", type=int, help="seconds the engines wait for a start-up or a collective "
                                                    "before a row fails (default 300)")
  g.add_argument("--coordinator", metavar="HOST:PORT", help="JAX over several machines: the coordinator "
                                                            "(process 0's host), with --process-id")
  g.add_argument("--process-id", type=int, help="this process's rank, with --coordinator")
  g.add_argument("--scaling", choices=("strong", "weak"), default="strong",
                 help="a devices sweep: strong keeps the global batch, weak the batch per device")
  return [(lambda a: a.processes is not None and a.devices is None,
           "--processes sets how the JAX rows spread over --devices; give --devices N --processes N"),
          (lambda a: (a.coordinator is None) != (a.process_id is None),
           "--coordinator and --process-id go together: every process names the coordinator and its own rank"),
          (lambda a: a.scaling == "weak" and not any(s.replace("-", "_").startswith("devices=") for s in a.sweep or ()),
           "--scaling weak applies to a devices sweep; add --sweep devices=1,2 or drop --scaling")]


def _option_flags(p) -> list:
  """Each framework's own settings (torch_impl/options.py, ...): what its lever sets."""
  g = p.add_argument_group("the frameworks' own settings (each measured by `--ablation`)")
  for o in OPTIONS:
    if o.flag:
      g.add_argument(o.flag, help=o.help, **({"choices": o.choices} if o.choices else {"type": int}))
  return []


def _output_flags(p) -> list:
  g = p.add_argument_group("output")
  g.add_argument("--out", help="report folder; must not exist (default reports/<date>-<device>-<run>)")
  g.add_argument("--strict", action="store_true",
                 help="exit with status 1 if any parity check fails or any implementation or seed does not finish")
  g.add_argument("--verbose", action="store_true",
                 help="print every judged parity check on the console, not only the verdict per pair (the report "
                      "always holds every check)")
  g.add_argument("--checkpoint-every", type=float, metavar="SECONDS",
                 help=f"seconds of training between checkpoint writes (default {checkpoint.DEFAULT_EVERY:.0f}); "
                      "one is also written at every boundary between units of work")
  return [(bad_every, "--checkpoint-every takes a number of seconds >= 0")]


def bad_every(args) -> bool:
  """--checkpoint-every given and not a finite number of seconds >= 0 (nan is neither)."""
  return args.checkpoint_every is not None and not (math.isfinite(args.checkpoint_every) and args.checkpoint_every >= 0)


def build_config(args) -> C.Config:
  """The preset with every flag given applied (each framework setting at its default when not
  given); a sweep or an ablation runs few epochs unless told."""
  fields = {field: getattr(args, flag[2:].replace("-", "_")) for field, flag in FLAGS.items()}
  if fields["num_epochs"] is None and (args.sweep or args.ablation):
    fields["num_epochs"] = sweep.DEFAULT_EPOCHS
  for o in OPTIONS:
    fields[o.name] = o.default if fields.get(o.name) is None else fields[o.name]
    o.check(fields[o.name])
  return C.preset(args.preset, **{k: v for k, v in fields.items() if v is not None})


def _parser() -> tuple:
  p = Parser(description="Trains every implementation on identical data from identical weights, checks that "
                         "the frameworks agree, measures how fast each trains, and writes a report.")
  groups = [f(p) for f in (_run_flags, _kind_flags, _size_flags, _dp_flags, _option_flags, _output_flags)]
  return p, [r for group in groups for r in group]


PARSER, REFUSALS = _parser()  # (when, message): refused when when(args) holds
