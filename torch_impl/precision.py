"""bf16 mixed precision in PyTorch (the policy: shared/precision.py; mirrors
jax_impl/precision.py). torch.autocast around the forward pass and the loss is the whole
idiom: its op lists give the policy's casting points (mm/addmm/linear in bf16, log_softmax
and nll_loss in float32), over float32 parameters; no loss scaling, as bf16 needs none.
"""
import contextlib

import torch


def autocast(device: torch.device, precision: str):
  """The mixed-precision idiom around a forward pass and its loss: torch.autocast to bf16
  under --precision bf16 (shared/precision.py's policy, which autocast's op lists give),
  else nothing. Backward and the update run outside it, in the weights' float32."""
  if precision != "bf16":
    return contextlib.nullcontext()
  return torch.autocast(device.type, dtype=torch.bfloat16)


def bf16_problem(device: torch.device):
  """None when `device` runs bf16, else a one-line reason naming the fix."""
  if device.type == "cuda" and not torch.cuda.is_bf16_supported():
    return (f"{torch.cuda.get_device_name(device)} has no bf16 support in torch; run --precision highest, "
            "or bf16 on a GPU of compute capability 8.0 or later, or --device cpu")
  return None
