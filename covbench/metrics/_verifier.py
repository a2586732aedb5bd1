"""Coverage of the correct set from sampled verdicts, with honest uncertainty: ``cov_set@M``.

For prompt x let p_x = π̂(S_x|x), the model's probability of producing a correct response (its
verifier accepts). The coverage profile of the correct set is the bad tail

    Cov_M = P_x[p_x ≤ 1/M]        (lower is better; M ≥ 1 real),

observed only through c_x ~ Binomial(n_x, p_x) correct samples out of n_x. Cov_M is a functional of
the unknown mixing distribution of p_x and is not point-identified from finite n (p = 1/(2n) and p = 0
look alike). :func:`verifier_coverage` reports, per M (docs/verifier-coverage.md has the proofs):

- ``bound_lo``, ``bound_hi``: the identified set of Cov_M for the best-fitting law of the verdicts:
  the range of P[p ≤ 1/M] over every mixture whose fuzzy-quantile test means (§4) equal those of the
  NPMLE fit. No sampling uncertainty; :func:`cov_set_bounds` gives the same set for known p.
- ``lo``, ``hi``: a confidence interval that covers Cov_M with probability ≥ ``level`` for *any*
  mixing distribution, any n ≥ 0 per prompt and any number of prompts (finite-sample, §5): Chernoff
  limits on each test mean (union bound over the tests), then the same linear program.
- ``point``: the NPMLE's G([0, 1/M]) (§6), reported where M ≤ n/2 for the weighted median n (a prompt
  exactly at the threshold expects ≥ 2 correct samples), else missing (NaN); ``resolved`` says which.

Answer-level coverage (paper §7.1) is the same estimator applied to answer-match verdicts (§8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._bootstrap import bootstrap_indices
from ._chernoff import mean_limits
from ._inputs import as_1d, as_thresholds, as_weights
from ._mixing import quantile_curves, quantile_scores
from ._mixing_lp import coverage_range
from ._npmle import BinomialMixture, binomial_npmle

#: Levels γ of the fuzzy quantile tests (docs/verifier-coverage.md §4). The lower bound's best
#: certificates use small γ, the upper bound's large γ; each test costs a share of the error budget.
SET_GAMMAS: tuple[float, ...] = (0.005, 0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98, 0.995)

#: A point estimate is reported for M ≤ RESOLUTION × (weighted median n): at M = n/2 a prompt exactly
#: at the threshold expects 2 correct samples (docs/verifier-coverage.md §7).
RESOLUTION = 0.5


@dataclass(frozen=True)
class VerifierCoverage:
    """Cov_M of the correct set per threshold M; arrays shaped like ``Ms``; NaN means missing.

    ``lo ≤ bound_lo ≤ point ≤ bound_hi ≤ hi`` wherever ``point`` is reported. ``stderr`` is the
    bootstrap spread of ``point`` over resampled prompts (NaN unless ``B`` ≥ 2 and ``point`` is shown).
    """

    Ms: np.ndarray
    point: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    bound_lo: np.ndarray
    bound_hi: np.ndarray
    resolved: np.ndarray
    stderr: np.ndarray
    level: float


def verifier_coverage(n: object, c: object, Ms: object, *, level: float = 0.95, weights: object = None,
                      B: int = 0, seed: int = 0) -> VerifierCoverage:
    """Cov_M = P_x[π̂(S_x|x) ≤ 1/M] from ``c`` correct out of ``n`` sampled verdicts per prompt.

    Args:
        n: samples per prompt (integers ≥ 0; may differ between prompts; 0 = no information).
        c: correct samples per prompt (integers, 0 ≤ c ≤ n).
        Ms: thresholds M ≥ 1, any shape. M = 1 gives exactly 1 (every p ≤ 1).
        level: coverage of the interval ``[lo, hi]``, in (0, 1).
        weights: optional per-prompt weights ≥ 0 (prompts of weight 0 are dropped).
        B, seed: resamples of the prompts (:func:`bootstrap_indices`, the paired resamples every
            covbench bootstrap uses) for ``stderr``, the standard deviation of the refitted point
            estimate; ``B = 0`` (default) skips it. ``[lo, hi]`` never depends on them: it is not
            a bootstrap interval (docs/verifier-coverage.md §5).

    Returns:
        :class:`VerifierCoverage`; every field NaN (``resolved`` False) when there are no prompts
        or the weights sum to zero.

    Examples:
        >>> n = np.full(200, 16)
        >>> c = np.tile([0, 0, 1, 4, 8, 12, 16, 16], 25)  # a quarter of the prompts never solved
        >>> r = verifier_coverage(n, c, [1, 4, 16, 1024])
        >>> r.resolved.tolist(), r.point.round(3).tolist()
        ([True, True, False, False], [1.0, 0.367, nan, nan])
        >>> bool(np.all(r.lo <= r.bound_lo)), bool(np.all(r.bound_hi <= r.hi))
        (True, True)
        >>> r.lo.round(2).tolist(), r.hi.round(2).tolist()   # past M = n/2: an interval, no point
        ([1.0, 0.22, 0.0, 0.0], [1.0, 0.66, 0.51, 0.37])
    """
    where = "verifier_coverage"
    if not 0.0 < level < 1.0:
        raise ValueError(f"{where}: level must be in (0, 1), got {level!r}")
    m_thr = as_thresholds(Ms, where, "Ms")
    n_arr, c_arr, u = _verdicts(n, c, weights, where)
    flat = m_thr.reshape(-1).tolist()
    values = np.full((5, len(flat)), np.nan)  # point, lo, hi, bound_lo, bound_hi
    resolved = np.zeros(len(flat), dtype=bool)
    if u.size:
        fit = binomial_npmle(n_arr, c_arr, u)
        groups = _groups(n_arr, u)
        kappa = float(np.log(2 * len(SET_GAMMAS) / (1.0 - level)))  # union bound: 2 limits per test
        n_typical = _weighted_median(n_arr, u)
        for i, m in enumerate(flat):
            values[:, i] = _one_threshold(n_arr, c_arr, u, m, fit, groups, kappa)
            resolved[i] = m == 1.0 or m <= RESOLUTION * n_typical
        values[0, ~resolved] = np.nan
    stderr = _bootstrap_stderr(n_arr, c_arr, u, flat, B, seed)
    stderr[~resolved] = np.nan
    point, lo, hi, bound_lo, bound_hi, stderr = (v.reshape(m_thr.shape) for v in (*values, stderr))
    return VerifierCoverage(m_thr, point, lo, hi, bound_lo, bound_hi, resolved.reshape(m_thr.shape), stderr,
                            float(level))


def cov_set_bounds(n: object, p: object, Ms: object, weights: object = None) -> tuple[np.ndarray, np.ndarray]:
    """Identified bounds on Cov_M when each prompt's p is known: what infinitely many repeats of the
    verdicts (the same n, fresh samples) would pin down. They always contain ``P_x[p_x ≤ 1/M]``.

    Args:
        n: samples per prompt (integers ≥ 0).
        p: per-prompt success probabilities in [0, 1].
        Ms: thresholds M ≥ 1, any shape.
        weights: optional per-prompt weights ≥ 0.

    Returns:
        ``(lo, hi)`` shaped like ``Ms``; NaN without prompts.

    Examples:
        >>> p = np.array([0.0, 0.0, 0.02, 0.3, 0.6, 0.9])
        >>> lo, hi = cov_set_bounds(np.full(6, 64), p, [4, 16, 256])
        >>> lo.round(2).tolist(), hi.round(2).tolist()   # truth: 0.5, 0.5, 0.33
        ([0.5, 0.5, 0.18], [0.5, 0.5, 0.43])
    """
    where = "cov_set_bounds"
    m_thr = as_thresholds(Ms, where, "Ms")
    n_arr, p_arr = _counts(n, "n", where), as_1d(p, "p", where)
    _same_shape(n_arr, p_arr, "p", where)
    bad = np.flatnonzero((p_arr < 0.0) | (p_arr > 1.0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{where}: p[{i}] = {float(p_arr[i])!r} is not a probability")
    live, u = _live_weights(weights, n_arr.size, where)
    n_arr, p_arr = n_arr[live], p_arr[live]
    lo, hi = np.full(m_thr.size, np.nan), np.full(m_thr.size, np.nan)
    if u.size:
        groups = _groups(n_arr, u)
        for i, m in enumerate(m_thr.reshape(-1).tolist()):
            if m == 1.0:
                lo[i] = hi[i] = 1.0
                continue
            t = 1.0 / m
            means = sum(quantile_curves(size, t, SET_GAMMAS, p_arr[n_arr == size]) @ u[n_arr == size]
                        for size, _ in groups)
            lo[i], hi[i] = coverage_range(means, means, groups, t, SET_GAMMAS)
    return lo.reshape(m_thr.shape), hi.reshape(m_thr.shape)


def _one_threshold(n: np.ndarray, c: np.ndarray, u: np.ndarray, m: float, fit: BinomialMixture,
                   groups: list[tuple[int, float]], kappa: float) -> tuple[float, float, float, float, float]:
    """``(point, lo, hi, bound_lo, bound_hi)`` at one threshold M (docs/verifier-coverage.md §4–6)."""
    if m == 1.0:
        return 1.0, 1.0, 1.0, 1.0, 1.0
    t = 1.0 / m
    observed = quantile_scores(n, c, t, SET_GAMMAS) @ u
    fitted = sum(share * fit.expect(lambda p, size=size: quantile_curves(size, t, SET_GAMMAS, p))
                 for size, share in groups)
    lo_lim, hi_lim = mean_limits(observed, 1.0 / float(u.max()), kappa)
    # The confidence set always keeps the fitted law: a wider set, so the guarantee still holds,
    # and never an empty one.
    lo_lim, hi_lim = np.minimum(lo_lim, fitted), np.maximum(hi_lim, fitted)
    lo, hi = coverage_range(lo_lim, hi_lim, groups, t, SET_GAMMAS, hint=fit.atoms)
    bound_lo, bound_hi = coverage_range(fitted, fitted, groups, t, SET_GAMMAS, hint=fit.atoms)
    point = float(np.clip(fit.coverage(m), bound_lo, bound_hi))
    return point, min(lo, bound_lo), max(hi, bound_hi), bound_lo, bound_hi


def _bootstrap_stderr(n: np.ndarray, c: np.ndarray, u: np.ndarray, Ms: list[float], B: int,
                      seed: int) -> np.ndarray:
    """Standard deviation of the NPMLE's G([0, 1/M]) over ``B`` paired resamples of the prompts."""
    if B < 0:
        raise ValueError(f"verifier_coverage: B must be >= 0, got {B!r}")
    if B < 2 or u.size == 0:
        return np.full(len(Ms), np.nan)
    reps = np.array([binomial_npmle(n[i], c[i], u[i]).coverage(Ms) for i in bootstrap_indices(u.size, B, seed)])
    return reps.std(axis=0, ddof=1)


