"""The Pass@N bracket that the coverage profile alone implies for single-answer tasks (docs/coverage-principle.md#bon-sandwich).

With p(x) = π̂(y*|x), X = −log p and Cov_M = P_x[X ≥ log M] (the "explicit sandwich"):

- failure is at least ½·Cov_{2N}: an uncovered prompt at 2N has p ≤ 1/(2N), so
  (1 − p)^N ≥ 1 − N/(2N) = ½ (Bernoulli), hence ``Pass@N ≤ 1 − ½·Cov_{2N}`` (paper Prop D.7);
- failure is at most Cov_M + (1 − 1/M)^N for every M ≥ 1: a covered prompt has p > 1/M, hence
  ``Pass@N ≥ 1 − min_M [Cov_M + (1 − 1/M)^N]`` (paper Prop D.6's mechanism), with the best M reported.

The bound holds for every M, so the minimum over any grid is valid; a finer grid only tightens it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._coverage import coverage_profile
from ._inputs import as_thresholds

#: M grid of the lower bound: 48 points per decade from 1 to 10^6.
DEFAULT_BRACKET_MS: np.ndarray = np.geomspace(1.0, 1e6, 6 * 48 + 1)
DEFAULT_BRACKET_MS.setflags(write=False)


@dataclass(frozen=True)
class PassBracket:
    """Bounds on Pass@N implied by Cov: ``lo ≤ Pass@N ≤ hi``, and the M that gave ``lo``.

    Arrays are shaped like the ``Ns`` they were computed for; NaN when the coverage is missing.
    """

    lo: np.ndarray
    hi: np.ndarray
    best_m: np.ndarray


def pass_bracket(log_ratios: object, Ns: object, weights: object = None,
                 Ms: object = None) -> PassBracket:
    """Bracket Pass@N with the coverage profile of ``X = −log π̂(y*|x)`` (single-answer tasks).

    Args:
        log_ratios: per-prompt X = log π_ref(y*|x) − log π̂(y*|x); for a gold answer π_ref(y*|x) = 1.
        Ns: sample budgets N ≥ 1 (real), any shape.
        weights: optional per-prompt weights ≥ 0.
        Ms: the grid searched for the lower bound; default :data:`DEFAULT_BRACKET_MS`.

    Returns:
        :class:`PassBracket` with ``lo = 1 − min_M[Cov_M + (1 − 1/M)^N]``, ``hi = 1 − ½·Cov_{2N}`` and
        ``best_m`` (the smallest minimising M).

    Examples:
        >>> b = pass_bracket(-np.log([0.5, 0.01]), [1, 8])
        >>> b.lo.round(4).tolist(), b.hi.round(4).tolist(), b.best_m.round(2).tolist()
        ([0.01, 0.4952], [0.5, 0.75], [100.0, 2.05])
        >>> float(pass_bracket([], 4).lo)
        nan
    """
    n_thr = as_thresholds(Ns, "pass_bracket")
    m_grid = as_thresholds(DEFAULT_BRACKET_MS if Ms is None else Ms, "pass_bracket", "Ms").reshape(-1)
    if m_grid.size == 0:
        raise ValueError("pass_bracket: Ms is empty")
    flat_n = n_thr.reshape(-1)
    hi = 1.0 - 0.5 * coverage_profile(log_ratios, 2.0 * flat_n, weights)
    cov_m = coverage_profile(log_ratios, m_grid, weights)  # [M]
    # (1 − 1/M)^N in log space; M = 1 gives 0^N = 0.
    with np.errstate(divide="ignore"):
        miss_covered = np.exp(flat_n[:, None] * np.log1p(-1.0 / m_grid[None, :]))  # [N, M]
    fail_hi = cov_m[None, :] + miss_covered
    if np.isnan(cov_m).all():
        lo = np.full(flat_n.shape, np.nan)
        best_m = np.full(flat_n.shape, np.nan)
    else:
        arg = np.argmin(fail_hi, axis=1)  # first (smallest) M among ties
        lo = np.maximum(0.0, 1.0 - fail_hi[np.arange(flat_n.size), arg])  # a bound above 1 says nothing
        best_m = m_grid[arg]
    shape = n_thr.shape
    return PassBracket(lo.reshape(shape), hi.reshape(shape), best_m.reshape(shape))
