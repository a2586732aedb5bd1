"""Finite-sample confidence limits for a weighted mean of independent [0, 1] variables (Chernoff, KL form).

For independent V_i ∈ [0, 1] with any distributions (not necessarily equal), normalised weights
u_i = w_i / Σw and mean μ = Σ u_i E V_i, the weighted mean V̄ = Σ u_i V_i satisfies

    P(V̄ ≥ a) ≤ exp(−m_eff · kl(a ‖ μ))  (a ≥ μ),    P(V̄ ≤ a) ≤ exp(−m_eff · kl(a ‖ μ))  (a ≤ μ),

with ``m_eff = 1 / max_i u_i`` (= m for equal weights) and kl the Bernoulli KL divergence: Hoeffding
(1963, Thm 1) for equal weights; the proof for unequal weights is in docs/verifier-coverage.md §5.
Inverting each tail gives one-sided limits that fail with probability at most ``e^{−κ}`` each.
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

_BISECTIONS = 64


def kl_bernoulli(a: object, b: object) -> np.ndarray:
    """``kl(a ‖ b) = a log(a/b) + (1 − a) log((1 − a)/(1 − b))`` in nats; ``0 log 0 = 0``.

    Examples:
        >>> kl_bernoulli([0.5, 0.0, 0.3], [0.5, 0.5, 0.0]).round(4).tolist()
        [0.0, 0.6931, inf]
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return xlogy(a, a) - xlogy(a, b) + xlogy(1.0 - a, 1.0 - a) - xlogy(1.0 - a, 1.0 - b)


def mean_limits(mean: object, m_eff: float, kappa: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper confidence limits ``{μ : m_eff · kl(V̄ ‖ μ) ≤ κ}`` for each observed mean V̄.

    ``P(μ < lo) ≤ e^{−κ}`` and ``P(μ > hi) ≤ e^{−κ}`` for any independent [0, 1] variables (module
    docstring). Found by bisection and rounded outward (each limit is the last point excluded), so
    they are never narrower than the exact inversion.

    Args:
        mean: observed weighted means V̄ ∈ [0, 1], any shape.
        m_eff: effective number of independent variables, ``Σw / max w`` (≥ 1).
        kappa: ``log(1/δ)`` per limit.

    Examples:
        >>> lo, hi = mean_limits([0.0, 0.5, 1.0], 100.0, np.log(40.0))
        >>> lo.round(4).tolist(), hi.round(4).tolist()
        ([0.0, 0.3667, 0.9638], [0.0362, 0.6333, 1.0])
        >>> round(float(hi[0]), 9) == round(1 - 40.0 ** (-1 / 100), 9)  # all zero: Clopper-Pearson's 1 − δ^{1/m}
        True
    """
    v = np.clip(np.asarray(mean, dtype=np.float64), 0.0, 1.0)
    if not m_eff >= 1.0 or not kappa > 0.0:
        raise ValueError(f"mean_limits: need m_eff >= 1 and kappa > 0, got {m_eff!r}, {kappa!r}")
    target = kappa / m_eff
    # Invariants: kl(v ‖ out) > target (excluded), kl(v ‖ inside) ≤ target; v itself is inside.
    lo_out, lo_in = np.zeros_like(v), v.copy()
    hi_in, hi_out = v.copy(), np.ones_like(v)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo_out + lo_in)
        excluded = kl_bernoulli(v, mid) > target
        lo_out, lo_in = np.where(excluded, mid, lo_out), np.where(excluded, lo_in, mid)
        mid = 0.5 * (hi_in + hi_out)
        excluded = kl_bernoulli(v, mid) > target
        hi_in, hi_out = np.where(excluded, hi_in, mid), np.where(excluded, mid, hi_out)
    # The end points 0 and 1 are themselves inside when kl(v ‖ 0 or 1) ≤ target (only at v = 0 or 1).
    lo = np.where(kl_bernoulli(v, 0.0) <= target, 0.0, lo_out)
    hi = np.where(kl_bernoulli(v, 1.0) <= target, 1.0, hi_out)
    return lo, hi
