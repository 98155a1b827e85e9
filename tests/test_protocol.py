"""Every registered implementation against one protocol-level definition (CPU): the
forward pass against NumPy, the hidden-state carry, training semantics, prediction,
and 20 seed epochs on the real text. Runs both frameworks through the registry."""
import dataclasses
import math

import numpy as np
import pytest

from shared import data, metrics, protocol
from shared import params as P
from shared.config import preset
from tests import numpy_gru

NAMES = tuple(protocol.IMPLS)


def _random_impl(name, config, seed=0, scale=0.5):
  impl = protocol.make_impl(name, config, "cpu")
  shapes = P.shapes(impl.layout, config.vocab_size, config.num_hiddens)
  p = numpy_gru.random_params(shapes, np.random.default_rng(seed), scale)
  impl.set_params(p)  # flax-grucell folds the six biases: the same function
  return impl, p


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_numpy_gru(name, tiny_config, tiny_batch):
  impl, p = _random_impl(name, tiny_config)
  X, _ = tiny_batch
  H0 = np.random.default_rng(1).standard_normal((3, 7)).astype(np.float32) * 0.5
  logits, H = impl.forward(X, H0)
  want, want_H = numpy_gru.MODELS[impl.layout](p, X, H0.astype(np.float64))
  assert logits.shape == (5 * 3, 28) and H.shape == (3, 7)
  assert np.max(np.abs(logits - want)) <= 1e-5 and np.max(np.abs(H - want_H)) <= 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_hidden_state_carries_across_calls(name, tiny_config, tiny_batch):
  impl, _ = _random_impl(name, tiny_config)
  X, _ = tiny_batch
  whole, H_whole = impl.forward(X)
  first, H = impl.forward(X[:, :2])
  second, H_end = impl.forward(X[:, 2:], H)
  split = np.concatenate([first, second])  # time-major rows: steps 0-1, then 2-4
  assert np.max(np.abs(split - whole)) <= 1e-6 and np.max(np.abs(H_end - H_whole)) <= 1e-6
  restarted, _ = impl.forward(X[:, 2:])  # no carry: a different answer
  assert np.max(np.abs(restarted - second)) > 1e-3


def _protocol_epoch(impl, Xs, Ys, config, carry: bool):
  """The seed's training semantics from protocol pieces: loss_and_grads, then the clipping
  rule and SGD in NumPy, H carried between minibatches or restarted at zero."""
  H, losses = None, []
  for X, Y in zip(Xs, Ys):
    loss, grads, H_next = impl.loss_and_grads(X, Y, H)
    norm = metrics.global_norm(grads)
    scale = config.grad_clip / norm if norm > config.grad_clip else 1.0
    impl.set_params({k: v - config.lr * scale * grads[k] for k, v in impl.get_params().items()})
    H, losses = (H_next if carry else None), losses + [loss]
  return float(np.mean(losses)), impl.get_params()


@pytest.mark.parametrize("sampling", ["sequential", "random"])
@pytest.mark.parametrize("name", NAMES)
def test_train_epoch_follows_the_seed_semantics(name, sampling, tiny_config):
  """Sequential sampling carries H between minibatches (from zero at the epoch start);
  random sampling restarts it every minibatch. Clipping fires (theta 0.5)."""
  config = dataclasses.replace(tiny_config, sampling=sampling, grad_clip=0.5)
  corpus = np.random.default_rng(3).integers(0, 28, 200).astype(np.int32)
  Xs, Ys = data.epoch_arrays(corpus, 3, 5, np.random.default_rng(4), sampling)
  impl, p = _random_impl(name, config)
  ref, _ = _random_impl(name, config)
  loss = impl.train_epoch((Xs, Ys))
  want, want_params = _protocol_epoch(ref, Xs, Ys, config, carry=sampling == "sequential")
  got = impl.get_params()
  assert abs(loss - want) <= 1e-5 * want
  assert max(metrics.max_abs_diff(got[k], want_params[k]) for k in got) <= 1e-5
  if sampling == "sequential":  # the carry matters: restarting H gives another loss
    other, _ = _protocol_epoch(_random_impl(name, config)[0], Xs, Ys, config, carry=False)
    assert abs(other - want) > 1e-4


# Measured on the 2-core CPU (torch 2.13, jax 0.10.2, seed 0): after 20 epochs of the seed
# config the scratch model reaches perplexity 15.34 and the built-in one 12.13 (every
# implementation of a group within 1e-5 of the others; flax-grucell 12.20), from about 28
# (uniform over the vocabulary). The thresholds leave ~10% margin for other BLAS builds.
PPL_AFTER_20 = {P.SCRATCH: 17.0, P.BUILTIN: 13.5}


@pytest.mark.parametrize("name", NAMES)
def test_twenty_seed_epochs_lower_perplexity(name, corpus_vocab):
  corpus, _ = corpus_vocab
  config = preset("seed", num_epochs=20)
  impl = protocol.make_impl(name, config, "cpu")
  ppl = [math.exp(impl.train_epoch(b)) for b in data.training_epochs(corpus, config)]
  assert ppl[0] > 20 and ppl[-1] < PPL_AFTER_20[impl.layout], ppl


@pytest.mark.parametrize("name", NAMES)
def test_predict_returns_prefix_plus_vocabulary_characters(name, corpus_vocab, tiny_config):
  _, vocab = corpus_vocab
  impl = protocol.make_impl(name, tiny_config, "cpu")
  text = impl.predict("time traveller", 10, vocab)
  suffix = text[len("time traveller"):]
  assert text.startswith("time traveller")
  # ten tokens: letters, spaces, or (an untrained model's argmax) "<unk>"
  assert len(suffix) - 4 * suffix.count("<unk>") == 10
  assert set(suffix.replace("<unk>", "")) <= set("abcdefghijklmnopqrstuvwxyz ")
