"""The shared pipeline: locating and verifying the text, vocabulary, corpus, minibatches."""
import urllib.request

import numpy as np
import pytest

from shared import data
from shared.config import preset


def test_vocabulary_and_corpus_on_the_real_text(corpus_vocab):
  corpus, vocab = corpus_vocab
  assert len(vocab) == 28
  # d2l's chapter prints these first entries for the char vocabulary.
  assert vocab.idx_to_token[:10] == ["<unk>", " ", "e", "t", "a", "i", "n", "o", "s", "h"]
  assert len(corpus) == 10_000 and corpus.dtype == np.int32
  assert "".join(vocab.to_tokens(corpus[:14].tolist())) == "the time machi"
  assert vocab["e"] == 2 and vocab["never-a-token"] == 0 and vocab[["t", "h"]] == [3, 9]


def test_vocab_orders_ties_by_first_appearance():
  vocab = data.Vocab(list("abbcca"))  # all three twice: first-seen order wins
  assert vocab.idx_to_token == ["<unk>", "a", "b", "c"]


def _corpus(n=2000):
  return np.arange(n, dtype=np.int32)  # token == position: shifts and overlaps are checkable


@pytest.mark.parametrize("sampling", ["sequential", "random"])
def test_targets_are_inputs_shifted_by_one(sampling):
  corpus = _corpus()
  Xs, Ys = data.epoch_arrays(corpus, 4, 6, np.random.default_rng(0), sampling)
  assert Xs.shape == Ys.shape and Xs.shape[1:] == (4, 6) and Xs.dtype == np.int32
  assert np.array_equal(Xs + 1, Ys)


def test_sequential_rows_continue_across_minibatches():
  batches = list(data.seq_data_iter_sequential(_corpus(), 4, 6, np.random.default_rng(1)))
  assert len(batches) > 2
  for (X0, _), (X1, _) in zip(batches, batches[1:]):
    assert np.array_equal(X0[:, -1] + 1, X1[:, 0])  # row b of k+1 continues row b of k


def test_random_sampling_yields_disjoint_subsequences():
  starts = [int(row[0]) for X, _ in data.seq_data_iter_random(_corpus(), 4, 6, np.random.default_rng(2))
            for row in X]
  assert len(starts) == len(set(starts))
  assert all(abs(a - b) >= 6 for i, a in enumerate(starts) for b in starts[i + 1:])


@pytest.mark.parametrize("sampling", ["sequential", "random"])
def test_same_seed_same_batches_other_seed_other_batches(sampling):
  draw = lambda seed: data.epoch_arrays(_corpus(), 4, 6, np.random.default_rng(seed), sampling)[0]
  assert np.array_equal(draw(7), draw(7))
  assert not np.array_equal(draw(7), draw(8))


def test_stacked_epoch_equals_the_iterator():
  corpus = _corpus()
  stacked = data.epoch_arrays(corpus, 4, 6, np.random.default_rng(3), "sequential")
  pairs = list(data.seq_data_iter_sequential(corpus, 4, 6, np.random.default_rng(3)))
  assert np.array_equal(stacked[0], np.stack([x for x, _ in pairs]))
  assert np.array_equal(stacked[1], np.stack([y for _, y in pairs]))


def test_training_epochs_are_deterministic_per_seed(corpus_vocab):
  corpus, _ = corpus_vocab
  config = preset("seed", num_epochs=3)
  a, b = data.training_epochs(corpus, config), data.training_epochs(corpus, config)
  assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
  assert a[0][0].shape == (8, 32, 35)  # the seed config: 8 minibatches of 32 x 35 per epoch


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0, num_steps=5), "batch_size and num_steps"),
    (dict(batch_size=2, num_steps=0), "batch_size and num_steps"),
    (dict(batch_size=64, num_steps=35), "too short"),
])
def test_bad_sizes_raise_value_error(kwargs, match):
  with pytest.raises(ValueError, match=match):
    data.epoch_arrays(_corpus(1000), rng=np.random.default_rng(0), **kwargs)


def test_max_tokens_below_two_is_refused(corpus_vocab):
  with pytest.raises(ValueError, match="max_tokens"):
    data.load_corpus(max_tokens=1)


def test_tampered_file_is_refused_with_what_and_where(tmp_path):
  (tmp_path / data.FILENAME).write_text("The Time Machine, abridged\n")
  with pytest.raises(data.DataError, match=f"{tmp_path}.*SHA-1 [0-9a-f]{{40}}, expected {data.SHA1}"):
    data.locate(tmp_path)


def test_missing_explicit_folder_names_what_gave_it(tmp_path, monkeypatch):
  with pytest.raises(data.DataError, match="give --data-dir the folder"):
    data.locate(tmp_path / "nowhere")
  monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nowhere"))
  with pytest.raises(data.DataError, match="give GRU_DATA_DIR the folder"):
    data.locate()


