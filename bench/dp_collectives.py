"""Where XLA puts the collectives of a JAX data-parallel row's compiled epoch: each
all-reduce and all-gather of the program, and the while loops (lax.scan) it sits in, so
that a collective inside the time loop (once per time step, not once per minibatch) shows.

    PYTHONPATH=. python bench/dp_collectives.py jax-scratch flax-gru

Runs on two host devices of this CPU; sizes are the seed configuration's, and an epoch has as
many minibatches as the data pipeline cuts from the seed's text (shared/data.py).
"""
import os
import re
import sys

import numpy as np

from shared import data, threads
from shared.config import Config

OP = re.compile(r"^\s*(%[\w.\-]+) = .* (all-reduce|all-gather|reduce-scatter|all-to-all)\(")
COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$")
WHILE = re.compile(r"^\s*(%[\w.\-]+) = .* while\(.*body=%?([\w.\-]+)")


def loops_of(text: str) -> list:
  """[(op, collective, [while loops around it, innermost first])] of an HLO module's text."""
  inside, body_of, found, comp = {}, {}, [], None
  for line in text.splitlines():
    if m := COMPUTATION.match(line):
      comp = m.group(1)
    if m := WHILE.match(line):
      body_of[m.group(2)] = m.group(1)
      inside[m.group(1)] = comp
    if m := OP.match(line):
      found.append((m.group(1), m.group(2), comp))
  out = []
  for name, kind, comp in found:
    chain = []
    while comp in body_of:  # the loop whose body this computation is, then the loop around that
      chain.append(body_of[comp])
      comp = inside[body_of[comp]]
    out.append((name, kind, chain))
  return out


def epoch_inputs(config) -> np.ndarray:
  """One epoch's inputs, (minibatches, batch_size, num_steps), as the data pipeline cuts them
  (shared/data.py, training_epochs: config.seed's first epoch) from a corpus of the
  configuration's length. The compiled program depends on the shapes alone, so the tokens
  are zeros and the text itself is not needed: 8 minibatches of 32 x 35 at the seed
  configuration (10,000 characters)."""
  length = data.CHARACTERS if config.max_tokens == -1 else config.max_tokens
  (Xs, _), = data.training_epochs(np.zeros(length, np.int32), config, num_epochs=1)
  return Xs


def main(names) -> None:
  os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"  # before JAX starts
  threads.configure(threads.cores())
  from jax_impl import distributed
  config = Config(devices=2, vocab_size=28)
  Xs = epoch_inputs(config)  # the seed epoch's shape
  for name in names:
    impl = distributed.make(f"{name}-dp2", config, "cpu")
    impl.prepare((Xs, Xs))
    print(f"{name}-dp2: {config.batch_size} x {config.num_steps} minibatches, {len(Xs)} an epoch, 2 host devices")
    for op, kind, chain in loops_of(next(iter(impl._compiled.values())).as_text()):
      print(f"  {kind:<11} {op:<18} inside {len(chain)} loop(s): {' < '.join(chain) or 'none'}")


if __name__ == "__main__":
  main(sys.argv[1:] or ["jax-scratch", "flax-gru"])
