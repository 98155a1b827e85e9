"""torch.nn.GRU + nn.Linear (cuDNN on GPU): the built-in model of shared/params.py.

Conversion to and from the canonical built-in layout is a rename-and-transpose table:
torch stacks the three gates' rows in the order r, z, n and stores weights (out, in).
"""
import torch
from torch import nn
from torch.nn import functional as F

from shared import params as P

GATES = ("r", "z", "n")  # torch's row order inside weight_ih_l0 / weight_hh_l0 / biases


class BuiltinGRU(nn.Module):

  def __init__(self, vocab_size: int, num_hiddens: int):
    super().__init__()
    self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
    self.rnn = nn.GRU(vocab_size, num_hiddens)
    self.linear = nn.Linear(num_hiddens, vocab_size)

  def forward(self, X, H):
    """d2l's concise RNNModel. X (B, T) int, H (B, h) -> (T*B, V), (B, h)."""
    inputs = F.one_hot(X.T.long(), self.vocab_size).to(self.linear.weight.dtype)  # (T, B, V)
    Y, H = self.rnn(inputs, H.unsqueeze(0))                               # (T, B, h)
    return self.linear(Y.reshape(-1, Y.shape[-1])), H.squeeze(0)

  def canonical(self, tensors=None) -> dict:
    """{layout name: tensor} of the parameters (or of `tensors`, e.g. grads, same order)."""
    names = [n for n, _ in self.named_parameters()]
    t = dict(zip(names, tensors if tensors is not None else self.parameters()))
    return from_torch(t, self.num_hiddens)

  def load_canonical(self, p: dict) -> None:
    sd = to_torch({k: torch.as_tensor(v) for k, v in p.items()})
    with torch.no_grad():
      for name, param in self.named_parameters():
        param.copy_(sd[name])


def from_torch(t: dict, h: int) -> dict:
  """torch names -> canonical built-in layout (views, transposed to (in, out))."""
  out = {"W_hq": t["linear.weight"].T, "b_q": t["linear.bias"]}
  for k, g in enumerate(GATES):
    rows = slice(k * h, (k + 1) * h)
    out[f"W_i{g}"] = t["rnn.weight_ih_l0"][rows].T
    out[f"W_h{g}"] = t["rnn.weight_hh_l0"][rows].T
    out[f"b_i{g}"] = t["rnn.bias_ih_l0"][rows]
    out[f"b_h{g}"] = t["rnn.bias_hh_l0"][rows]
  return {n: out[n] for n in P.BUILTIN_NAMES}


def to_torch(p: dict) -> dict:
  """Canonical built-in layout -> torch names (weights back to (out, in), gates stacked r, z, n)."""
  return {
      "rnn.weight_ih_l0": torch.cat([p[f"W_i{g}"].T for g in GATES]),
      "rnn.weight_hh_l0": torch.cat([p[f"W_h{g}"].T for g in GATES]),
      "rnn.bias_ih_l0": torch.cat([p[f"b_i{g}"] for g in GATES]),
      "rnn.bias_hh_l0": torch.cat([p[f"b_h{g}"] for g in GATES]),
      "linear.weight": p["W_hq"].T,
      "linear.bias": p["b_q"],
  }