def test_offline_without_file_names_variable_and_url(tmp_path, monkeypatch):
  monkeypatch.delenv(data.ENV_VAR, raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

  def offline(*args, **kwargs):
    raise urllib.error.URLError("no network")
  monkeypatch.setattr(urllib.request, "urlopen", offline)
  with pytest.raises(data.DataError) as err:
    data.locate()
  assert data.ENV_VAR in str(err.value) and data.URL in str(err.value)
  assert list((tmp_path / "gru-parity").iterdir()) == []  # nothing partial left behind


class FakeResponse:
  """What urllib.request.urlopen returns, serving `payload`."""

  def __init__(self, payload: bytes):
    self.payload = payload

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return False

  def read(self):
    return self.payload


def test_a_corrupt_download_never_lands_in_the_cache(tmp_path, monkeypatch):
  monkeypatch.delenv(data.ENV_VAR, raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

  monkeypatch.setattr(urllib.request, "urlopen",
                      lambda *a, **k: FakeResponse(b"the time machine by h g wells, cut short"))
  with pytest.raises(data.DataError, match="SHA-1"):
    data.locate()
  assert list((tmp_path / "gru-parity").iterdir()) == []


def test_a_verified_download_lands_in_the_cache(tmp_path, monkeypatch, corpus_vocab):
  text = data.locate(download=False).read_bytes()
  monkeypatch.delenv(data.ENV_VAR, raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

  monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: FakeResponse(text))
  assert data.locate() == tmp_path / "gru-parity" / data.FILENAME
  assert [p.name for p in (tmp_path / "gru-parity").iterdir()] == [data.FILENAME]


class D2LRandom:
  """Stands in for the `random` module in d2l's code: randint(a, b) includes b, as
  Python's does; both draws come from a Generator, as shared/data.py draws them."""

  def __init__(self, seed):
    self.rng = np.random.default_rng(seed)

  def randint(self, a, b):
    return int(self.rng.integers(a, b + 1))

  def shuffle(self, x):
    self.rng.shuffle(x)


def d2l_seq_data_iter_random(corpus, batch_size, num_steps, random):
  """d2l's code line for line (torch.tensor -> np.array)."""
  corpus = corpus[random.randint(0, num_steps - 1):]
  num_subseqs = (len(corpus) - 1) // num_steps
  initial_indices = list(range(0, num_subseqs * num_steps, num_steps))
  random.shuffle(initial_indices)

  def data(pos):
    return corpus[pos: pos + num_steps]
  num_batches = num_subseqs // batch_size
  for i in range(0, batch_size * num_batches, batch_size):
    initial_indices_per_batch = initial_indices[i: i + batch_size]
    X = [data(j) for j in initial_indices_per_batch]
    Y = [data(j + 1) for j in initial_indices_per_batch]
    yield np.array(X), np.array(Y)


def d2l_seq_data_iter_sequential(corpus, batch_size, num_steps, random):
  """d2l's code line for line (torch.tensor -> np.array)."""
  offset = random.randint(0, num_steps)
  num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
  Xs = np.array(corpus[offset: offset + num_tokens])
  Ys = np.array(corpus[offset + 1: offset + 1 + num_tokens])
  Xs, Ys = Xs.reshape(batch_size, -1), Ys.reshape(batch_size, -1)
  num_batches = Xs.shape[1] // num_steps
  for i in range(0, num_steps * num_batches, num_steps):
    X = Xs[:, i: i + num_steps]
    Y = Ys[:, i: i + num_steps]
    yield X, Y


@pytest.mark.parametrize("ours, theirs", [
    (data.seq_data_iter_sequential, d2l_seq_data_iter_sequential),
    (data.seq_data_iter_random, d2l_seq_data_iter_random)])
def test_iterators_reproduce_d2l_given_the_same_draws(ours, theirs):
  """Over 40 seeds (every offset of a 7-step window is drawn), the same batches as d2l."""
  corpus = _corpus(300)
  offsets = set()
  for seed in range(40):
    a = list(ours(corpus, 4, 7, np.random.default_rng(seed)))
    b = list(theirs(list(corpus), 4, 7, D2LRandom(seed)))
    assert len(a) == len(b) > 0
    assert all(np.array_equal(x, u) and np.array_equal(y, v) for (x, y), (u, v) in zip(a, b))
    offsets.add(int(a[0][0][0, 0]) % 7)  # token == position: the first token tells the offset
  # The draws cover the whole range: [0, 7] for sequential (7 % 7 == 0), [0, 6] for random.
  assert offsets == set(range(7))
