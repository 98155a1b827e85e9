"""Two ways of compiling a Flax NNX model, measured on the seed workload in one process.

  * functional (the nnx-gru row): nnx.split once, nnx.merge inside one jax.jit per epoch;
  * nnx.jit on the module and an nnx.Optimizer, as Flax's NNX guides write it, a whole
    epoch per call (nnx.scan) and, as the guides' loops do, one call per minibatch.

Same weights, same minibatches: the losses must agree (they are checked), so only the
way of compiling differs. Epochs run round-robin; the first (compile) is timed apart.

    PYTHONPATH=. python bench/nnx_styles.py [--epochs 30] [--device cpu] [--out FILE.md]
"""
import argparse
import dataclasses
import pathlib
import sys
import time

import jax
import numpy as np

from shared import data, metrics, registry
from shared.reports import report
from shared import params as P
from shared.config import preset
from shared.text import table
from jax_impl.train import NnxJitTrainer

ROOT = pathlib.Path(__file__).resolve().parents[1]


def styles(config, params, device) -> dict:
  """The nnx-gru row and the same row compiled with nnx.jit, from the same weights."""
  impl = registry.make_impl("nnx-gru", config, device)
  impl.set_params(params)
  return {"functional: nnx.merge inside jax.jit, one call per epoch (the nnx-gru row)": impl,
          "nnx.jit on the module, one call per epoch (nnx.scan)": NnxJitTrainer(impl),
          "nnx.jit on the module, one call per minibatch": NnxJitTrainer(impl, per_step=True)}


def measure(trainers: dict, epochs: list) -> dict:
  """Per style: per-epoch seconds and losses; epoch 1 (with its compile) first for each."""
  out = {name: {"seconds": [], "losses": []} for name in trainers}
  order = [(0, name) for name in trainers] + [(k, n) for k in range(1, len(epochs)) for n in trainers]
  for k, name in order:
    start = time.perf_counter()
    loss = trainers[name].train_epoch(epochs[k])  # a host float: the epoch has finished
    out[name]["seconds"].append(time.perf_counter() - start)
    out[name]["losses"].append(loss)
  return out


def dispatch_microseconds(trainer, calls: int = 1000) -> dict:
  """Python cost of one call of a function that does nothing with the GRU and its
  optimizer: nnx.jit over the objects (walks their graph each call) against jax.jit over
  their split state (the functional style)."""
  from flax import nnx
  objects = (trainer.model, trainer.optimizer)
  state = nnx.split(objects)[1]
  by_objects, by_state = nnx.jit(lambda m, o: None), jax.jit(lambda s: None)
  out = {}
  for name, call in (("nnx.jit(model, optimizer)", lambda: by_objects(*objects)),
                     ("jax.jit(state)", lambda: by_state(state))):
    call()  # compile
    best = float("inf")
    for _ in range(5):
      start = time.perf_counter()
      for _ in range(calls):
        call()
      best = min(best, (time.perf_counter() - start) / calls * 1e6)
    out[name] = best
  return out


def render(results: dict, dispatch: dict, config, env: dict, device_name: str) -> str:
  first = next(iter(results.values()))
  rows = []
  for name, r in results.items():
    t = r["figures"]
    rows.append((name, f"{t['first_epoch_seconds']:.2f}", f"{t['steady_tokens_per_s']:,.0f}",
                 f"{t['min_tokens_per_s']:,.0f}–{t['max_tokens_per_s']:,.0f}",
                 f"{t['steady_tokens_per_s'] / first['figures']['steady_tokens_per_s']:.2f}x",
                 f"{metrics.rel_diff(r['losses'], first['losses']):.1e}"))
  return (f"# Flax NNX: two ways of compiling, measured\n\nDevice: {device_name}. {report.provenance(env)}"
          f"\n\nThe seed configuration (batch {config.batch_size} x "
          f"{config.num_steps} steps, {config.num_hiddens} hidden units, float32), {len(first['seconds'])} "
          "epochs from the same weights on the same minibatches, round-robin across styles. Epoch 1 "
          "includes compiling; steady state is epochs 2 onwards.\n\n"
          + table(("style", "epoch 1 s (with compile)", "tokens/s (steady)", "min–max per epoch",
                   "vs functional", "max rel loss gap"), rows)
          + "\nPython cost of one call of a function that does nothing with the model and its optimizer "
          "(best of 5 x 1,000 calls): "
          + ", ".join(f"{k} {v:,.0f} µs" for k, v in dispatch.items())
          + ". A step that takes milliseconds hides it; a GPU step of tens of microseconds does not.\n")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--epochs", type=int, default=30)
  p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
  p.add_argument("--out", help="write the Markdown table here too")
  args = p.parse_args(argv)
  corpus, vocab = data.load_corpus()
  config = dataclasses.replace(preset("seed", num_epochs=args.epochs), vocab_size=len(vocab))
  params = P.init_params(P.BUILTIN, config.seed, config.vocab_size, config.num_hiddens)
  trainers = styles(config, params, None if args.device == "auto" else args.device)
  device = trainers[next(iter(trainers))].device
  epochs = data.training_epochs(corpus, config)
  results = measure(trainers, epochs)
  for r in results.values():
    r["figures"] = metrics.throughput([epochs[0][0].size] * len(r["seconds"]), r["seconds"], [])
  with jax.default_device(device):
    dispatch = dispatch_microseconds(trainers[list(trainers)[1]])  # the nnx.jit trainer's objects
  text = render(results, dispatch, config, report.environment(ROOT),
                device.device_kind if device.platform == "gpu" else "cpu")
  print(text)
  if args.out:
    pathlib.Path(args.out).write_text(text)
  worst = np.max([metrics.rel_diff(r["losses"], next(iter(results.values()))["losses"]) for r in results.values()])
  return 0 if worst <= 1e-6 else 1  # the styles must train identically for the timing to mean anything


if __name__ == "__main__":
  sys.exit(main())
