"""Exact verification of PyTorch derivatives against SymPy, at the exact binary inputs."""

__version__ = "0.1.0"
