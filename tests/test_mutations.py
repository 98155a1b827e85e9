"""The report's own checks catch real bugs: each mutation of tests/mutations.py (a known-bad
jax-scratch) run through the harness makes the named checks fail, and the unmutated code
passes them all. At tiny sizes on the real text; bench/mutations.py does the same at the
seed configuration through compare.py --strict and reports the measured figures."""
import contextlib
import dataclasses
import json
from unittest import mock

import numpy as np
import pytest
import torch

import compare

from jax_impl import scratch, tuned
from shared.config import preset
from shared.kinds import compare as comparison
from shared.rows import IMPLS, Row, group
from torch_impl import tuned as torch_tuned
from tests import mutations
from tests.mutations import MUTATIONS

PAIR = ("torch-reference", "jax-scratch")
# Which checks each mutation must fail, in float32 unless it says float64 (measured at these
# sizes; bench/mutations.py gives the figures at the seed configuration).
MUST_FAIL = {
    "reset-after-matmul": ("highest", {"logits_rel", "grads_rel", "probe_logits_rel", "probe_grads_rel",
                                       "probe_losses_rel", "probe_update_rel"}),
    "gate-biases-dropped": ("highest", {"grads_rel", "probe_logits_rel", "probe_grads_rel", "probe_losses_rel",
                                        "probe_update_rel"}),
    "state-not-carried": ("highest", {"probe_losses_rel", "probe_update_rel", "ppl_first10_rel"}),
    "state-not-reset": ("highest", {"probe_losses_rel", "probe_update_rel"}),
    "clipping-removed": ("highest", {"probe_update_rel", "probe_losses_rel"}),
    "clip-epsilon": ("float64", {"probe_update_rel"}),  # about 1e-6 / norm: below float32 round-off
    "clipping-not-counted": ("highest", {"probe_unclipped"}),
    # ppl_final_rel no longer: it judges the median of the last ten epochs, here of all three,
    # epoch 2's perplexity, which the doubled rate moves by 1.8% (the last epoch by 5.1%,
    # reported as ppl_last_rel); the first epochs (5.7e-2) and the probes catch it.
    "learning-rate-doubled": ("highest", {"probe_update_rel", "probe_losses_rel", "ppl_first10_rel"}),
}
# The tuned rows' own code (tests/mutations.py): a bug planted in each one's forward pass, in
# each half of its hand-written backward and in its update, judged against the anchor; the
# checks each must fail, measured at these sizes.
FORWARD, BACKWARD, UPDATE = ({"logits_rel", "grads_rel", "probe_logits_rel", "probe_grads_rel"},
                             {"probe_grads_rel", "probe_update_rel"}, {"probe_update_rel", "probe_losses_rel"})
# Each judged against its group's anchor, torch-reference or torch-cudnn; torch's update
# mutated is torch-cudnn's too, so the built-in row's is judged against flax-gru.
TUNED = [  # (mutation, row, the row it is judged against, checks it must fail)
    ("tuned-reset-after-matmul", "jax-tuned", "torch-reference", FORWARD),
    ("tuned-state-gradient", "jax-tuned", "torch-reference", BACKWARD),
    ("tuned-weight-gradient", "jax-tuned", "torch-reference", BACKWARD),
    ("learning-rate-doubled", "jax-tuned", "torch-reference", UPDATE),
    ("torch-tuned-reset-after-matmul", "torch-tuned", "torch-reference", FORWARD),
    ("torch-tuned-state-gradient", "torch-tuned", "torch-reference", BACKWARD),
    ("torch-tuned-weight-gradient", "torch-tuned", "torch-reference", BACKWARD),
    ("torch-learning-rate-doubled", "torch-tuned", "torch-reference", UPDATE),
    ("tuned-builtin-reset-before-matmul", "jax-tuned-builtin", "torch-cudnn", FORWARD),
    ("tuned-builtin-state-gradient", "jax-tuned-builtin", "torch-cudnn", BACKWARD),
    ("tuned-builtin-weight-gradient", "jax-tuned-builtin", "torch-cudnn", BACKWARD),
    ("learning-rate-doubled", "jax-tuned-builtin", "torch-cudnn", UPDATE),
    ("torch-tuned-builtin-reset-before-matmul", "torch-tuned-builtin", "torch-cudnn", FORWARD),
    ("torch-tuned-builtin-state-gradient", "torch-tuned-builtin", "torch-cudnn", BACKWARD),
    ("torch-tuned-builtin-weight-gradient", "torch-tuned-builtin", "torch-cudnn", BACKWARD),
    ("torch-learning-rate-doubled", "torch-tuned-builtin", "flax-gru", UPDATE),
]
TUNED_ROWS = list(dict.fromkeys(row for _, row, _, _ in TUNED))
FAST = ()  # every mutation under the slow marker (a full comparison each); `make test` runs the unmutated one


