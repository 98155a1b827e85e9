"""One loop for every kind of run. A kind of run (shared/kinds/: a comparison and its float64
truth, several seeds, a sweep, an ablation) is a plan of units; this module alone executes
plans: it builds each unit's rows (starting their workers), resumes it from the checkpoint or
skips it when it finished before, trains it (shared/training.py), judges it, times its
bounds, releases its rows, and writes the checkpoint. A Ctrl-C keeps what finished and stops
the plan; a unit that fails is recorded with its reason and the next one runs.

    runner = Runner(units, device, vocab)
    runner.prepare()                   # builds the first unit: bad input fails before training
    outcomes, partial = runner.execute(ck)   # {unit key: outcome (JSON)}, interrupted or not

An outcome: {"status": "ok" | "failed" | "interrupted", "error", "parity", "parity_judged",
"load", "cells": [{"point", "config", "status", "error", "impls": {key: Record}, "limits"}]}.
"""
import copy
import dataclasses
import gc
import sys
import time

from tqdm import tqdm

from shared import bounds, interrupt, parity, registry, training
from shared import params as P
from shared.protocol import Unavailable, one_line
from shared.records import Record
from shared.workers import WorkerFailed


@dataclasses.dataclass
class Cell:
  """Rows that train with one configuration: a comparison's rows, a sweep point's, one
  setting of an ablation lever. Each row trains with row.config(config)."""
  rows: list                # shared.rows.Row values
  config: object            # shared.config.Config
  point: dict = dataclasses.field(default_factory=dict)  # what sets it apart ({}: nothing)
  keyed: object = None      # a row's record key (default: its name)
  process: bool = False     # every row in a fresh process of its own (a repeat of the run)

  def key(self, row) -> str:
    return self.keyed(row) if self.keyed else row.name


@dataclasses.dataclass
class Unit:
  """A unit of work, checkpointed as a whole once it finishes."""
  key: str                  # "run main", "seed 3 truth", "point 2", "lever unroll"
  cells: list
  epochs: object            # () -> the minibatches of every epoch, [(Xs, Ys)], (N, B, T) each
  label: str = ""           # before each row's name in the progress lines
  judged: bool = False      # first-minibatch parity, samples, probes and trajectory parity
  needs: str = ""           # a unit that must have finished "ok" first
  baseline: str = ""        # the record every speed-up is measured against


@dataclasses.dataclass
class Plan:
  """A kind of run, ready to execute: its units, and what makes results.json of their outcomes."""
  kind: str                 # results.json's kind: "compare", "seeds", "sweep", "ablation"
  what: str                 # one line on what it trains
  config: object            # the run's configuration, as its report states it
  units: list
  vocab: object
  frameworks: list          # whose runtime the report describes
  results: object           # (outcomes, partial) -> the kind's keys of results.json
  lines: object = None      # results -> console lines (None: the comparison's summary)


@dataclasses.dataclass
class _Built:
  cell: Cell
  impls: dict               # record key -> implementation
  records: dict             # record key -> Record
  error: str = None         # the whole cell could not be built


