"""Rank agreement of a proxy (CE, Cov_N) with Pass@N across models, and an honest interval for it.

The estimand (docs/statistics.md#tau): τ = Kendall's τ between the models' *population* means of the
proxy and of the target (means over the prompt distribution), both oriented so that higher is better.
The point estimate τ̂ is τ_b of the sample means on the prompts every model was scored on.

τ is a function of the pairwise orders of the models alone, so it is not a smooth function of the
means: where two models' means are closer than the prompt sampling noise, their order in the sample is
a coin flip, τ̂ is pulled towards 0, and bootstrap intervals (percentile, BCa, studentized) cover far
less than their nominal level (measured in docs/statistics.md#tau-coverage: 4–85% near ties). The
interval here is built from the pairwise orders instead, and is valid for any configuration of means:

1. For every pair of models (j, k) and each metric, the paired difference of their means
   d̄ = Σ_i w_i (v_ji − v_ki) / Σ_i w_i has standard error se from the per-prompt differences
   (linearisation: se² = Σ_i w_i² (d_i − d̄)² / (Σ_i w_i)²). The order of the pair is *resolved* when
   |d̄| > z·se, with z the Bonferroni critical value for all 2·K(K−1)/2 statements at once
   (z = Φ⁻¹(1 − α/(4·pairs))), so with probability ≈ ≥ 1 − α every resolved order is the true one.
2. A pair resolved in both metrics contributes its sign product to τ; an unresolved pair could
   contribute anything in [−1, +1]. So, assuming no two models tie exactly in the population,
   τ ∈ [(S_res − U)/n0, (S_res + U)/n0] with S_res the resolved pairs' sum, U the unresolved pairs
   and n0 = K(K−1)/2. The interval is widened to include τ̂ if sample ties put τ̂_b outside.

It is conservative (it ignores transitivity), and it is wide exactly when the prompts cannot tell the
models apart: that is the honest answer. ``resolved`` reports how many pairs were resolved.

The site recomputes these per task from cached per-prompt values whenever the task's models change,
with the same functions as a cold build, so both give the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._ranks import kendall_tau


@dataclass(frozen=True)
class Centred:
    """One metric's per-model statistics on shared prompts: weighted means ``[K]`` and the weighted,
    centred per-prompt values ``[K, P]`` (w_i·(v_i − mean) / Σw), whose row products give covariances."""

    means: np.ndarray
    scaled: np.ndarray


def centred(values: np.ndarray, weights: np.ndarray) -> Centred:
    """Means and scaled centred values of ``[K, P]`` per-prompt values.

    Rows with an infinite value (a reference response given zero probability: CE = +inf) get mean ±inf
    and zero deviations: such a model is ordered against finite ones, and tied with its equals.
    """
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum()
    finite = np.isfinite(v).all(axis=1)
    safe = np.where(finite[:, None], v, 0.0)
    means = (safe * w[None, :]).sum(axis=1) / total
    scaled = np.where(finite[:, None], w[None, :] * (safe - means[:, None]) / total, 0.0)
    pos, neg = np.isposinf(v).any(axis=1), np.isneginf(v).any(axis=1)
    means = np.where(finite, means, np.where(pos & neg, np.nan, np.where(pos, np.inf, -np.inf)))
    return Centred(means, scaled)


def covariance(c: Centred) -> np.ndarray:
    """``[K, K]`` covariances of the models' means (linearisation over prompts): Σ_i a_ki·a_ji."""
    return c.scaled @ c.scaled.T


