"""The per-prompt vectors of a run (defined in :mod:`covbench.summarize`, kept by the store's index), and the
one rule that picks a run's per-prompt Pass@N for the per-class views and the picks' paired difference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from covbench.summarize import Vectors, vectors_of

__all__ = ["PassVector", "Vectors", "pass_vector", "vectors_of"]


@dataclass(frozen=True, eq=False)
class PassVector:
    """Per-prompt Pass@N of one run on the prompts ``doc_id``; ``source``: "exact" or "measured"."""

    doc_id: np.ndarray
    values: np.ndarray
    weight: np.ndarray
    source: str


def pass_vector(scored: Vectors | None, sampled: Vectors | None, pass_n: float) -> PassVector | None:
    """Exact per-prompt Pass@N (1 − (1 − π̂(S_x|x))^N) where the scoring run stores the correct set's mass,
    else the unbiased per-prompt estimator from the samples (``sampled``: the paired sampling run's vectors,
    or the scoring run's own when it holds samples; NaN where n < N), else None (docs/selection.md#pass).

    Exact first: it has no sampling noise and covers every scored prompt (a paired sampling task may
    cover only some). The vectors' exact Pass@N is at the task's rank N, so ``pass_n`` must be that N
    for the exact branch; the sampled branch works at any integer N.
    """
    if scored is not None and scored.pass_exact is not None:
        return PassVector(scored.doc_id, scored.pass_exact, scored.weight, "exact")
    for v in (sampled, scored):
        if v is not None and v.n is not None:
            values = v.pass_sampled(pass_n)
            assert values is not None
            return PassVector(v.doc_id, values, v.weight, "measured")
    return None
