"""Rows that train in other processes: a group of worker processes, one per rank, and
`RemoteImpl`, the protocol object that stands for them in the harness, so that such a row
trains epoch by epoch beside the in-process rows and gives the same records.

Every call goes to every rank (the ranks run the same program, as under torchrun), and the
answer is rank 0's: a rank's implementation returns whole-batch results (logits, loss,
gradients), gathered by its own engine. A worker that dies (killed, out of memory) fails
the row at once, one that raises fails it with its exception, and one that hangs (stopped,
deadlocked, with or without a peer) is declared hung once it has sent nothing for
--worker-timeout seconds: while it serves a call a worker sends a heartbeat every BEAT
seconds from a thread of its own, so that a call may take as long as it takes (an epoch of
a large model) while a silent process does not stall the run. Either way one line names the
row, the rank and the cause, and the group's processes are killed, so that nothing is left
behind. The start-up, rendezvous included, has a deadline of its own.
Workers ignore Ctrl-C (the harness handles it and closes them) and exit on their own when
the harness's process is gone.

Standard library only: the worker builds its rank with the function it is given
(shared/registry.build), which imports the framework there.
"""
import multiprocessing as mp
import os
import signal
import threading
import time
import weakref
from multiprocessing.connection import wait

from shared import protocol

GRACE = 60         # seconds past the engine's timeout before the harness gives up on a start-up
BEAT = 1.0         # seconds between a busy worker's heartbeats
CLOSE_WAIT = 10    # seconds a worker has to finish after "close" before it is terminated, then killed
# What the harness reads from rank 0's implementation once it is built, and after each call.
ATTRIBUTES = ("layout", "device_name", "precision", "execution", "threads", "missing", "parallel")


_BEAT = object()  # a heartbeat received: the rank is alive


class WorkerFailed(RuntimeError):
  """A rank of a multi-process row failed; the message names the row, the rank, the cause."""


# --- in the worker process ---------------------------------------------------------------
def _exit_with_parent(parent: int) -> None:
  """Ends this worker when the harness's process is gone (not even a kill -9 of the
  harness leaves a worker behind, blocked in a collective)."""
  while os.getppid() == parent:
    time.sleep(1)
  os._exit(1)


def _killed_with_parent() -> None:
  """On Linux the kernel kills this worker the moment the harness's process dies
  (PR_SET_PDEATHSIG), even in the middle of importing its framework, where the watchdog
  thread of `_exit_with_parent` would wait for the GIL; elsewhere the watchdog alone."""
  try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    pass


def _attributes(impl) -> dict:
  return {k: getattr(impl, k, None) for k in ATTRIBUTES}


def _beat(send, busy: threading.Event) -> None:
  """While the worker serves a call, a heartbeat every BEAT seconds: alive, only slow."""
  while True:
    busy.wait()
    time.sleep(BEAT)
    if busy.is_set():
      send(("beat", None))


