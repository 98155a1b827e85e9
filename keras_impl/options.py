"""Keras's own setting and speed lever (shared/levers.py says what they are). Imports no
Keras: the ablation reads them before any framework starts."""
from shared.levers import Lever, Option

OPTIONS = (
    # model.compile's jit_compile: "" = Keras's default ("auto": XLA on the JAX backend, eager on
    # the torch backend); "on": jit_compile=True (torch.compile there). Set by its lever alone.
    Option("keras_jit", "keras", "", ("on",)),
)
LEVERS = (
    Lever("keras-jit", "Keras's jit_compile on the torch backend", "keras",
          (("Keras's default (auto: eager)", {"keras_jit": ""}), ("jit_compile=True (torch.compile)",
                                                                 {"keras_jit": "on"})), False,
          "Keras hands its train step to torch.compile instead of running it eagerly; on the JAX backend "
          "the default already jits it (XLA)", slow=True),
)
