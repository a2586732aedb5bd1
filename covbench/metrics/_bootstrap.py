"""Paired percentile bootstrap over prompts: every model sees the same resampled prompts.

Pairing matters: two models scored on the same prompts are compared on the same resamples, so the
prompt-to-prompt difficulty cancels in their difference and in rank statistics (docs/coverage-principle.md#ranks).
The resamples of a (seed, B, prompts) triple are drawn once; the fast path turns them into a count
matrix ``C[b, i]`` (how often prompt i is in resample b), so every resampled weighted mean of every
model is one matrix product: ``(V·w) @ Cᵀ / (w @ Cᵀ)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class BootstrapCI:
    """Point value on all prompts and percentile interval; arrays shaped like the statistic.

    ``stderr`` is the standard deviation of the bootstrap replicates. NaN means missing.
    """

    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    stderr: np.ndarray


@lru_cache(maxsize=32)
def bootstrap_indices(n_prompts: int, B: int, seed: int) -> np.ndarray:
    """Resampled prompt indices ``[B, n_prompts]`` for ``seed``; read-only and cached (drawn once).

    Examples:
        >>> idx = bootstrap_indices(5, 3, seed=0)
        >>> idx.shape, bool((idx == bootstrap_indices(5, 3, seed=0)).all())
        ((3, 5), True)
    """
    if n_prompts < 0 or B < 1:
        raise ValueError(f"bootstrap: need n_prompts >= 0 and B >= 1, got {n_prompts}, {B}")
    idx = np.random.default_rng(seed).integers(0, max(n_prompts, 1), size=(B, n_prompts))
    idx.setflags(write=False)
    return idx


@lru_cache(maxsize=32)
def bootstrap_counts(n_prompts: int, B: int, seed: int) -> np.ndarray:
    """``C[b, i]``: how often prompt i occurs in resample b (same resamples as :func:`bootstrap_indices`).

    Examples:
        >>> bootstrap_counts(4, 2, seed=1).sum(axis=1).tolist()
        [4.0, 4.0]
    """
    idx = bootstrap_indices(n_prompts, B, seed)
    flat = (idx + n_prompts * np.arange(B)[:, None]).ravel()
    counts = np.bincount(flat, minlength=B * n_prompts).reshape(B, n_prompts).astype(np.float64)
    counts.setflags(write=False)
    return counts


def paired_bootstrap(values: object, weights: object = None, *, B: int = 1000, seed: int = 0,
                     level: float = 0.95) -> BootstrapCI:
    """Percentile CIs of weighted means ``Σ_i w_i v_i / Σ_i w_i`` over prompts, paired across rows.

    Args:
        values: ``[..., prompts]`` per-prompt values, e.g. ``[models, prompts]`` or
            ``[models, thresholds, prompts]`` (coverage indicators, per-prompt Pass@N, −log π̂).
            NaN in a row makes that row's result NaN; ±inf propagate honestly.
        weights: per-prompt weights ≥ 0 broadcastable to ``values`` (doc weights ``[prompts]``, or
            token counts for a per-token ratio of sums). Default uniform.
        B: number of resamples; seed: the resamples' seed (same seed, same resamples for every row).
        level: two-sided coverage of the percentile interval.

    Returns:
        :class:`BootstrapCI` with arrays shaped ``values.shape[:-1]``. A resample whose weights sum to
        zero has no statistic and is left out of the percentiles.

    Examples:
        >>> ci = paired_bootstrap([[1.0, 0.0, 1.0, 0.0], [5.0, 5.0, 5.0, 5.0]], B=200, seed=0)
        >>> ci.value.tolist(), ci.lo[1].item(), ci.hi[1].item()
        ([0.5, 5.0], 5.0, 5.0)
        >>> bool(0.0 <= ci.lo[0] < 0.5 < ci.hi[0] <= 1.0)
        True
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 0:
        raise ValueError("paired_bootstrap: values must have a prompts axis")
    w = np.broadcast_to(np.ones(v.shape[-1]) if weights is None
                        else np.asarray(weights, dtype=np.float64), v.shape)
    if (~np.isfinite(w) | (w < 0)).any():
        raise ValueError("paired_bootstrap: weights must be finite and >= 0")
    _check_level(level)
    n = v.shape[-1]
    counts = bootstrap_counts(n, B, seed)  # [B, n]
    live = w > 0
    missing = (np.isnan(v) & live).any(axis=-1)
    pos, neg = np.isposinf(v) & live, np.isneginf(v) & live
    finite_v = np.where(np.isfinite(v) & live, v, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = _weighted_means(finite_v, w, pos, neg, np.ones((1, n)))[..., 0]
        reps = _weighted_means(finite_v, w, pos, neg, counts)  # [..., B]
    point = np.where(missing, np.nan, point)
    return _percentiles(point, reps, missing, level)


def _weighted_means(v: np.ndarray, w: np.ndarray, pos: np.ndarray, neg: np.ndarray,
                    counts: np.ndarray) -> np.ndarray:
    """Resampled weighted means ``[..., B]``; an infinite value drawn at least once dominates."""
    means = (v * w) @ counts.T / (w @ counts.T)
    hit_pos, hit_neg = pos.astype(np.float64) @ counts.T > 0, neg.astype(np.float64) @ counts.T > 0
    means = np.where(hit_pos, np.inf, means)
    means = np.where(hit_neg, -np.inf, means)
    return np.where(hit_pos & hit_neg, np.nan, means)


def bootstrap_statistic(fn: Callable[[np.ndarray], object], n_prompts: int, *, B: int = 1000,
                        seed: int = 0, level: float = 0.95) -> BootstrapCI:
    """Percentile CIs of any statistic ``fn(prompt_indices)`` on the paired resamples.

    ``fn`` gets an index array into the prompts (``np.arange(n_prompts)`` for the point value, then
    each resample of :func:`bootstrap_indices`) and returns an array of statistics for all models at
    once, so the models stay paired. Slower than :func:`paired_bootstrap`; use it for statistics that
    are not weighted means (rank correlations, medians).

    Examples:
        >>> v = np.array([[3.0, 1.0, 2.0], [0.0, 0.0, 9.0]])
        >>> ci = bootstrap_statistic(lambda i: np.median(v[:, i], axis=1), 3, B=50, seed=0)
        >>> ci.value.tolist()
        [2.0, 0.0]
    """
    _check_level(level)
    point = np.asarray(fn(np.arange(n_prompts)), dtype=np.float64)
    if n_prompts == 0:
        return BootstrapCI(point, np.full_like(point, np.nan), np.full_like(point, np.nan),
                           np.full_like(point, np.nan))
    idx = bootstrap_indices(n_prompts, B, seed)
    reps = np.stack([np.asarray(fn(row), dtype=np.float64) for row in idx], axis=-1)
    return _percentiles(point, reps, np.isnan(point), level)


def _percentiles(point: np.ndarray, reps: np.ndarray, missing: np.ndarray, level: float) -> BootstrapCI:
    """Percentile interval and replicate spread over the last axis; NaN replicates are left out."""
    alpha = (1.0 - level) / 2.0
    with warnings.catch_warnings():  # all-NaN rows are missing statistics: NaN is the right answer
        warnings.simplefilter("ignore", RuntimeWarning)
        # Order statistics, not interpolation: conservative by at most one replicate, and exact
        # with infinite replicates (interpolating inf and inf gives NaN).
        lo = np.nanquantile(reps, alpha, axis=-1, method="lower")
        hi = np.nanquantile(reps, 1.0 - alpha, axis=-1, method="higher")
        spread = (np.nanstd(reps, axis=-1, ddof=1) if reps.shape[-1] > 1
                  else np.full(point.shape, np.nan))
    spread = np.where(np.isinf(reps).any(axis=-1), np.inf, spread)
    nan = np.full(point.shape, np.nan)
    return BootstrapCI(point, np.where(missing, nan, lo), np.where(missing, nan, hi),
                       np.where(missing, nan, spread))


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap: level must be in (0, 1), got {level!r}")
