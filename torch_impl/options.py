"""PyTorch's own settings and speed levers (shared/levers.py says what they are). Imports no
torch: the command line and the ablation read them before any framework starts."""
from shared.levers import Lever, Option

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's modes
OPTIONS = (
    # torch.compile mode of torch-compile; "" = the per-device default (torch_impl/train.py)
    Option("compile_mode", "torch", "", COMPILE_MODES, "--compile-mode",
           "torch.compile mode of torch-compile (default: default on CPU, reduce-overhead on GPU)"),
    # torch's sync-free rows on a GPU: no graph, one CUDA graph per step (the default), or one per epoch
    Option("cuda_graph", "torch", "", ("off", "step", "epoch"), "--cuda-graph",
           "torch-scratch and torch-cudnn on a GPU: no CUDA graph, one per step (default), one per epoch"),
    # "" = torch's intra-op pool of --threads threads; "single": one thread around the row's calls.
    Option("thread_pool", "torch", "", ("single",), "--thread-pool",
           "single: every op of the PyTorch rows on one thread (PyTorch rows only; JAX's: --threads 1)",
           alone="acts on PyTorch's pool only: XLA:CPU sizes its pool once per process (use --threads), its "
                 "per-program thread option is ignored"),
    # the torch-tuned rows' recurrence: its hand-written backward ("" = torch_impl/tuned.py's default) or autograd's
    Option("torch_backward", "torch", "", ("hand-written", "autodiff")),
    # Inductor's wrapper around its kernels: Python (Inductor's default; torch-compile) or C++
    # ("" = the row's own: C++ for torch-tuned, torch_impl/tuned.py)
    Option("inductor_wrapper", "torch", "", ("python", "cpp")),
    # OpenMP's wait between parallel regions: "" = the row's own (torch_impl/process.py)
    Option("omp_spin", "torch", "", ("passive", "spin")),
)
_EAGER = "one replay per minibatch instead of launching forward, backward, clipping and SGD kernel by kernel"
LEVERS = (
    Lever("cuda-graph", "CUDA graph of the training step", "torch",
          (("eager", {"cuda_graph": "off"}), ("graph per step", {"cuda_graph": "step"})), True, _EAGER),
    Lever("epoch-graph", "One CUDA graph per epoch", "torch",
          (("graph per step", {"cuda_graph": "step"}), ("graph per epoch", {"cuda_graph": "epoch"})), True,
          "every minibatch of the epoch and the hidden-state carry between them in one replay"),
    Lever("threads", "PyTorch's intra-op pool", "torch",
          (("every core", {"thread_pool": ""}), ("one thread", {"thread_pool": "single"})), False,
          "small products split over the cores, or each on one core without the pool's hand-offs "
          "(XLA:CPU's pool is per process: compare.py --threads 1 measures it)"),
    Lever("torch-backward", "Hand-written backward of the recurrence", "torch",
          (("autograd", {"torch_backward": "autodiff"}), ("hand-written", {"torch_backward": "hand-written"})),
          False, "the state gradients alone in the reverse loop, each weight gradient one (h, T*B) product "
          "after it, instead of autograd's T small products and a graph node per op (torch_impl/tuned.py)"),
    Lever("cpp-wrapper", "Inductor's C++ wrapper", "torch",
          (("Python wrapper", {"inductor_wrapper": "python"}), ("C++ wrapper", {"inductor_wrapper": "cpp"})), False,
          "the compiled step calls its kernels and its ~150 BLAS products per minibatch from generated C++ "
          "instead of Python (torch._inductor.config.cpp_wrapper)", slow=True),
    Lever("omp-spin", "OpenMP threads spin before sleeping", "torch",
          (("sleep at once (the run's policy)", {"omp_spin": "passive"}), ("spin, then sleep", {"omp_spin": "spin"})),
          False, "each small product wakes the pool's threads; spinning briefly between products saves the wake-up "
          "(GOMP_SPINCOUNT=300000, GNU OpenMP's default; each cell in a process of its own: torch_impl/process.py)",
          own_process=True),
    Lever("compile-mode", "torch.compile mode", "torch", tuple((m, {"compile_mode": m}) for m in COMPILE_MODES),
          False, "reduce-overhead adds CUDA graphs to Inductor's kernels; max-autotune also tunes them", slow=True),
)
