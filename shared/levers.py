"""What a framework's speed settings look like (standard library only). Each framework
declares its own, beside its code (torch_impl/options.py, jax_impl/options.py,
keras_impl/options.py): an Option is a setting a run carries in Config.options, with its
flag; a Lever is what an ablation (shared/kinds/ablation.py) measures on and off, on the
rows whose table entry names it (shared/rows.py, Impl.levers).
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Option:
  """One framework setting: its name in Config.options, the command line's flag (None: set by
  a lever only), its default (the per-device default) and the other values it takes."""
  name: str
  framework: str
  default: object
  choices: tuple = ()      # the values besides the default; () with an int default: any int >= 0
  flag: str = None
  help: str = ""
  alone: str = ""          # why it refuses rows of other frameworks beside it, when set ("" never)

  def check(self, value) -> None:
    """ValueError naming the allowed values."""
    if self.choices and value not in (self.default, *self.choices):
      raise ValueError(f"{self.name} must be one of {self.choices} (or empty for the default), got {value!r}")
    if not self.choices and (not isinstance(value, int) or value < 0):
      raise ValueError(f"{self.name} must be >= 0 ({self.default} picks the per-device default), got {value!r}")


@dataclasses.dataclass(frozen=True)
class Lever:
  """A speed lever: its settings (label, {setting: value}), the first the reference that every
  other is measured against; `settings` may be a function of the run's config."""
  key: str                 # its name on the command line: --ablation KEY
  name: str
  framework: str           # "torch", "jax", "keras" or "both"
  settings: object         # ((label, {name: value}), ...), or a function config -> that
  gpu_only: bool           # meaningless on a CPU (no CUDA graphs, no TF32): skipped there
  why: str
  slow: bool = False       # compiles for minutes: measured after the others
  own_process: bool = False  # a process-wide setting: each cell's rows train in processes of their own

  def settings_for(self, config) -> tuple:
    return self.settings(config) if callable(self.settings) else self.settings


# The one lever that is no framework's: TF32 changes a neutral setting, the precision.
TF32 = Lever("tf32", "TF32 matrix products", "both",
             (("full float32", {"precision": "highest"}), ("TF32", {"precision": "tf32"})), True,
             "tensor cores at 10-bit mantissa for float32 matmuls; changes the arithmetic")


def refusals(options, config, frameworks) -> None:
  """ValueError (naming the fix) when a setting that acts on one framework alone is set while
  rows of another train beside it."""
  for o in options:
    other = sorted(set(frameworks) - {o.framework})
    if o.alone and config.option(o.name, o.default) != o.default and other:
      raise ValueError(f"{o.name} {config.option(o.name)!r} {o.alone}; leave the {' and '.join(other)} rows out")