def critical_z(n_models: int, level: float) -> float:
    """Bonferroni critical value for the pairwise orders of ``n_models`` models in two metrics."""
    pairs = max(1, n_models * (n_models - 1) // 2)
    return float(stats.norm.ppf(1.0 - (1.0 - level) / (4.0 * pairs)))


_BLOCK = 64  # rows per block: a block's [64, K] temporaries stay in cache


def orders(c: Centred, cov: np.ndarray, z: float) -> np.ndarray:
    """Per pair j < k (``np.triu_indices(K, 1)`` order), int8: +1 where model j's mean is resolved above
    model k's, −1 below, 0 unresolved (|d̄| ≤ z·se, or NaN)."""
    m = c.means
    k = m.size
    diag = np.diag(cov)
    finite = bool(np.isfinite(m).all())
    z2 = z * z
    parts = []
    for a in range(0, k, _BLOCK):
        rows = slice(a, min(a + _BLOCK, k))
        with np.errstate(invalid="ignore"):
            d = m[rows, None] - m[None, :]
            var = diag[rows, None] + diag[None, :] - 2.0 * cov[rows]
            resolved = d * d > z2 * np.maximum(var, 0.0)
            if not finite:
                # A finite model is surely ordered against an infinite one; equal infinities are not.
                inf = np.isinf(m[rows, None]) | np.isinf(m[None, :])
                resolved = np.where(inf, m[rows, None] != m[None, :], resolved) & ~np.isnan(d)
            sign = np.where(resolved, np.sign(np.where(np.isnan(d), 0.0, d)), 0.0).astype(np.int8)
        upper = np.arange(rows.start, rows.stop)[:, None] < np.arange(k)[None, :]
        parts.append(sign[upper])
    return np.concatenate(parts) if parts else np.zeros(0, np.int8)


@dataclass(frozen=True)
class TauCI:
    """τ̂_b of a proxy's ranking against the target's, and the interval of the pairwise-order method."""

    tau: float
    lo: float
    hi: float
    n_models: int
    n_prompts: int
    resolved: int  # pairs whose order is resolved in both metrics
    pairs: int
    level: float


def tau_interval(proxy_means: np.ndarray, target_means: np.ndarray, proxy_orders: np.ndarray,
                 target_orders: np.ndarray, n_prompts: int, level: float) -> TauCI:
    """The point τ̂_b of the means and the interval from the resolved orders (module docstring)."""
    k = proxy_means.size
    pairs = k * (k - 1) // 2
    point = kendall_tau(proxy_means, target_means) if k >= 2 else math.nan
    if k < 2:
        return TauCI(point, math.nan, math.nan, k, n_prompts, 0, pairs, level)
    prod = proxy_orders.astype(np.int64) * target_orders
    known = prod != 0
    s_known = int(prod.sum())
    unknown = pairs - int(known.sum())
    lo, hi = (s_known - unknown) / pairs, (s_known + unknown) / pairs
    if not math.isnan(point):
        lo, hi = min(lo, point), max(hi, point)
    return TauCI(point, lo, hi, k, n_prompts, int(known.sum()), pairs, level)


def rank_agreements(proxies: list[object], target: object, weights: object = None, *,
                    proxies_higher_is_better: bool, target_higher_is_better: bool = True,
                    level: float = 0.95) -> list[TauCI]:
    """:func:`rank_agreement` of several proxies against one target (the target's orders computed once).
    A model with NaN in the target or in any proxy is left out of every comparison."""
    t = np.asarray(target, dtype=np.float64)
    ps = [np.asarray(p, dtype=np.float64) for p in proxies]
    for p in ps:
        if p.ndim != 2 or p.shape != t.shape:
            raise ValueError(f"rank_agreement: proxy and target must be [models, prompts] of one shape, "
                             f"got {p.shape}, {t.shape}")
    w = np.ones(t.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = ~np.isnan(t).any(axis=1)
    for p in ps:
        keep &= ~np.isnan(p).any(axis=1)
    sp, st = (1.0 if proxies_higher_is_better else -1.0), (1.0 if target_higher_is_better else -1.0)
    z = critical_z(int(keep.sum()), level)
    ct = centred(st * t[keep], w)
    ot = orders(ct, covariance(ct), z)
    out = []
    for p in ps:
        cp = centred(sp * p[keep], w)
        out.append(tau_interval(cp.means, ct.means, orders(cp, covariance(cp), z), ot, t.shape[1], level))
    return out


def rank_agreement(proxy: object, target: object, weights: object = None, *, proxy_higher_is_better: bool,
                   target_higher_is_better: bool = True, level: float = 0.95) -> TauCI:
    """Kendall τ_b between the models' proxy and target means, with the pairwise-order interval.

    Args:
        proxy, target: ``[models, prompts]`` per-prompt values (e.g. −log π̂ and per-prompt Pass@N) on the
            same prompts; a model with NaN anywhere is not ranked.
        weights: per-prompt weights (default uniform).
        proxy_higher_is_better, target_higher_is_better: orientation (CE and Cov_N: False).

    Examples:
        >>> ce = [[1.0, 2.0, 1.5, 1.2], [3.0, 2.5, 2.9, 2.8], [2.0, 2.1, 1.9, 2.0]]
        >>> pas = [[0.9, 0.8, 0.7, 0.9], [0.1, 0.2, 0.3, 0.2], [0.5, 0.5, 0.4, 0.6]]
        >>> t = rank_agreement(ce, pas, proxy_higher_is_better=False)
        >>> t.tau, t.n_models, t.pairs
        (1.0, 3, 3)
    """
    return rank_agreements([proxy], target, weights, proxies_higher_is_better=proxy_higher_is_better,
                           target_higher_is_better=target_higher_is_better, level=level)[0]


__all__ = ["Centred", "TauCI", "centred", "covariance", "critical_z", "orders", "rank_agreement", "rank_agreements",
           "tau_interval"]
