"""Both GRUs of shared/params.py written for speed in PyTorch: `torch-tuned` (the scratch
model) and `torch-tuned-builtin` (the built-in one, torch.nn.GRU's parameters).

The same functions as torch_impl/scratch.py's fast `forward` and torch_impl/builtin.py, with
the recurrence's backward written by hand (a torch.autograd.Function; mirrors
jax_impl/tuned.py, whose docstring gives the backwards' equations). Autograd of the step loop takes every recurrent weight gradient
as T small (h, B) @ (B, .) products and records a graph node per op; here the forward keeps
its gates, the backward loop computes the state gradients only, and each recurrent weight
gradient is ONE (h, T*B) @ (T*B, .) product afterwards. The input and output layers stay
with autograd: their products already cover all T*B rows at once.
"""
import torch
from torch import nn
from torch.nn import functional as F

from torch_impl import train
from torch_impl.builtin import BuiltinGRU
from torch_impl.scratch import ScratchGRU

BACKWARDS = ("hand-written", "autodiff")  # the `backward` option (torch_impl/options.py)


def _scan(xp, H, W_zr, W_hh):
  """The recurrence: xp (T, B, 3h), H (B, h) -> (H_prev, ZR, N, Hs), each (T, B, .)."""
  h = H.shape[-1]
  H_prev, ZRs, Ns, Hs = [], [], [], []
  for x in xp.unbind(0):                                             # x (B, 3h)
    ZR = torch.sigmoid(torch.addmm(x[:, :2 * h], H, W_zr))           # (B, 2h)
    N = torch.tanh(torch.addmm(x[:, 2 * h:], ZR[:, h:] * H, W_hh))   # (B, h)
    H_prev.append(H)
    H = ZR[:, :h] * H + (1 - ZR[:, :h]) * N
    ZRs.append(ZR), Ns.append(N), Hs.append(H)
  return tuple(map(torch.stack, (H_prev, ZRs, Ns, Hs)))


class Recurrence(torch.autograd.Function):
  """(xp, H, W_zr, W_hh) -> (Hs (T, B, h), final H (B, h)), with the hand-written backward."""

  @staticmethod
  def forward(ctx, xp, H, W_zr, W_hh):
    H_prev, ZR, N, Hs = _scan(xp, H, W_zr, W_hh)
    ctx.save_for_backward(H_prev, ZR, N, W_zr, W_hh)
    return Hs, Hs[-1]

  @staticmethod
  def backward(ctx, dHs, dH):
    H_prev, ZR, N, W_zr, W_hh = ctx.saved_tensors
    h = H_prev.shape[-1]
    dxp = []                                # dH: from step t+1 (autograd gives zeros, not None)
    for t in range(len(H_prev) - 1, -1, -1):
      g, Hp, Z, R, Nt = dHs[t] + dH, H_prev[t], ZR[t, :, :h], ZR[t, :, h:], N[t]
      dN = g * (1 - Z) * (1 - Nt * Nt)
      dRH = dN @ W_hh.T
      dZR = torch.cat([g * (Hp - Nt) * Z * (1 - Z), dRH * Hp * R * (1 - R)], dim=1)
      dH = torch.addmm(g * Z + dRH * R, dZR, W_zr.T)
      dxp.append(torch.cat([dZR, dN], dim=1))
    dxp = torch.stack(dxp[::-1])                                     # (T, B, 3h)
    rows = dxp.flatten(0, 1)                                         # (T*B, 3h)
    dW_zr = H_prev.flatten(0, 1).T @ rows[:, :2 * h]                 # (h, 2h): one product
    dW_hh = (ZR[..., h:] * H_prev).flatten(0, 1).T @ rows[:, 2 * h:]  # (h, h): one product
    return dxp, dH, dW_zr, dW_hh


def recurrence_autodiff(xp, H, W_zr, W_hh):
  """The same (Hs, final H), differentiated by autograd op by op."""
  Hs = _scan(xp, H, W_zr, W_hh)[3]
  return Hs, Hs[-1]


class TunedGRU(ScratchGRU):
  """ScratchGRU's parameters and conversions; `forward` runs the recurrence above."""

  backward = BACKWARDS[0]

  def forward(self, X, H):
    """X (B, T) int, H (B, h) -> (T*B, V), (B, h)."""
    W_x = torch.cat([self.W_xz, self.W_xr, self.W_xh], dim=1)       # (V, 3h)
    b_x = torch.cat([self.b_z, self.b_r, self.b_h])                 # (3h,)
    W_zr = torch.cat([self.W_hz, self.W_hr], dim=1)                 # (h, 2h)
    xp = F.embedding(X.T.long(), W_x) + b_x                         # (T, B, 3h): one-hot @ W_x
    run = Recurrence.apply if self.backward == "hand-written" else recurrence_autodiff
    Hs, H = run(xp, H, W_zr, self.W_hh)
    return torch.addmm(self.b_q, Hs.flatten(0, 1), self.W_hq), H     # (T*B, V)


