"""nanobrag: a differentiable PyTorch re-implementation of James Holton's nanoBragg."""

__version__ = "0.1.0"
