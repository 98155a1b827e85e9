"""What bounds each row: its steady epochs timed, then profiled, on the seed workload.

Per row: tokens/s and wall time per epoch (unprofiled), the time the device is busy per
epoch and the device events (kernels, copies) per minibatch step (profiled), and the
kernels that take longest. A row whose device idles for most of an epoch is bound by the
host (launches, Python, dispatch); one whose device is busy, by its kernels. Issue 8 asks
for this where a row misses its speed target.

    PYTHONPATH=. python bench/profile_rows.py [--impls torch-scratch,jax-scratch] [--precision tf32]
                                         [--device gpu] [--epochs 10] [--out FILE.md]
"""
import argparse
import pathlib
import statistics
import sys
import time

from shared import data, registry
from shared.reports import report
from shared import params as P
from shared import profile as S
from shared.config import PRECISIONS, preset
from shared.text import num, table
from shared.rows import Row

ROOT = pathlib.Path(__file__).resolve().parents[1]
ROWS = "torch-reference,torch-scratch,torch-cudnn,jax-scratch,flax-gru"  # the rows with targets, and the baseline
PROFILED = 3  # epochs under the profiler


def profile_row(name, config, epochs, device, timed: int) -> dict:
  """One row: compiled, one warm-up epoch, `timed` epochs timed, PROFILED epochs profiled."""
  impl = registry.make_impl(name, config, device)
  impl.set_params(P.init_params(impl.layout, config.seed, config.vocab_size, config.num_hiddens))
  for batches in {b[0].shape: b for b in epochs}.values():  # every epoch shape, as run.train_all
    impl.prepare(batches)
  impl.train_epoch(epochs[0])
  walls = []
  for batches in epochs[1:1 + timed]:
    start = time.perf_counter()
    impl.train_epoch(batches)  # a host float: the epoch has finished
    walls.append(time.perf_counter() - start)
  rest = iter(epochs[1 + timed:])
  side = registry.module(Row.parse(name).info.framework, "profile")
  prof = side.device_profile(lambda: impl.train_epoch(next(rest)), PROFILED, impl.device_name != "cpu")
  return {**S.figures(name, impl.execution, statistics.median(walls), int(epochs[0][0].shape[0]),
                     int(epochs[0][0].size), prof, PROFILED),
          "device": impl.device_name, "precision": impl.precision}


def render(rows: list, head: str) -> str:
  """The Markdown of a profile: one line per row, then each row's longest kernels."""
  text = head + "\n\n" + table(
      ("row", "tokens/s", "wall ms/epoch", "device busy ms/epoch", "busy", "device events/step", "what bounds it"),
      [(r["impl"], num(r["tokens_per_s"]), num(r["wall_ms"], "{:.2f}"), num(r["device_ms"], "{:.2f}"),
        num(r["busy_fraction"], "{:.0%}"), num(r["events_per_step"], "{:.1f}"), r["verdict"]) for r in rows])
  for r in rows:
    text += (f"\n### {r['impl']} ({r.get('device', '?')}, {r.get('precision', '?')})\n\n{r['execution']}. "
             f"Events: {r['what']}.\n\n"
             + (table(("name", "share of the events' time", "count"),
                      [(f"`{n[:90]}`", num(s / r["event_seconds"] if r["event_seconds"] else None, "{:.0%}"), c)
                       for n, s, c in r["top"]])
                if r["top"] else ""))
  return text


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--impls", default=ROWS)
  p.add_argument("--precision", choices=PRECISIONS[:2], default="highest")
  p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
  p.add_argument("--epochs", type=int, default=10, help="timed epochs per row (the median is kept)")
  p.add_argument("--num-hiddens", type=int, default=256)
  p.add_argument("--max-tokens", type=int, default=10_000)
  p.add_argument("--out", help="write the Markdown here too")
  args = p.parse_args(argv)
  corpus, vocab = data.load_corpus(args.max_tokens)
  config = preset("seed", num_epochs=2 + args.epochs + PROFILED, precision=args.precision,
                  num_hiddens=args.num_hiddens, max_tokens=args.max_tokens, vocab_size=len(vocab))
  epochs = data.training_epochs(corpus, config)
  device = None if args.device == "auto" else args.device
  env = report.environment(ROOT)
  head = (f"# What bounds each row: a profile\n\n{report.provenance(env)} Each row's device is in its "
          "heading.\n\nThe seed configuration "
          f"({config.batch_size} x {config.num_steps} tokens a step, {config.num_hiddens} hidden units, "
          f"{len(epochs[0][0])} steps an epoch, precision {config.precision}). Per row: one warm-up epoch, "
          f"{args.epochs} epochs timed (the median kept), {PROFILED} under the framework's profiler "
          f"(device time and events; the profiler slows the host, not the kernels). A row whose device is "
          f"busy for less than {S.HOST_BOUND:.0%} of an epoch is bound by the host.")
  rows = []
  for name in args.impls.split(","):
    rows.append(profile_row(name.strip(), config, epochs, device, args.epochs))
    text = render(rows, head)
    if args.out:  # after every row: a run cut short keeps the rows that finished
      pathlib.Path(args.out).write_text(text)
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
