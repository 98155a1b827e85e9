"""PyTorch implementations of the protocol in shared/protocol.py. Never imports jax."""
