"""The nonparametric maximum-likelihood estimate (NPMLE) of a binomial mixing distribution.

Prompt i has n_i samples, c_i of them correct, c_i ~ Binomial(n_i, p_i) with p_i drawn from an
unknown G. The NPMLE (Kiefer & Wolfowitz 1956) maximises ``Σ_i u_i log ∫ Bin(c_i; n_i, p) dG(p)``
over *all* distributions G; here G lives on a fine grid of p (uniform in arcsin √p, with 0 and 1).
It is found with the constrained Newton method of Wang (2007, J. R. Stat. Soc. B 69:185): add the
local maxima of the gradient, take a non-negative least-squares Newton step, backtrack. Optimality
is certified by the gradient ``D(p) = Σ_u w_u Bin(c_u; n_u, p) / f_u ≤ 1`` everywhere (= 1 on the
atoms); ``gap = max_p D(p) − 1`` bounds the log-likelihood shortfall. docs/verifier-coverage.md §6.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.optimize import nnls

from ._coverage import coverage_profile

_GRID_PER_SQRT_N = 20  # grid points per unit of √n_max in arcsin √p: ~1/10 of a binomial sd apart
_GRID_MIN = 40
_ARMIJO = 1.0 / 3.0


@dataclass(frozen=True)
class BinomialMixture:
    """A discrete mixing distribution of p: ``atoms`` with ``masses`` summing to 1, and its NPMLE gap."""

    atoms: np.ndarray
    masses: np.ndarray
    gap: float

    def coverage(self, Ms: object) -> np.ndarray:
        """``G([0, 1/M])`` for each M: the same bad tail as ``coverage_profile`` of X = −log p.

        Examples:
            >>> BinomialMixture(np.array([0.0, 0.5]), np.array([0.25, 0.75]), 0.0).coverage([1, 4]).tolist()
            [1.0, 0.25]
        """
        with np.errstate(divide="ignore"):
            return coverage_profile(-np.log(self.atoms), Ms, self.masses)

    def expect(self, fn: object) -> np.ndarray:
        """``∫ fn(p) dG(p)`` for a vectorised ``fn: p[atoms] -> [..., atoms]``.

        Examples:
            >>> float(BinomialMixture(np.array([0.0, 0.5]), np.array([0.25, 0.75]), 0.0).expect(lambda p: p))
            0.375
        """
        return np.asarray(fn(self.atoms)) @ self.masses


def binomial_npmle(n: np.ndarray, c: np.ndarray, weights: np.ndarray, *, tol: float = 1e-9,
                   max_iter: int = 500) -> BinomialMixture:
    """NPMLE of the mixing distribution from counts ``c_i`` out of ``n_i`` with weights ``u_i``.

    Args:
        n, c: integer arrays of samples and correct samples per prompt (validated by the caller).
        weights: per-prompt weights > 0.
        tol: stop once ``max_p D(p) − 1 ≤ tol``.

    Examples:
        >>> fit = binomial_npmle(np.array([4, 4, 4, 4]), np.array([0, 0, 4, 4]), np.ones(4))
        >>> fit.atoms.tolist(), fit.masses.round(6).tolist(), fit.gap <= 1e-9
        ([0.0, 1.0], [0.5, 0.5], True)
    """
    pairs, inverse = np.unique(np.stack([n, c], axis=1), axis=0, return_inverse=True)
    w = np.bincount(inverse.ravel(), weights=weights, minlength=pairs.shape[0])
    w = w / w.sum()
    grid = _grid(int(n.max(initial=1)))
    lik = stats.binom.pmf(pairs[:, 1][:, None], pairs[:, 0][:, None], grid[None, :])  # [pairs, grid]
    lik /= lik.max(axis=1, keepdims=True)  # scaling a row leaves the maximiser and D(p) unchanged
    # Start: one atom at each observed frequency c/n, with the data's weights.
    start = np.minimum(np.searchsorted(grid, pairs[:, 1] / np.maximum(pairs[:, 0], 1)), grid.size - 1)
    support, first = np.unique(start, return_inverse=True)
    mass = np.bincount(first.ravel(), weights=w, minlength=support.size)
    gap = np.inf
    for _ in range(max_iter):
        f = lik[:, support] @ mass
        grad = (w / f) @ lik
        gap = float(grad.max() - 1.0)
        if gap <= tol:
            break
        step = _newton_step(lik, w, f, grad, support, mass)
        if step is None:  # no ascent left at floating-point precision
            break
        support, mass = step
    return BinomialMixture(grid[support], mass, max(gap, 0.0))


def _grid(n_max: int) -> np.ndarray:
    size = int(_GRID_PER_SQRT_N * np.sqrt(max(n_max, 1))) + _GRID_MIN
    return np.unique(np.concatenate([[0.0, 1.0], np.sin(np.linspace(0.0, np.pi / 2, size)) ** 2]))


def _newton_step(lik: np.ndarray, w: np.ndarray, f: np.ndarray, grad: np.ndarray, support: np.ndarray,
                 mass: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """One constrained Newton step (Wang 2007): new atoms at the gradient's local maxima above 1."""
    left = np.concatenate([[-np.inf], grad[:-1]])
    right = np.concatenate([grad[1:], [-np.inf]])
    peaks = np.flatnonzero((grad > 1.0) & (grad >= left) & (grad >= right))
    wide = np.union1d(support, peaks)
    old = np.zeros(wide.size)
    old[np.searchsorted(wide, support)] = mass
    # Quadratic model of the log-likelihood around f: min ‖√w (L π / f − 2)‖², π ≥ 0, Σπ = 1 (heavy row).
    design = np.sqrt(w)[:, None] * lik[:, wide] / f[:, None]
    heavy = 1e3 * max(1.0, float(np.abs(design).max()))
    new, _ = nnls(np.vstack([design, np.full((1, wide.size), heavy)]),
                  np.concatenate([2.0 * np.sqrt(w), [heavy]]), maxiter=50 * wide.size)
    new = new / new.sum()
    base = float(w @ np.log(f))
    slope = float(grad[wide] @ (new - old))
    step = 1.0
    while step > 1e-12:
        trial = (1.0 - step) * old + step * new
        with np.errstate(divide="ignore"):
            if w @ np.log(lik[:, wide] @ trial) >= base + _ARMIJO * step * slope:
                break
        step /= 2.0
    else:
        return None
    keep = trial > 0.0
    return wide[keep], trial[keep] / trial[keep].sum()