def _config(corpus_vocab, precision="highest"):
  return preset("quick", batch_size=4, num_steps=5, num_hiddens=16, max_tokens=600, num_epochs=3,
                vocab_size=len(corpus_vocab[1]), precision=precision)


def failed_checks(mutation: str, corpus_vocab, precision="highest", harness="none", pair=PAIR) -> dict:
  """{check: measured} of every failed check of a comparison of `pair` with `mutation` (and a
  mutation of the harness) in force. Every row trains in this process, where the mutations
  reach it (torch-tuned's own process would not see them)."""
  corpus, vocab = corpus_vocab
  here = {n: dataclasses.replace(IMPLS[n], own_process=False) for n in pair}
  with contextlib.ExitStack() as stack:
    stack.enter_context(mock.patch.dict(IMPLS, here))
    for name in (mutation, harness):
      stack.enter_context(MUTATIONS[name]() if name != "none" else mutations.none())
    block = comparison.run(_config(corpus_vocab, precision), [Row(n) for n in pair], corpus[:600], vocab, "cpu")
  assert all(r["status"] == "ok" for r in block["impls"].values())
  return {c["check"]: c["measured"] for c in block["parity"] if c["passed"] is False}


@pytest.mark.parametrize("precision", ["highest", pytest.param("float64", marks=pytest.mark.slow)])
def test_the_unmutated_code_passes_every_check(precision, corpus_vocab):
  assert failed_checks("none", corpus_vocab, precision) == {}


@pytest.mark.parametrize("mutation", [pytest.param(m, marks=() if m in FAST else pytest.mark.slow)
                                      for m in MUST_FAIL])
def test_each_mutation_fails_its_named_checks(mutation, corpus_vocab):
  precision, must = MUST_FAIL[mutation]
  failed = failed_checks(mutation, corpus_vocab, precision)
  assert must <= set(failed), f"{mutation}: {must - set(failed)} passed; failed: {failed}"


def _anchored(row: str) -> tuple:
  """(its parity group's anchor, row)."""
  return group(IMPLS[row].group)[0], row


@pytest.mark.slow
@pytest.mark.parametrize("mutation, row, against, must", TUNED, ids=[f"{m}-{r}" for m, r, _, _ in TUNED])
def test_each_bug_in_a_tuned_row_fails_its_named_checks(mutation, row, against, must, corpus_vocab):
  failed = failed_checks(mutation, corpus_vocab, pair=(against, row))
  assert must <= set(failed), f"{mutation}: {must - set(failed)} passed; failed: {failed}"


def test_every_mutation_of_a_tuned_rows_code_is_tried_on_a_tuned_row():
  assert set(mutations.TUNED_CODE) <= {m for m, _, _, _ in TUNED}
  assert all(IMPLS[row].group == IMPLS[against].group for _, row, against, _ in TUNED)
  assert set(TUNED_ROWS) == {n for n, i in IMPLS.items() if i.tuned}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["highest", "float64"])
