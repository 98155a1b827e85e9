"""Reading a device profile: what bounds a row. The frameworks' profilers are read by
torch_impl/profile.py and jax_impl/profile.py; bench/profile_rows.py runs them and writes the
table of this module's figures.

A row is host-bound when its device idles for much of an epoch (launching kernels one by
one, Python, dispatch: the device waits for the host), device-bound when the kernels
themselves fill the epoch; then the kernels that take longest say where the time goes.
"""
import collections
import time

TOP = 6             # kernels listed per row
# Device busy for less than half of an epoch's wall time: the host bounds it. A reading aid,
# not a measurement (as sweep.py's elasticity cut points): the busy fraction is reported too.
HOST_BOUND = 0.5


def summary(what: str, events: list) -> dict:
  """{"what", "events", "seconds", "event_seconds", "top": [(name, seconds, count)]} of
  (name, start, seconds) events. "seconds" is the time covered by at least one event
  (events that overlap, on two streams say, count once); with start None (events that
  cannot overlap, like ops' self times) it is their sum, as "event_seconds" always is."""
  seconds, count = collections.Counter(), collections.Counter()
  for name, _, s in events:
    seconds[name] += s
    count[name] += 1
  total = sum(seconds.values())
  timed = sorted((start, start + s) for _, start, s in events if start is not None)
  return {"what": what, "events": len(events), "seconds": covered(timed) if timed else total,
          "event_seconds": total, "top": [(n, s, count[n]) for n, s in seconds.most_common(TOP)]}


def covered(intervals: list) -> float:
  """The length of the union of sorted (start, end) intervals."""
  length, end = 0.0, float("-inf")
  for a, b in intervals:
    if b > end:
      length += b - max(a, end)
      end = b
  return length


def figures(name: str, execution: str, wall: float, steps: int, tokens: int, prof: dict, times: int) -> dict:
  """A row's figures per epoch: `wall` seconds (unprofiled, median), and from `prof`
  (over `times` profiled epochs) the device's busy seconds and its events per step."""
  # no events at all (XLA:CPU; or kernels a tracer missed): no figure, rather than "idle"
  busy = prof["seconds"] / times if prof["events"] else None
  fraction = busy / wall if busy is not None else None
  if fraction is None:
    verdict = "no events traced"
  elif not prof["device"]:
    # the ops' times are taken under the profiler, which slows them: the share can pass 100%
    verdict = f"no device: ops for {fraction:.0%} of an epoch (timed under the profiler), the rest between them"
  elif fraction < HOST_BOUND:
    verdict = f"host-bound: the device idles {1 - fraction:.0%} of an epoch"
  else:
    top = prof["top"][0] if prof["top"] else ("–", 0.0, 0)
    verdict = f"device-bound: {top[0][:60]} takes {top[1] / prof['event_seconds']:.0%} of device time"
  return {"impl": name, "execution": execution, "wall_ms": 1e3 * wall, "tokens_per_s": tokens / wall,
          "device_ms": None if busy is None else 1e3 * busy, "busy_fraction": fraction,
          "events_per_step": None if prof["events"] is None else prof["events"] / (times * steps),
          "verdict": verdict, "what": prof["what"], "top": prof["top"],
          "event_seconds": prof.get("event_seconds")}


def timed(run) -> float:
  """Wall seconds of `run()`, which returns once its work is done (an epoch's host float)."""
  start = time.perf_counter()
  run()
  return time.perf_counter() - start


def split(what: str, products: list, epoch_seconds: float) -> dict:
  """Where one profiled epoch's time went: {"what", "events", "products_seconds",
  "epoch_seconds", "products_share"}, from the (start, seconds) of its matrix products
  (`products`; start None where they cannot overlap, as ops on one thread) and the epoch's
  wall seconds under the profiler. Products that overlap (on two threads) count once; no
  product event gives no share (a profiler that saw none is not a row without products)."""
  timed = sorted((start, start + s) for start, s in products if start is not None)
  seconds = covered(timed) if timed else sum(s for _, s in products)
  share = seconds / epoch_seconds if products and epoch_seconds > 0 else None
  return {"what": what, "events": len(products), "products_seconds": seconds if products else None,
          "epoch_seconds": epoch_seconds, "products_share": share}