def _scan_builtin(xp, H, W_h, b_h):
  """The built-in recurrence: xp (T, B, 3h) input projections [r z n], H (B, h), W_h (h, 3h),
  b_h (3h,) -> (H_prev, RZ, N, A, Hs), each (T, B, .); A = H W_hn + b_hn, the candidate's
  hidden side. One (h, 3h) product per step: the reset gate multiplies after it."""
  h = H.shape[-1]
  H_prev, RZs, Ns, As, Hs = [], [], [], [], []
  for x in xp.unbind(0):                                             # x (B, 3h)
    G = torch.addmm(b_h, H, W_h)                                     # (B, 3h)
    RZ = torch.sigmoid(x[:, :2 * h] + G[:, :2 * h])                  # (B, 2h)
    A = G[:, 2 * h:]
    N = torch.tanh(x[:, 2 * h:] + RZ[:, :h] * A)                     # (B, h)
    H_prev.append(H)
    H = N + RZ[:, h:] * (H - N)                                      # aten's GRU cell's form
    RZs.append(RZ), Ns.append(N), As.append(A), Hs.append(H)
  return tuple(map(torch.stack, (H_prev, RZs, Ns, As, Hs)))


class RecurrenceBuiltin(torch.autograd.Function):
  """(xp, H, W_h, b_h) -> (Hs (T, B, h), final H (B, h)), with the hand-written backward."""

  @staticmethod
  def forward(ctx, xp, H, W_h, b_h):
    H_prev, RZ, N, A, Hs = _scan_builtin(xp, H, W_h, b_h)
    ctx.save_for_backward(H_prev, RZ, N, A, W_h)
    return Hs, Hs[-1]

  @staticmethod
  def backward(ctx, dHs, dH):
    H_prev, RZ, N, A, W_h = ctx.saved_tensors
    h = H_prev.shape[-1]
    dGs, dNs = [], []                       # dH: from step t+1 (autograd gives zeros, not None)
    for t in range(len(H_prev) - 1, -1, -1):
      g, Hp, R, Z, Nt = dHs[t] + dH, H_prev[t], RZ[t, :, :h], RZ[t, :, h:], N[t]
      dN = g * (1 - Z) * (1 - Nt * Nt)
      dG = torch.cat([dN * A[t] * R * (1 - R), g * (Hp - Nt) * Z * (1 - Z), dN * R], dim=1)  # (B, 3h)
      dH = torch.addmm(g * Z, dG, W_h.T)
      dGs.append(dG), dNs.append(dN)
    dG = torch.stack(dGs[::-1])                                      # (T, B, 3h): [dR' dZ' dA]
    dxp = torch.cat([dG[..., :2 * h], torch.stack(dNs[::-1])], dim=2)  # (T, B, 3h): [dR' dZ' dN']
    rows = dG.flatten(0, 1)                                          # (T*B, 3h)
    return dxp, dH, H_prev.flatten(0, 1).T @ rows, rows.sum(0)       # dW_h (h, 3h): one product


def recurrence_builtin_autodiff(xp, H, W_h, b_h):
  """The same (Hs, final H), differentiated by autograd op by op."""
  Hs = _scan_builtin(xp, H, W_h, b_h)[4]
  return Hs, Hs[-1]


class TunedBuiltinGRU(BuiltinGRU):
  """BuiltinGRU's parameters (torch.nn.GRU's, gates stacked r, z, n) and conversions;
  `forward` runs the built-in recurrence above."""

  backward = BACKWARDS[0]

  def __init__(self, vocab_size: int, num_hiddens: int):
    super().__init__(vocab_size, num_hiddens)
    # torch.compile refuses to trace an nn.GRU module ("Attempted to wrap RNN, GRU, or LSTM"),
    # even for its parameters alone: the same Parameters, under the same names, in a plain module.
    gru, self.rnn = self.rnn, nn.Module()
    for name, param in gru.named_parameters():
      self.rnn.register_parameter(name, param)

  def forward(self, X, H):
    """X (B, T) int, H (B, h) -> (T*B, V), (B, h)."""
    rnn = self.rnn
    xp = F.embedding(X.T.long(), rnn.weight_ih_l0.T) + rnn.bias_ih_l0  # (T, B, 3h): one-hot @ W_i
    run = RecurrenceBuiltin.apply if self.backward == "hand-written" else recurrence_builtin_autodiff
    Hs, H = run(xp, H, rnn.weight_hh_l0.T, rnn.bias_hh_l0)
    return self.linear(Hs.flatten(0, 1)), H                          # (T*B, V)


def torch_tuned(info, config, device=None, cls=None, model=TunedGRU):
  """The tuned model in the compiled loop: torch.compile of the whole step, Inductor's C++
  wrapper (measured on the 2-core EPYC, one thread: +10% over the Python one). Its process
  (torch_impl/process.py) lets OpenMP spin between products."""
  impl = (cls or train.TorchImpl)(info, config, device, loop="compiled", model=model, wrapper="cpp")
  impl.model.backward = config.option("torch_backward", "") or BACKWARDS[0]
  impl.execution += f"; recurrence backward {impl.model.backward}"  # the ablation tells its settings apart by it
  return impl


def torch_tuned_builtin(info, config, device=None, cls=None):
  """The tuned built-in model, compiled and spinning as torch_tuned."""
  return torch_tuned(info, config, device, cls, model=TunedBuiltinGRU)
