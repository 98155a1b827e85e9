"""Markdown's building blocks and the number formats shared by every report writer."""
import re


def table(header, rows) -> str:
  """A Markdown table; a `|` inside a cell is escaped, so that it cannot split the cell."""
  def cells(row):
    return " | ".join(str(c).replace("|", r"\|") for c in row)
  lines = ["| " + cells(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + cells(row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def num(x, fmt="{:,.0f}", none="–") -> str:
  return none if x is None else fmt.format(x)


def sig(x, signed: bool = False, none="–") -> str:
  """`x` to 3 significant figures, Python's "g" ("+3.2e-06", "-0.0123", "1.84", "11"): for
  differences, ratios and their intervals, which a fixed number of decimals would round to
  nothing when they are small."""
  return none if x is None else format(x, "+.3g" if signed else ".3g")


def slug(text: str) -> str:
  """Lower-case letters and digits, every other run of characters one hyphen."""
  return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"
