"""report.md from results.json's dict: every figure in the Markdown is read from it. One
writer per kind of report (compare_md, seeds_md, sweep_md, ablation_md), the sections they
share in sections.py, and how the run was checkpointed (checkpoint.py) after any kind."""
from shared.reports import ablation_md, compare_md, seeds_md, sweep_md
from shared.reports import checkpoint as checkpoint_md

KINDS = {"compare": compare_md.render, "seeds": seeds_md.render, "sweep": sweep_md.render,
         "ablation": ablation_md.render}


def render(results: dict) -> str:
  text = KINDS[results["kind"]](results)
  resumed = checkpoint_md.render(results)  # how the run was checkpointed, and any resume
  return text + ("\n" + resumed if resumed else "")
