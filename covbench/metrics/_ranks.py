"""Rank agreement between two metric columns (one value per model): Kendall τ_b, Spearman ρ, flips.

A rank statistic of two columns is only meaningful after both are oriented the same way, so
callers orient both to "higher is better"; τ = +1 then means the two metrics order the models identically.
The interval of τ over prompts is in :mod:`covbench.metrics._agreement`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

def _paired_columns(a: object, b: object, where: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"{where}: the two columns must be 1-D of equal length, got {x.shape}, {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))  # a model missing either metric is not ranked
    return x[keep], y[keep]


def kendall_tau(a: object, b: object) -> float:
    """Kendall τ_b between two columns (scipy), dropping models where either value is NaN.

    NaN (missing) with fewer than two models or a constant column.

    Examples:
        >>> kendall_tau([1, 2, 3, 4], [1, 3, 2, 4])
        0.6666666666666669
        >>> kendall_tau([1.0], [2.0])
        nan
    """
    x, y = _paired_columns(a, b, "kendall_tau")
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(stats.kendalltau(x, y).statistic)


def spearman(a: object, b: object) -> float:
    """Spearman ρ between two columns (scipy), dropping models where either value is NaN.

    Examples:
        >>> spearman([1, 2, 3], [3, 2, 1])
        -1.0
    """
    x, y = _paired_columns(a, b, "spearman")
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


@dataclass(frozen=True)
class RankFlip:
    """A model whose rank (1 = best, ties share the best rank) differs between metrics a and b."""

    model: str
    rank_a: int
    rank_b: int


def ranks(values: object, higher_is_better: bool) -> np.ndarray:
    """Competition ranks, 1 = best; ties share the best rank; NaN (missing) models get rank 0.

    Examples:
        >>> ranks([0.2, 0.9, 0.2, float("nan")], higher_is_better=True).tolist()
        [2, 1, 2, 0]
    """
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros(v.shape, dtype=np.int64)
    live = ~np.isnan(v)
    oriented = -v[live] if higher_is_better else v[live]
    out[live] = stats.rankdata(oriented, method="min").astype(np.int64)
    return out


def rank_flips(names: list[str], a: object, b: object, a_higher_is_better: bool,
               b_higher_is_better: bool) -> tuple[RankFlip, ...]:
    """Models ranked differently by metric a and metric b (models missing either are skipped).

    Examples:
        >>> rank_flips(["m1", "m2", "m3"], [1.0, 2.0, 3.0], [0.9, 0.5, 0.1], False, True)
        ()
        >>> [f.model for f in rank_flips(["m1", "m2"], [1.0, 2.0], [0.1, 0.9], False, True)]
        ['m1', 'm2']
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not len(names) == x.size == y.size:
        raise ValueError(f"rank_flips: {len(names)} names, {x.size} and {y.size} values")
    both = ~(np.isnan(x) | np.isnan(y))
    ra = ranks(np.where(both, x, np.nan), a_higher_is_better)
    rb = ranks(np.where(both, y, np.nan), b_higher_is_better)
    return tuple(RankFlip(names[i], int(ra[i]), int(rb[i])) for i in np.flatnonzero(both & (ra != rb)))
