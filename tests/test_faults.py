"""Faults a careful user meets, each refused or survived in one line (docs/faults.md): sizes
that cannot fit, a full disk or a folder that cannot be written, a damaged report, odd flag
values. Fast, in this process; the faults that need processes and signals (a hung worker, a
second resume, a folder that appears at --out) are in tests/test_resume.py."""
import errno
import json
import os

import pytest

import compare
from shared import checkpoint, data, memory
from shared.config import preset
from tests.test_compare import TINY, _refused


def test_a_size_that_cannot_fit_is_refused_in_one_line_naming_the_flags():
  out = _refused("--preset", "quick", "--num-hiddens", "100000")
  assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--num-hiddens" in out.stderr
  assert "need about" in out.stderr and "GiB free here" in out.stderr
  seed = preset("seed").set(vocab_size=28)
  # the seed's sizes, scratch layout: 226,076 weights (3 V h + 3 h^2 + 3 h + h V + V) four times over,
  # and 32 x 35 x (5 x 256 + 2 x 28) activations twice, 4 bytes each: about 15 MB a row
  assert memory.per_row(seed, "scratch") == 4 * (4 * 226_076 + 2 * 32 * 35 * (5 * 256 + 2 * 28))
  memory.check(seed, ["scratch"] * 11)
  with pytest.raises(ValueError, match="1 row"):
    memory.check(seed, ["scratch"], available=memory.per_row(seed, "scratch") - 1)
  assert memory.per_row(seed.set(precision="float64"), "scratch") == 2 * memory.per_row(seed, "scratch")


@pytest.mark.parametrize("args, match", [(("--checkpoint-every", "nan"), "takes a number of seconds >= 0"),
                                         (("--checkpoint-every", "-1"), "takes a number of seconds >= 0"),
                                         (("--resume", "x", "--checkpoint-every", "-5"), "takes a number of seconds"),
                                         (("--ablation", "foo"), "levers from cuda-graph, epoch-graph, threads,")])
def test_odd_flag_values_are_one_line(args, match):
  out = _refused(*args)
  assert out.returncode == 2 and match in out.stderr and out.stderr.count("\n") == 1


def test_a_folder_named_like_the_text_is_named_for_what_it_is(tmp_path):
  (tmp_path / data.FILENAME).mkdir()
  with pytest.raises(data.DataError, match=r"is a folder, not the text: give --data-dir the folder"):
    data.locate(tmp_path)


def _full(*args, **kwargs):
  raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_a_checkpoint_write_ends_the_run_in_one_line_and_leaves_no_temporary_file(
    tmp_path, monkeypatch, corpus_vocab):
  monkeypatch.setattr(checkpoint.os, "fsync", _full)  # the write to the disk fails
  out = tmp_path / "r"
  with pytest.raises(SystemExit, match=r"cannot write the checkpoint .*r.checkpoint \(No space left on device\)"):
    compare.main([*TINY, "--epochs", "3", "--impls", "torch-scratch", "--out", str(out)])
  assert [p.name for p in tmp_path.iterdir()] == []


def test_a_full_disk_at_the_report_ends_in_one_line_and_the_checkpoint_writes_it_on_resume(
    tmp_path, monkeypatch, capsys, corpus_vocab):
  from shared.reports import tables
  real = tables.write
  monkeypatch.setattr(tables, "write", _full)
  out = tmp_path / "r"
  with pytest.raises(SystemExit) as e:
    compare.main([*TINY, "--epochs", "3", "--impls", "torch-scratch", "--out", str(out)])
  err = capsys.readouterr().err.strip().splitlines()[-1]
  assert e.value.code == 2 and "cannot write the report" in err and f"--resume {out}" in err
  assert not out.exists() and not list(tmp_path.glob(".r.tmp-*")) and checkpoint.path_for(out).exists()
  monkeypatch.setattr(tables, "write", real)
  assert compare.main(["--resume", str(out)]) == 0 and (out / "results.json").exists()


def test_an_index_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
  from shared.reports import index
  monkeypatch.setattr(index, "write", lambda folder: _full())
  out = _refused("--index", str(tmp_path))
  assert out.returncode == 2 and out.stderr.count("\n") == 1 and "cannot write" in out.stderr


@pytest.mark.parametrize("damage", [b"\xff\xfe\x00garbage", b"[1, 2, 3]"])
def test_a_damaged_partial_report_does_not_block_its_resume(damage, tmp_path, ctrl_c_at_epoch, corpus_vocab):
  out = tmp_path / "r"
  ctrl_c_at_epoch(3)
  assert compare.main([*TINY, "--epochs", "6", "--impls", "jax-scratch", "--out", str(out),
                       "--checkpoint-every", "0"]) == 130
  (out / "results.json").write_bytes(damage)
  assert compare.main(["--resume", str(out)]) == 0
  assert not json.loads((out / "results.json").read_text())["partial"]


def test_a_report_folder_takes_the_users_permissions(tmp_path, corpus_vocab):
  out = tmp_path / "r"
  assert compare.main([*TINY, "--epochs", "2", "--impls", "torch-scratch", "--out", str(out)]) == 0
  mask = os.umask(0)
  os.umask(mask)
  assert out.stat().st_mode & 0o777 == 0o777 & ~mask
