"""Ablation: what each speed lever buys, in each framework, measured in one run.

`compare.py --ablation` (or `--ablation unroll,tf32`) measures every lever (each framework
declares its own: torch_impl/options.py, ...) on the rows it acts on (shared/rows.py), with
each of its settings, everything else as the run's configuration. A lever's first setting
is its reference: every other setting's steady tokens/s is given as a ratio to it. A
setting is a set of config fields or framework options (Config.set); a cell is one
setting's configuration and the lever's rows. The levers run one after another; within a
lever every cell's rows are built first, then trained together round-robin, epoch by
epoch, on the same minibatches, the first epoch (compiling) left out of tokens/s: a ratio
compares epochs that ran side by side, and a run cut short keeps every lever that
finished. Parity is not judged: no lever but TF32 changes the arithmetic, and the
comparison runs judge that.
"""
from shared import data, registry, stats
from shared.config import Config
from shared.kinds import sweep
from shared.rows import IMPLS, Row
from shared.runner import Cell, Plan, Unit


def make(config, names: list, chosen: tuple, on_gpu: bool, corpus, vocab) -> Plan:
  """An ablation of the `chosen` levers (`parse`): its units, and its report's keys."""
  entries = plan(chosen, config, names, on_gpu)  # every cell's config checked before training

  def results(outcomes: dict, partial: bool) -> dict:
    cells = points(outcomes, entries)
    if partial and not cells:
      raise ValueError("interrupted before training: nothing to report")
    for e in entries:
      e.pop("cells", None)
    return {"levers": table(entries, cells, config), "points": cells, "repeats": repeats(cells)}
  what = f"ablation of {len(chosen)} levers, {config.num_epochs} epochs a cell"
  return Plan("ablation", what, config, units(entries, config, corpus), vocab,
              list(dict.fromkeys(IMPLS[n].framework for n in names)), results, lambda r: lines(r["levers"]))


def parse(text: str) -> tuple:
  """"all" or "unroll,tf32" -> the levers named (each framework's, shared/registry.py);
  ValueError naming the fix."""
  known = {lever.key: lever for lever in registry.all_levers()}
  if text == "all":
    return tuple(known.values())
  keys = [k.strip() for k in text.split(",") if k.strip()]
  unknown = [k for k in keys if k not in known]
  if unknown or not keys or len(set(keys)) != len(keys):
    raise ValueError(f"--ablation takes 'all' or distinct levers from {', '.join(known)}; got {text!r}")
  return tuple(known[k] for k in keys)


def plan(chosen: tuple, base, names: list, on_gpu: bool) -> list:
  """An entry per lever: its rows among `names` (those whose table entry names the lever),
  why it is skipped if it is, and its cells, one per setting, each config validated here,
  before any training."""
  entries = []
  for lever in chosen:
    rows = [n for n, i in IMPLS.items() if n in names and lever.key in i.levers]
    settings = lever.settings_for(base)
    skipped = ("GPU only, skipped on a CPU" if lever.gpu_only and not on_gpu
               else None if rows else "none of its rows is in --impls")
    cells = [] if skipped else [Cell([Row(n) for n in rows], base.set(**overrides).validate(), overrides,
                                     lambda r, o=overrides: _key(r.name, o), lever.own_process)
             for _, overrides in settings]
    entries.append({"key": lever.key, "name": lever.name, "framework": lever.framework, "why": lever.why,
                    "settings": [label for label, _ in settings], "rows": rows, "skipped": skipped,
                    "overrides": [overrides for _, overrides in settings], "cells": cells})
  return entries


def units(entries: list, base, corpus) -> list:
  """A unit per lever that is measured ("lever KEY"): its cells trained side by side on the
  same minibatches (the levers change no size)."""
  epochs = lambda: data.training_epochs(corpus, base)  # noqa: E731
  return [Unit(f"lever {e['key']}", e["cells"], epochs, f"{e['key']}: ") for e in entries if e["cells"]]


