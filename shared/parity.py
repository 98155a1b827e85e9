"""The parity policy: which rows are judged against which, and the checks that judge them.

In each parity group of shared/rows.py (same mathematics and parameterization), every member
present is compared with the first member present, its anchor; data-parallel rows and bf16
twins the same way among themselves (groups `<group>-dpN`, `<group>-bf16`, judged in their own
arithmetic), each data-parallel row against its own row on one device (group "data-parallel"),
and a model on two backends against itself (Impl.also_judged). A bf16 twin is not judged
against its float32 row: bf16 changes the numbers (`precision_pairs` gives those pairs, for
the figures that compare them). Checks: shared/metrics.py (tolerances), shared/probes.py.

Rows are shared.rows.Row values; the checks name them by their names, as records are keyed.
"""
import functools

from shared import metrics, probes, registry
from shared.protocol import Unavailable, one_line
from shared.rows import IMPLS, Row, group, groups


def pairs(rows) -> list:
  """[(group, row, anchor)] among `rows` (Row values)."""
  present, out = {r.name for r in rows}, []
  for devices, bf16 in sorted({(r.devices, r.bf16) for r in rows}):
    for g in groups():
      # a row whose bf16 idiom departs from the casting policy is no bf16 anchor: forward_only_pairs
      members = [Row(n, bf16, devices) for n in group(g) if not (bf16 and IMPLS[n].bf16_deviation)]
      here = [m for m in members if m.name in present]
      label = g + ("-bf16" if bf16 else "") + (f"-dp{devices}" if devices > 1 else "")
      out += [(label, m, here[0]) for m in here[1:]]
  out += [(r.info.also_judged[0], r, Row(r.info.also_judged[1])) for r in rows
          if r.info.also_judged and r == Row(r.impl) and r.info.also_judged[1] in present]
  return out + [("data-parallel", r, r.single) for r in rows if r.devices > 1 and r.single.name in present]


def precision_pairs(rows) -> list:
  """[("bf16 vs float32", twin, row)] for every bf16 twin whose float32 row is among `rows`."""
  present = {r.name for r in rows}
  return [("bf16 vs float32", r, r.float32) for r in rows if r.bf16 and r.float32.name in present]


def forward_only_pairs(rows) -> list:
  """[(layout, row, anchor, why, judged)] of the forward-only checks among `rows` (a bf16 twin
  against its anchor's bf16 twin, and a twin whose bf16 idiom departs from the casting policy
  against the first of its group that follows it); `judged` False for a known forward gap."""
  present, out = {r.name for r in rows}, []
  for n, info in IMPLS.items():
    f = info.forward_only
    out += [(info.layout, Row(n, bf16), Row(f.anchor, bf16), f.why, f.judged) for bf16 in (False, True)
            if f and Row(n, bf16).name in present and Row(f.anchor, bf16).name in present]
  for n, info in IMPLS.items():
    anchor = next((m for m in group(info.group) if not IMPLS[m].bf16_deviation), None)
    if info.bf16_deviation and Row(n, True).name in present and Row(anchor, True).name in present:
      out.append((info.layout, Row(n, True), Row(anchor, True), f"bf16 casting: {info.bf16_deviation}", False))
  return out


def training_deviation(row: Row, anchor: Row, carries_state: bool) -> str:
  """Why the training figures of the pair are reported, not judged; "" when they are judged."""
  found = [r.info.deviation for r in (row, anchor) if r.info.deviation]
  return found[0] if found and carries_state else ""


def first_minibatch(impls: dict, rows: dict, X, Y, arith: str) -> list:
  """Checks 1 and 2 (forward logits, gradients) from the run's initial weights, before
  training, each relative to the anchor's own scale; a pair of bf16 twins in bf16 and with
  the RMS of its logits too. `impls` and `rows` by name; `arith`: the run's arithmetic."""
  out = {n: (impl.forward(X)[0], impl.loss_and_grads(X, Y)[1]) for n, impl in impls.items()}
  checks = []
  for g, r, a in pairs([rows[n] for n in impls]):
    at, n, m = r.arithmetic(arith), r.name, a.name
    for k, check in enumerate(("logits_rel", "grads_rel")):
      checks.append(metrics.check(g, n, m, check, metrics.rel_diff_arrays(out[n][k], out[m][k]), at,
                                  note=metrics.nonfinite(out[n][k], out[m][k], n, m)))
    if at == "bf16":
      checks.append(metrics.check(g, n, m, "logits_rms_rel", metrics.rms_rel(out[n][0], out[m][0]), at))
  for layout, r, a, why, judged in forward_only_pairs([rows[n] for n in impls]):
    n, m = r.name, a.name
    checks.append(metrics.check(layout, n, m, "logits_rel", metrics.rel_diff_arrays(out[n][0], out[m][0]),
                                r.arithmetic(arith), note=metrics.nonfinite(out[n][0], out[m][0], n, m) or why,
                                judged=judged))
  return checks


