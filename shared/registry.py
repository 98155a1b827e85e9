"""Building rows: the only place that imports a framework's package by name (importlib), so
that shared/ stays free of torch, jax and keras until a row of theirs is asked for.

    impl = make(Row("jax-scratch"), config, "cpu")   # initial weights from config.seed
    impl = make_impl("torch-scratch-dp2", config)     # the same from a row's name

A row on one device is built in this process by its table entry's constructor
(shared/rows.py, Impl.make); a row that trains in a process of its own (a Keras row: its
framework's process.py says how to start it) or data parallel (shared/distributed.py)
becomes a workers.RemoteImpl that stands for its processes.
"""
import importlib
import importlib.util
import os

from shared import distributed, levers, rows, threads, workers
from shared.protocol import GRUImpl


def module(framework: str, name: str):
  """`<framework>_impl.<name>`: a framework's threads, gemm, options, process or
  distributed module."""
  return importlib.import_module(f"{framework}_impl.{name}")


def constructor(spec: str):
  """"package.module:attribute" -> the attribute."""
  path, _, attribute = spec.partition(":")
  return getattr(importlib.import_module(path), attribute)


def make(row: rows.Row, config, device=None, process=False) -> GRUImpl:
  """Builds `row` on `device` ("cpu", "gpu" or None for GPU-if-present) with its own
  configuration (row.config), in this process or, with `process`, in a fresh process of its
  own (as a row that needs one always is); its parameters start from the canonical
  initializer of its layout and config.seed. protocol.Unavailable when it cannot run here."""
  info, config = row.info, row.config(config).validate()
  if row.devices > 1 and os.environ.get(distributed.LAUNCHED) == info.framework:
    impl = constructor(info.make)(info, config, device, cls=module(info.framework, "distributed").ROW)
    impl.fatal = True  # one rank of a launched run: an error stops every rank (shared/training.py)
  elif row.devices > 1:
    envs = distributed.worker_envs(info.framework, config)
    per_process = config.set(threads=distributed.threads_per_process(info.framework, config))
    impl = workers.RemoteImpl(row.name, per_process, envs, build,
                              (info, per_process, device, f"{info.framework}_impl.distributed:ROW"))
  elif info.own_process:
    process = module(info.framework, "process")
    process.check(info)
    impl = workers.RemoteImpl(row.name, config, [process.environment(info, config, device)], build,
                              (info, config, device))
  elif process:
    impl = workers.RemoteImpl(row.name, config, [environment(info, config, device)], build, (info, config, device))
  else:
    impl = build(info, config, device)
  impl.name = row.name
  return impl


def environment(info: rows.Impl, config, device) -> dict:
  """The environment of a row's process of its own: its framework's (`process.environment`,
  where the framework has one), else the run's threads."""
  process = _process(info.framework)
  return process.environment(info, config, device) if process else threads.environment(threads.resolve(config.threads))


def conditions(info: rows.Impl, config) -> dict:
  """The environment variables by which a row's process runs its products otherwise than the
  run's own process ({} where it runs them alike): its framework's `process.conditions`."""
  process = _process(info.framework)
  return process.conditions(info, config) if hasattr(process, "conditions") else {}


def _process(framework: str):
  """`<framework>_impl.process`, None for a framework without one."""
  return module(framework, "process") if importlib.util.find_spec(f"{framework}_impl.process") else None


def build(info: rows.Impl, config, device, cls=None) -> GRUImpl:
  """Calls `info`'s constructor (here, or in a row's worker process); `cls`, "module:ROW",
  the class of a data-parallel rank."""
  return constructor(info.make)(info, config, device, **({"cls": constructor(cls)} if cls else {}))


def make_impl(name: str, config, device=None) -> GRUImpl:
  """`make` of the row named `name` (ValueError listing the known implementations)."""
  return make(rows.Row.parse(name), config, device)


def runtime(framework: str) -> dict:
  """What `framework` runs on here: threads, parallel backend, matrix libraries; imports it."""
  return module(framework, "threads").describe()


def sees_gpu(framework: str, device) -> bool:
  """Whether rows of `framework` would train on a GPU (`device` as make takes it)."""
  if device == "cpu":
    return False
  engine = next(i.runs_on for i in rows.IMPLS.values() if i.framework == framework)
  return module(engine, "threads").gpu_available()


def options() -> tuple:
  """Every framework's settings (levers.Option), in table order of the frameworks."""
  return tuple(o for fw in rows.FRAMEWORKS for o in module(fw, "options").OPTIONS)


def all_levers() -> tuple:
  """Every speed lever, each framework's then the neutral one, those that compile for
  minutes last (an ablation cut short keeps the levers that finished)."""
  found = [lever for fw in rows.FRAMEWORKS for lever in module(fw, "options").LEVERS] + [levers.TF32]
  return tuple(sorted(found, key=lambda lever: lever.slow))
