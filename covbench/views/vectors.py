"""The per-prompt vectors of a run (defined in :mod:`covbench.summarize`, kept by the store's index)."""

from covbench.summarize import Vectors, vectors_of

__all__ = ["Vectors", "vectors_of"]
