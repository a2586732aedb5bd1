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


def _dense_ranks(v: np.ndarray) -> np.ndarray:
    """Dense ranks 0, 1, ... along the last axis of a 2-D array: equal values (±inf too) share one."""
    order = np.argsort(v, axis=-1)
    ordered = np.take_along_axis(v, order, axis=-1)
    step = np.zeros(v.shape, np.int64)
    step[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    out = np.empty(v.shape, np.int64)
    np.put_along_axis(out, order, np.cumsum(step, axis=-1), axis=-1)
    return out


def _tied_pairs(ranks: np.ndarray) -> np.ndarray:
    """Per row, the pairs with equal dense rank: Σ_groups t(t − 1)/2 (τ_b's tie terms)."""
    rows, m = ranks.shape
    counts = np.bincount((ranks + m * np.arange(rows)[:, None]).ravel(), minlength=rows * m)
    return (counts * (counts - 1) // 2).reshape(rows, m).sum(axis=1)


def _inversions(seq: np.ndarray) -> np.ndarray:
    """Per row, the pairs i < j with ``seq[i] > seq[j]`` (values are ints in ``[0, m)``).

    A pair is counted once, at the highest bit where its two values differ: there both share the
    higher bits (the same *group*) and the earlier one has the bit set. Going from the top bit down,
    each level counts, for every 0-bit element, the 1-bit elements before it in its group, then
    stably partitions every group into its 0s and its 1s (a radix step); groups stay contiguous,
    so all rows are done at once in one flat array with cumulative sums (O(m log m) per row).
    Per-group quantities (start, 1-bits before it, 1-bits in it) are gathered once per group and
    broadcast with ``np.repeat``.
    """
    rows, m = seq.shape
    n = rows * m
    cur = seq.astype(np.int32).ravel()
    idx = np.arange(n, dtype=np.int32)
    row_start = idx % m == 0
    found = np.zeros(n, np.int32)  # per element, the inversions it closes (summed per row at the end)
    nxt = np.empty_like(cur)
    is_start = np.empty(n, bool)
    top = int(seq.max(initial=0))  # dense ranks of a tied column stay far below m: fewer levels
    for b in range(max(1, top.bit_length()) - 1, -1, -1):
        group = cur >> (b + 1)
        bit = (cur >> b) & 1
        np.not_equal(group[1:], group[:-1], out=is_start[1:])
        is_start[0] = True
        is_start |= row_start  # a group never spans two rows
        starts = np.flatnonzero(is_start).astype(np.int32)
        lens = np.diff(starts, append=np.int32(n))
        ones_incl = np.cumsum(bit, dtype=np.int32)
        ones_before = ones_incl - bit
        group_before = ones_before[starts]
        group_ones = ones_incl[starts + lens - 1] - group_before
        ones_in = ones_before - np.repeat(group_before, lens)  # 1-bits of the same group before this element
        zero = bit == 0
        found += np.where(zero, ones_in, 0)
        # Stable partition: a 0 moves back past the 1s before it; a 1 goes after the group's 0s.
        first_one = np.repeat(starts + lens - group_ones, lens)
        nxt[np.where(zero, idx - ones_in, first_one + ones_in)] = cur
        cur, nxt = nxt, cur
    return found.reshape(rows, m).sum(axis=1, dtype=np.int64)


def pair_counts(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of NaN-free ``[rows, m]`` arrays: (S, n1, n2) with S = Σ_{i<j} sgn(x_i − x_j)·sgn(y_i − y_j)
    (concordant minus discordant pairs) and n1 / n2 the pairs tied in x / y (equal infinities tie).

    Knight's algorithm, vectorised over rows: with n0 = m(m−1)/2 pairs, n3 tied in both and D the
    discordant pairs, S = n0 − n1 − n2 + n3 − 2D; sorting by (x, y) leaves D = the inversions of y in
    that order (ties in x are ordered by y, so they add none). Exact integers, O(rows · m log m).
    """
    m = x.shape[1]
    rx, ry = _dense_ranks(x), _dense_ranks(y)
    # (rx, ry) as one integer, as small as the ranks allow: tied columns (Cov_N, Pass@N over a few
    # dozen prompts have ~40 distinct values among 1,000 models) give keys < 2^16, which numpy
    # sorts by radix in linear time (kind="stable" on 16-bit integers).
    key = rx * (int(ry.max(initial=0)) + 1) + ry
    small = int(key.max(initial=0)) < 1 << 16
    order = np.argsort(key.astype(np.uint16) if small else key, axis=1, kind="stable" if small else None)
    seq = np.take_along_axis(ry, order, axis=1)
    ordered = np.take_along_axis(key, order, axis=1)
    idx = np.arange(m)
    run_start = np.ones(ordered.shape, bool)
    run_start[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    n3 = (idx - np.maximum.accumulate(np.where(run_start, idx, 0), axis=1)).sum(axis=1)
    n0 = m * (m - 1) // 2
    n1, n2 = _tied_pairs(rx), _tied_pairs(ry)
    return (n0 - n1 - n2 + n3 - 2 * _inversions(seq)).astype(np.int64), n1.astype(np.int64), n2.astype(np.int64)


def tau_b(s: np.ndarray, n1: np.ndarray, n2: np.ndarray, m: int) -> np.ndarray:
    """Kendall τ_b from pair counts: S / √((n0 − n1)(n0 − n2)), n0 = m(m−1)/2 (scipy's formula);
    NaN where a column is constant (no untied pair)."""
    n0 = m * (m - 1) // 2
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.asarray(s, np.float64) / np.sqrt((n0 - np.asarray(n1)).astype(np.float64) * (n0 - np.asarray(n2)))
    return np.clip(tau, -1.0, 1.0)  # as scipy: rounding must not leave [-1, 1]


def _tau_b_clean(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """τ_b per row of NaN-free ``[rows, m]`` arrays."""
    return tau_b(*pair_counts(x, y), x.shape[1])


def kendall_tau_fast(a: object, b: object) -> np.ndarray:
    """Kendall τ_b of ``a[r]`` vs ``b[r]`` for every row r, equal to scipy's, without a per-row call.

    For bootstrap distributions over many models (1,000 models × 200 resamples): dense ranks by
    argsort, tie counts by bincount, discordant pairs by a radix-style inversion count
    (:func:`_inversions`), all vectorised across rows, O(rows · m log m). Per row, a model where
    either value is NaN is dropped (as :func:`kendall_tau`); equal infinities tie. NaN for a row
    with fewer than two models left or a constant column.

    Examples:
        >>> kendall_tau_fast([[1, 2, 3, 4.0], [1, 2, 3, 4.0]], [[1, 3, 2, 4.0], [4, 3, 2, 1.0]]).round(6).tolist()
        [0.666667, -1.0]
        >>> kendall_tau_fast([[1.0, float("nan"), 2.0, 3.0]], [[1.0, 0.0, 2.0, 3.0]]).tolist()
        [1.0]
    """
    # Row-major copies: every step works along rows (a transposed view would make each row strided).
    x, y = (np.ascontiguousarray(np.atleast_2d(np.asarray(v, np.float64))) for v in (a, b))
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"kendall_tau_fast: a and b must be [rows, models] of equal shape, got {x.shape}, {y.shape}")
    out = np.full(x.shape[0], np.nan)
    if x.shape[1] < 2:
        return out
    missing = np.isnan(x) | np.isnan(y)
    clean = ~missing.any(axis=1)
    if clean.all():  # the usual case: no copies
        out[:] = _tau_b_clean(x, y)
    elif clean.any():
        out[clean] = _tau_b_clean(x[clean], y[clean])
    for r in np.flatnonzero(~clean):  # rows with missing models: each its own (smaller) problem
        keep = ~missing[r]
        if keep.sum() >= 2:
            out[r] = _tau_b_clean(x[r, keep][None], y[r, keep][None])[0]
    return out


def spearman_rows(a: object, b: object) -> np.ndarray:
    """Spearman ρ of ``a[r]`` vs ``b[r]`` for every row r: Pearson correlation of average ranks.

    Examples:
        >>> spearman_rows([[1, 2, 3.0], [1, 2, 3.0]], [[3, 2, 1.0], [1, 3, 2.0]]).tolist()
        [-1.0, 0.5]
    """
    ra = stats.rankdata(np.atleast_2d(np.asarray(a, np.float64)), axis=-1)
    rb = stats.rankdata(np.atleast_2d(np.asarray(b, np.float64)), axis=-1)
    ra -= ra.mean(axis=-1, keepdims=True)
    rb -= rb.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(-1) / np.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))


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
