"""Data parallelism in JAX: the same jitted training step and epoch over a Mesh of N
devices, the batch axis sharded and the parameters replicated (shared/distributed.py says
what a data-parallel row is).

One process may drive every device (on a CPU, N host devices: XLA's
--xla_force_host_platform_device_count, set by shared/distributed.worker_env), or
jax.distributed may join N processes of one device each, the code path of a run over
several hosts: its coordinator is MASTER_ADDR:MASTER_PORT, this process RANK of
WORLD_SIZE (torchrun's variables, read the same way here), and on a CPU the collectives
run over gloo. Either way the program is the single-device one: XLA's SPMD partitioner
splits it by the inputs' shardings and inserts the all-reduce of the gradients. Protocol
answers are the whole batch's (gathered across processes by jax.experimental.multihost_utils).
"""
import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jax_impl import profile
from jax_impl.train import JaxImpl, TrainState, select_device

AXIS = "data"  # the mesh axis the batch rows are split over


def initialize(config, device=None) -> int:
  """Joins the processes of a multi-process run (once; WORLD_SIZE > 1), with the engine's
  timeouts; returns the number of processes."""
  world = int(os.environ.get("WORLD_SIZE", "1"))
  if world > 1 and not jax.distributed.is_initialized():
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}", world,
                               int(os.environ["RANK"]), initialization_timeout=config.worker_timeout,
                               heartbeat_timeout_seconds=min(100, config.worker_timeout))
  return world


class MeshImpl(JaxImpl):
  """A data-parallel row (`<row>-dpN`) of any JAX row: its arrays placed on a Mesh."""

  def __init__(self, info, config, device=None, model=None, **loop):
    name, devices = f"{info.name}-dp{config.devices}", config.devices
    processes = initialize(config)
    platform = select_device(device).platform
    available = jax.devices(platform)
    if len(available) < devices:
      raise ValueError(f"{name} needs {devices} {platform} devices and JAX has {len(available)} here; "
                       f"give --devices {len(available)} or fewer")
    self.mesh = Mesh(np.array(available[:devices]), (AXIS,))
    super().__init__(info, config, device, model, **loop)
    self.name = name
    self.execution += f"; jit over a Mesh of {devices} devices, batch rows sharded, parameters replicated"
    self.parallel = {"engine": "jax.jit over a Mesh (XLA SPMD partitioner)" +
                               (", jax.distributed" if processes > 1 else ", one process"),
                     "backend": "gloo collectives" if processes > 1 and platform == "cpu" else f"XLA:{platform.upper()}",
                     "devices": devices, "processes": processes, "threads_per_process": self.threads,
                     "launch": "jax.distributed.initialize (MASTER_ADDR:MASTER_PORT)" if processes > 1
                               else "one process driving every device"}

  def reduction(self, epoch_batches) -> dict:
    """jax.profiler's account of an epoch's gradient all-reduce: the time XLA:CPU's all-reduce
    thunks ran, per step (jax_impl/profile.py). The epoch trains; the weights come back."""
    if self.device.platform != "cpu":
      return {"what": "not shown: read on a CPU only", "ms_per_step": None, "events": None}
    with self.weights_kept():
      found = profile.all_reduce(lambda: self.train_epoch(epoch_batches))
    return {"what": f"jax.profiler, XLA:CPU's all-reduce thunks in process {jax.process_index()}",
            "ms_per_step": 1e3 * found["seconds"] / len(epoch_batches[0]) if found["events"] else None,
            "events": found["events"]}

  def _state_out(self) -> dict:
    """A step's or an epoch's state comes back as it went in: parameters (and the empty
    optimizer state) replicated, H split by rows; the losses replicated."""
    replicated, rows = self._sharding(), self._sharding(0)
    return {"out_shardings": (TrainState(replicated, replicated, rows), replicated)}

  def _sharding(self, rows_axis=None):
    spec = [None] * (rows_axis or 0) + [AXIS] if rows_axis is not None else []
    return NamedSharding(self.mesh, P(*spec))

  def _put(self, a, rows_axis=None):
    """Each device gets its part of `a` (a host array or a tree of them: the same value
    in every process); rows that do not split evenly (generation's single row) are
    replicated, and every device computes them whole."""
    def put(x):
      x = np.asarray(x)
      axis = rows_axis if rows_axis is not None and x.shape[rows_axis] % len(self.mesh.devices) == 0 else None
      return jax.make_array_from_callback(x.shape, self._sharding(axis), lambda index: x[index])
    return jax.tree.map(put, a)

  def _minibatches(self, Xs, Ys):
    """Indexed, not iterated: an index keeps the rows' sharding on the devices (iterating
    a sharded array goes through the host, and across processes cannot)."""
    return ((Xs[i], Ys[i]) for i in range(Xs.shape[0]))

  def _get(self, x) -> np.ndarray:
    if x.is_fully_addressable:
      return np.asarray(x)
    if x.sharding.is_fully_replicated:
      return np.asarray(x.addressable_data(0))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


ROW = MeshImpl  # a data-parallel row (shared/registry.py)
