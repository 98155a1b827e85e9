"""The Time Machine, character level: locate, verify, tokenize, batch (NumPy only).

Semantics follow the d2l book's chapter code (`read_time_machine`, `tokenize(..., 'char')`,
`Vocab`, `load_corpus_time_machine`, `seq_data_iter_random`, `seq_data_iter_sequential`),
except that every random choice comes from an explicit `numpy.random.Generator`, so one
seed gives byte-identical minibatches to every framework.
"""
import collections
import hashlib
import os
import pathlib
import re
import tempfile
import urllib.request

import numpy as np

FILENAME = "timemachine.txt"
SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
# The verified text's length in characters once tokenized (load_corpus(-1)): fixed by the
# SHA-1, so a report that did not record its corpus's size can still state the whole text's.
CHARACTERS = 170_580
URL = "https://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
ENV_VAR = "GRU_DATA_DIR"


class DataError(RuntimeError):
  """The text cannot be found, fetched or verified; the message names the fix."""


def _sha1(path: pathlib.Path) -> str:
  return hashlib.sha1(path.read_bytes()).hexdigest()


def _verified(path: pathlib.Path) -> pathlib.Path:
  found = _sha1(path)
  if found != SHA1:
    raise DataError(f"{path} has SHA-1 {found}, expected {SHA1}: not the d2l Time Machine text; "
                    f"delete it or point {ENV_VAR} at a verified copy")
  return path


def cache_dir() -> pathlib.Path:
  """The user cache folder: $XDG_CACHE_HOME/gru-parity, else ~/.cache/gru-parity."""
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return pathlib.Path(base) / "gru-parity"


def _download(dest: pathlib.Path) -> pathlib.Path:
  """Downloads to a temporary file beside `dest`, verifies, then renames: never partial."""
  dest.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
  try:
    with os.fdopen(fd, "wb") as f, urllib.request.urlopen(URL, timeout=30) as r:
      f.write(r.read())
    _verified(pathlib.Path(tmp))
    os.replace(tmp, dest)
  except OSError as e:  # URLError is an OSError
    raise DataError(f"{FILENAME} not found and the download from {URL} failed ({e}); "
                    f"set {ENV_VAR} to a folder holding a verified copy") from None
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return dest


def locate(data_dir=None, download: bool = True) -> pathlib.Path:
  """Path of the verified text: `data_dir`, then $GRU_DATA_DIR, then the cache, else download.

  An explicit folder (argument or environment) must hold the file: it is never
  silently replaced by a download.
  """
  explicit = data_dir if data_dir is not None else os.environ.get(ENV_VAR)
  if explicit:
    path, where = pathlib.Path(explicit) / FILENAME, "--data-dir" if data_dir is not None else ENV_VAR
    if path.is_dir():
      raise DataError(f"{path} is a folder, not the text: give {where} the folder that holds the file {FILENAME}")
    if not path.is_file():
      raise DataError(f"{path} does not exist; give {where} the folder holding {FILENAME}"
                      + ("" if data_dir is not None else f", or unset it to download from {URL}"))
    return _verified(path)
  cached = cache_dir() / FILENAME
  if cached.is_file():
    return _verified(cached)
  if not download:
    raise DataError(f"{FILENAME} is not in {cache_dir()}; set {ENV_VAR} to its folder "
                    f"or allow the download from {URL}")
  return _download(cached)


def read_lines(data_dir=None) -> list:
  """The text's lines with every run of non-letters turned into one space, stripped, lower-cased."""
  text = locate(data_dir).read_text(encoding="utf-8")
  return [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in text.splitlines()]


class Vocab:
  """Token <-> index. `<unk>` is index 0, then tokens by descending frequency, ties in first-seen order."""

  def __init__(self, tokens, reserved_tokens=()):
    counts = collections.Counter(tokens)  # insertion-ordered, so the stable sort keeps first-seen ties
    ordered = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
    self.idx_to_token = ["<unk>", *reserved_tokens]
    self.idx_to_token += [t for t, _ in ordered if t not in self.idx_to_token]
    self.token_to_idx = {t: i for i, t in enumerate(self.idx_to_token)}

  def __len__(self) -> int:
    return len(self.idx_to_token)

  def __getitem__(self, tokens):
    if isinstance(tokens, (list, tuple)):
      return [self[t] for t in tokens]
    return self.token_to_idx.get(tokens, 0)

  def to_tokens(self, indices):
    if isinstance(indices, (list, tuple, np.ndarray)):
      return [self.idx_to_token[int(i)] for i in indices]
    return self.idx_to_token[int(indices)]


