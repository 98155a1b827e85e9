"""The built-in GRU (shared/params.py, "Built-in model") as Keras 3 users write it: one-hot
inputs, `keras.layers.GRU(reset_after=True)` (torch's six-bias cell, gates stacked z, r, h;
keras_impl/convert.py maps the weights) and a Dense output layer. One definition, run on
whichever backend the process took (KERAS_BACKEND, read when Keras is imported).

`use_cudnn=False`: Keras 3.15.1 on the torch backend cannot train a stateful GRU through
its fused path: on the CPU (`_fallback_gru`) as on CUDA (`torch._VF.gru`), the layer's
state variable is saved for backward and then overwritten in place by the stateful update,
and backward() raises "modified by an inplace operation" (keras-team/keras#23462, fixed
after 3.15.1 for cuDNN only). The generic RNN loop clones the state (keras#20916);
`use_cudnn=False` selects it, the workaround the issue gives. On the JAX backend the
flag changes nothing on a CPU: its fused GRU is cuDNN's, GPU only.
"""
from typing import Callable, NamedTuple

import keras


class GRUModel(NamedTuple):
  model: keras.Model  # (B, T) int32 -> logits (B, T, V), batch-major; what fit trains
  gru: keras.layers.GRU
  dense: keras.layers.Dense
  infer: Callable     # (X (b, T) int32, H (b, h)) -> (logits (b, T, V), H (b, h)), same weights

  def weights(self) -> list:
    """The trainable variables in keras_impl/convert.py's order."""
    c = self.gru.cell
    return [c.kernel, c.recurrent_kernel, c.bias, self.dense.kernel, self.dense.bias]


def build(config) -> GRUModel:
  """The model for `config`'s shapes, in keras.config.floatx(). `model` is stateful when the
  run carries the state (sequential sampling: the state survives from minibatch to minibatch
  until `gru.reset_state()` zeroes it); with random sampling every minibatch starts from
  zero, as a layer that is not stateful does. `infer` runs the same cell from an explicit
  state for any batch size (the protocol's forward pass and gradients), through a second
  RNN wrapper of that cell."""
  B, T, V, h = config.batch_size, config.num_steps, config.vocab_size, config.num_hiddens
  X = keras.Input(batch_shape=(B, T), dtype="int32")
  gru = keras.layers.GRU(h, reset_after=True, return_sequences=True, stateful=config.carries_state,
                         use_cudnn=False, name="gru")
  dense = keras.layers.Dense(V, name="out")
  model = keras.Model(X, dense(gru(keras.ops.one_hot(X, V))))
  rnn = keras.layers.RNN(gru.cell, return_sequences=True, return_state=True)  # the same weights

  def infer(X, H):
    out, H = rnn(keras.ops.one_hot(X, V), initial_state=H)   # (b, T, h), (b, h)
    return dense(out), H
  return GRUModel(model, gru, dense, infer)


def compile_model(model, config) -> None:
  """The seed's training rule in Keras's words: SGD(lr) after clipping the gradient by its
  global norm (Keras scales by theta * min(1/norm, 1/theta): the seed's rule up to
  round-off), mean sparse cross-entropy over every token of the minibatch (Keras's default
  reduction, "sum_over_batch_size", averages over B*T, as the seed). The keras_jit option:
  "" (Keras's default, jit_compile="auto": XLA on JAX, eager on torch) or "on"
  (jit_compile=True: XLA on JAX, torch.compile on torch)."""
  model.compile(optimizer=keras.optimizers.SGD(learning_rate=config.lr, global_clipnorm=config.grad_clip),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=True if config.option("keras_jit", "") == "on" else "auto")