class Runner:
  def __init__(self, units: list, device=None, vocab=None):
    self.units, self.device, self.vocab, self.first = units, device, vocab, None

  def prepare(self) -> dict:
    """Builds the first unit's rows now, so that bad input fails before any training (its
    ValueError or WorkerFailed propagates); returns {row: why} of those that cannot run here."""
    self.first = [self._build_cell(c, strict=True) for c in (self.units[0].cells if self.units else ())]
    return {k: r.error for b in self.first for k, r in b.records.items() if k not in b.impls}

  def release(self) -> None:
    """Lets go of the rows `prepare` built (their worker processes stop), when the run ends
    before `execute`."""
    _release(self.first or [])
    self.first = None

  def devices(self) -> list:
    """The devices the first unit's rows run on ("cpu", "NVIDIA H200", ...)."""
    return [impl.device_name for b in self.first or () for impl in b.impls.values()]

  def execute(self, ck) -> tuple:
    """({unit key: outcome}, partial): every unit in order, those finished before a resume
    taken from the checkpoint `ck`; stops at a Ctrl-C."""
    outcomes = {}
    for k, unit in enumerate(self.units):
      built, self.first = (self.first if k == 0 else None), None
      if unit.needs and (outcomes.get(unit.needs) or {}).get("status") != "ok":
        continue
      if ck.done(unit.key) is not None:
        outcomes[unit.key] = ck.done(unit.key)
        _release(built or [])  # finished before a resume: its rows are not trained again
        continue
      outcomes[unit.key] = self.run(unit, ck, built)
      if outcomes[unit.key]["status"] == "interrupted":
        return outcomes, True
      ck.finish(unit.key, outcomes[unit.key])
    return outcomes, False

  def run(self, unit: Unit, ck, built=None) -> dict:
    """One unit, start to finish, as an outcome (JSON), with its wall time in "seconds"."""
    start = time.perf_counter()
    outcome = self._run(unit, ck, built)
    return {**outcome, "seconds": time.perf_counter() - start}

  def _run(self, unit: Unit, ck, built) -> dict:
    if built is None:
      gc.collect()  # the last unit's models and compiled programs go before this one's
      built = []
      try:
        for cell in unit.cells:
          built.append(self._build_cell(cell))
      except KeyboardInterrupt:  # while building: nothing of this unit to keep
        _release(built)
        return {"status": "interrupted", "error": None, "cells": []}
    if all(b.error for b in built):
      tqdm.write(f"{unit.key} could not start ({built[0].error}); the next unit goes on", file=sys.stdout)
      return {"status": "failed", "error": built[0].error, "cells": [_cell(b, []) for b in built]}
    try:
      return self._train(unit, built, ck)
    except Exception as e:  # noqa: BLE001 - one unit's failure does not lose the others
      tqdm.write(f"{unit.key} failed ({one_line(e)}); the next unit goes on", file=sys.stdout)
      return {"status": "failed", "error": one_line(e), "cells": []}
    finally:
      _release(built)

  def _build_cell(self, cell: Cell, strict=False) -> _Built:
    """The cell's rows, built; one that cannot run here (protocol.Unavailable) has a failed
    record with its reason. Any other error fails the cell (with `strict`, bad input is raised)."""
    impls, records = {}, {}
    try:
      for row in cell.rows:
        try:
          impl = impls[cell.key(row)] = registry.make(row, cell.config, self.device, cell.process)
          records[cell.key(row)] = Record(row.description(), row.info.layout, row.info.framework,
                                          impl.device_name, impl.precision, impl.threads, parallel=impl.parallel,
                                          launch_seconds=impl.launch_seconds)
        except Unavailable as e:
          records[cell.key(row)] = _unavailable(row, cell.config, str(e))
    except BaseException as e:  # noqa: BLE001 - e.g. out of memory while building, a refused option
      _release([_Built(cell, impls, records)])  # what was started goes, whatever comes now
      if not isinstance(e, Exception) or (strict and isinstance(e, (ValueError, WorkerFailed))):
        raise  # a Ctrl-C; or bad input: a device, an option, a worker that cannot start
      why = one_line(e)
      return _Built(cell, {}, {cell.key(r): _unavailable(r, cell.config, why, "") for r in cell.rows}, why)
    # Every row starts from the same weights: the canonical initial weights of its layout from
    # the seed, generated once per layout here, where the identical start is visible.
    c = cell.config
    start = {layout: P.init_params(layout, c.seed, c.vocab_size, c.num_hiddens)
             for layout in {impl.layout for impl in impls.values()}}
    for impl in impls.values():
      impl.set_params(start[impl.layout])
    order = sorted(cell.rows, key=lambda r: r.order())
    return _Built(cell, impls, {cell.key(r): records[cell.key(r)] for r in order})

  def _train(self, unit: Unit, built: list, ck) -> dict:
    impls = {k: i for b in built for k, i in b.impls.items()}
    rows = {b.cell.key(r): r for b in built for r in b.cell.rows}
    records = {k: r for b in built for k, r in b.records.items()}
    checks, load, partial, epochs = self._restore(unit, impls, records, ck), {}, False, unit.epochs()
    config = unit.cells[0].config
    try:
      if unit.judged and checks is None:
        checks = parity.first_minibatch(impls, rows, epochs[0][0][0], epochs[0][1][0], config.dtype)
      checks = checks or []
      save = lambda: ck.epoch_done(unit.key, lambda: {"records": _json(records), "parity": checks}, impls)  # noqa: E731
      training.train_all(impls, epochs, records, training.Progress({k: records[k] for k in impls}, len(epochs),
                                                                   unit.label), load, save)
      if unit.judged:
        self._judge_after(impls, rows, records, epochs, config, checks)
    except KeyboardInterrupt:  # train_all marked what was running
      partial, checks = True, checks or []  # a Ctrl-C may come before the first checks were made
      tqdm.write("\ninterrupted: keeping what finished", file=sys.stdout)
    _release(built)
    return self._finish(unit, built, impls, records, checks, load, partial)

  def _restore(self, unit: Unit, impls: dict, records: dict, ck):
    """The unit's records and checks as its checkpoint left them, every row that was training
    given its parameters back; None (checks not yet made) for a unit that starts afresh."""
    live = ck.live(unit.key)
    if live is None:
      return None
    state, params = copy.deepcopy(live)  # the checkpoint keeps its own, consistent with its parameters
    for key, p in params.items():
      impls[key].set_params(p)
    records.update({k: Record.from_json(r) for k, r in state["records"].items()})
    return state["parity"]

  def _judge_after(self, impls, rows, records, epochs, config, checks) -> None:
    """Samples, a data-parallel row's profiled reduction and each row's profiled time split from
    each row that finished; the probes on fresh copies of every row."""
    for key, impl in impls.items():
      if records[key].status == "ok":
        records[key].samples = training.samples(impl, self.vocab)
        records[key].reduction = training.reduction(impl, epochs[0])
        records[key].time_split = training.time_split(impl, epochs[0])
    checks += parity.probe([rows[k] for k in impls], config, epochs[0], self.device)

  def _finish(self, unit, built, impls, records, checks, load, partial) -> dict:
    """The figures of a trained unit: throughput and paired ratios, each cell's matmul bounds
    (after training: a bound never shares the machine with an epoch), trajectory parity."""
    for key, impl in impls.items():
      records[key].execution = impl.execution  # final: a failed CUDA-graph capture rewrites it
    training.summarize(records, _counterparts(built), unit.baseline)
    cells, measure = [], True
    for b in built:
      mine = {k: records[k] for k in b.records}
      infos = {b.cell.key(r): r.info for r in b.cell.rows}
      try:
        found = bounds.attach(mine, b.cell.config, infos) if measure and not b.error else []
      except KeyboardInterrupt:  # the first Ctrl-C, after the training: keep it, without the bounds
        if partial:
          raise  # a second one: compare.executed stops at once, the checkpoint whole
        interrupt.clear()
        partial, measure, found = True, False, []
        tqdm.write("\ninterrupted: keeping what finished, without the matmul bounds", file=sys.stdout)
      cells.append(_cell(b, found, mine))
    if unit.judged:
      rows = {b.cell.key(r): r for b in built for r in b.cell.rows}
      checks += parity.trajectory(_json(records), rows, unit.cells[0].config.dtype,
                                  unit.cells[0].config.carries_state)
    judged = parity.judge(checks, [i.precision for i in impls.values()])
    return {"status": "interrupted" if partial else "ok", "error": None, "parity": checks,
            "parity_judged": judged, "load": load or None, "cells": cells}


