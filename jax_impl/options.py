"""JAX's own settings and speed levers (shared/levers.py says what they are). Imports no jax:
the command line and the ablation read them before any framework starts."""
from shared.levers import Lever, Option

OPTIONS = (
    # lax.scan unroll over time; 0 = the per-device default (`scan_unroll`)
    Option("unroll", "jax", 0, (), "--unroll",
           "JAX lax.scan unroll over time (default: 1 on CPU, all steps on GPU)"),
    # XLA's GPU command buffers (CUDA graphs XLA records itself): off, XLA's default set, or
    # that set with while loops added (jax_impl/xla.py, COMMAND_BUFFER_OPTIONS)
    Option("command_buffer", "jax", "", ("off", "while"), "--command-buffer",
           "the JAX rows on a GPU: XLA command buffers off, or with while loops (default: XLA's own set)"),
    # the whole epoch as one call (lax.scan over the minibatches) or a jitted step per minibatch
    Option("jax_loop", "jax", "", ("epoch", "step"), "--jax-loop",
           "the JAX rows: the whole epoch in one call (default) or a jitted step per minibatch"),
    # Which library XLA:CPU hands its dot fusions to, per compiled program ("" = jaxlib's
    # default, YNNPACK for dots in 0.10.2; "eigen": no library, XLA's own Eigen kernels;
    # "ynnpack-eltwise": YNNPACK for dots and elementwise fusions). Tried and left out (jaxlib
    # 0.10.2, the 2-core EPYC): oneDNN's dot fusion kills the process with SIGILL at the GRU
    # epoch's first run ("partition compile failed"; bench/xla_dot_libraries.py reproduces it in
    # a subprocess), and XNNPACK's options are accepted and ignored (the compiled program is Eigen's).
    Option("xla_dot", "jax", "", ("eigen", "ynnpack-eltwise"), "--xla-dot",
           "the JAX rows on a CPU: XLA:CPU's dot library (default: jaxlib's, YNNPACK dots in 0.10.2)"),
    # the jax-tuned rows' recurrence: its custom_vjp backward ("" = jax_impl/tuned.py's default) or autodiff's
    Option("jax_backward", "jax", "", ("hand-written", "autodiff")),
)


def scan_unroll(config, platform: str) -> int:
  """The lax.scan unroll factor: the `unroll` option, else the measured default for `platform`.

  Measured on the seed config (jax-scratch, whole-epoch scan): on GPU unrolling all
  num_steps was fastest (issue #4's H200 figures: 0.97M / 1.51M / 1.75M tokens/s at
  unroll 1 / 5 / 35); on the 2-core CPU unroll 1 was fastest (53k vs 44k vs 32k
  tokens/s at 1 / 5 / 35) and compiles in 1 s instead of 7 s.
  """
  return config.option("unroll", 0) or (config.num_steps if platform == "gpu" else 1)


def _unroll(config) -> tuple:
  """1, 5 and every step (as many as the run has)."""
  return tuple((str(u), {"unroll": u}) for u in sorted({1, min(5, config.num_steps), config.num_steps}))


LEVERS = (
    Lever("jax-loop", "The whole epoch in one compiled call", "jax",
          (("jitted step per minibatch", {"jax_loop": "step"}), ("lax.scan per epoch", {"jax_loop": "epoch"})),
          False, "one dispatch per epoch instead of one per minibatch"),
    Lever("unroll", "lax.scan unroll over time", "jax", _unroll, False,
          "fewer loop iterations for XLA to run; longer programs to compile"),
    Lever("command-buffer", "XLA command buffers", "jax",
          (("off", {"command_buffer": "off"}), ("XLA's default", {"command_buffer": ""}),
           ("with while loops", {"command_buffer": "while"})), True,
          "XLA records kernels (and, with while loops, lax.scan's loops) into CUDA graphs"),
    Lever("jax-backward", "Hand-written backward of the recurrence", "jax",
          (("autodiff", {"jax_backward": "autodiff"}), ("hand-written", {"jax_backward": "hand-written"})),
          False, "the state gradients alone in the reverse scan, each weight gradient one (h, T*B) product "
          "after it, instead of autodiff's T small products inside the scan (jax_impl/tuned.py)"),
    Lever("xla-dot", "XLA:CPU's dot library", "jax",
          (("Eigen, no library", {"xla_dot": "eigen"}), ("YNNPACK dots (jaxlib's default)", {"xla_dot": ""}),
           ("YNNPACK dots and elementwise", {"xla_dot": "ynnpack-eltwise"})), False,
          "XLA:CPU hands its dot fusions to a library (experimental fusion options, per compiled program) "
          "instead of its own Eigen kernels; oneDNN's crashes here and XNNPACK's is ignored (jax_impl/options.py)"),
)
