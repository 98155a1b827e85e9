"""A comparison of one seed: every row trained on the same minibatches from the same weights,
judged against its group's anchor and, with the float64 truth, each also trained in float64
(the exact trajectory of its model), each run's distance from it measured. Its units for
shared/runner.py, and the block of results.json their outcomes make (a "compare" report is
one block; a "seeds" report one per seed).
"""
import itertools
import sys

import numpy as np
from tqdm import tqdm

from shared import checkpoint, data, metrics, training
from shared.kinds import speed
from shared.rows import BASELINE, IMPLS, Row, group, groups
from shared.runner import Cell, Plan, Runner, Unit


def run(config, rows: list, corpus, vocab, device=None, bench=False, truth=False, ck=checkpoint.OFF) -> dict:
  """The whole comparison of `rows` (Row values) for config.seed, in this process, as its
  block (for tests and bench scripts; compare.py runs the same plan)."""
  runner = Runner(plan(config, rows, corpus, bench, truth), device, vocab)
  outcomes, _ = runner.execute(ck)
  return block(outcomes, config, rows, corpus, truth=truth)


def make(config, rows: list, corpus, vocab, bench=False, truth=False, launched=None, repeats=1) -> Plan:
  """A comparison of config.seed (`repeats` times, each in fresh processes): `plan`, and its
  report's keys from the outcomes."""
  def results(outcomes: dict, partial: bool) -> dict:
    main = outcomes.get("run main") or {"status": "interrupted", "cells": []}
    if main["status"] == "failed":
      raise ValueError(main["error"])
    out = block(outcomes, config, rows, corpus, truth=truth) if main["cells"] else {}
    if not any(r["perplexity"] for r in out.get("impls", {}).values()) and partial:
      raise ValueError("interrupted before training: nothing to report")
    return {**header(rows, config, launched), "kind": "compare", **out, "partial": partial}
  what = (f"{len(rows)} implementations x {config.num_epochs} epochs, seed(s) {config.seed}"
          + (f", {repeats} processes each" if repeats > 1 else "") + (", with the float64 truth" if truth else ""))
  return Plan("compare", what, config, plan(config, rows, corpus, bench, truth, repeats=repeats), vocab,
              list(dict.fromkeys(r.info.framework for r in rows)), results)


def plan(config, rows: list, corpus, bench=False, truth=False, label="", key="run", repeats=1) -> list:
  """Unit "<key> main" (the rows; judged unless `bench`); with `repeats` N > 1 the same
  again as "<key> repeat 2" .. N, every one of them with each row in a fresh process of its
  own (shared/kinds/speed.py: speed across processes); then with `truth` "<key> truth": the
  float64 twin of every row that has one (a bf16 twin's truth is its row's)."""
  epochs = lambda: data.training_epochs(corpus, config)  # noqa: E731 - drawn when the unit runs
  own = repeats > 1
  units = [Unit(f"{key} main", [Cell(rows, config, process=own)], epochs, label, judged=not bench, baseline=BASELINE)]
  units += [Unit(f"{key} repeat {k}", [Cell(rows, config, process=True)], epochs, f"{label}repeat {k}: ",
                 needs=units[0].key, baseline=BASELINE) for k in range(2, repeats + 1)]
  if truth:
    exact = [r for r in dict.fromkeys(r.float32 for r in rows) if not r.info.no_float64]
    units.append(Unit(f"{key} truth", [Cell(exact, config.set(precision="float64"))], epochs, f"{label}f64 ",
                      judged=True, needs=f"{key} main", baseline=BASELINE))
  return units


def header(rows: list, config, launched=None) -> dict:
  """The keys a comparison report (and a several-seed one) has beside its blocks."""
  present = {r.impl for r in rows}
  return {"baseline": BASELINE, "launched": launched, "ppl_target": metrics.PPL_TARGET,
          "tolerances": metrics.TOLERANCES, "divergence_thresholds": metrics.DIVERGENCE,
          "ppl_first_epochs": metrics.FIRST_EPOCHS,
          "forward_only": {n: i.forward_only.why for n, i in IMPLS.items() if i.forward_only and n in present},
          "training_deviations": {n: i.deviation for n, i in IMPLS.items()
                                  if i.deviation and n in present and config.carries_state},
          "sample_prefixes": list(training.SAMPLE_PREFIXES), "sample_length": training.SAMPLE_LENGTH}


def phase(outcome: dict) -> dict:
  """A unit's outcome as a phase of a block: its records, checks, load and bounds."""
  cell = outcome["cells"][0]
  return {"partial": outcome["status"] == "interrupted", "parity": outcome["parity"],
          "parity_judged": outcome["parity_judged"], "impls": cell["impls"], "load": outcome["load"],
          "limits": cell["limits"]}


