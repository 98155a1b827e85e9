"""Where a Keras row's epoch goes, from its backend's own profiler, read as that side of the
repository reads it: torch_impl/profile.py for keras-torch (aten's product ops), and
jax_impl/profile.py for keras-jax (XLA:CPU's thunks of the train step's compiled program).

Keras keeps its jitted train step to itself, so keras-jax's program is compiled again here:
`jax.jit(model.train_step)` (the function and jit options Keras's JAX trainer uses) lowered
on the very arguments one minibatch of `fit` passed it, recorded on the way. XLA compiles
the same program to the same instruction names, and jax_impl/profile.py refuses a split
whose traced thunks the program does not hold.
"""


def time_split(impl, epoch_batches) -> dict:
  """One epoch of `impl` (a keras_impl.train.KerasImpl) under its backend's profiler:
  shared.profile.split's dict; the caller puts the weights back (shared/training.py)."""
  def run():
    impl.train_epoch(epoch_batches)
  if impl.backend == "torch":
    from torch_impl import profile
    return profile.time_split(run)
  from jax_impl import profile
  return profile.time_split(run, [train_step_program(impl, epoch_batches)])


def train_step_program(impl, epoch_batches) -> str:
  """The compiled HLO text of keras-jax's train step: one minibatch through `fit` with its
  train function wrapped to record the (state, data) it is given (shapes and dtypes), then
  Keras's step function compiled on them as Keras's trainer compiles it (donating the state)."""
  import jax
  model, seen = impl.net.model, []
  fit_function = model.train_function

  def recording(state, iterator):
    data = next(iterator)
    seen.append(jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), (state, data)))
    return fit_function(state, iter([data]))
  model.train_function = recording
  try:
    impl.train_epoch(tuple(a[:1] for a in epoch_batches))
  finally:
    model.train_function = fit_function
  return jax.jit(model.train_step, donate_argnums=0).lower(*seen[0]).compile().as_text()