def _verdicts(n: object, c: object, weights: object, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated counts of the prompts with positive weight, and their weights normalised to sum 1."""
    n_arr, c_arr = _counts(n, "n", where), _counts(c, "c", where)
    _same_shape(n_arr, c_arr, "c", where)
    bad = np.flatnonzero(c_arr > n_arr)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{where}: c[{i}] = {int(c_arr[i])} > n[{i}] = {int(n_arr[i])}")
    live, u = _live_weights(weights, n_arr.size, where)
    return n_arr[live], c_arr[live], u


def _live_weights(weights: object, size: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Mask of the prompts with positive weight, and their weights normalised to sum 1."""
    w = as_weights(weights, size, where)
    live = w > 0.0
    return live, w[live] / w[live].sum() if live.any() else w[live]


def _same_shape(n: np.ndarray, other: np.ndarray, field: str, where: str) -> None:
    if n.shape != other.shape:
        raise ValueError(f"{where}: n has shape {n.shape}, {field} has shape {other.shape}")


def _counts(values: object, field: str, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{where}: {field} must be integer counts, got dtype {arr.dtype}")
    flt = as_1d(arr, field, where)  # 1-D, NaN raises
    bad = np.flatnonzero(~np.isfinite(flt) | (flt != np.round(flt)) | (flt < 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{where}: {field}[{i}] = {float(flt[i])!r} is not a count (an integer >= 0)")
    return flt.astype(np.int64)


def _groups(n: np.ndarray, u: np.ndarray) -> list[tuple[int, float]]:
    """``(n, weight share)`` per distinct sample count."""
    sizes, inverse = np.unique(n, return_inverse=True)
    shares = np.bincount(inverse.ravel(), weights=u, minlength=sizes.size)
    return [(int(s), float(w)) for s, w in zip(sizes, shares, strict=True)]


def _weighted_median(values: np.ndarray, u: np.ndarray) -> float:
    """The smallest value with at least half of the weight at or below it."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(u[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 - 1e-12)])
