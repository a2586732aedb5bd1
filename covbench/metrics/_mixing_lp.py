"""The range of a coverage P[p ≤ t] over all binomial mixtures whose test means lie within given limits.

Prompts fall into groups g by their sample count n_g (weight share s_g). The primal problem is, over
distributions G_g of p in each group, to minimise (or maximise) ``Σ_g s_g G_g([0, t])`` subject to
``ℓ_j ≤ Σ_g s_g E_{G_g}[H_{g,j}(p)] ≤ u_j`` for the fuzzy quantile tests H_j of :mod:`._mixing`.

What is computed is a *dual certificate*, which makes every reported bound valid on its own, whether
or not the solver found the optimum (docs/verifier-coverage.md §4): numbers a_j, b_j ≥ 0 and μ_g with

    Σ_j a_j H_{g,j}(left(C)) − b_j H_{g,j}(right(C)) + μ_g ≤ 1[C ⊂ [0, t]]   on every cell C of group g.

Each H is non-increasing, so ``h_g(p) = Σ_j (a_j − b_j) H_{g,j}(p) + μ_g ≤ 1[p ≤ t]`` for *every*
p ∈ [0, 1], hence ``P[p ≤ t] ≥ Σ_j (a_j ℓ_j − b_j u_j) + Σ_g μ_g s_g`` for every feasible mixture.
The upper bound is one minus the same lower bound for ``P[p > t]``. The LP is solved (HiGHS) on a
subset of the cells that grows with the most violated ones; a last violation, if any, is taken out
of μ_g, which keeps the certificate exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import optimize

from ._mixing import cells

_COEF_MAX = 1e4  # box on a_j, b_j: keeps every LP bounded; any certificate in the box is valid
_ROUNDING = 1e-9  # outward margin for floating-point rounding of the certificate's value
_FIRST_STRIDE = 16  # the first LP uses every 16th cell (and the cells at t)
_ADD_PER_ROUND = 128
_MAX_ROUNDS = 40
_SLACK = 1e-3  # a violation this small is left to the repair (the bound loses at most this much)


def coverage_range(lo_lim: np.ndarray, hi_lim: np.ndarray, groups: Sequence[tuple[int, float]],
                   t: float, gammas: tuple[float, ...], hint: np.ndarray | None = None) -> tuple[float, float]:
    """``(lo, hi)`` bracketing ``P[p ≤ t]`` for every mixture with test means in ``[lo_lim, hi_lim]``.

    Args:
        lo_lim, hi_lim: limits on the pooled means of the tests, one per γ.
        groups: ``(n, share)`` per sample count, shares > 0 summing to 1.
        t: the threshold 1/M, in (0, 1).
        gammas: the tests' levels.
        hint: values of p where a mixture is likely to put mass (the NPMLE's atoms): their cells
            start in the LP, which saves rounds; the result does not depend on it beyond rounding.

    Examples:
        >>> from covbench.metrics._mixing import quantile_curves
        >>> g = (0.1, 0.5, 0.9)
        >>> h = quantile_curves(8, 0.25, g, np.array([0.0, 0.6])).mean(axis=1)  # half at 0, half at 0.6
        >>> lo, hi = coverage_range(h, h, [(8, 1.0)], 0.25, g)
        >>> bool(lo <= 0.5 <= hi), round(lo, 2), round(hi, 2)
        (True, 0.5, 0.5)
    """
    rows = _rows(tuple(int(n) for n, _ in groups), float(t), gammas)
    shares = np.array([share for _, share in groups], dtype=np.float64)
    first = rows.first if hint is None else np.union1d(rows.first, rows.cells_of(np.asarray(hint, float)))
    lo_lim, hi_lim = np.asarray(lo_lim, np.float64), np.asarray(hi_lim, np.float64)
    lo = _lower_bound(lo_lim, hi_lim, shares, rows, rows.covered, first)
    not_covered = _lower_bound(lo_lim, hi_lim, shares, rows, 1.0 - rows.covered, first)
    return max(0.0, lo - _ROUNDING), min(1.0, 1.0 - not_covered + _ROUNDING)


@lru_cache(maxsize=256)
def _rows(ns: tuple[int, ...], t: float, gammas: tuple[float, ...]) -> _Rows:
    return _Rows([cells(n, t, gammas) for n in ns], t)


class _Rows:
    """One certificate constraint per cell: ``[H(left), −H(right), e_g] · x ≤ target``."""

    def __init__(self, parts: list[tuple[np.ndarray, np.ndarray]], t: float) -> None:
        blocks, covered, group, first, edge_list = [], [], [], [], []
        offset = 0
        for g, (edges, h) in enumerate(parts):
            size = edges.size - 1
            onehot = np.zeros((size, len(parts)))
            onehot[:, g] = 1.0
            blocks.append(np.hstack([h[:, :-1].T, -h[:, 1:].T, onehot]))
            covered.append((edges[1:] <= t).astype(np.float64))
            group.append(np.full(size, g))
            at_t = int(np.searchsorted(edges, t))  # edge index of t: cells at_t − 1 and at_t touch it
            picks = np.concatenate([np.arange(0, size, _FIRST_STRIDE), [size - 1, at_t - 1, at_t]])
            first.append(offset + np.unique(np.clip(picks, 0, size - 1)))
            edge_list.append((offset, edges))
            offset += size
        self.matrix = np.vstack(blocks)
        self.covered = np.concatenate(covered)
        self.group = np.concatenate(group)
        self.first = np.concatenate(first)
        self.edges = edge_list
        self.n_groups = len(parts)
        self.n_tests = parts[0][1].shape[0]
        for arr in (self.matrix, self.covered, self.group, self.first):
            arr.setflags(write=False)

    def cells_of(self, p: np.ndarray) -> np.ndarray:
        """Rows of the cells holding each p, and their neighbours, in every group."""
        found = []
        for offset, edges in self.edges:
            at = np.clip(np.searchsorted(edges, p, side="left") - 1, 0, edges.size - 2)
            found.append(offset + np.clip(np.concatenate([at - 1, at, at + 1]), 0, edges.size - 2))
        return np.unique(np.concatenate(found))


def _lower_bound(lo_lim: np.ndarray, hi_lim: np.ndarray, shares: np.ndarray, rows: _Rows,
                 target: np.ndarray, first: np.ndarray) -> float:
    """Best certificate value for ``P[p ∈ target cells] ≥ ·`` (constraint generation, then repair)."""
    J, G = rows.n_tests, rows.n_groups
    objective = -np.concatenate([lo_lim, -hi_lim, shares])  # linprog minimises
    bounds = [(0.0, _COEF_MAX)] * (2 * J) + [(None, None)] * G
    active = first
    x = None
    for _ in range(_MAX_ROUNDS):
        solved = _solve(objective, rows.matrix[active], target[active], bounds)
        if solved is None:
            break
        x = solved
        excess = rows.matrix @ x - target
        worst = np.argsort(-excess)[:_ADD_PER_ROUND]
        worst = worst[excess[worst] > _SLACK]
        new = np.setdiff1d(worst, active)
        if new.size == 0:
            break
        active = np.union1d(active, new)
    if x is None:
        return 0.0  # no certificate found: 0 is always a valid lower bound of a probability
    mu = x[2 * J:].copy()
    excess = rows.matrix @ x - target
    for g in range(G):  # repair: lower μ_g until the constraint holds on every cell of group g
        mu[g] -= max(0.0, float(excess[rows.group == g].max()))
    a, b = x[:J], x[J:2 * J]
    return float(a @ lo_lim - b @ hi_lim + mu @ shares)


def _solve(objective: np.ndarray, a_ub: np.ndarray, b_ub: np.ndarray, bounds: list) -> np.ndarray | None:
    """HiGHS without presolve (twice as fast on these small LPs), with presolve where that fails."""
    for options in ({"presolve": False}, {}):
        res = optimize.linprog(objective, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs", options=options)
        if res.status == 0 and res.x is not None:
            return res.x
    return None