def probe(rows: list, config, first_epoch, device) -> list:
  """The probes of shared/probes.py on fresh copies of `rows` (built with the probe's theta
  and learning rate), after the unit's training, so that no probe compile warms its rows'
  caches before they are timed. A probe that raises fails its rows with the reason."""
  probe_config, outputs = probes.probe_config(config), {}
  for r in rows:
    try:
      impl = registry.make(r, probe_config, device)
    except Unavailable as e:
      outputs[r.name] = f"cannot run here: {e}"
      continue
    except Exception as e:  # noqa: BLE001 - e.g. out of memory: the trained results stand
      outputs[r.name] = one_line(e)
      continue
    try:
      outputs[r.name] = probes.measure(impl, first_epoch, probe_config)
    except Exception as e:  # noqa: BLE001 - reported in the probe's rows
      if impl.fatal:
        raise
      outputs[r.name] = one_line(e)
    finally:
      impl.release()
  return probe_checks(outputs, {r.name: r for r in rows}, config.dtype, config.carries_state)


def probe_checks(outputs: dict, rows: dict, arith: str, carries_state: bool = True) -> list:
  """Parity rows of the probe outputs ({name: probes.measure() or an error string}): per pair
  every probe check (those that train reported, not judged, for a pair with a known training
  deviation, and the clipped count where a trainer does not report it); per forward-only
  pair the logits (judged as its ForwardOnly says)."""
  out = []
  for g, r, a in pairs([rows[n] for n in outputs]):
    why = training_deviation(r, a, carries_state)
    for name, (measured, note) in probes.compare(outputs[r.name], outputs[a.name], r.name, a.name).items():
      deviation = why if name in probes.TRAINED else ""
      unreported = name == "probe_unclipped" and measured is None and not note.startswith("probe failed")
      out.append(metrics.check(g, r.name, a.name, name, measured, r.arithmetic(arith),
                               note="; ".join(x for x in (deviation, note) if x), judged=not (deviation or unreported)))
  for layout, r, a, why, judged in forward_only_pairs([rows[n] for n in outputs]):
    measured, note = probes.compare(outputs[r.name], outputs[a.name], r.name, a.name)["probe_logits_rel"]
    out.append(metrics.check(layout, r.name, a.name, "probe_logits_rel", measured, arith=r.arithmetic(arith),
                             note=note or why, judged=judged))
  return out


def trajectory(records: dict, rows: dict, arith: str, carries_state: bool = True) -> list:
  """Check 3: per-epoch perplexity of each row against its group's anchor (`records` by name,
  dicts as stored; a pair with a known training deviation reported with its reason, not judged)."""
  out, done = [], [rows[n] for n, r in records.items() if r["perplexity"]]
  for g, r, a in pairs(done):
    p, q, first = records[r.name]["perplexity"], records[a.name]["perplexity"], metrics.FIRST_EPOCHS
    why, at = training_deviation(r, a, carries_state), r.arithmetic(arith)
    check = functools.partial(metrics.check, g, r.name, a.name, arith=at, judged=not why)
    out.append(check("ppl_first10_rel", metrics.rel_diff(p[:first], q[:first]), note=why))
    out.append(check("ppl_all_rel", metrics.rel_diff(p, q), note=why))
    out.append(check("ppl_diverge_epoch", metrics.first_divergence(p, q, metrics.DIVERGENCE[at]), note=why))
    if len(p) == len(q):  # judged: the last ten epochs' medians; reported: the last epoch alone
      final = metrics.rel_diff([metrics.final_perplexity(p)], [metrics.final_perplexity(q)])
      out.append(check("ppl_final_rel", final, note=why or f"medians of the last {metrics.final_epochs(p)} epochs"))
      out.append(check("ppl_last_rel", metrics.rel_diff(p[-1:], q[-1:]), note=why))
  return out


def judge(checks: list, precisions) -> bool:
  """Parity is judged at full float32, float64 and bf16 (each in its own tolerances); a run
  where any row ran TF32 reports its figures unjudged (`passed` None)."""
  judged = all(p in ("float32", "float64", "bf16") for p in precisions)
  if not judged:
    for c in checks:
      c["passed"] = None
  return judged
