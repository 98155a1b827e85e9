"""Markdown's two building blocks, for every report writer."""


def table(header, rows) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def num(x, fmt="{:,.0f}", none="–") -> str:
  return none if x is None else fmt.format(x)
