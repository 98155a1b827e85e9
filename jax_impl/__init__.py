"""JAX/Flax/optax implementations of the protocol in shared/protocol.py. Never imports torch."""