@pytest.mark.parametrize("row", TUNED_ROWS)
def test_the_unmutated_tuned_rows_pass_every_check(row, precision, corpus_vocab):
  assert failed_checks("none", corpus_vocab, precision, pair=_anchored(row)) == {}


def test_the_mutated_copies_of_the_tuned_backwards_cannot_drift_from_them():
  """tests/mutations.py's copies of the hand-written backwards, without their bug, give the
  originals' gradients bit for bit (so the mutations are one-line changes of the real code)."""
  rng = np.random.default_rng(0)
  xp, H = rng.standard_normal((4, 3, 21)).astype(np.float32), rng.standard_normal((3, 7)).astype(np.float32)
  W_zr, W_hh = rng.standard_normal((7, 14)).astype(np.float32), rng.standard_normal((7, 7)).astype(np.float32)
  dHs, dH = rng.standard_normal((4, 3, 7)).astype(np.float32), rng.standard_normal((3, 7)).astype(np.float32)
  _, saved = tuned._forward(xp, H, W_zr, W_hh, 1)
  for a, b in zip(mutations.tuned_backward(1, saved, (dHs, dH)), tuned._backward(1, saved, (dHs, dH))):
    assert np.array_equal(a, b)
  args = [torch.from_numpy(a).requires_grad_() for a in (xp, H, W_zr, W_hh)]
  with mock.patch.object(torch_tuned.Recurrence, "backward", mutations.torch_backward()):
    copy = torch.autograd.grad(torch_tuned.Recurrence.apply(*args), args, (torch.from_numpy(dHs), torch.from_numpy(dH)))
  real = torch.autograd.grad(torch_tuned.Recurrence.apply(*args), args, (torch.from_numpy(dHs), torch.from_numpy(dH)))
  assert all(torch.equal(a, b) for a, b in zip(copy, real))


