"""Data parallelism: how the processes of a data-parallel row are laid out and launched, and
the checks made before any training. Standard library only.

`compare.py --devices N` adds, beside each row, its data-parallel twin `<row>-dpN`: every
minibatch's rows split evenly over N devices, each device carrying the hidden state of its
own rows from minibatch to minibatch, the gradients reduced by the framework's own engine,
clipping by global norm on the reduced gradient, and the same SGD step on every device. The
engines are in torch_impl/distributed.py (DistributedDataParallel, one process per device,
launched as torchrun launches: RANK, WORLD_SIZE, MASTER_ADDR, ... in each one's environment)
and jax_impl/distributed.py (the epoch jitted over a Mesh, the batch axis sharded and the
parameters replicated; one process driving N devices, or with `processes` N,
jax.distributed with one device per process). The processes themselves are
shared/workers.py's, started by shared/registry.py. Which rows refuse data parallelism, and
why: shared/rows.py.
"""
import os
import socket

from shared import threads

# Set to "torch" or "jax" in a process that is itself one rank of a launched run (torchrun,
# or compare.py --coordinator): its data-parallel rows are built in-process, as this rank.
LAUNCHED = "GRU_PARITY_LAUNCHED"
HOST = "127.0.0.1"  # the coordinator of the workers this machine starts for itself


def processes(framework: str, config) -> int:
  """The processes of a data-parallel row of `framework` on config.devices devices."""
  return (config.processes or 1) if framework == "jax" else config.devices


def threads_per_process(framework: str, config) -> int:
  """Each process's share of the row's threads (config.threads, 0: every core), so that a
  row on one device and its twin on N use the same cores."""
  return max(1, threads.resolve(config.threads) // processes(framework, config))


def check(config, device, launched=None) -> None:
  """ValueError (one line naming the fix) when config.devices cannot run here (this
  machine's cores, unless a launcher spreads the devices over several: `launched`)."""
  total = threads.resolve(config.threads)
  if config.devices > 1 and device != "gpu" and config.devices > total and not launched:
    raise ValueError(f"devices {config.devices} needs a core per device and the rows have {total} "
                     f"(threads, default every core); give devices {total} or fewer")


def check_port(host: str, port: int) -> None:
  """ValueError naming the fix when the coordinator cannot listen on `port` here."""
  with socket.socket() as s:
    try:
      s.bind(("" if host in ("localhost", "127.0.0.1", "0.0.0.0") else host, port))
    except OSError as e:
      raise ValueError(f"the coordinator's port {port} is in use or not allowed here ({e.strerror}); "
                       "choose another port in --coordinator") from None


def free_port() -> int:
  """A port no one listens on now (the kernel's choice)."""
  with socket.socket() as s:
    s.bind((HOST, 0))
    return s.getsockname()[1]


def worker_env(framework: str, config, rank: int, world: int, port: int) -> dict:
  """The environment of one worker process: its threads (shared/threads.py), torchrun's
  variables (torch.distributed's env:// reads them; the JAX side reads the same ones for
  jax.distributed.initialize) and, for a JAX process driving several CPU devices, XLA's
  host device count."""
  env = threads.environment(threads_per_process(framework, config))
  env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
             GROUP_RANK="0", MASTER_ADDR=HOST, MASTER_PORT=str(port))
  if framework == "jax" and world == 1:
    flag = f"--xla_force_host_platform_device_count={config.devices}"
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flag}".strip()
  elif framework == "jax":  # one GPU per process, where there are GPUs (as torch's set_device)
    env["CUDA_VISIBLE_DEVICES"] = str(rank)
  return env


def worker_envs(framework: str, config) -> list:
  """The environments of a data-parallel row's processes, one per rank, on a free port."""
  world, port = processes(framework, config), free_port()
  return [worker_env(framework, config, rank, world, port) for rank in range(world)]


# --- a run launched by an engine's own launcher, over one machine or several -------------
def launch(coordinator, process_id, config):
  """This process's place in a launched run, or None: under torchrun (its environment says
  so), or with --coordinator HOST:PORT and --process-id for JAX. Sets this process's
  environment as the engines read it, before either starts; ValueError naming the fix."""
  if coordinator is not None:
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
      raise ValueError(f"--coordinator takes HOST:PORT (process 0's host, a port in 1..65535), got {coordinator!r}")
    if not config.devices == config.processes > 1:
      raise ValueError("--coordinator runs the JAX rows over several machines: give --devices N --processes N")
    if not 0 <= process_id < config.processes:
      raise ValueError(f"--process-id must be in 0..{config.processes - 1}, got {process_id}")
    if process_id == 0:
      check_port(host, int(port))
    os.environ.update(RANK=str(process_id), WORLD_SIZE=str(config.processes), LOCAL_RANK="0",
                      MASTER_ADDR=host, MASTER_PORT=port, **{LAUNCHED: "jax"})
    return {"framework": "jax", "rank": process_id, "world": config.processes}
  if "TORCHELASTIC_RUN_ID" in os.environ:  # torchrun's mark on its workers
    world = int(os.environ["WORLD_SIZE"])
    if config.devices != world:
      raise ValueError(f"under torchrun --devices must be its world size, {world}")
    os.environ[LAUNCHED] = "torch"
    return {"framework": "torch", "rank": int(os.environ["RANK"]), "world": world}
  return None


def join(engine, config, device=None) -> None:
  """Joins this launched process to its run through its engine (the launched framework's
  distributed module), before anything else of that framework starts (jax.distributed must
  come before JAX's first device)."""
  try:
    engine.initialize(config, device)
  except Exception as e:  # noqa: BLE001 - the engine's own error, in one line
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise ValueError(f"could not join the launched run ({type(e).__name__}: {text}); check the coordinator's "
                     "address and that every process was started with the same --devices") from None


def check_launched(rows, launched) -> None:
  """A launched run trains its launcher's framework only (`rows`: shared.rows.Row)."""
  other = [r.name for r in rows if r.info.framework != launched["framework"]]
  if other:
    raise ValueError(f"this run was launched for {launched['framework']} rows only, and {other[0]} is not one; "
                     "give --impls of that framework")