def points(outcomes: dict, entries: list) -> list:
  """Every measured cell, as a sweep point with its lever: the figures of its rows, the bounds
  it measured and the lever's load; "interrupted" where a Ctrl-C stopped or never reached a row."""
  out = []
  for e in entries:
    o = outcomes.get(f"lever {e['key']}") or {"cells": []}
    for cell, c in zip(o["cells"], e["cells"]):
      impls = {n.split(" | ")[0]: sweep.costs(r, c.config) for n, r in cell["impls"].items()}
      status = "interrupted" if any(r["status"] in ("interrupted", "not run") for r in impls.values()) else cell["status"]
      out.append({"lever": e["key"], "point": cell["point"], "config": cell["config"], "status": status,
                  "error": cell["error"], "limits": cell["limits"], "impls": impls, "load": o.get("load")})
  return out


def _cell_of(points: list, lever: str, base, overrides: dict):
  want = base.set(**overrides).as_dict()
  return next((p for p in points if p["lever"] == lever and p["config"] == want), None)


def table(entries: list, points: list, base) -> list:
  """Per lever and row, per setting: the figures of the cell that measured it, and its
  steady tokens/s over the reference setting's."""
  for e in entries:
    e["results"] = {}
    for row in [] if e["skipped"] else e["rows"]:
      out = []
      for label, overrides in zip(e["settings"], e["overrides"]):
        cell = _cell_of(points, e["key"], base, overrides)
        rec = (cell or {}).get("impls", {}).get(row)
        status = rec["status"] if rec else (cell or {}).get("status", "not run")
        out.append({"setting": label, "status": status,
                    "error": (rec or {}).get("error") or (cell or {}).get("error"),
                    **{k: (rec or {}).get(k) for k in ("steady_tokens_per_s", "tokens_per_s_ci", "prepare_seconds",
                                                       "execution", "precision", "final_perplexity", "limits")},
                    "epoch_rates": (rec or {}).get("epoch_rates") or []})
      reference = out[0]["epoch_rates"][1:]
      for o in out:  # epochs of one lever ran side by side, round by round: ratios are paired
        ratio, low, high = stats.paired_ratio(o.pop("epoch_rates")[1:], reference)
        o.update(ratio=ratio, ratio_ci=None if low is None else [low, high])
      e["results"][row] = out
  return entries


def repeats(points: list) -> list:
  """Cells that ran the same computation twice, e.g. a lever's setting that is another's
  default (same row, execution, arithmetic and process conditions: OpenMP's spin changes
  none of the others): [{"impl", "cells", "spread"}], spread =
  fastest over slowest - 1, the ablation's own measure of its noise. Twins in two levers
  ran at different times: their spread is how far the machine drifted between levers,
  while a ratio within one lever compares settings that ran side by side."""
  groups = {}
  for p in points:
    for n, r in p.get("impls", {}).items():
      if r["status"] == "ok" and r["steady_tokens_per_s"]:
        where = sweep.label(p["point"]) or "as configured"
        groups.setdefault((n, r["execution"], r["precision"], _conditions(n, p.get("config"))), []).append(
            (f"{p['lever']}: {where}", r["steady_tokens_per_s"]))
  return [{"impl": n, "cells": [c for c, _ in same],
           "spread": max(r for _, r in same) / min(r for _, r in same) - 1}
          for (n, *_), same in groups.items() if len(same) > 1]


def _conditions(row: str, config: dict | None) -> tuple:
  """The process conditions (registry.conditions) a row trained under in a cell of `config`
  (a report's flat config; none where a report has none)."""
  if not config:
    return ()
  return tuple(sorted(registry.conditions(Row.parse(row).info, Config().set(**config)).items()))


def _key(row: str, point: dict) -> str:
  return f"{row} | {sweep.label(point) or 'as configured'}"


def lines(entries: list) -> list:
  """One console line per lever and row: every setting's steady tokens/s ("–" for a
  setting that timed no steady epoch, e.g. one cut short while compiling)."""
  def rate(cell):
    return f"{cell['steady_tokens_per_s']:,.0f}" if cell["steady_tokens_per_s"] else "–"
  return [f"{e['name']}, {row}: " + ", ".join(f"{c['setting']} {rate(c)}" for c in cells)
          for e in entries for row, cells in e["results"].items()]
