"""The index of every report (reports/README.md), built from each folder's results.json:
reports of two schema versions, a sweep, a broken folder and a foreign one."""
import json

import compare
from shared import records
from shared.reports import index

OLD = {  # the shape of a schema 2 report (no kind, no framework in the records)
    "schema_version": 2, "created": "2026-11-27T11:52:33", "device": "cpu", "preset": "seed", "partial": False,
    "config": {"batch_size": 32, "num_steps": 35, "num_hiddens": 256, "max_tokens": 10000, "num_epochs": 500,
               "precision": "highest", "seed": 0},
    "parity": [{"passed": True}, {"passed": True}, {"passed": None}], "parity_judged": True,
    "impls": {"torch-scratch": {"steady_tokens_per_s": 44400.0}, "jax-scratch": {"steady_tokens_per_s": 51700.0},
              "flax-gru": {"steady_tokens_per_s": 49700.0}},
}


def _folder(root, name, results=None, text=None):
  folder = root / name
  folder.mkdir()
  if results is not None:
    (folder / "results.json").write_text(json.dumps(results))
  if text is not None:
    (folder / "results.json").write_text(text)
  return folder


def test_index_lists_every_schema_and_marks_what_it_cannot_read(tmp_path, corpus_vocab):
  reports = tmp_path / "reports"
  reports.mkdir()
  _folder(reports, "2026-11-27-cpu-seed", OLD)
  _folder(reports, "broken", text="{not json")
  _folder(reports, "foreign", {"hello": "world"})
  _folder(reports, "empty")
  (reports / ".tmp-half-written").mkdir()  # a report being written is not listed
  assert compare.main(["--preset", "quick", "--epochs", "2", "--impls", "torch-scratch,jax-scratch", "--device",
                       "cpu", "--max-tokens", "600", "--num-steps", "5", "--batch-size", "4", "--num-hiddens", "16",
                       "--out", str(reports / "new")]) == 0
  assert not (reports / "README.md").exists()  # a plain folder gets no index unasked
  assert compare.main(["--index", str(reports)]) == 0
  md = (reports / "README.md").read_text()
  rows = {line.split("|")[-2].strip(): line for line in md.splitlines() if line.startswith("| ") and "](" in line}
  assert len(rows) == 5 and index.MARKER in md
  old = rows["[2026-11-27-cpu-seed](2026-11-27-cpu-seed/report.md)"]
  assert "compare (schema 2)" in old and "torch-scratch 44.4k" in old and "jax-scratch 51.7k" in old
  assert "all 2 pass" in old
  new = rows["[new](new/report.md)"]
  assert f"compare (schema {records.SCHEMA_VERSION})" in new and "B 4, T 5, h 16, 600 tokens, 2 epochs, " in new
  assert "unreadable: results.json cannot be read" in rows["[broken](broken/report.md)"]
  assert "unreadable: not a report of this project" in rows["[foreign](foreign/report.md)"]
  assert "unreadable: no results.json" in rows["[empty](empty/report.md)"]
  # From now on, a report written into this folder refreshes its index.
  assert compare.main(["--sweep", "num_hiddens=8", "--impls", "jax-scratch", "--epochs", "2", "--device", "cpu",
                       "--max-tokens", "600", "--num-steps", "5", "--batch-size", "4",
                       "--out", str(reports / "sweep")]) == 0
  swept = [line for line in (reports / "README.md").read_text().splitlines() if "[sweep]" in line]
  assert len(swept) == 1 and f"sweep (schema {records.SCHEMA_VERSION})" in swept[0] and "num_hiddens=8" in swept[0]


def test_index_of_a_missing_folder_is_a_one_line_error(tmp_path, capsys):
  import pytest
  with pytest.raises(SystemExit) as e:
    compare.main(["--index", str(tmp_path / "nowhere")])
  assert e.value.code == 2 and "is not a folder" in capsys.readouterr().err


def test_index_states_the_threads_a_report_ran_with():
  one = {**OLD, "config": {**OLD["config"], "threads": 1}}
  two = {**OLD, "config": {**OLD["config"], "threads": 2}}
  assert index._sizes(one).endswith("500 epochs, 1 thread")
  assert index._sizes(two).endswith("500 epochs, 2 threads")
  assert index._sizes(OLD).endswith("500 epochs")  # before issue 17 no report stated them
