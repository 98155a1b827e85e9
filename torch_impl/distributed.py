"""Data parallelism in PyTorch: DistributedDataParallel, one process per device, gloo on the
CPU and NCCL when every process has a GPU (shared/distributed.py says what a
data-parallel row is).

Each process is started as torchrun starts its workers and joins the group by env://: it
reads RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from its environment (torchrun sets
them; shared/distributed.worker_env does so on one machine). A rank trains its share of
every minibatch's rows, carrying its rows' hidden state; `loss.backward()` through the
DDP module averages the gradients over the ranks, bucket by bucket while the backward
pass runs, so that clipping by global norm and the SGD step see the reduced gradient on
every rank. Protocol answers (logits, loss, gradients, state) are the whole batch's,
gathered by the engine's own collectives, so that rank 0 speaks for the row.
"""
import datetime
import os

import torch
import torch.distributed as dist
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

from shared.protocol import scoped
from torch.profiler import ProfilerActivity, profile

from torch_impl.train import TorchImpl, clip_and_sgd_, try_gpu, weights_restored


def initialize(config, device=None) -> str:
  """Joins this process's group (once; env://), with the engine's timeout for start-up and
  every collective; returns the backend (NCCL when this process has a GPU, else gloo)."""
  if not dist.is_initialized():
    gpu = try_gpu(device).type == "cuda"
    if gpu:  # a GPU per process, before any row of this process puts a tensor on one
      torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    backend = "nccl" if gpu else "gloo"
    dist.init_process_group(backend, init_method="env://",
                            timeout=datetime.timedelta(seconds=config.worker_timeout))
  return dist.get_backend()


class DDPImpl(TorchImpl):
  """One rank of a data-parallel row (`<row>-dpN`) of torch-scratch or torch-cudnn."""

  def __init__(self, info, config, device=None, **loop):
    name, devices = f"{info.name}-dp{config.devices}", config.devices
    if device != "cpu" and torch.cuda.is_available():
      if torch.cuda.device_count() < int(os.environ.get("LOCAL_WORLD_SIZE", devices)):
        raise ValueError(f"{name} needs a GPU per process and this machine has {torch.cuda.device_count()}; "
                         f"give --devices {torch.cuda.device_count()} or fewer")
    backend = initialize(config, device)  # first: it picks this process's GPU
    # DDP's reducer works on .grad in eager steps: no CUDA graph of the step here.
    super().__init__(info, config.set(cuda_graph="off"), device, **loop)
    self.rank, self.world = dist.get_rank(), dist.get_world_size()
    if self.world != devices:
      raise ValueError(f"{name} needs {devices} processes and this launch has {self.world}; "
                       f"give --devices {self.world}")
    self.name = name
    self.ddp = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.index is not None
                                       else None)
    self.execution = (f"DistributedDataParallel ({backend}), sync-free eager loop; "
                      "backward() all-reduces the gradients, bucketed, overlapped with the backward pass")
    self.parallel = {"engine": "torch.distributed (DistributedDataParallel)", "backend": backend,
                     "devices": self.world, "processes": self.world, "threads_per_process": self.threads,
                     "launch": "torchrun's environment (env:// rendezvous)"}

  def close(self) -> None:
    if dist.is_initialized():
      dist.destroy_process_group()

  # --- this rank's rows, and whole-batch answers ---------------------------------------
  def _rows(self, a, axis=0):
    """This rank's share of the batch rows of `a` (rows on `axis`); None stays None."""
    if a is None:
      return None
    b = a.shape[axis] // self.world
    return a[(slice(None),) * axis + (slice(self.rank * b, (self.rank + 1) * b),)]

  def _gather(self, t, axis=0):
    """Every rank's `t`, concatenated along `axis` in rank order (the engine's all_gather)."""
    parts = [torch.empty_like(t) for _ in range(self.world)]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, axis)

  def _gather_logits(self, logits, T):
    """Time-major (T*b, V) per rank -> (T*B, V) of the whole batch."""
    return self._gather(logits.reshape(T, -1, logits.shape[-1]), 1).reshape(-1, logits.shape[-1])

  def _mean(self, t):
    """The mean over ranks of a per-rank mean (every rank has as many rows)."""
    t = t.detach().clone()
    dist.all_reduce(t)
    return t / self.world

  @scoped
  def forward(self, X, H=None):
    if len(X) % self.world:  # e.g. generation's single row: every rank computes it whole
      return super().forward(X, H)
    with torch.no_grad():
      logits, H = self.model(self._tensor(self._rows(X)), self._state(self._rows(H), len(X) // self.world))
      logits, H = self._gather_logits(logits, X.shape[1]), self._gather(H)
    return logits.cpu().numpy(), H.cpu().numpy()

  @scoped
  def loss_and_grads(self, X, Y, H=None):
    params = list(self.model.parameters())
    logits, H = self.ddp(self._tensor(self._rows(X)), self._state(self._rows(H), len(X) // self.world))
    loss = F.cross_entropy(logits, self._tensor(self._rows(Y)).T.reshape(-1))
    loss.backward()  # DDP averages the gradients over the ranks
    grads = self.model.canonical([p.grad for p in params])
    result = {k: g.cpu().numpy().copy() for k, g in grads.items()}
    self.model.zero_grad(set_to_none=True)
    return self._mean(loss).item(), result, self._gather(H.detach()).cpu().numpy()

  # --- training: the fast loop on this rank's rows, the DDP step -------------------------
  def _epoch_fast(self, Xs, Ys, step=None):
    return super()._epoch_fast(self._rows(Xs, 1), self._rows(Ys, 1), self._ddp_step)  # (N, B/world, T)

  def _ddp_step(self, X, Y, H):
    """One step on this rank's rows: X, Y (b, T), H (b, h); as TorchImpl._step, with the
    gradients from backward() through DDP, which reduces them."""
    params = list(self.model.parameters())
    logits, H = self.ddp(X, H)                                 # (T*b, V), (b, h)
    loss = F.cross_entropy(logits, Y.T.reshape(-1))
    loss.backward()
    with torch.no_grad():
      clipped = clip_and_sgd_(params, [p.grad for p in params], self.config.grad_clip, self.config.lr)
    self.model.zero_grad(set_to_none=True)
    return loss.detach(), H.detach(), clipped

  def reduction(self, epoch_batches) -> dict:
    """torch.profiler's account of an epoch's gradient all-reduce (this rank's): the time
    in the collectives it records, per step. The epoch trains; the weights come back."""
    with weights_restored(list(self.model.parameters())), profile(activities=[ProfilerActivity.CPU]) as prof:
      self.train_epoch(epoch_batches)
    # "gloo:all_reduce" (or "nccl:all_reduce"): the collective itself, as the backend records
    # it; c10d::allreduce_ around it only enqueues it.
    events = [e for e in prof.events() if e.name.endswith(":all_reduce")]
    names = sorted({e.name for e in events})
    return {"what": f"torch.profiler, {', '.join(names) or 'no all-reduce event'} on rank {self.rank}",
            "ms_per_step": 1e3 * sum(e.cpu_time_total for e in events) / 1e6 / len(epoch_batches[0]) if events else None,
            "events": len(events)}

  def _epoch_result(self, sums, steps: int) -> float:
    """The whole batch's mean loss: this rank's loss total averaged over the ranks (one
    all_reduce per epoch); the clipped count is every rank's alike."""
    sums = torch.stack([self._mean(sums[0]), sums[1]])
    return super()._epoch_result(sums, steps)


ROW = DDPImpl  # a rank of a data-parallel row (shared/registry.py)