def load_corpus(max_tokens: int = 10_000, data_dir=None):
  """(corpus, vocab): the first `max_tokens` character indices (int32), or all of them for
  -1 (d2l's `load_corpus_time_machine(max_tokens=-1)`), and the vocabulary.

  As d2l, lines are concatenated without separators and the vocabulary is built from
  the whole text before truncation.
  """
  if max_tokens < 2 and max_tokens != -1:
    raise ValueError(f"max_tokens must be >= 2 (an input and a target) or -1 (the whole text), "
                     f"got {max_tokens}")
  chars = [c for line in read_lines(data_dir) for c in line]
  vocab = Vocab(chars)
  corpus = np.asarray(vocab[chars if max_tokens == -1 else chars[:max_tokens]], dtype=np.int32)
  return corpus, vocab


def check_sizes(corpus, batch_size: int, num_steps: int):
  """Raises ValueError (naming the fix) if `corpus` cannot fill one minibatch."""
  if batch_size < 1 or num_steps < 1:
    raise ValueError(f"batch_size and num_steps must be >= 1, got {batch_size} and {num_steps}")
  # The worst offset (num_steps) must still leave batch_size rows of num_steps + 1 tokens.
  need = batch_size * num_steps + num_steps + 1
  if len(corpus) < need:
    raise ValueError(f"corpus of {len(corpus)} tokens is too short for one {batch_size} x {num_steps} "
                     f"minibatch (needs {need}); raise max_tokens or lower batch_size/num_steps")


def seq_data_iter_sequential(corpus, batch_size: int, num_steps: int, rng: np.random.Generator):
  """Yields (X, Y) int32 (batch_size, num_steps); row b of batch k+1 continues row b of batch k.

  d2l's sequential partitioning: a random offset in [0, num_steps], then the corpus is
  cut into batch_size contiguous rows read left to right.
  """
  check_sizes(corpus, batch_size, num_steps)
  offset = int(rng.integers(0, num_steps + 1))
  num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
  Xs = np.asarray(corpus[offset:offset + num_tokens], np.int32).reshape(batch_size, -1)
  Ys = np.asarray(corpus[offset + 1:offset + 1 + num_tokens], np.int32).reshape(batch_size, -1)
  for i in range(0, (Xs.shape[1] // num_steps) * num_steps, num_steps):
    yield Xs[:, i:i + num_steps], Ys[:, i:i + num_steps]


def seq_data_iter_random(corpus, batch_size: int, num_steps: int, rng: np.random.Generator):
  """Yields (X, Y) int32 (batch_size, num_steps) of disjoint subsequences in shuffled order.

  d2l's random sampling: a random offset in [0, num_steps - 1], the rest cut into
  subsequences of num_steps tokens whose start indices are shuffled.
  """
  check_sizes(corpus, batch_size, num_steps)
  corpus = np.asarray(corpus[int(rng.integers(0, num_steps)):], np.int32)
  num_subseqs = (len(corpus) - 1) // num_steps
  starts = np.arange(0, num_subseqs * num_steps, num_steps)
  rng.shuffle(starts)
  window = np.arange(num_steps)
  for i in range(0, batch_size * (num_subseqs // batch_size), batch_size):
    idx = starts[i:i + batch_size, None] + window  # (B, T)
    yield corpus[idx], corpus[idx + 1]


def epoch_arrays(corpus, batch_size: int, num_steps: int, rng: np.random.Generator,
                 sampling: str = "sequential"):
  """One epoch stacked: (Xs, Ys) int32 of shape (num_batches, batch_size, num_steps)."""
  it = {"sequential": seq_data_iter_sequential, "random": seq_data_iter_random}[sampling]
  pairs = list(it(corpus, batch_size, num_steps, rng))
  return np.stack([x for x, _ in pairs]), np.stack([y for _, y in pairs])


def training_epochs(corpus, config, num_epochs=None):
  """The whole run's minibatches: a list of `epoch_arrays`, one per epoch, from config.seed.

  Drawn once, up front, so every implementation consumes the very same arrays and the
  drawing stays out of the timed region.
  """
  rng = np.random.default_rng(config.seed)
  n = config.num_epochs if num_epochs is None else num_epochs
  return [epoch_arrays(corpus, config.batch_size, config.num_steps, rng, config.sampling)
          for _ in range(n)]