def build(rows: list, config, device=None) -> _Built:
  """The rows of one cell built as a unit builds them (for tests and bench scripts): .impls,
  .records by name; `release` them when done. Bad input is raised, as in `prepare`."""
  return Runner([], device)._build_cell(Cell(rows, config), strict=True)


def release(built: _Built) -> None:
  _release([built])


def _counterparts(built: list) -> dict:
  """{record key: (its row on one device's key, its float32 row's key)} within each cell."""
  out = {}
  for b in built:
    for r in b.cell.rows:
      key = b.cell.key(r)
      one = b.cell.key(r.single) if r.devices > 1 else None
      out[key] = (one if one != key else None, b.cell.key(r.float32) if r.bf16 else None)
  return out


def _cell(b: _Built, measured: list, records=None) -> dict:
  return {"point": b.cell.point, "config": b.cell.config.as_dict(), "status": "failed" if b.error else "ok",
          "error": b.error, "impls": _json(records if records is not None else b.records), "limits": measured}


def _unavailable(row, config, why: str, execution: str = "unavailable on this machine") -> Record:
  return Record(row.description(), row.info.layout, row.info.framework, "–", config.dtype, status="failed",
                failed_epoch=1, error=why, execution=execution)


def _json(records: dict) -> dict:
  return {k: r.to_json() for k, r in records.items()}


def _release(built: list) -> None:
  """The runner is done with these rows: a row trained in other processes stops them."""
  for b in built:
    for impl in b.impls.values():
      impl.release()
    b.impls = {}