def serve(conn, build, args: tuple, env: dict) -> None:
  """A worker's life: its environment set before any framework starts, its rank's
  implementation built by `build(*args)`, then calls served until "close" or the harness
  is gone, with heartbeats while a call runs. Every exception is sent back as one line;
  none escapes."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the harness's to handle
  _killed_with_parent()
  os.environ.update(env)
  threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()  # parent gone already
  lock, busy = threading.Lock(), threading.Event()

  def send(message) -> None:
    with lock:  # the heartbeat thread and this one share the pipe
      conn.send(message)
  try:
    impl = build(*args)
  except Exception as e:  # noqa: BLE001 - reported by the harness
    send(("error", protocol.one_line(e)))
    return
  send(("ok", (_attributes(impl), time.process_time())))
  threading.Thread(target=_beat, args=(send, busy), daemon=True).start()
  while True:
    try:
      method, args = conn.recv()
    except (EOFError, OSError):  # the harness is gone
      return
    if method == "close":
      break
    busy.set()
    try:
      result = getattr(impl, method)(*args)
      # its CPU seconds so far, every thread: the harness charges the row with them
      send(("ok", (result, impl.clipped_steps, _attributes(impl), time.process_time())))
    except Exception as e:  # noqa: BLE001
      send(("error", protocol.one_line(e)))
    finally:
      busy.clear()
  getattr(impl, "close", lambda: None)()
  send(("ok", None))


# --- in the harness ----------------------------------------------------------------------
def cause(exitcode) -> str:
  """Why a process ended, in words."""
  if exitcode is not None and exitcode < 0:
    sig = signal.Signals(-exitcode).name
    return f"killed by {sig}" + (" (e.g. out of memory)" if sig == "SIGKILL" else "")
  return f"exited with status {exitcode}"


class WorkerGroup:
  """`world` processes running `serve`, rank r with envs[r]. `call` sends a method to every
  rank and returns their answers in rank order, or raises WorkerFailed."""

  def __init__(self, row: str, build, args: tuple, envs: list, silence=None):
    self.row, self.closed, self.silence = row, False, silence
    context = mp.get_context("spawn")  # a fresh interpreter: its threads set before its framework starts
    self.conns, self.procs = [], []
    with _ctrl_c_ignored():  # inherited: a Ctrl-C while a worker boots is the harness's alone
      for rank, env in enumerate(envs):
        parent, child = context.Pipe()
        proc = context.Process(target=serve, args=(child, build, args, env), daemon=True,
                               name=f"{row}-rank{rank}")
        proc.start()
        child.close()
        self.conns.append(parent)
        self.procs.append(proc)
    self._finalizer = weakref.finalize(self, _kill, self.procs)

  def pids(self) -> list:
    return [p.pid for p in self.procs]

  def gather(self, timeout=None, silence=None) -> list:
    """Every rank's next answer, in rank order; WorkerFailed on a death, an exception,
    nothing at all past `timeout` seconds (a start-up) or a rank that sends nothing, not
    even a heartbeat, for `silence` seconds (hung); the group is then killed."""
    answers, start = {}, time.monotonic()
    seen = dict.fromkeys(range(len(self.conns)), start)
    try:
      while len(answers) < len(self.conns):
        waiting = [r for r in range(len(self.conns)) if r not in answers]
        ready = wait([self.conns[r] for r in waiting] + [self.procs[r].sentinel for r in waiting],
                     self._left(start, timeout, [seen[r] for r in waiting], silence))
        if not ready:
          raise WorkerFailed(self._silent(waiting, start, timeout, seen, silence))
        for r in waiting:
          if self.conns[r] in ready or self.conns[r].poll():
            value = self._receive(r, waiting)
            seen[r] = time.monotonic()
            if value is not _BEAT:
              answers[r] = value
          elif self.procs[r].sentinel in ready:
            self.procs[r].join(1)  # its exit code
            raise WorkerFailed(f"{self.row}: rank {r} {cause(self.procs[r].exitcode)}")
    except BaseException:  # a failure or a Ctrl-C: the group's state is lost, its processes go
      self.kill()
      raise
    return [answers[r] for r in range(len(self.conns))]

  @staticmethod
  def _left(start: float, timeout, seen: list, silence):
    """Seconds until the nearer deadline: the start-up's, or the quietest rank's silence."""
    ends = ([start + timeout] if timeout is not None else []) + ([min(seen) + silence] if silence else [])
    return max(0.0, min(ends) - time.monotonic()) if ends else None

  def _silent(self, waiting: list, start: float, timeout, seen: dict, silence) -> str:
    """Why a gather gave up: a start-up past its deadline, or the rank silent the longest."""
    if silence and min(seen[r] for r in waiting) + silence <= time.monotonic():
      r = min(waiting, key=lambda q: seen[q])
      return (f"{self.row}: rank {r} sent nothing for {silence:.0f} s (hung: stopped or deadlocked; "
              "--worker-timeout sets how long a worker may stay silent)")
    return f"{self.row}: rank {waiting[0]} did not start within {timeout:.0f} s"

  def _receive(self, r: int, waiting: list):
    """Rank r's next message: its answer, or _BEAT; WorkerFailed if it died or raised."""
    try:
      status, value = self.conns[r].recv()
    except (EOFError, OSError):  # its end of the pipe closed: it died
      self.procs[r].join(5)
      raise WorkerFailed(f"{self.row}: rank {r} {cause(self.procs[r].exitcode)}") from None
    if status == "beat":
      return _BEAT
    if status == "error":
      silent = [q for q in waiting if q != r and not self.conns[q].poll()]
      raise WorkerFailed(self._died() or f"{self.row}: rank {r}: {value}"
                         + (f" (rank {', '.join(map(str, silent))} had not answered)" if silent else ""))
    return value

  def _died(self, wait_s: float = 2.0):
    """The death of a rank, if one died: a peer's error in a collective is its consequence."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
      for r, proc in enumerate(self.procs):
        if not proc.is_alive():
          return f"{self.row}: rank {r} {cause(proc.exitcode)}"
      time.sleep(0.05)
    return None

  def call(self, method: str, *args) -> list:
    if self.closed:
      raise WorkerFailed(f"{self.row}: its worker processes were stopped after an earlier failure")
    try:
      for conn in self.conns:
        conn.send((method, args))
    except OSError:  # a rank's pipe is closed: it died; name it before the group is killed
      why = self._died() or f"{self.row}: a worker's pipe is closed"
      self.kill()
      raise WorkerFailed(why) from None
    except BaseException:  # a Ctrl-C mid-send: a half-written call; the group cannot go on
      self.kill()
      raise
    return self.gather(silence=self.silence)

  def close(self) -> None:
    """Asks every rank to finish, then terminates and kills what is left."""
    if not self.closed:
      for conn in self.conns:
        try:
          conn.send(("close", ()))
        except OSError:
          pass
    self.kill(CLOSE_WAIT)

  def kill(self, patience: float = 0.0) -> None:
    self.closed = True
    _kill(self.procs, patience)


class _ctrl_c_ignored:
  """SIGINT ignored while inside (from the main thread; elsewhere nothing changes)."""

  def __enter__(self):
    try:
      self.saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
      self.saved = None

  def __exit__(self, *exc):
    if self.saved is not None:
      signal.signal(signal.SIGINT, self.saved)


def _kill(procs, patience: float = 0.0) -> None:
  """Joins `procs` within `patience` seconds, then terminates and kills what is left."""
  deadline = time.monotonic() + patience
  for proc in procs:
    proc.join(max(0.0, deadline - time.monotonic()))
  for stop in ("terminate", "kill"):
    for proc in procs:
      if proc.is_alive():
        getattr(proc, stop)()
        _wake(proc)  # a stopped process (SIGSTOP) acts on SIGTERM only once continued
    for proc in procs:
      proc.join(5)


def _wake(proc) -> None:
  try:
    os.kill(proc.pid, signal.SIGCONT)
  except (OSError, TypeError):  # gone already
    pass


class RemoteImpl(protocol.GRUImpl):
  """A row trained by a WorkerGroup; the harness uses it as any other implementation.

  launch_seconds: from starting the processes to every rank's implementation built (the
  engine's start-up and rendezvous included)."""

  def __init__(self, name: str, config, envs: list, build, args: tuple):
    self.name, self.config = name, config
    start = time.perf_counter()
    self.group = WorkerGroup(name, build, args, envs, silence=config.worker_timeout)
    ready = self.group.gather(config.worker_timeout + GRACE)
    self.launch_seconds = time.perf_counter() - start
    self._update(ready[0][0])
    self._worker_cpu = sum(cpu for _, cpu in ready)

  def _update(self, attributes: dict) -> None:
    for k, v in attributes.items():
      setattr(self, k, v)

  def _call(self, method: str, *args):
    answers = self.group.call(method, *args)
    result, self.clipped_steps, attributes, _ = answers[0]
    self._update(attributes)
    self._worker_cpu = sum(a[3] for a in answers)
    return result

  def set_params(self, params):
    self._call("set_params", params)

  def get_params(self):
    return self._call("get_params")

  def forward(self, X, H=None):
    return self._call("forward", X, H)

  def loss_and_grads(self, X, Y, H=None):
    return self._call("loss_and_grads", X, Y, H)

  def train_epoch(self, epoch_batches):
    return self._call("train_epoch", epoch_batches)

  def prepare(self, epoch_batches):
    return self._call("prepare", epoch_batches)

  def cpu_seconds(self) -> float:
    """This process's CPU seconds and its workers' as of their last answer: read after a
    call, they include its work."""
    return time.process_time() + self._worker_cpu

  def reduction(self, epoch_batches) -> dict:
    """The engine profiler's account of the gradient all-reduce over an epoch (rank 0's)."""
    return self._call("reduction", epoch_batches)

  def time_split(self, epoch_batches):
    return self._call("time_split", epoch_batches)

  def release(self) -> None:
    """Its processes finish and go (the harness is done with the row)."""
    self.group.close()
