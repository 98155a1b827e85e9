"""What a run ran on and with: package versions (from their metadata, nothing imported), the
CPU as the OS names it, the git commit of the code. Standard library only."""
import importlib.metadata
import pathlib
import platform
import subprocess

PACKAGES = ("torch", "jax", "jaxlib", "flax", "optax", "keras", "numpy", "scipy", "matplotlib", "tqdm")


def package_versions(packages=PACKAGES) -> dict:
  """{package: installed version, or None}, from package metadata (nothing is imported)."""
  versions = {}
  for pkg in packages:
    try:
      versions[pkg] = importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
      versions[pkg] = None
  return versions


def cpu_model() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def git_commit(root) -> str:
  """The short commit of `root`, "+dirty" when its code (anything outside reports/) changed."""
  try:
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, timeout=10)
    # Changes under reports/ (where this report is being written) do not make the code dirty.
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no",
                            "--", ".", ":!reports"], capture_output=True, text=True, timeout=10).stdout.strip()
    return (out.stdout.strip() or "unknown") + ("+dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"
