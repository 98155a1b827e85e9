"""Training rows side by side, epoch by epoch, into their records (shared/records.py): the
compile and first epoch of each row alone, then epochs 2.. round-robin in an order balanced
over rounds, each epoch timed; a row that fails is marked failed and the others go on.
shared/runner.py drives it for every kind of run. Nothing here imports a framework.
"""
import math
import sys
import time

from tqdm import tqdm

from shared import interrupt, metrics, stats, timing
from shared.protocol import one_line
from shared.records import Record

SAMPLE_PREFIXES = ("time traveller", "traveller")
SAMPLE_LENGTH = 50


class Progress:
  """A tqdm bar per row (epochs, perplexity, tokens/s) on a terminal; in a log, one line per
  row every tenth of the run."""

  def __init__(self, records: dict, total: int, label: str = ""):
    self.records, self.total, self.label, self.tty = records, total, label, sys.stdout.isatty()
    self.done = set()  # rows whose last line (failed, finished) was printed
    self.bars = {n: tqdm(total=total, desc=f"{label}{n}", position=i, unit="epoch", file=sys.stdout,
                         dynamic_ncols=True) for i, n in enumerate(records)} if self.tty else {}

  @staticmethod
  def status(rec: Record) -> str:
    if not rec.perplexity:
      return rec.status
    rate = rec.tokens[-1] / rec.epoch_seconds[-1]
    return f"ppl {rec.perplexity[-1]:8.3f}  {rate / 1e3:8.1f}k tokens/s  {rec.status}"

  def update(self, epoch: int) -> None:
    for name, rec in self.records.items():
      if name in self.bars:
        self.bars[name].n = len(rec.perplexity)
        self.bars[name].set_postfix_str(self.status(rec))
    if not self.tty and (epoch in (1, self.total) or epoch % max(1, self.total // 10) == 0):
      for name, rec in self.records.items():
        if name not in self.done:  # a failed row's line once, not every tenth of the run
          print(f"{self.label}{name:<{max(map(len, self.records)) + 1}} {len(rec.perplexity):>4}/{self.total}  {self.status(rec)}", flush=True)
        if rec.status == "failed":
          self.done.add(name)

  def close(self) -> None:
    for bar in self.bars.values():
      bar.close()


def mark_failed(rec: Record, name: str, why: str, impl=None) -> None:
  """`rec` failed with `why`; the others go on. Except in a launched run (one rank of
  several, shared/distributed.py), where a rank that skipped a collective its peers make
  would leave them out of step: there every rank stops, with the line."""
  if getattr(impl, "fatal", False):
    raise SystemExit(f"{name}: {why}; a launched run stops every rank")
  rec.status, rec.failed_epoch, rec.error = "failed", len(rec.perplexity) + 1, why
  tqdm.write(f"{name}: {why} at epoch {rec.failed_epoch}; marked failed, the others go on", file=sys.stdout)


def train_epoch(impl, batches, rec: Record) -> bool:
  """Times one epoch into `rec` (wall and process CPU seconds, and the steps at which
  clipping fired); False (and `rec` marked failed) on a non-finite loss or an error, so
  that one row's failure never takes the others down."""
  try:
    clock = getattr(impl, "cpu_seconds", time.process_time)  # GRUImpl's; a bench script's trainer has none
    start = timing.now(clock)
    loss = impl.train_epoch(batches)  # a host float: the device has finished the epoch
    seconds, cpu = timing.since(start, clock)
  except Exception as e:  # noqa: BLE001 - e.g. out of device memory, a compile error
    mark_failed(rec, impl.name, one_line(e), impl)
    return False
  if not math.isfinite(loss) or loss > 700:  # exp() of it would overflow float64
    mark_failed(rec, impl.name, f"non-finite loss ({loss})" if not math.isfinite(loss) else
                f"loss {loss:.3g}: finite, but its perplexity exp(loss) overflows (the training diverged)")
    return False
  rec.perplexity, rec.epoch_seconds = rec.perplexity + [math.exp(loss)], rec.epoch_seconds + [seconds]
  rec.epoch_cpu_seconds, rec.tokens = rec.epoch_cpu_seconds + [cpu], rec.tokens + [int(batches[0].size)]
  rec.clipped_steps = rec.clipped_steps + [impl.clipped_steps]  # new lists: a Ctrl-C leaves them equal
  return True


def williams(n: int) -> list:
  """A Williams design for n treatments: orders of range(n) in which every treatment
  directly follows every other equally often (n orders for even n; for odd n the n orders
  and their mirrors). Row 0 is 0, 1, n-1, 2, n-2, ...; row i adds i modulo n."""
  first, low, high = [0], 1, n - 1
  while len(first) < n:
    first.append(low)
    low += 1
    if len(first) < n:
      first.append(high)
      high -= 1
  rows = [[(x + i) % n for x in first] for i in range(n)]
  return rows if n % 2 == 0 else rows + [row[::-1] for row in rows]


def round_order(names: list, k: int) -> list:
  """The order of round k (k = 2, 3, ...): the rows of a Williams design in turn, so that
  no row always runs right after the same one (a row that leaves the caches cold, or the
  machine hot, does so to every other alike). Plain rotation would not do: it keeps each
  one's predecessor in all but one round of n."""
  if not names:
    return []
  rows = williams(len(names))
  return [names[i] for i in rows[(k - 2) % len(rows)]]


def train_all(impls: dict, epochs: list, records: dict, progress, load=None, on_epoch=None) -> None:
  """Compile/capture and the first epoch one row at a time (peak memory is read then), then
  epochs 2.. round-robin, the order balanced over rounds (`round_order`): every row's epoch k
  runs within one round, so a ratio of their epoch-k rates compares epochs that ran seconds
  apart. The machine's load is measured over those rounds (into `load`, a dict, when given),
  not assumed to fall alike: a load that favours one framework stays in the figures, and the
  report says how busy the machine was. `on_epoch()` is called after each epoch of each row (a
  checkpoint), `progress.update(epoch)` after each round. Records restored from a checkpoint
  go on from their own epoch. A Ctrl-C marks what was running "interrupted" (what finished
  stays) and propagates."""
  # The epoch's minibatch count can differ between epochs (the random offset): every shape
  # is compiled up front, so that no compile lands in a timed epoch.
  shapes = list({batches[0].shape: batches for batches in epochs}.values())  # epochs[0] first
  on_epoch, start = on_epoch or (lambda: None), None
  try:
    for name, impl in impls.items():
      if records[name].status in ("not run", "running") and len(records[name].perplexity) < len(epochs):
        begin(impl, shapes, epochs[0], records[name])
        on_epoch()
        interrupt.check()
    progress.update(1)
    start = timing.load_start()
    for k, batches in enumerate(epochs[1:], 2):
      for name in round_order(list(impls), k):
        if records[name].status == "running" and len(records[name].perplexity) == k - 1:
          train_epoch(impls[name], batches, records[name])
          on_epoch()
          interrupt.check()  # a Ctrl-C swallowed by a callback inside the epoch stops here
      progress.update(k)
  except KeyboardInterrupt:
    _finish(records, "interrupted")
    interrupt.clear()
    raise
  finally:
    progress.close()
    if load is not None and start is not None:
      load.update(timing.load_since(start))
  _finish(records, "ok")


def begin(impl, shapes: list, first_epoch, rec: Record) -> None:
  """Compiles/captures every epoch shape, then trains the first epoch and reads the peak
  memory. A row restored from a checkpoint compiles again and goes on from its own epoch:
  that compile and the epoch after it are kept apart from its figures (`resumed_epochs`)."""
  rec.status = "running"
  try:
    seconds = sum(impl.prepare(batches) for batches in shapes)
  except Exception as e:  # noqa: BLE001
    mark_failed(rec, impl.name, f"compile/capture failed: {one_line(e)}", impl)
    return
  if rec.perplexity:
    rec.resumed_epochs.append(len(rec.perplexity) + 1)
    rec.resume_prepare_seconds.append(seconds)
  else:
    rec.prepare_seconds = seconds
    if train_epoch(impl, first_epoch, rec):
      rec.peak_memory_bytes = impl.peak_memory_bytes()


def _finish(records: dict, status: str) -> None:
  for rec in records.values():
    if rec.status == "running":
      rec.status = status


def samples(impl, vocab) -> dict:
  """Greedy text after each prefix; a failure is recorded in place of the text, not raised."""
  try:
    return {p: impl.predict(p, SAMPLE_LENGTH, vocab) for p in SAMPLE_PREFIXES}
  except Exception as e:  # noqa: BLE001 - a trained run is worth more than its samples
    return {p: f"(generation failed: {one_line(e)})" for p in SAMPLE_PREFIXES}


def reduction(impl, first_epoch):
  """A data-parallel row's gradient all-reduce, from its engine's profiler, over one epoch
  trained after the timed ones (its weights put back); None for other rows."""
  if impl.parallel is None:
    return None
  try:
    return impl.reduction(first_epoch)
  except Exception as e:  # noqa: BLE001 - a trained run is worth more than its profile
    if getattr(impl, "fatal", False):
      raise
    return {"what": f"profile failed: {one_line(e)}", "ms_per_step": None, "events": None}


def time_split(impl, first_epoch):
  """Where a row's epoch goes, from its framework's profiler (impl.time_split), over one epoch
  trained after the timed ones, its weights put back; None for a data-parallel row."""
  if impl.parallel is not None:
    return None
  try:
    with impl.weights_kept():
      return impl.time_split(first_epoch)
  except Exception as e:  # noqa: BLE001 - a trained run is worth more than its profile
    if getattr(impl, "fatal", False):
      raise
    return {"what": f"profile failed: {one_line(e)}", "products_share": None}


def summarize(records: dict, others: dict, baseline: str = "") -> None:
  """Adds the throughput figures (shared/metrics.py) to every record and the ratios paired
  round by round: over the `baseline` record, and over each record's counterpart in
  `others` ({name: (its row on one device, its float32 row)}, names or None)."""
  for rec in records.values():
    for k, v in metrics.throughput(rec.tokens, rec.epoch_seconds, rec.perplexity, rec.epoch_cpu_seconds,
                                   rec.prepare_seconds, rec.resumed_epochs).items():
      setattr(rec, k, v)
  base = records.get(baseline)
  for name, rec in records.items():
    rec.speedup_vs_reference, rec.speedup_ci = paired(rec, base)
    one, row = others.get(name, (None, None))
    rec.vs_one_device, rec.vs_one_device_ci = paired(rec, records.get(one))
    rec.vs_float32, rec.vs_float32_ci = paired(rec, records.get(row))


def paired(rec: Record, other) -> tuple:
  """(ratio, [low, high] or None): `rec`'s steady rates over `other`'s, paired round by round."""
  ratio, low, high = stats.paired_ratio(rec.rates()[1:], other.rates()[1:]) if other else (None, None, None)
  return ratio, None if low is None else [low, high]
