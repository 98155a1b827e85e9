"""The from-scratch GRU (d2l equations: shared/params.py, "Scratch model") in PyTorch.

Parameters are attributes named exactly as the scratch layout, so conversion is the
identity. Two forwards of the same model: `forward_d2l` is the book's code line for
line (one-hot inputs, one output matmul per step) and `forward` the fast one (row
gathers for all input projections before the loop, z and r hidden matmuls fused).
"""
import torch
from torch import nn
from torch.nn import functional as F

from shared import params as P


class ScratchGRU(nn.Module):

  def __init__(self, vocab_size: int, num_hiddens: int):
    super().__init__()
    self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
    for name, shape in P.shapes(P.SCRATCH, vocab_size, num_hiddens).items():
      setattr(self, name, nn.Parameter(torch.zeros(shape)))

  def forward_d2l(self, X, H):
    """d2l's `gru` + `RNNModelScratch.__call__`. X (B, T) int, H (B, h) -> (T*B, V), (B, h)."""
    inputs = F.one_hot(X.T.long(), self.vocab_size).to(self.W_hq.dtype)  # (T, B, V)
    outputs = []
    for x in inputs:
      Z = torch.sigmoid((x @ self.W_xz) + (H @ self.W_hz) + self.b_z)
      R = torch.sigmoid((x @ self.W_xr) + (H @ self.W_hr) + self.b_r)
      H_tilda = torch.tanh((x @ self.W_xh) + ((R * H) @ self.W_hh) + self.b_h)
      H = Z * H + (1 - Z) * H_tilda
      Y = H @ self.W_hq + self.b_q  # (B, V)
      outputs.append(Y)
    return torch.cat(outputs, dim=0), H

  def forward(self, X, H):
    """Same function, fewer kernels. X (B, T) int, H (B, h) -> (T*B, V), (B, h)."""
    h = self.num_hiddens
    W_x = torch.cat([self.W_xz, self.W_xr, self.W_xh], dim=1)       # (V, 3h)
    b_x = torch.cat([self.b_z, self.b_r, self.b_h])                 # (3h,)
    W_zr = torch.cat([self.W_hz, self.W_hr], dim=1)                 # (h, 2h)
    xp = F.embedding(X.T.long(), W_x) + b_x                         # (T, B, 3h): one-hot @ W_x
    # unbind, not xp[t]: its backward is one stack, where T slices would each
    # materialise and fill a zero (T, B, 3h) gradient.
    xp_zr, xp_h = xp[..., :2 * h].unbind(0), xp[..., 2 * h:].unbind(0)  # T x (B, 2h), T x (B, h)
    outputs = []
    for x_zr, x_h in zip(xp_zr, xp_h):
      ZR = torch.sigmoid(torch.addmm(x_zr, H, W_zr))                # (B, 2h)
      Z, R = ZR[:, :h], ZR[:, h:]
      H_tilda = torch.tanh(torch.addmm(x_h, R * H, self.W_hh))
      H = Z * H + (1 - Z) * H_tilda
      outputs.append(H)
    Hs = torch.cat(outputs, dim=0)                                  # (T*B, h)
    return torch.addmm(self.b_q, Hs, self.W_hq), H                  # (T*B, V)

  def canonical(self, tensors=None) -> dict:
    """{layout name: tensor} of the parameters (or of `tensors`, e.g. grads, same order)."""
    # Parameters were registered in P.SCRATCH_NAMES order, so self.parameters() follows it.
    return dict(zip(P.SCRATCH_NAMES, self.parameters() if tensors is None else tensors))

  def load_canonical(self, p: dict) -> None:
    with torch.no_grad():
      for name, value in p.items():
        getattr(self, name).copy_(torch.as_tensor(value))
