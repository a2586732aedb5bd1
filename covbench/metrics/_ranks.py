"""Rank agreement between two metric columns (one value per model): Kendall τ_b, Spearman ρ, flips.

A rank statistic of two columns is only meaningful after both are oriented the same way, so
:func:`rank_comparison` takes each metric's ``higher_is_better`` and orients both to "higher is better";
τ = +1 then means the two metrics order the models identically (design.md "Ranks").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._bootstrap import bootstrap_counts

_PAIRWISE_MAX_MODELS = 128


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


def kendall_tau_rows(a: object, b: object) -> np.ndarray:
    """Kendall τ_b of ``a[r]`` vs ``b[r]`` for every row r at once: ``Σ s_a s_b / √(Σ|s_a| Σ|s_b|)``.

    ``s_a[i, j] = sign(a_i − a_j)`` over pairs i < j (equal infinities tie); the denominators count
    the pairs untied in each column, which is τ_b's tie correction. Work is O(rows × models²), done
    in chunks of bounded memory, up to 128 models; beyond, scipy's O(m log m) per row is faster.
    Rows must not contain NaN (drop missing models first).

    Examples:
        >>> kendall_tau_rows([[1, 2, 3, 4.0]], [[1, 3, 2, 4.0]]).round(6).tolist()
        [0.666667]
    """
    x, y = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if x.shape != y.shape or np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("kendall_tau_rows: a and b must have equal shapes and no NaN")
    out = np.full(x.shape[0], np.nan)
    if x.shape[-1] > _PAIRWISE_MAX_MODELS:  # O(m²) pairs lose to scipy's O(m log m) per row
        for r in range(x.shape[0]):
            if np.ptp(x[r]) > 0 and np.ptp(y[r]) > 0:
                out[r] = stats.kendalltau(x[r], y[r]).statistic
        return out
    iu, ju = np.triu_indices(x.shape[-1], k=1)
    chunk = max(1, 4_000_000 // max(1, iu.size))
    for r in range(0, x.shape[0], chunk):
        xa, ya = x[r:r + chunk], y[r:r + chunk]
        sa = (xa[:, iu] > xa[:, ju]).astype(np.int8) - (xa[:, iu] < xa[:, ju])
        sb = (ya[:, iu] > ya[:, ju]).astype(np.int8) - (ya[:, iu] < ya[:, ju])
        concordance = np.einsum("rp,rp->r", sa, sb, dtype=np.int64)
        untied = np.count_nonzero(sa, axis=1).astype(np.float64) * np.count_nonzero(sb, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[r:r + chunk] = concordance / np.sqrt(untied)
    return out


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


def _tau_b_clean(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """τ_b per row of NaN-free ``[rows, m]`` arrays (Knight's algorithm, vectorised over rows).

    With n0 = m(m−1)/2 pairs, n1 / n2 pairs tied in x / y, n3 tied in both and D the discordant
    pairs: τ_b = (n0 − n1 − n2 + n3 − 2D) / √((n0 − n1)(n0 − n2)) (scipy's formula). Sorting by
    (x, y) leaves D = the inversions of y in that order: ties in x are ordered by y, so they add none.
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
    numerator = (n0 - n1 - n2 + n3 - 2 * _inversions(seq)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = numerator / np.sqrt((n0 - n1).astype(np.float64) * (n0 - n2))
    return np.clip(tau, -1.0, 1.0)  # as scipy: rounding must not leave [-1, 1]


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


@dataclass(frozen=True)
class RankComparison:
    """Agreement of two oriented metric columns, with paired bootstrap intervals over prompts."""

    tau: float
    tau_lo: float
    tau_hi: float
    rho: float
    rho_lo: float
    rho_hi: float
    flips: tuple[RankFlip, ...]


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


def rank_comparison(names: list[str], a_per_prompt: object, b_per_prompt: object, *,
                    a_higher_is_better: bool, b_higher_is_better: bool, weights: object = None,
                    B: int = 1000, seed: int = 0, level: float = 0.95) -> RankComparison:
    """τ_b and ρ between two metrics' model means, with paired bootstrap CIs over prompts, and flips.

    Args:
        names: model names, one per row.
        a_per_prompt, b_per_prompt: ``[models, prompts]`` per-prompt values of each metric (e.g.
            −log π̂, the indicator ``X ≥ log N``, per-prompt Pass@N); the column of a metric is the
            weighted mean over prompts. All models must be scored on the same prompts.
        weights: per-prompt weights ``[prompts]``; B, seed, level: as :func:`paired_bootstrap`.

    Both metrics are oriented to "higher is better", so τ = +1 means identical orders. Each resample
    recomputes both columns on the same prompts for every model, then τ and ρ across models.

    Examples:
        >>> ce = [[1.0, 2.0, 1.5], [3.0, 2.5, 2.0]]
        >>> pas = [[0.9, 0.8, 0.7], [0.1, 0.2, 0.3]]
        >>> rc = rank_comparison(["a", "b"], ce, pas, a_higher_is_better=False,
        ...                      b_higher_is_better=True, B=100)
        >>> rc.tau, rc.flips
        (1.0, ())
    """
    va, vb = (np.asarray(v, dtype=np.float64) for v in (a_per_prompt, b_per_prompt))
    if va.ndim != 2 or va.shape != vb.shape or va.shape[0] != len(names):
        raise ValueError(f"rank_comparison: per-prompt arrays must be [models, prompts] for "
                         f"{len(names)} models, got {va.shape} and {vb.shape}")
    w = np.ones(va.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    sa, sb = (1.0 if a_higher_is_better else -1.0), (1.0 if b_higher_is_better else -1.0)
    counts = np.vstack([np.ones((1, va.shape[1])), bootstrap_counts(va.shape[1], B, seed)])
    with np.errstate(invalid="ignore", divide="ignore"):
        means_a = sa * ((va * w) @ counts.T) / (w @ counts.T)  # [models, 1 + B]; column 0 = all prompts
        means_b = sb * ((vb * w) @ counts.T) / (w @ counts.T)
    flips = rank_flips(names, means_a[:, 0], means_b[:, 0], True, True)
    both = ~(np.isnan(means_a[:, 0]) | np.isnan(means_b[:, 0]))  # missing models are not ranked
    means_a, means_b = means_a[both], means_b[both]
    usable = ~(np.isnan(means_a).any(0) | np.isnan(means_b).any(0))  # resamples with zero weight drop
    tau, rho = np.full(usable.size, np.nan), np.full(usable.size, np.nan)
    if both.sum() >= 2:
        tau[usable] = kendall_tau_rows(means_a[:, usable].T, means_b[:, usable].T)
        rho[usable] = spearman_rows(means_a[:, usable].T, means_b[:, usable].T)
    alpha = (1.0 - level) / 2.0
    return RankComparison(float(tau[0]), *_q(tau[1:], alpha), float(rho[0]), *_q(rho[1:], alpha), flips)


def _q(reps: np.ndarray, alpha: float) -> tuple[float, float]:
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return float("nan"), float("nan")
    return float(np.quantile(reps, alpha, method="lower")), float(np.quantile(reps, 1 - alpha, method="higher"))
