"""transferbench: a benchmark suite for transfer learning and negative transfer, on JAX."""

__version__ = "0.1.0"
