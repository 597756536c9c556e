"""animbench: evaluation and benchmarking toolkit for warp-based image animation."""

__version__ = "0.1.0"
