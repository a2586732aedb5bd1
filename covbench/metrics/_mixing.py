"""Test functions of a binomial mixture at a threshold t, and the cells that discretise p ∈ [0, 1] for them.

A prompt with n samples and success probability p yields c ~ Binomial(n, p) correct ones. For a level
γ ∈ (0, 1), the *fuzzy γ-quantile test* at t scores a prompt

    V = 1[c < k] + ρ · 1[c = k],   k, ρ chosen so that  H(t) = γ,   where  H(p) = E[V | p]
                                                        = F_{n,p}(k − 1) + ρ · f_{n,p}(k),

(F, f the binomial CDF and pmf). H is non-increasing in p (a mixture of two binomial CDFs at fixed
points), so ``H(p) ≥ γ`` for p ≤ t and ``H(p) ≤ γ`` for p > t: each V is an unbiased, bounded score
whose mean brackets the coverage ``P[p ≤ t]`` (docs/verifier-coverage.md §4). Prompts with different n
get their own (k, ρ) but the same γ, so their scores pool.

The cells partition [0, 1] with t as an edge, fine enough that no test's H drops by more than ``eta``
across a cell (monotone H: its range on a cell is [H(right edge), H(left edge)]).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import stats

#: Largest drop of any test function across one cell.
CELL_ETA = 1e-3
_BASE_CELLS = 16  # first grid, uniform in arcsin √p (the binomial's variance-stabilising scale)
_MAX_REFINE = 48
_TINY = 1e-300


@lru_cache(maxsize=4096)
def fuzzy_quantiles(n: int, t: float, gammas: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(k, ρ)`` per level γ with ``F_{n,t}(k − 1) + ρ f_{n,t}(k) = γ``: k the smallest with F(k) ≥ γ.

    Examples:
        >>> k, rho = fuzzy_quantiles(4, 0.5, (0.05, 0.5))
        >>> k.tolist(), rho.round(4).tolist()
        ([0, 2], [0.8, 0.5])
    """
    j = np.arange(n + 1)
    cdf = stats.binom.cdf(j, n, t)
    cdf[-1] = 1.0
    g = np.asarray(gammas, dtype=np.float64)
    k = np.minimum(np.searchsorted(cdf, g, side="left"), n)
    below = np.where(k > 0, cdf[np.maximum(k - 1, 0)], 0.0)
    rho = np.clip((g - below) / stats.binom.pmf(k, n, t), 0.0, 1.0)
    k.setflags(write=False)
    rho.setflags(write=False)
    return k, rho


def quantile_scores(n: np.ndarray, c: np.ndarray, t: float, gammas: tuple[float, ...]) -> np.ndarray:
    """Per-prompt scores ``V[j, i]`` of the fuzzy γ_j-quantile tests at t (module docstring).

    Examples:
        >>> quantile_scores(np.array([4, 4, 4]), np.array([0, 2, 4]), 0.5, (0.05, 0.5)).round(4).tolist()
        [[0.8, 0.0, 0.0], [1.0, 0.5, 0.0]]
    """
    out = np.empty((len(gammas), n.size))
    for size in np.unique(n):
        sel = n == size
        k, rho = fuzzy_quantiles(int(size), t, gammas)
        cc = c[sel][None, :]
        out[:, sel] = (cc < k[:, None]) + rho[:, None] * (cc == k[:, None])
    return out


def quantile_curves(n: int, t: float, gammas: tuple[float, ...], p: np.ndarray) -> np.ndarray:
    """``H_j(p) = E[V_j | p]`` for prompts with n samples, shape ``[len(gammas), len(p)]``.

    Examples:
        >>> quantile_curves(4, 0.5, (0.05, 0.5), np.array([0.0, 0.5, 1.0])).round(4).tolist()
        [[0.8, 0.05, 0.0], [1.0, 0.5, 0.0]]
    """
    k, rho = fuzzy_quantiles(n, t, gammas)
    pp = np.asarray(p, dtype=np.float64)[None, :]
    # scipy's binomial overflows for subnormal-range p; there H differs from H(0) by < n·p < 1e-290.
    pp = np.where(pp < _TINY, 0.0, pp)
    below = stats.binom.cdf(k[:, None] - 1, n, pp)  # 0 for k = 0
    return below + rho[:, None] * stats.binom.pmf(k[:, None], n, pp)


@lru_cache(maxsize=1024)
def cells(n: int, t: float, gammas: tuple[float, ...], eta: float = CELL_ETA) -> tuple[np.ndarray, np.ndarray]:
    """Cell edges ``e`` (with 0, t and 1 among them) and ``H[j, e]``; every cell's drop is ≤ ``eta``.

    Cells whose largest drop exceeds ``eta`` are halved, for at most ``_MAX_REFINE`` rounds (a
    drop above ``eta`` left after that only makes the bounds wider, never wrong).

    Examples:
        >>> edges, h = cells(4, 0.25, (0.1, 0.9))
        >>> bool(0.25 in edges), bool(np.all(h[:, :-1] - h[:, 1:] <= 1e-3))
        (True, True)
    """
    theta = np.linspace(0.0, np.pi / 2, _BASE_CELLS + 1)
    edges = np.unique(np.concatenate([np.sin(theta) ** 2, [0.0, t, 1.0]]))
    h = quantile_curves(n, t, gammas, edges)
    for _ in range(_MAX_REFINE):
        drop = np.max(h[:, :-1] - h[:, 1:], axis=0)
        split = np.flatnonzero(drop > eta)
        if split.size == 0:
            break
        mids = 0.5 * (edges[split] + edges[split + 1])
        edges = np.concatenate([edges, mids])
        h = np.concatenate([h, quantile_curves(n, t, gammas, mids)], axis=1)
        order = np.argsort(edges, kind="stable")
        edges, h = edges[order], h[:, order]
    edges.setflags(write=False)
    h.setflags(write=False)
    return edges, h
