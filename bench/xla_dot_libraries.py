"""What XLA:CPU's experimental dot libraries do on this machine, each tried in a child process
(one that dies cannot take the others down): whether its option changes the compiled
program (a library fusion in the HLO) and whether the program runs. The ablation's xla-dot
lever (jax_impl/options.py) measures the ones that work; this script says why the others
are not among its settings.

    PYTHONPATH=. python bench/xla_dot_libraries.py > reports/<date>-cpu-xla-dot-libraries.txt
"""
import pathlib
import signal
import subprocess
import sys

# name -> (compiler options, the fusion kind its HLO would show)
LIBRARIES = {
    "YNNPACK (jaxlib's default)": ({}, "__ynn_fusion"),
    "oneDNN": ({"xla_cpu_use_onednn": True, "xla_cpu_experimental_onednn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"},
               "__onednn_fusion"),
    "XNNPACK": ({"xla_cpu_experimental_ynn_fusion_type": "", "xla_cpu_use_xnnpack": True,
                 "xla_cpu_experimental_xnn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}, "__xnn_fusion"),
}
# Two programs: a product with a bias (a Dense layer), and one whose fused tail multiplies, as
# the GRU's gates do (z * h + ...): the smallest program found that tells the cases apart.
PROGRAMS = {"c + a @ b": "lambda a, b, p, q: p + a @ b", "p * q + a @ b": "lambda a, b, p, q: p * q + a @ b"}
CHILD = """
import jax, jax.numpy as jnp, numpy as np
rng = np.random.default_rng(0)
args = [jnp.asarray(rng.random(s), jnp.float32) for s in ((32, 512), (512, 256), (32, 256), (32, 256))]
f = {program}
compiled = jax.jit(f, compiler_options={options!r}).lower(*args).compile()
print("fusions", compiled.as_text().count({kind!r}), flush=True)
gap = float(jnp.max(jnp.abs(compiled(*args) - jax.jit(f)(*args))))
print("ran, max |difference| from the default program", gap, flush=True)
"""


def outcome(done: subprocess.CompletedProcess) -> str:
  """One line: what the child printed, and how it ended (a signal by name)."""
  printed = "; ".join(line for line in done.stdout.splitlines() if line.strip())
  if done.returncode < 0 or done.returncode > 128:
    number = -done.returncode if done.returncode < 0 else done.returncode - 128
    ended = f"killed by {signal.Signals(number).name}"
  else:
    ended = "exit 0" if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"
  return f"{printed or 'nothing printed'}; {ended}"


def main() -> int:
  import datetime
  import jax
  from shared import machine, threads
  from shared.reports import report
  env = report.environment(pathlib.Path(__file__).resolve().parents[1])
  print(f"# XLA:CPU dot libraries, {datetime.datetime.now().isoformat(timespec='seconds')}, git "
        f"{env['git_commit']}, jax {jax.__version__}, {threads.cores()} cores of {env['cpu']} "
        f"({', '.join(machine.describe()['isa'])}); each program in its own process")
  for name, (options, kind) in LIBRARIES.items():
    for label, program in PROGRAMS.items():
      code = CHILD.format(program=program, options=options, kind=kind)
      done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
      print(f"{name:28s} {label:14s} {outcome(done)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