def block(outcomes: dict, config, rows: list, corpus, key="run", truth=False) -> dict:
  """One seed's comparison from its units' outcomes (the main unit's must have trained)."""
  first = data.training_epochs(corpus, config, 1)[0][0]  # the first epoch: its shapes
  inputs = {"seed": config.seed, "sampling": config.sampling, "epochs": config.num_epochs,
            "batches_per_epoch": int(first.shape[0]), "batch_shape": list(first.shape[1:]),
            "tokens": config.max_tokens, "corpus_characters": len(corpus), "vocab_size": config.vocab_size,
            "data_sha1": data.SHA1,
            "init": "scratch layout: normal(0, 0.01) weights, zero biases; built-in layout: "
                    "U(-1/sqrt(h), 1/sqrt(h)) as torch.nn.GRU and nn.Linear draw"}
  out = {"seed": config.seed, "inputs": inputs, **phase(outcomes[f"{key} main"]), "truth": None}
  if truth and not out["partial"]:
    _add_truth(out, outcomes.get(f"{key} truth"), rows)
  repeats = [o["cells"][0]["impls"] for k, o in outcomes.items() if k.startswith(f"{key} repeat") and o["cells"]]
  out["repeats"] = [{n: {f: r[f] for f in SPEED} for n, r in p.items()} for p in repeats]
  out["speed"] = speed.summary([out["impls"], *out["repeats"]], out["parity"], config.carries_state)
  return out


# What a repeat (a process of its own) keeps of each row: its speed and that it trained the same.
SPEED = ("status", "steady_tokens_per_s", "tokens_per_s_ci", "epoch_seconds", "epoch_cpu_seconds", "tokens",
         "resumed_epochs", "cores_used", "prepare_seconds", "launch_seconds", "perplexity")


def _add_truth(out: dict, outcome: dict, rows: list) -> None:
  """The float64 truth into a finished block: what went wrong there never costs the float32
  results (a Ctrl-C marks the block partial, an error is recorded)."""
  out["truth_left_out"] = {r.name: r.info.no_float64 for r in dict.fromkeys(r.float32 for r in rows)
                           if r.info.no_float64}
  if outcome["status"] == "failed":
    out["truth_error"] = outcome["error"]
    tqdm.write(f"the float64 truth failed ({out['truth_error']}); the float32 results stand", file=sys.stdout)
  elif not outcome["cells"]:  # interrupted before it trained
    out["partial"] = True
  else:
    truth = phase(outcome)
    gaps = truth_gaps(out["impls"], truth["impls"], {r.name: r for r in rows})
    out["truth"] = {**truth, "gaps": gaps, "verdicts": truth_verdicts(gaps)}
    out["partial"] = truth["partial"]


def truth_gaps(records: dict, truth: dict, rows: dict) -> dict:
  """Per row that trained to the end, and whose float64 run did: its perplexity gap to its
  own model's float64 trajectory, epoch by epoch (a bf16 twin's to its row's). One threshold
  for both, float32's, so that the two part in one picture."""
  threshold = metrics.DIVERGENCE["float32"]
  exact = {n: truth.get(rows[n].float32.name) or {} for n in records}
  return {n: metrics.gap_summary(r["perplexity"], exact[n]["perplexity"], threshold)
          for n, r in records.items() if r["status"] == "ok" and exact[n].get("status") == "ok"}


def truth_verdicts(gaps: dict) -> list:
  """One line per parity group (and its bf16 twins): which framework's float32 (bf16) runs
  stay closest to float64. A framework with several rows in the group is represented by its
  typical row (the median over its rows), so that more rows do not mean more chances to be
  closest."""
  lines = []
  for g, bf16 in itertools.product(groups(), (False, True)):
    by = {}
    for r in (Row(n, bf16) for n in group(g)):
      if r.name in gaps:
        by.setdefault(r.info.framework, []).append(r.name)
    if len(by) > 1:
      lines.append(_verdict(g + ("-bf16" if bf16 else ""), by, gaps, "bf16" if bf16 else "float32"))
  return lines


def _verdict(g: str, by: dict, gaps: dict, arith: str) -> str:
  typical = {fw: {k: float(np.median([gaps[n][k] for n in names])) for k in ("median", "max")}
             for fw, names in by.items()}
  (a, fa), *rest = sorted(typical.items(), key=lambda kv: kv[1]["median"])
  names = {fw: ", ".join(f"{n} {gaps[n]['median']:.1e}" for n in ns) for fw, ns in by.items()}
  against = lambda k: " and ".join(f"{f[k]:.1e}" for _, f in rest)  # noqa: E731
  return (f"{g}, this seed only (one seed ranks nothing in general: --seeds gives paired intervals): {a}'s "
          f"{arith} runs stay closest to float64 by the median gap over epochs, {fa['median']:.1e} against "
          f"{against('median')} ({'; '.join(names[fw] for fw in [a] + [b for b, _ in rest])}); by the max gap "
          f"{'so do they' if all(fa['max'] <= f['max'] for _, f in rest) else 'the order changes'}, "
          f"{fa['max']:.1e} against {against('max')}.")