def test_the_mutated_copies_of_the_built_in_tuned_backwards_cannot_drift_from_them():
  """The same for the built-in model's backwards, and each bug changes a gradient."""
  rng = np.random.default_rng(1)
  shapes = {"xp": (4, 3, 21), "H": (3, 7), "W_h": (7, 21), "b_h": (21,), "dHs": (4, 3, 7), "dH": (3, 7)}
  a = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
  args, ct = [a[k] for k in ("xp", "H", "W_h", "b_h")], (a["dHs"], a["dH"])
  _, saved = tuned._forward_builtin(*args, 1)
  real = tuned._backward_builtin(1, saved, ct)
  assert all(np.array_equal(x, y) for x, y in zip(mutations.tuned_builtin_backward(1, saved, ct), real))
  for wrong in ("state", "weights"):
    assert not all(np.array_equal(x, y) for x, y in zip(mutations.tuned_builtin_backward(1, saved, ct, wrong), real))
  targs = [torch.from_numpy(x).requires_grad_() for x in args]
  grads = lambda: torch.autograd.grad(torch_tuned.RecurrenceBuiltin.apply(*targs), targs,  # noqa: E731
                                      tuple(map(torch.from_numpy, ct)))
  with mock.patch.object(torch_tuned.RecurrenceBuiltin, "backward", mutations.torch_builtin_backward()):
    copy = grads()
  assert all(torch.equal(x, y) for x, y in zip(copy, grads()))
  for x, y in zip(grads(), real):  # torch's backward and JAX's: the same gradients
    np.testing.assert_allclose(x.numpy(), y, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_the_clipping_epsilon_passes_float32_and_fails_float64(corpus_vocab):
  """Why the epsilon needs the float64 probe: it moves an update by about 1e-6 / norm,
  below float32's round-off, so only the float64 tolerance can see it."""
  assert failed_checks("clip-epsilon", corpus_vocab) == {}


@pytest.mark.slow
def test_a_harness_that_compares_the_anchor_with_itself_would_pass_every_mutation(corpus_vocab):
  """What catches a harness that compares the anchor with itself (shared/parity.py's pairs
  read the anchor twice): the mutation tests above. With it, a mutated row passes every check, so
  test_each_mutation_fails_its_named_checks fails."""
  harness = "harness-compares-anchor-with-itself"
  assert failed_checks("reset-after-matmul", corpus_vocab, harness=harness) == {}
  assert failed_checks("state-not-carried", corpus_vocab, harness=harness) == {}


def test_the_mutated_copy_of_the_scratch_gru_cannot_drift_from_it(tiny_config):
  """reset-after-matmul is a copy of jax_impl/scratch.py's gru with one line changed: with
  that line as the original, it computes scratch.gru's logits and state bit for bit."""
  rng = np.random.default_rng(0)
  p = {k: rng.standard_normal(s).astype(np.float32) * 0.5 for k, s in
       {"W_xz": (28, 7), "W_hz": (7, 7), "b_z": (7,), "W_xr": (28, 7), "W_hr": (7, 7), "b_r": (7,),
        "W_xh": (28, 7), "W_hh": (7, 7), "b_h": (7,), "W_hq": (7, 28), "b_q": (28,)}.items()}
  X, H = rng.integers(0, 28, (3, 5)), rng.standard_normal((3, 7)).astype(np.float32)
  same = mutations.gru_reset_after(p, X, H, reset_after=False)
  assert all(np.array_equal(a, b) for a, b in zip(same, scratch.gru(p, X, H)))
  assert not np.array_equal(mutations.gru_reset_after(p, X, H)[0], same[0])


def _strict(out, pair) -> list:
  return ["--preset", "quick", "--epochs", "2", "--device", "cpu", "--impls", ",".join(pair), "--max-tokens", "600",
          "--num-steps", "5", "--batch-size", "4", "--num-hiddens", "16", "--out", str(out), "--strict"]


@pytest.mark.slow
def test_strict_fails_on_a_bug_in_a_tuned_rows_backward(tmp_path):
  with MUTATIONS["tuned-weight-gradient"]():
    assert compare.main(_strict(tmp_path / "r", (PAIR[0], "jax-tuned"))) == 1
  failed = {c["check"] for c in json.loads((tmp_path / "r" / "results.json").read_text())["parity"] if c["passed"] is False}
  assert BACKWARD <= failed


@pytest.mark.slow
def test_strict_fails_the_report_and_names_the_check(tmp_path, corpus_vocab):
  """Through compare.py --strict: exit status 1, the failed check named in report.md."""
  out = tmp_path / "r"
  args = _strict(out, PAIR)
  with MUTATIONS["gate-biases-dropped"]():
    assert compare.main(args) == 1
  results = json.loads((out / "results.json").read_text())
  failed = {c["check"] for c in results["parity"] if c["passed"] is False}
  assert {"grads_rel", "probe_logits_rel"} <= failed
  md = (out / "report.md").read_text()
  assert "**failed: jax-scratch vs torch-reference grads_rel" in md and "| **FAIL** |" in md


def test_a_probe_that_raises_fails_its_rows_with_the_reason(monkeypatch, corpus_vocab):
  from shared import probes

  def broken(impl, first_epoch, config):
    if impl.name == "jax-scratch":
      raise RuntimeError("out of memory\nmore")
    return real(impl, first_epoch, config)
  real = probes.measure
  monkeypatch.setattr(probes, "measure", broken)
  corpus, vocab = corpus_vocab
  config = _config(corpus_vocab).set(num_epochs=2)
  block = comparison.run(config, [Row(n) for n in PAIR], corpus[:600], vocab, "cpu")
  rows = [c for c in block["parity"] if c["check"].startswith("probe_")]
  assert rows and all(c["passed"] is False and c["measured"] is None for c in rows)
  assert "probe failed, jax-scratch: RuntimeError: out of memory" in rows[0]["note"]
