"""Trains every implementation on identical data from identical weights, checks that the
frameworks agree, measures how fast each trains, and writes a report.

    python compare.py                      # the seed run: d2l's GRU chapter, 500 epochs
    python compare.py --preset quick       # the same sizes, 4 epochs
    python compare.py --impls torch-cudnn,flax-gru --precision tf32 --epochs 50

Orchestration only: models live in torch_impl/ and jax_impl/, data, parity figures and
report writing in shared/.
"""
import argparse
import dataclasses
import datetime
import math
import os
import pathlib
import signal
import sys
import time

from shared import config as C
from shared import data, metrics, protocol, report
from shared import params as P

# Two frameworks share one GPU here: stop JAX from taking 75% of its memory up front
# (set before the registry first imports jax).
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
ROOT = pathlib.Path(__file__).resolve().parent
SAMPLE_PREFIXES = ("time traveller", "traveller")
SAMPLE_LENGTH = 50


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--preset", choices=C.PRESETS, default="seed",
                 help="seed: d2l's GRU chapter, 500 epochs (default); quick: same sizes, 4 epochs")
  p.add_argument("--epochs", type=int, help="number of epochs, overriding the preset's")
  p.add_argument("--impls", default=",".join(protocol.IMPLS),
                 help=f"comma-separated implementations (default all): {', '.join(protocol.IMPLS)}")
  p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                 help="auto: the GPU when the framework sees one, else the CPU")
  p.add_argument("--seed", type=int, help="one integer seed for minibatches and initial weights (default 0)")
  p.add_argument("--sampling", choices=C.SAMPLINGS, help="minibatch sampling (default sequential, as d2l)")
  p.add_argument("--precision", choices=C.PRECISIONS,
                 help="float32 matmuls: highest (default, parity setting) or tf32 (GPU default speed)")
  p.add_argument("--unroll", type=int, help="JAX lax.scan unroll over time (default: 1 on CPU, all steps on GPU)")
  p.add_argument("--data-dir", help="folder holding timemachine.txt (default: $GRU_DATA_DIR, the cache, a download)")
  p.add_argument("--out", help="report folder; must not exist (default reports/<date>-<device>-<preset>)")
  p.add_argument("--bench", action="store_true", help="throughput only: skip parity and samples, write no report")
  p.add_argument("--strict", action="store_true", help="exit with status 1 if any parity check fails")
  return p.parse_args(argv)


def fail(message: str):
  print(f"compare.py: error: {message}", file=sys.stderr)
  sys.exit(2)


def build_config(args) -> C.Config:
  fields = {"num_epochs": args.epochs, "seed": args.seed, "sampling": args.sampling,
            "precision": args.precision, "unroll": args.unroll}
  return C.preset(args.preset, **{k: v for k, v in fields.items() if v is not None})


def parse_impls(text: str) -> list:
  names = [n.strip() for n in text.split(",") if n.strip()]
  for n in names:
    protocol.layout_of(n)  # ValueError listing the known names
  if not names or len(set(names)) != len(names):
    raise ValueError(f"--impls needs distinct names from: {', '.join(protocol.IMPLS)}")
  return names


