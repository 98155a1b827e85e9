"""Will it fit? Before any training, an estimate of the memory a run's rows take at its sizes,
against what the machine has free: a size that cannot fit is refused in one line naming the
flags, instead of an allocator's traceback (or the machine's swap) minutes later.

Per row, in the run's float width: its parameters four times over (the framework's weights,
their gradients, the update's temporaries and the harness's canonical copy), and the
activations one minibatch keeps for its backward pass, twice (forward values and their
gradients): per time step and sequence the gates and the candidate (3h), the state (h), the
reset state (h) and the logits and their softmax (2V). Rows train side by side, so they add
up. A rough bound from the equations (shared/params.py), meant to catch sizes orders of
magnitude too large, not to budget the last gigabyte.
"""
import math

import psutil

from shared import params as P

COPIES = 4          # weights, gradients, update temporaries, the harness's canonical copy
ACTIVATIONS = 2     # forward values kept for the backward pass, and their gradients


def per_row(config, layout: str) -> int:
  """Bytes one row of `layout` takes at `config`'s sizes."""
  width = 8 if config.precision == "float64" else 4
  weights = sum(math.prod(s) for s in P.shapes(layout, config.vocab_size, config.num_hiddens).values())
  kept = config.batch_size * config.num_steps * (5 * config.num_hiddens + 2 * config.vocab_size)
  return width * (COPIES * weights + ACTIVATIONS * kept)


def check(config, layouts: list, available=None) -> None:
  """ValueError naming the flags when rows of `layouts` (one per row) cannot fit in the
  memory the machine has free (`available` bytes; default psutil's)."""
  need = sum(per_row(config, layout) for layout in layouts)
  free = psutil.virtual_memory().available if available is None else available
  if need > free:
    raise ValueError(f"{len(layouts)} row(s) at num_hiddens {config.num_hiddens}, batch_size {config.batch_size} and "
                     f"num_steps {config.num_steps} need about {need / 2**30:,.1f} GiB (weights, gradients and the "
                     f"activations kept for the backward pass), more than the {free / 2**30:,.1f} GiB free here: "
                     "lower num_hiddens, batch_size or num_steps, or train fewer rows (--impls)")
