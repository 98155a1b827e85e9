"""One process per report folder. A run holds its report folder (and so its checkpoint,
which lies beside it) from its first second to its last through an OS lock on a file
beside it, `.<folder>.lock` (flock: the kernel releases it when the process ends, however
it ends), so that a second run or resume given the same folder is refused in one line that
names the process holding it, and two runs started together never pick the same default
folder. Standard library only (POSIX).
"""
import atexit
import fcntl
import os
import pathlib

_HELD = {}  # lock file (absolute) -> its open descriptor


def path_of(folder) -> pathlib.Path:
  folder = pathlib.Path(folder).absolute()
  return folder.with_name(f".{folder.name}.lock")


def hold(folder) -> None:
  """Takes the lock of report folder `folder` for this process (again: nothing to do);
  ValueError naming the process that holds it and the fix."""
  path = path_of(folder)
  if path in _HELD:
    return
  path.parent.mkdir(parents=True, exist_ok=True)
  while True:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _holder(fd)
      os.close(fd)
      raise ValueError(f"{folder} is being written by {holder}: let that run finish (or stop it), or give "
                       "another --out") from None
    try:  # the holder before us may have removed the file as it let go: lock the file that is there
      if os.stat(path).st_ino == os.fstat(fd).st_ino:
        break
    except FileNotFoundError:
      pass
    os.close(fd)
  os.ftruncate(fd, 0)
  os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
  _HELD[path] = fd


def held(folder) -> bool:
  return path_of(folder) in _HELD


def release_all() -> None:
  """Lets go of every folder this process holds (also at exit, and by the kernel on a kill)."""
  for path, fd in list(_HELD.items()):
    try:
      path.unlink()
    except OSError:
      pass
    os.close(fd)
    del _HELD[path]


def _holder(fd: int) -> str:
  """"process 1234 (python compare.py --resume reports/x)", from the pid its holder wrote."""
  pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
  try:
    command = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
  except (OSError, ValueError):
    command = ""
  return f"process {pid}" + (f" ({command})" if command else "") if pid else "another process"


atexit.register(release_all)
