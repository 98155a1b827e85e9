"""Framework-neutral core: config, data pipeline, parameter layouts, protocol, reports.

Imports NumPy and the standard library only (matplotlib is imported inside the one
plotting function). Never torch, never jax: both sides import this package.
"""
