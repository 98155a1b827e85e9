"""Every table of a rendered report.md, also as CSV: tables/NN-<section>.csv, NN its place
in the report (01 first), <section> the slug of the nearest heading above it.

The tables are read back from the Markdown itself, so that every table, present and future,
has its CSV, with exactly the numbers the report prints (the same text, cell by cell; a
cell such as "12,345 [11,900–12,800]" stays one cell). Markdown emphasis and code marks
are dropped from the cells.
"""
import csv
import pathlib
import re

from shared.text import slug

FOLDER = "tables"
_SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")
_HEADING = re.compile(r"^#{1,6}\s+(.*)$")
_PIPE = re.compile(r"(?<!\\)\|")  # a cell boundary: a pipe not escaped as \|


def cells(line: str) -> list:
  """The cells of one table line, escaped pipes restored, `**` and backticks dropped."""
  parts = _PIPE.split(line.strip())
  if parts and not parts[0].strip():
    parts = parts[1:]
  if parts and not parts[-1].strip():
    parts = parts[:-1]
  return [plain(p.strip().replace(r"\|", "|")) for p in parts]


def plain(text: str) -> str:
  """`text` without Markdown's emphasis and code marks."""
  return text.replace("**", "").replace("`", "")


def extract(markdown: str) -> list:
  """[(heading, rows)] for every table in `markdown`, in order: rows[0] the header, then the
  body (the |---| line left out); heading: the nearest heading above it ("report" if none)."""
  lines, heading, found, i = markdown.splitlines(), "report", [], 0
  while i < len(lines):
    m = _HEADING.match(lines[i])
    if m:
      heading = m.group(1)
    if lines[i].startswith("|") and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1]):
      rows, i = [cells(lines[i])], i + 2
      while i < len(lines) and lines[i].startswith("|"):
        rows.append(cells(lines[i]))
        i += 1
      found.append((heading, rows))
      continue
    i += 1
  return found


def write(markdown: str, folder) -> list:
  """Writes every table of `markdown` to `folder`/tables/NN-<section>.csv; returns the paths
  (none, and no folder, for a report without tables)."""
  found = extract(markdown)
  if not found:
    return []
  out = pathlib.Path(folder) / FOLDER
  out.mkdir(exist_ok=True)
  paths = []
  for k, (heading, rows) in enumerate(found, 1):
    path = out / f"{k:02d}-{slug(plain(heading))}.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
      csv.writer(f).writerows(rows)
    paths.append(path)
  return paths
