"""d2l's own helpers, as the book writes them, for torch-reference's loop (train.py's
`_epoch_plain`, d2l's train_epoch_ch8 line for line)."""
import torch


class Accumulator:
  """Sums over n variables (d2l.Accumulator)."""

  def __init__(self, n: int):
    self.data = [0.0] * n

  def add(self, *args):
    self.data = [a + float(b) for a, b in zip(self.data, args)]

  def __getitem__(self, idx):
    return self.data[idx]


def grad_clipping_d2l(params, theta: float) -> bool:
  """d2l's grad_clipping (`if norm > theta` syncs the host every step, once); returns
  whether it clipped."""
  norm = torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))
  clipped = bool(norm > theta)  # d2l: `if norm > theta:`, the same one sync
  if clipped:
    for param in params:
      param.grad[:] *= theta / norm
  return clipped
