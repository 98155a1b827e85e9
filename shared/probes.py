"""Probes: two small experiments every comparison runs beside its training, built so that a
wrong equation or training rule shows up far above round-off.

The run's own first minibatch cannot show every bug: at d2l's initial weights every bias
is zero and the logits are tiny, the minibatch starts from H = 0, and no gradient norm of
the first 30 seed epochs reaches the clipping threshold. So, on fresh copies of every
implementation:

  1. Random weights: every parameter N(0, (GAIN / sqrt(num_hiddens))^2), biases too, and a
     non-zero starting state (uniform in +-0.9): forward logits and gradients on the run's
     first minibatch. A reset gate on the wrong side or a dropped bias moves them by 6e-2
     to 1.0 of their scale, against round-off near 5e-7.
  2. Carried state and clipping: from the same weights, with theta = THETA (far below any
     gradient norm, so clipping fires at every step) and lr = STEP / THETA, two epochs of the
     run's first two minibatches. The second minibatch starts from the carried state, the second epoch
     from zero again: a state never carried or never reset changes the epoch losses and the
     update. The update (weights after - before) is four clipped steps, each
     lr * theta * g / |g|: a clipping rule that differs shows in it.

`probe_config(run_config)` is the configuration the probe's copies are built with.

Each probe figure is a parity check (shared/metrics.py, TOLERANCES; shared/parity.py pairs
the rows) of an implementation against its group's anchor, as the first-minibatch checks are.
"""
import dataclasses

import numpy as np

from shared import metrics
from shared import params as P

# The weights' scale: N(0, (GAIN / sqrt(h))^2) keeps H @ W of order 1 at every size, so that
# gates and biases all matter. Measured at 256 hidden units: GAIN 1.5 gives round-off of
# 5e-7 (logits) and 3.5e-7 (gradients); GAIN 3 already 7e-6 and 3e-5 (the recurrence starts
# to amplify round-off); 0.5 * sqrt(256) = 8 (the tests' 0.5 at 7 units) gives gradient
# norms of 1e9 and logits that differ by 100% between frameworks: chaos, not parity.
GAIN = 1.5
# Clipping: theta far below the gradient norms at these weights (measured 0.7 scratch, 0.85
# built-in at 256 hidden units), so that it fires at every step; the learning rate makes each
# clipped step move the weights by a norm of STEP = lr * theta. The update is measured as
# weights after - before, which loses about eps * |weight| to cancellation: with lr 1 a step
# of norm 1e-3 spread over 3e5 weights of size 0.1 left only 3 significant digits (update
# gaps of 1e-2 between frameworks); a step of norm 2 keeps about 6.
THETA = 1e-3
STEP = 2.0
STREAM = 16   # the probe's own random stream: default_rng([seed, STREAM])


def probe_config(run_config):
  """The run's configuration with the probe's clipping threshold and learning rate."""
  return dataclasses.replace(run_config, grad_clip=THETA, lr=STEP / THETA)


def weights(layout: str, config) -> dict:
  """The probe's random weights for `layout`, float32, from config.seed."""
  rng = np.random.default_rng([config.seed, STREAM])
  scale = GAIN / np.sqrt(config.num_hiddens)
  return {k: (rng.standard_normal(s) * scale).astype(np.float32)
          for k, s in P.shapes(layout, config.vocab_size, config.num_hiddens).items()}


def start_state(config) -> np.ndarray:
  """(batch, hidden) starting state, uniform in (-0.9, 0.9), in the run's dtype."""
  rng = np.random.default_rng([config.seed, STREAM + 1])
  return rng.uniform(-0.9, 0.9, (config.batch_size, config.num_hiddens)).astype(config.dtype)


def two_minibatches(first_epoch) -> tuple:
  """The run's first two minibatches as a 2-minibatch epoch (Xs, Ys), each (2, B, T); an
  epoch of one minibatch is used twice."""
  Xs, Ys = first_epoch
  take = [0, 1] if len(Xs) > 1 else [0, 0]
  return Xs[take], Ys[take]


def measure(impl, first_epoch, config) -> dict:
  """One implementation's probe outputs: logits and gradients from the probe's weights and
  start, then two epochs of two minibatches (their mean losses, the steps at which
  clipping fired, the update). `impl` must have been built with `probe_config(...)`."""
  p = weights(impl.layout, config)
  impl.set_params(p)
  X, Y = first_epoch[0][0], first_epoch[1][0]
  H0 = start_state(config)
  logits, _ = impl.forward(X, H0)
  _, grads, _ = impl.loss_and_grads(X, Y, H0)
  start = impl.get_params()  # as held: a stock cell's folded biases are folded here too
  batches, losses, clipped = two_minibatches(first_epoch), [], 0
  for _ in range(2):
    losses.append(impl.train_epoch(batches))
    # None: the framework's trainer does not report it (Keras's fit); the update checks the rule
    clipped = None if impl.clipped_steps is None or clipped is None else clipped + impl.clipped_steps
  end = impl.get_params()
  return {"logits": logits, "grads": grads, "losses": np.asarray(losses), "clipped": clipped,
          "steps": 2 * len(batches[0]), "update": {k: end[k] - start[k] for k in end}}


# The checks that train (two carried minibatches): a known training deviation reports them.
TRAINED = ("probe_losses_rel", "probe_update_rel", "probe_unclipped")


def compare(x, y, impl: str, anchor: str) -> dict:
  """{check: (measured, note)} between two probe outputs; a probe that failed to run, or
  produced non-finite values, measures None or NaN and says why."""
  errors = [f"{who}: {out}" for who, out in ((impl, x), (anchor, y)) if isinstance(out, str)]
  if errors:
    return {k: (None, "probe failed, " + "; ".join(errors)) for k in CHECKS}
  out = {}
  for check, key in CHECKS.items():
    if key == "clipped" and None in (x["clipped"], y["clipped"]):
      out[check] = (None, "the trainer does not report the steps it clipped (Keras's fit); probe_update_rel "
                          "checks the four clipped steps")
    elif key == "clipped":
      unclipped = max(x["steps"] - x["clipped"], y["steps"] - y["clipped"])
      out[check] = (unclipped, f"gradient norm above theta at {x['clipped']} of {x['steps']} probe steps "
                               f"({impl}), {y['clipped']} of {y['steps']} ({anchor})")
    else:  # the update on one scale for all parameters (metrics.rel_diff_arrays says why)
      out[check] = (metrics.rel_diff_arrays(x[key], y[key], each=key != "update"),
                    metrics.nonfinite(x[key], y[key], impl, anchor))
  return out


CHECKS = {"probe_logits_rel": "logits", "probe_grads_rel": "grads", "probe_losses_rel": "losses",
          "probe_update_rel": "update", "probe_unclipped": "clipped"}
