"""One comparison, start to finish: identical inputs, parity on the first minibatch, every
implementation trained epoch by epoch, the trajectories compared and, with a float64
twin of every implementation, the distance of each float32 run from the exact trajectory.

`compare_once` is the whole of it for one seed; compare.py calls it once, shared/seeds.py
once per seed. Nothing here imports a framework: implementations come from the registry.
"""
import copy
import dataclasses
import functools
import itertools
import math
import sys
import time

import numpy as np
from tqdm import tqdm

from shared import checkpoint, data, limits, metrics, precision, probes, protocol, stats, timing
from shared import params as P

SAMPLE_PREFIXES = ("time traveller", "traveller")
SAMPLE_LENGTH = 50


class Progress:
  """A tqdm bar per implementation (epochs, perplexity, tokens/s) on a terminal; in a log,
  one line per implementation every tenth of the run."""

  def __init__(self, records: dict, total: int, label: str = ""):
    self.records, self.total, self.label, self.tty = records, total, label, sys.stdout.isatty()
    self.bars = {n: tqdm(total=total, desc=f"{label}{n}", position=i, unit="epoch", file=sys.stdout,
                         dynamic_ncols=True) for i, n in enumerate(records)} if self.tty else {}

  @staticmethod
  def status(rec) -> str:
    if not rec["perplexity"]:
      return rec["status"]
    rate = rec["tokens"][-1] / rec["epoch_seconds"][-1]
    return f"ppl {rec['perplexity'][-1]:8.3f}  {rate / 1e3:8.1f}k tokens/s  {rec['status']}"

  def update(self, epoch: int) -> None:
    for name, rec in self.records.items():
      if name in self.bars:
        self.bars[name].n = len(rec["perplexity"])
        self.bars[name].set_postfix_str(self.status(rec))
    if not self.tty and (epoch in (1, self.total) or epoch % max(1, self.total // 10) == 0):
      for name, rec in self.records.items():
        print(f"{self.label}{name:<16} {len(rec['perplexity']):>4}/{self.total}  {self.status(rec)}", flush=True)

  def close(self) -> None:
    for bar in self.bars.values():
      bar.close()


# --- identical inputs ------------------------------------------------------------------
def build_impls(names, config, device=None) -> tuple:
  """({name: implementation}, {name: why unavailable}) on `device`. Every implementation
  starts from the same weights: the canonical initial weights of its layout from
  config.seed, generated once per layout here so that the identical start is visible in
  the orchestrator, converted by each side. One that cannot run on this machine
  (protocol.Unavailable, e.g. no C++ compiler for Inductor) is set aside with its reason."""
  impls, unavailable = {}, {}
  for n in names:
    try:
      impls[n] = protocol.make_impl(n, config, device)
    except protocol.Unavailable as e:
      unavailable[n] = str(e)
  initial = {layout: P.init_params(layout, config.seed, config.vocab_size, config.num_hiddens)
             for layout in {impl.layout for impl in impls.values()}}
  for impl in impls.values():
    impl.set_params(initial[impl.layout])
  return impls, unavailable


def inputs_block(config, epochs, corpus) -> dict:
  return {"seed": config.seed, "sampling": config.sampling, "epochs": len(epochs),
          "batches_per_epoch": int(epochs[0][0].shape[0]), "batch_shape": list(epochs[0][0].shape[1:]),
          "tokens": config.max_tokens, "corpus_characters": len(corpus), "vocab_size": config.vocab_size,
          "data_sha1": data.SHA1,
          "init": "scratch layout: normal(0, 0.01) weights, zero biases; built-in layout: "
                  "U(-1/sqrt(h), 1/sqrt(h)) as torch.nn.GRU and nn.Linear draw"}


# --- parity ----------------------------------------------------------------------------
def first_minibatch_parity(impls: dict, X, Y, arith: str) -> list:
  """Checks 1 and 2 (forward logits, gradients) from the run's initial weights, before
  training, each relative to the anchor's own scale (shared/metrics.py); a pair of bf16
  twins, in bf16 and with the RMS of its logits too. `arith`: the run's arithmetic."""
  out = {n: (impl.forward(X)[0], impl.loss_and_grads(X, Y)[1]) for n, impl in impls.items()}
  rows = []
  for group, n, a in protocol.parity_pairs(impls):
    at = protocol.arithmetic(n, arith)
    for k, check in enumerate(("logits_rel", "grads_rel")):
      rows.append(metrics.check(group, n, a, check, metrics.rel_diff_arrays(out[n][k], out[a][k]), at,
                                note=metrics.nonfinite(out[n][k], out[a][k], n, a)))
    if at == "bf16":
      rows.append(metrics.check(group, n, a, "logits_rms_rel", metrics.rms_rel(out[n][0], out[a][0]), at))
  for layout, n, a, why, judged in protocol.forward_only_pairs(impls):
    rows.append(metrics.check(layout, n, a, "logits_rel", metrics.rel_diff_arrays(out[n][0], out[a][0]),
                              protocol.arithmetic(n, arith), note=metrics.nonfinite(out[n][0], out[a][0], n, a)
                              or why, judged=judged))
  return rows


def release(impls: dict) -> None:
  """The harness is done with these: a data-parallel row's processes go (GRUImpl.release)."""
  for impl in impls.values():
    getattr(impl, "release", lambda: None)()


def probe_parity(names, config, first_epoch, device) -> list:
  """The probes of shared/probes.py on fresh copies of `names` (built with the probe's
  theta and learning rate), after this phase's training, so that no probe compile warms
  its rows' caches before they are timed. A probe that raises fails its rows with the
  reason."""
  probe_config = probes.probe_config(config)
  try:
    impls, unavailable = build_impls(names, probe_config, device)
  except Exception as e:  # noqa: BLE001 - e.g. out of memory: the trained results stand
    impls, unavailable = {}, {n: protocol.one_line(e) for n in names}
  outputs = {n: f"cannot run here: {why}" for n, why in unavailable.items()}
  for n, impl in impls.items():
    try:
      outputs[n] = probes.measure(impl, first_epoch, probe_config)
    except Exception as e:  # noqa: BLE001 - reported in the probe's rows
      if getattr(impl, "fatal", False):
        raise
      outputs[n] = protocol.one_line(e)
  release(impls)
  return probes.rows(outputs, config.dtype, config.carries_state)


def trajectory_parity(records: dict, arith: str, carries_state: bool = True) -> list:
  """Check 3: per-epoch perplexity against the group's anchor (a pair with a known training
  deviation, protocol.training_deviation, reported with its reason and not judged)."""
  rows, done = [], [n for n, r in records.items() if r["perplexity"]]
  for group, n, a in protocol.parity_pairs(done):
    p, q, first = records[n]["perplexity"], records[a]["perplexity"], metrics.FIRST_EPOCHS
    why, at = protocol.training_deviation(n, a, carries_state), protocol.arithmetic(n, arith)
    check = functools.partial(metrics.check, group, n, a, arith=at, judged=not why)
    rows.append(check("ppl_first10_rel", metrics.rel_diff(p[:first], q[:first]), note=why))
    rows.append(check("ppl_all_rel", metrics.rel_diff(p, q), note=why))
    rows.append(check("ppl_diverge_epoch", metrics.first_divergence(p, q, metrics.DIVERGENCE[at]),
                      note=why))
    if len(p) == len(q):  # judged: the last ten epochs' medians; reported: the last epoch alone
      final = metrics.rel_diff([metrics.final_perplexity(p)], [metrics.final_perplexity(q)])
      rows.append(check("ppl_final_rel", final, note=why or f"medians of the last {metrics.final_epochs(p)} epochs"))
      rows.append(check("ppl_last_rel", metrics.rel_diff(p[-1:], q[-1:]), note=why))
  return rows


def judge(rows: list, impls: dict) -> bool:
  """Parity is judged at full float32, float64 and bf16 (each in its own tolerances); a TF32
  run reports its figures unjudged."""
  judged = all(impl.precision in ("float32", "float64", "bf16") for impl in impls.values())
  if not judged:
    for row in rows:
      row["passed"] = None
  return judged


# --- training --------------------------------------------------------------------------
def new_record(name: str, device: str, precision: str, threads=None) -> dict:
  return {"description": protocol.description(name), "layout": protocol.layout_of(name),
          "framework": protocol.framework_of(name), "device": device, "precision": precision,
          "threads": threads, "status": "not run", "failed_epoch": None, "perplexity": [], "epoch_seconds": [],
          "epoch_cpu_seconds": [], "tokens": [], "clipped_steps": [], "prepare_seconds": None,
          "peak_memory_bytes": None, "samples": {}, "error": None, "execution": "", "parallel": None,
          "launch_seconds": None, "reduction": None,
          # a run resumed from a checkpoint (shared/checkpoint.py): the epochs (1-based) that
          # came first after a resume, kept out of the steady figures, and each resume's compile
          "resumed_epochs": [], "resume_prepare_seconds": []}


def new_records(impls: dict, unavailable: dict, config) -> dict:
  """A record per implementation in registry order; an unavailable one failed with its reason."""
  records = {n: {**new_record(n, impl.device_name, impl.precision, impl.threads), "parallel": impl.parallel,
               "launch_seconds": impl.launch_seconds} for n, impl in impls.items()}
  for n, why in unavailable.items():
    records[n] = {**new_record(n, "–", config.dtype), "status": "failed", "failed_epoch": 1, "error": why,
                  "execution": "unavailable on this machine"}
  order = sorted(records, key=protocol.order_key)
  return {n: records[n] for n in order}


def mark_failed(rec: dict, name: str, why: str, impl=None) -> None:
  """`rec` failed with `why`; the others go on. Except in a launched run (one rank of
  several, shared/distributed.py), where a rank that skipped a collective its peers make
  would leave them out of step: there every rank stops, with the line."""
  if getattr(impl, "fatal", False):
    raise SystemExit(f"{name}: {why}; a launched run stops every rank")
  rec.update(status="failed", failed_epoch=len(rec["perplexity"]) + 1, error=why)
  tqdm.write(f"{name}: {why} at epoch {rec['failed_epoch']}; marked failed, the others go on", file=sys.stdout)


def train_epoch(impl, batches, rec: dict) -> bool:
  """Times one epoch into `rec` (wall and process CPU seconds, and the steps at which
  clipping fired); False (and `rec` marked failed) on a non-finite loss or an error, so
  that one implementation's failure never takes the others down."""
  try:
    clock = getattr(impl, "cpu_seconds", time.process_time)  # GRUImpl's; a bench script's trainer has none
    start = timing.now(clock)
    loss = impl.train_epoch(batches)  # a host float: the device has finished the epoch
    seconds, cpu = timing.since(start, clock)
  except Exception as e:  # noqa: BLE001 - e.g. out of device memory, a compile error
    mark_failed(rec, impl.name, protocol.one_line(e), impl)
    return False
  if not math.isfinite(loss) or loss > 700:  # exp() of it would overflow float64
    mark_failed(rec, impl.name, f"non-finite loss ({loss})")
    return False
  rec.update(perplexity=rec["perplexity"] + [math.exp(loss)], epoch_seconds=rec["epoch_seconds"] + [seconds],
             epoch_cpu_seconds=rec["epoch_cpu_seconds"] + [cpu], tokens=rec["tokens"] + [int(batches[0].size)],
             clipped_steps=rec["clipped_steps"] + [impl.clipped_steps])  # one update: a Ctrl-C leaves them equal
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
  no implementation always runs right after the same one (a row that leaves the caches
  cold, or the machine hot, does so to every other alike). Plain rotation would not do:
  it keeps each one's predecessor in all but one round of n."""
  if not names:
    return []
  rows = williams(len(names))
  return [names[i] for i in rows[(k - 2) % len(rows)]]


def train_all(impls: dict, epochs: list, records: dict, progress, load=None, on_epoch=None) -> None:
  """Compile/capture and the first epoch one implementation at a time (peak memory is read
  then), then epochs 2.. round-robin, the order balanced over rounds (`round_order`):
  every implementation's epoch k runs within one round, so a ratio of their epoch-k rates
  compares epochs that ran seconds apart. The machine's load is measured over those
  rounds (into `load`, a dict, when given), not assumed to fall alike: a load that
  favours one framework, e.g. PyTorch's threads under contention, stays in the figures,
  and the report says how busy the machine was. `records` fills as it goes;
  `on_epoch()` is called after each epoch of each row (a checkpoint, shared/checkpoint.py),
  `progress.update(epoch)` after each round, `progress.close()` at the end. Records restored
  from a checkpoint go on from their own epoch (`start`). A Ctrl-C marks what was running
  "interrupted" (what finished stays) and propagates."""
  # The epoch's minibatch count can differ between epochs (the random offset): every shape
  # is compiled up front, so that no compile lands in a timed epoch.
  shapes = list({batches[0].shape: batches for batches in epochs}.values())  # epochs[0] first
  on_epoch, start = on_epoch or (lambda: None), None
  try:
    for name, impl in impls.items():
      if records[name]["status"] in ("not run", "running") and len(records[name]["perplexity"]) < len(epochs):
        begin(impl, shapes, epochs[0], records[name])
        on_epoch()
    progress.update(1)
    start = timing.load_start()
    for k, batches in enumerate(epochs[1:], 2):
      for name in round_order(list(impls), k):
        if records[name]["status"] == "running" and len(records[name]["perplexity"]) == k - 1:
          train_epoch(impls[name], batches, records[name])
          on_epoch()
      progress.update(k)
  except KeyboardInterrupt:
    _finish(records, "interrupted")
    raise
  finally:
    progress.close()
    if load is not None and start is not None:
      load.update(timing.load_since(start))
  _finish(records, "ok")


def begin(impl, shapes: list, first_epoch, rec: dict) -> None:
  """Compiles/captures every epoch shape, then trains the first epoch and reads the peak
  memory. A row restored from a checkpoint compiles again and goes on from its own epoch:
  that compile and the epoch after it are kept apart from its figures (`resumed_epochs`)."""
  rec["status"] = "running"
  try:
    seconds = sum(impl.prepare(batches) for batches in shapes)
  except Exception as e:  # noqa: BLE001
    mark_failed(rec, impl.name, f"compile/capture failed: {protocol.one_line(e)}", impl)
    return
  if rec["perplexity"]:
    rec["resumed_epochs"].append(len(rec["perplexity"]) + 1)
    rec["resume_prepare_seconds"].append(seconds)
  else:
    rec["prepare_seconds"] = seconds
    if train_epoch(impl, first_epoch, rec):
      rec["peak_memory_bytes"] = impl.peak_memory_bytes()


def _finish(records: dict, status: str) -> None:
  for rec in records.values():
    if rec["status"] == "running":
      rec["status"] = status


def rates(rec: dict) -> list:
  """Per-epoch tokens/s of a record, epoch 1 first; None for the first epoch after a resume
  (it shared the machine's caches with a fresh compile), so that rates paired round by round
  (stats.paired_ratio) leave that round out."""
  resumed = set(rec.get("resumed_epochs") or ())
  return [None if k in resumed else t / s for k, (t, s) in enumerate(zip(rec["tokens"], rec["epoch_seconds"]), 1)]


def summarize(records: dict, impls: dict, baseline: str = protocol.BASELINE) -> None:
  """Adds the throughput figures (shared/metrics.py) and the speed-up over `baseline`: the
  median over rounds of the ratio of their steady epochs' rates, with its interval."""
  for name, rec in records.items():
    rec.update(metrics.throughput(rec["tokens"], rec["epoch_seconds"], rec["perplexity"],
                                  rec["epoch_cpu_seconds"], rec["prepare_seconds"], rec.get("resumed_epochs", ())))
    if name in impls:
      rec["execution"] = impls[name].execution  # final: a failed CUDA-graph capture rewrites it
  base = records.get(baseline)
  for rec in records.values():
    ratio, low, high = stats.paired_ratio(rates(rec)[1:], rates(base)[1:]) if base else (None, None, None)
    rec["speedup_vs_reference"] = ratio
    rec["speedup_ci"] = None if low is None else [low, high]
  for name, rec in records.items():  # a data-parallel row against its own row on one device
    one = records.get(protocol.split_name(name)[0]) if protocol.split_name(name)[1] > 1 else None
    rec["vs_one_device"], rec["vs_one_device_ci"] = _paired(rec, one)
  for name, rec in records.items():  # a bf16 twin against its own row in float32, same rounds
    row = records.get(protocol.split_precision(name)[0]) if protocol.split_precision(name)[1] else None
    rec["vs_float32"], rec["vs_float32_ci"] = _paired(rec, row)


def _paired(rec: dict, other) -> tuple:
  """(ratio, [low, high] or None): `rec`'s steady rates over `other`'s, paired round by round."""
  ratio, low, high = stats.paired_ratio(rates(rec)[1:], rates(other)[1:]) if other else (None, None, None)
  return ratio, None if low is None else [low, high]


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
    return {"what": f"profile failed: {protocol.one_line(e)}", "ms_per_step": None, "events": None}


def samples(impl, vocab) -> dict:
  """Greedy text after each prefix; a failure is recorded in place of the text, not raised."""
  try:
    return {p: impl.predict(p, SAMPLE_LENGTH, vocab) for p in SAMPLE_PREFIXES}
  except Exception as e:  # noqa: BLE001 - a trained run is worth more than its samples
    return {p: f"(generation failed: {protocol.one_line(e)})" for p in SAMPLE_PREFIXES}


def restore(impls: dict, fresh: dict, ck, key: str) -> dict:
  """The records of unit `key`: as its checkpoint left them, every row that was training
  given its parameters back; else `fresh` (a new run). The checkpoint's extra state
  (e.g. first-minibatch parity) is returned under "state"."""
  live = ck.live(key)
  if live is None:
    return {"records": fresh, "state": None}
  state, params = copy.deepcopy(live)  # the checkpoint keeps its own, consistent with its parameters
  for name, p in params.items():
    impls[name].set_params(p)
  return {"records": state["records"], "state": state}


def run_phase(built: tuple, epochs: list, vocab, config, bench=False, label="", device=None,
              ck=checkpoint.OFF, key="run") -> dict:
  """Parity on the first minibatch, training (the machine's load measured meanwhile),
  samples, the probes and trajectory parity of one set of implementations (`built` as
  build_impls returns it). A Ctrl-C anywhere keeps what finished and sets `partial`.
  Checkpointed as unit `key` of `ck` after each epoch, and resumed from it."""
  impls, unavailable = built
  arith = config.dtype
  restored = restore(impls, new_records(impls, unavailable, config), ck, key)
  records, parity, partial, load = restored["records"], (restored["state"] or {}).get("parity"), False, {}
  try:
    if parity is None:
      parity = [] if bench else first_minibatch_parity(impls, epochs[0][0][0], epochs[0][1][0], arith)
    train_all(impls, epochs, records, Progress({n: records[n] for n in impls}, len(epochs), label), load,
              lambda: ck.epoch_done(key, {"records": records, "parity": parity}, impls, records))
    for name, impl in impls.items():
      if not bench and records[name]["status"] == "ok":
        records[name]["samples"] = samples(impl, vocab)
        records[name]["reduction"] = reduction(impl, epochs[0])
    if not bench:
      parity += probe_parity(list(impls), config, epochs[0], device)
  except KeyboardInterrupt:  # train_all marked what was running
    partial = True
    tqdm.write("\ninterrupted: keeping what finished", file=sys.stdout)
  release(impls)
  summarize(records, impls)
  bounds = limits.attach(records, config)  # after training: the bound never shares the machine with an epoch
  parity += [] if bench else trajectory_parity(records, arith, config.carries_state)
  return {"partial": partial, "parity": parity, "parity_judged": judge(parity, impls), "impls": records,
          "load": load or None, "limits": bounds}


def checkpointed_phase(ck, key: str, build, *args, **kwargs) -> dict:
  """run_phase as unit `key` of `ck`: the stored result if it finished before a resume (the
  implementations `build()` would give are not built), else run now and stored once whole."""
  phase = ck.done(key)
  if phase is None:
    phase = run_phase(build(), *args, ck=ck, key=key, **kwargs)
    if not phase["partial"]:
      ck.finish(key, phase)
  return phase


# --- the float64 ground truth ----------------------------------------------------------
def truth_gaps(records: dict, truth_records: dict) -> dict:
  """Per float32 (or bf16) implementation that trained to the end, and whose float64 run did:
  its perplexity gap to its own model's float64 trajectory, epoch by epoch; a bf16 twin's
  to its row's. One threshold for both, float32's, so that the two part in one picture."""
  threshold = metrics.DIVERGENCE["float32"]
  truth = {n: (truth_records.get(protocol.split_precision(n)[0]) or {}) for n in records}
  return {n: metrics.gap_summary(r["perplexity"], truth[n]["perplexity"], threshold)
          for n, r in records.items() if r["status"] == "ok" and truth[n].get("status") == "ok"}


def truth_verdicts(gaps: dict) -> list:
  """One line per parity group (and its bf16 twins): which framework's float32 (bf16) runs
  stay closest to float64.
  A framework with several rows in the group is represented by its typical row (the
  median over its rows), so that more rows do not mean more chances to be closest."""
  lines = []
  for (group, members), suffix in itertools.product(protocol.PARITY_GROUPS.items(), ("", protocol.BF16)):
    rows, group = {}, group + suffix
    for n in (m + suffix for m in members):
      if n in gaps:
        rows.setdefault(protocol.framework_of(n), []).append(n)
    if len(rows) < 2:
      continue
    typical = {fw: {k: float(np.median([gaps[n][k] for n in names])) for k in ("median", "max")}
               for fw, names in rows.items()}
    (a, fa), *rest = sorted(typical.items(), key=lambda kv: kv[1]["median"])
    names = {fw: ", ".join(f"{n} {gaps[n]['median']:.1e}" for n in ns) for fw, ns in rows.items()}
    arith = "bf16" if suffix else "float32"
    against = lambda k: " and ".join(f"{f[k]:.1e}" for _, f in rest)
    lines.append(f"{group}, this seed only (one seed ranks nothing in general: --seeds gives paired "
                 f"intervals): {a}'s {arith} runs stay closest to float64 by the median gap over epochs, "
                 f"{fa['median']:.1e} against {against('median')} ({'; '.join(names[fw] for fw in [a] + [b for b, _ in rest])}); "
                 f"by the max gap {'so do they' if all(fa['max'] <= f['max'] for _, f in rest) else 'the order changes'}, "
                 f"{fa['max']:.1e} against {against('max')}.")
  return lines


def truth_phase(block: dict, config, names, epochs, vocab, device, label: str, ck=checkpoint.OFF,
                key="run") -> None:
  """Adds the float64 ground truth to a finished float32 block. What goes wrong here never
  costs the float32 results: a Ctrl-C marks the block partial, an error is recorded."""
  config64 = dataclasses.replace(config, precision="float64")
  names = list(dict.fromkeys(protocol.split_precision(n)[0] for n in names))  # a twin's truth is its row's
  block["truth_left_out"] = {n: precision.FLOAT64_REFUSED[n] for n in names if n in precision.FLOAT64_REFUSED}
  names = precision.float64_rows(names)
  try:
    phase = checkpointed_phase(ck, f"{key} truth", lambda: build_impls(names, config64, device), epochs, vocab,
                               config64, label=f"{label}f64 ", device=device)
  except KeyboardInterrupt:
    block["partial"] = True
    return
  except Exception as e:  # noqa: BLE001
    block["truth_error"] = protocol.one_line(e)
    tqdm.write(f"the float64 truth failed ({block['truth_error']}); the float32 results stand", file=sys.stdout)
    return
  gaps = truth_gaps(block["impls"], phase["impls"])
  block["truth"] = {**phase, "gaps": gaps, "verdicts": truth_verdicts(gaps)}
  block["partial"] = phase["partial"]


def compare_once(config, names, corpus, vocab, device=None, bench=False, truth=False, label="",
                 built=None, ck=checkpoint.OFF, key="run") -> dict:
  """The whole comparison for config.seed: every implementation in `names` trained on the
  same minibatches from the same weights; with `truth`, each also trained in float64.
  `built` may hold build_impls' answer for this config (compare.py builds the first
  seed's up front, so that bad input fails before any training). Checkpointed in `ck` as
  units "<key> main" and "<key> truth"."""
  epochs = data.training_epochs(corpus, config)
  if built and ck.done(f"{key} main"):
    release(built[0])  # finished before a resume: its rows are not trained again
  phase = checkpointed_phase(ck, f"{key} main", lambda: built or build_impls(names, config, device), epochs, vocab,
                             config, bench, label, device)
  block = {"seed": config.seed, "inputs": inputs_block(config, epochs, corpus), **phase, "truth": None}
  if truth and not block["partial"]:
    truth_phase(block, config, names, epochs, vocab, device, label, ck, key)
  return block
