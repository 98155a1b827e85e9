"""XLA's compiler options of the JAX rows, per compiled program (the command_buffer and xla_dot
options, jax_impl/options.py; bf16 rounding, jax_impl/precision.py): debug options set per
program, so that one process can hold programs of both settings."""
from jax_impl import precision


# XLA's GPU command buffers (the command_buffer option, jax_impl/options.py), set per compiled program as
# XLA debug options, so the JAX rows choose them and one process can hold both settings.
# "while" is XLA's default set as jaxlib 0.10.2 has it (fusions, cuBLAS(Lt), cuDNN, custom
# calls, dynamic-slice fusions, conditionals) plus WHILE, which records lax.scan's loops
# into the graph as conditional nodes, so that an epoch can run as one CUDA graph. Compile
# options take no "+WHILE": the set is written out, and a later jaxlib whose default set
# grows would see those additions off under "while".
COMMAND_BUFFER_OPTIONS = {
    "": {}, "off": {"xla_gpu_enable_command_buffer": ""},
    "while": {"xla_gpu_enable_command_buffer":
              "FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,DYNAMIC_SLICE_FUSION,WHILE,CONDITIONAL"}}
COMMAND_BUFFER_EXECUTION = {"": "", "off": ", XLA command buffers off",
                            "while": ", XLA command buffers with while loops"}


# XLA:CPU's dot libraries (the xla_dot option, jax_impl/options.py), as jaxlib 0.10.2 names its debug options
# (full enum names; the help text's short "dot" is refused). Its default already hands dot
# fusions to YNNPACK ("__ynn_fusion" in the compiled program); an empty list switches that off.
XLA_DOT_OPTIONS = {
    "": {}, "eigen": {"xla_cpu_experimental_ynn_fusion_type": ""},
    "ynnpack-eltwise": {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_ELTWISE"}}
XLA_DOT_EXECUTION = {"": ", XLA:CPU dots on YNNPACK (jaxlib's default)", "eigen": ", XLA:CPU dots on Eigen (no library)",
                     "ynnpack-eltwise": ", XLA:CPU dots and elementwise on YNNPACK"}


def compiler_options(config, platform: str) -> dict:
  """The XLA options of every program this implementation compiles: command buffers (GPU),
  the dot library (CPU), bf16 rounding."""
  buffers, dot = config.option("command_buffer", ""), config.option("xla_dot", "")
  if buffers and platform != "gpu":
    raise ValueError(f"command_buffer {buffers!r} is an XLA GPU setting; drop it or run on a GPU")
  if dot and platform != "cpu":
    raise ValueError(f"xla_dot {dot!r} is an XLA:CPU setting; drop it or run on the CPU")
  return {**COMMAND_BUFFER_OPTIONS[buffers], **XLA_DOT_OPTIONS[dot],
          **(precision.BF16_OPTIONS if config.precision == "bf16" else {})}