class Progress:
  """A bar per implementation (epoch, perplexity, tokens/s): redrawn in place on a
  terminal, printed every tenth of the run in a log."""

  def __init__(self, records: dict, total: int):
    self.records, self.total, self.tty, self.drawn = records, total, sys.stdout.isatty(), 0

  def _line(self, name, rec) -> str:
    epoch = len(rec["perplexity"])
    done = int(20 * epoch / self.total)
    rate = rec["tokens"][-1] / rec["epoch_seconds"][-1] if epoch else 0.0
    ppl = f"{rec['perplexity'][-1]:8.3f}" if epoch else "       –"
    return (f"{name:<16} [{'#' * done}{'.' * (20 - done)}] {epoch:>4}/{self.total} "
            f"ppl {ppl}  {rate / 1e3:8.1f}k tokens/s  {rec['status'] if rec['status'] != 'running' else ''}")

  def update(self, epoch: int):
    if not self.tty and epoch not in (1, self.total) and epoch % max(1, self.total // 10):
      return
    if self.tty and self.drawn:
      print(f"\x1b[{self.drawn}A", end="")  # back to the first bar
    for name, rec in self.records.items():
      print("\x1b[2K" * self.tty + self._line(name, rec), flush=True)
    self.drawn = len(self.records)


def first_minibatch_parity(impls: dict, X, Y) -> list:
  """Checks 1 and 2 (forward logits, gradients) from the initial weights, before training."""
  out = {n: (impl.forward(X)[0], impl.loss_and_grads(X, Y)[1]) for n, impl in impls.items()}
  rows = []
  for group, members in protocol.PARITY_GROUPS.items():
    present = [n for n in members if n in out]
    for n in present[1:]:
      a = present[0]
      rows.append(metrics.check(group, n, a, "logits_abs", metrics.max_abs_diff(out[n][0], out[a][0])))
      rows.append(metrics.check(group, n, a, "grads_rel", metrics.grads_rel_diff(out[n][1], out[a][1])))
  for n, (a, why) in protocol.FORWARD_ONLY.items():
    if n in out and a in out:
      rows.append(metrics.check(protocol.layout_of(n), n, a, "logits_abs",
                                metrics.max_abs_diff(out[n][0], out[a][0]), note=why))
  return rows


def trajectory_parity(records: dict) -> list:
  """Check 3: per-epoch perplexity against the group's anchor."""
  rows = []
  for group, members in protocol.PARITY_GROUPS.items():
    present = [n for n in members if records.get(n, {}).get("perplexity")]
    for n in present[1:]:
      p, a = records[n]["perplexity"], records[present[0]]["perplexity"]
      first = metrics.FIRST_EPOCHS
      rows.append(metrics.check(group, n, present[0], "ppl_first10_rel", metrics.rel_diff(p[:first], a[:first])))
      rows.append(metrics.check(group, n, present[0], "ppl_all_rel", metrics.rel_diff(p, a)))
      rows.append(metrics.check(group, n, present[0], "ppl_diverge_epoch", metrics.first_divergence(p, a)))
      if len(p) == len(a):
        rows.append(metrics.check(group, n, present[0], "ppl_final_rel", metrics.rel_diff(p[-1:], a[-1:])))
  return rows


def mark_failed(rec: dict, name: str, why: str) -> None:
  rec.update(status="failed", failed_epoch=len(rec["perplexity"]) + 1, error=why)
  print(f"{name}: {why} at epoch {rec['failed_epoch']}; marked failed, the others go on", flush=True)


def train_epoch(impl, batches, rec: dict) -> bool:
  """Times one epoch into `rec`; False (and `rec` marked failed) on a non-finite loss or an
  error, so that one implementation's failure never takes the others down."""
  try:
    start = time.perf_counter()
    loss = impl.train_epoch(batches)  # a host float: the device has finished the epoch
    seconds = time.perf_counter() - start
  except Exception as e:  # noqa: BLE001 - e.g. out of device memory, a compile error
    mark_failed(rec, impl.name, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    return False
  if not math.isfinite(loss) or loss > 700:  # exp() of it would overflow float64
    mark_failed(rec, impl.name, f"non-finite loss ({loss})")
    return False
  rec["perplexity"].append(math.exp(loss))
  rec["epoch_seconds"].append(seconds)
  rec["tokens"].append(int(batches[0].size))
  return True


def train_all(impls: dict, epochs: list, records: dict) -> None:
  """Compile/capture and the first epoch one implementation at a time (peak memory is read
  then), then epochs 2.. round-robin, so that a slow drift in the machine's load (seen on
  shared CPUs) falls on every implementation alike. `records` fills as it goes."""
  progress = Progress(records, len(epochs))
  for name, impl in impls.items():
    records[name]["status"] = "running"
    try:
      records[name]["prepare_seconds"] = impl.prepare(epochs[0])
    except Exception as e:  # noqa: BLE001
      mark_failed(records[name], name, f"compile/capture failed: {type(e).__name__}: {e}")
      continue
    if train_epoch(impl, epochs[0], records[name]):
      records[name]["peak_memory_bytes"] = impl.peak_memory_bytes()
  progress.update(1)
  for k, batches in enumerate(epochs[1:], 2):
    for name, impl in impls.items():
      if records[name]["status"] == "running":
        train_epoch(impl, batches, records[name])
    progress.update(k)
  for rec in records.values():
    if rec["status"] == "running":
      rec["status"] = "ok"


def new_record(impl) -> dict:
  return {"description": protocol.IMPLS[impl.name][2], "layout": impl.layout,
          "device": impl.device_name, "precision": impl.precision, "status": "not run",
          "failed_epoch": None, "perplexity": [], "epoch_seconds": [], "tokens": [],
          "prepare_seconds": None, "peak_memory_bytes": None, "samples": {}, "error": None}


def summarize(records: dict, impls: dict) -> None:
  """Adds the throughput figures (shared/metrics.py) and the speed-up over the baseline."""
  for name, rec in records.items():
    rec.update(metrics.throughput(rec["tokens"], rec["epoch_seconds"], rec["perplexity"]))
    rec["execution"] = impls[name].execution  # final: a failed CUDA-graph capture rewrites it
  base = records.get(protocol.BASELINE, {}).get("steady_tokens_per_s")
  for rec in records.values():
    rate = rec["steady_tokens_per_s"]
    rec["speedup_vs_reference"] = rate / base if rate and base else None


def judge(rows: list, impls: dict) -> bool:
  """Parity is judged at full float32 only; a TF32 run reports its figures unjudged."""
  judged = all(impl.precision == "float32" for impl in impls.values())
  if not judged:
    for row in rows:
      row["passed"] = None
  return judged


def inputs_block(config, epochs) -> dict:
  return {"seed": config.seed, "sampling": config.sampling, "epochs": len(epochs),
          "batches_per_epoch": int(epochs[0][0].shape[0]), "batch_shape": list(epochs[0][0].shape[1:]),
          "tokens": config.max_tokens, "vocab_size": config.vocab_size, "data_sha1": data.SHA1,
          "init": "scratch layout: normal(0, 0.01) weights, zero biases; built-in layout: "
                  "U(-1/sqrt(h), 1/sqrt(h)) as torch.nn.GRU and nn.Linear draw"}


def print_summary(results: dict) -> None:
  print(f"\n{'implementation':<16} {'status':<12} {'final ppl':>10} {'tokens/s':>12} {'speed-up':>9} "
        f"{'compile s':>10}")
  for n, r in results["impls"].items():
    ppl = f"{r['perplexity'][-1]:.4f}" if r["perplexity"] else "–"
    rate = f"{r['steady_tokens_per_s']:,.0f}" if r.get("steady_tokens_per_s") else "–"
    up = f"{r['speedup_vs_reference']:.2f}x" if r.get("speedup_vs_reference") else "–"
    prep = f"{r['prepare_seconds']:.2f}" if r["prepare_seconds"] is not None else "–"
    print(f"{n:<16} {r['status']:<12} {ppl:>10} {rate:>12} {up:>9} {prep:>10}")
  for c in results["parity"]:
    if c["passed"] is not None:
      verdict = "PASS" if c["passed"] else "FAIL"
      print(f"parity {verdict}: {c['impl']} vs {c['anchor']} {c['check']} "
            f"{c['measured']:.2e} (tolerance {c['tolerance']:.0e})")


def setup(args):
  """Everything that can fail on bad input, before any training: (config, vocab, epochs, impls)."""
  try:
    config = build_config(args)
    names = parse_impls(args.impls)
    corpus, vocab = data.load_corpus(config.max_tokens, args.data_dir)
    config = dataclasses.replace(config, vocab_size=len(vocab)).validate()
    epochs = data.training_epochs(corpus, config)
    device = None if args.device == "auto" else args.device
    impls = {n: protocol.make_impl(n, config, device) for n in names}
  except (ValueError, data.DataError) as e:
    fail(str(e))
  # Identical inputs: one set of initial weights per layout, converted by each impl.
  initial = {layout: P.init_params(layout, config.seed, config.vocab_size, config.num_hiddens)
             for layout in {impl.layout for impl in impls.values()}}
  for impl in impls.values():
    impl.set_params(initial[impl.layout])
  return config, vocab, epochs, impls


def run(args, config, vocab, epochs, impls) -> dict:
  try:
    parity = [] if args.bench else first_minibatch_parity(impls, epochs[0][0][0], epochs[0][1][0])
  except KeyboardInterrupt:
    fail("interrupted before training: nothing to report")
  records, partial = {n: new_record(impl) for n, impl in impls.items()}, False
  try:
    train_all(impls, epochs, records)
  except KeyboardInterrupt:
    partial = True
    for rec in records.values():
      if rec["status"] == "running":
        rec["status"] = "interrupted"
    print("\ninterrupted: writing what finished", flush=True)
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # what finished is written, whatever comes now
  for name, impl in impls.items():
    if not args.bench and records[name]["status"] == "ok":
      records[name]["samples"] = {p: impl.predict(p, SAMPLE_LENGTH, vocab) for p in SAMPLE_PREFIXES}
  summarize(records, impls)
  parity += [] if args.bench else trajectory_parity(records)
  return {"created": datetime.datetime.now().isoformat(timespec="seconds"),
          "device": devices_label(impls), "preset": args.preset, "partial": partial,
          "config": dataclasses.asdict(config), "inputs": inputs_block(config, epochs),
          "environment": report.environment(ROOT), "baseline": protocol.BASELINE,
          "ppl_target": metrics.PPL_TARGET, "tolerances": metrics.TOLERANCES,
          "ppl_first_epochs": metrics.FIRST_EPOCHS, "divergence_threshold": metrics.DIVERGENCE,
          "parity": parity, "parity_judged": judge(parity, impls),
          "forward_only": {n: why for n, (_, why) in protocol.FORWARD_ONLY.items() if n in impls},
          "sample_prefixes": list(SAMPLE_PREFIXES), "sample_length": SAMPLE_LENGTH, "impls": records}


def devices_label(impls: dict) -> str:
  return " + ".join(sorted({impl.device_name for impl in impls.values()}))


def check_out(out: pathlib.Path) -> pathlib.Path:
  """Fails now, not after training, if the report could not be written to `out`."""
  if out.exists():
    fail(f"--out {out} exists; reports are never overwritten: choose another folder")
  try:
    out.parent.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    fail(f"cannot create {out.parent} ({e.strerror}); choose another --out")
  if not os.access(out.parent, os.W_OK):
    fail(f"{out.parent} is not writable; choose another --out")
  return out


def main(argv=None) -> int:
  args = parse_args(argv)
  if args.bench and args.out:
    fail("--bench writes no report: drop --out, or drop --bench for a report")
  out = check_out(pathlib.Path(args.out)) if args.out else None
  config, vocab, epochs, impls = setup(args)
  if out is None and not args.bench:
    out = check_out(report.default_dir(ROOT, devices_label(impls), args.preset))
  print(f"{len(impls)} implementations x {config.num_epochs} epochs, seed {config.seed}, "
        f"devices: {devices_label(impls)}", flush=True)
  results = run(args, config, vocab, epochs, impls)
  print_summary(results)
  if out is not None:
    print(f"report: {report.write_report(results, out)}")
  if results["partial"]:
    return 130
  failed = [c for c in results["parity"] if c["passed"] is False]
  failed += [n for n, r in results["impls"].items() if r["status"] != "ok"]
  return 1 if args.strict and failed else 0


if __name__ == "__main__":
  sys.exit(main())
