"""report.md's account of a run's checkpoints (shared/checkpoint.py): how often they were
written and what they cost, and every resume: when, from which checkpoint and epoch, and
which epochs were kept out of the steady figures because of it."""
from shared.text import table
from shared.kinds.sweep import label


def _resumed_rows(results: dict) -> list:
  """(where, row, epochs after a resume, the compile each resume cost) per resumed row."""
  phases = []
  blocks = {"compare": [results], "seeds": results.get("runs", [])}.get(results["kind"], [])
  for block in blocks:
    phases += [(f"seed {block.get('seed')}", block), (f"seed {block.get('seed')} float64", block.get("truth") or {})]
  for p in results.get("points", []):
    setting = label(p["point"]) or "as configured"
    phases.append((f"{p['lever']}: {setting}" if p.get("lever") else setting, p))
  return [(where, name, ", ".join(map(str, rec["resumed_epochs"])),
           ", ".join(f"{s:.2f}" for s in rec.get("resume_prepare_seconds") or []))
          for where, phase in phases for name, rec in (phase.get("impls") or {}).items()
          if rec.get("resumed_epochs")]


def render(results: dict) -> str:
  """The section, or "" for a report written before checkpoints (or by a run without one)."""
  ck = results.get("checkpoint")
  if not ck:
    return ""
  size = f"{ck['bytes'] / 1e6:.2f} MB" if ck.get("bytes") else "–"
  write = (f"median {ck['median_write_seconds'] * 1e3:.1f} ms, longest {ck['max_write_seconds'] * 1e3:.1f} ms"
           if ck.get("median_write_seconds") is not None else "none timed")
  every = (f"after every {ck['every_seconds']:g} s of training" if ck["every_seconds"] else "after every epoch")
  lines = ["## Checkpoints\n",
           f"While it trained, this run kept a checkpoint beside its folder (`{ck['path']}`, removed once the "
           f"report was written): {every} and at every boundary between units of work; {ck['writes']} writes "
           f"(the largest {size}), {write} each, between epochs, outside the timed ones.\n"]
  if not ck.get("resumes"):
    return "\n".join(lines + ["It was never resumed: every epoch ran in one process.\n"])
  lines.append(f"**This run was resumed** (`compare.py --resume`, started {ck['started']} as "
               f"`compare.py {' '.join(ck['argv'])}`). Each resume rebuilt the rows, put back the parameters "
               "of its checkpoint and trained on from the next epoch on the same minibatches, so the "
               "perplexities are those of an uninterrupted run (tests/test_resume.py kills runs at random points "
               "and checks this bit for bit); what was trained after the checkpoint and before the stop was "
               "trained again.\n")
  for r in ck["resumes"]:
    live = "; ".join(f"{unit} after epoch {epoch}" for unit, epoch in r["from"].items()) or "between units"
    lines.append(f"- resumed {r['at']} from the checkpoint of {r['checkpoint_written']}: {r['units_done']} unit(s) "
                 f"finished, then {live}.")
  rows = _resumed_rows(results)
  if rows:
    lines.append("\nTimings from before and after a resume are kept apart: the first epoch after each resume ran "
                 "beside a fresh compile and cold caches, so it is left out of the steady tokens/s and of every "
                 "paired ratio, as epoch 1 is; the compile it cost is not added to the compile time.\n")
    lines.append(table(("where", "row", "epochs right after a resume (left out)", "compile at each resume (s)"),
                       rows))
  return "\n".join(lines) + "\n"
