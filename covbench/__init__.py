"""covbench: coverage profile and Pass@N benchmarks for language models (arXiv 2510.15020)."""

__version__ = "0.1.0"
