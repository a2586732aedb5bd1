"""τ between a proxy's ranking and Pass@N's, and its interval: against scipy, brute force, and by
simulation with known population means (docs/statistics.md#tau-coverage)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from covbench.metrics import rank_agreement, rank_agreements
from covbench.metrics._agreement import centred, covariance, critical_z, orders


def _brute_orders(v: np.ndarray, w: np.ndarray, z: float) -> np.ndarray:
    """Pairwise paired-difference z tests, one pair at a time (an independent implementation)."""
    k = v.shape[0]
    out = []
    for a in range(k):
        for b in range(a + 1, k):
            d = v[a] - v[b]
            mean = np.sum(w * d) / np.sum(w)
            se = math.sqrt(np.sum(w**2 * (d - mean) ** 2)) / np.sum(w)
            out.append(int(np.sign(mean)) if abs(mean) > z * se else 0)
    return np.array(out, dtype=np.int8)


def test_orders_equal_a_brute_force_pairwise_test():
    rng = np.random.default_rng(0)
    for k in (2, 5, 70, 130):  # 130 rows: more than one block
        v = rng.normal(size=(k, 30)) + np.linspace(0, 3, k)[:, None]
        w = rng.uniform(0.5, 2.0, 30)
        c = centred(v, w)
        z = critical_z(k, 0.95)
        np.testing.assert_array_equal(orders(c, covariance(c), z), _brute_orders(v, w, z))


def test_point_is_scipys_tau_of_the_means_and_interval_brackets_it():
    rng = np.random.default_rng(1)
    ce = rng.normal(size=(12, 50)) + np.arange(12)[:, None] * 0.2
    ps = rng.normal(size=(12, 50)) - np.arange(12)[:, None] * 0.1
    t = rank_agreement(ce, ps, proxy_higher_is_better=False)
    assert t.tau == pytest.approx(stats.kendalltau(-ce.mean(1), ps.mean(1)).statistic, abs=1e-12)
    assert -1 <= t.lo <= t.tau <= t.hi <= 1 and t.pairs == 66 and t.n_models == 12 and t.n_prompts == 50


def test_interval_counts_resolved_pairs_exactly():
    # Three models far apart in both metrics, in the same order: every pair resolved, τ = 1 exactly.
    ce = np.array([[1.0, 1.1, 0.9, 1.0], [5.0, 5.1, 4.9, 5.0], [9.0, 9.2, 8.8, 9.0]])
    ps = np.array([[0.9, 0.91, 0.89, 0.9], [0.5, 0.51, 0.49, 0.5], [0.1, 0.12, 0.08, 0.1]])
    t = rank_agreement(ce, ps, proxy_higher_is_better=False)
    assert (t.tau, t.lo, t.hi, t.resolved) == (1.0, 1.0, 1.0, 3)
    # Identical models cannot be resolved: the interval is the whole range.
    same = rank_agreement(np.ones((3, 4)), np.ones((3, 4)), proxy_higher_is_better=False)
    assert (same.lo, same.hi, same.resolved) == (-1.0, 1.0, 0) and math.isnan(same.tau)


def test_missing_and_infinite_models():
    ce = np.array([[1.0, 1.0], [np.inf, 2.0], [3.0, np.nan], [4.0, 4.0]])
    ps = np.array([[0.9, 0.9], [0.1, 0.1], [0.5, 0.5], [0.3, 0.2]])
    t = rank_agreement(ce, ps, proxy_higher_is_better=False)
    assert t.n_models == 3  # the model with a NaN is not ranked; +inf CE is the worst CE
    assert t.tau == pytest.approx(stats.kendalltau([-1.0, -np.inf, -4.0], [0.9, 0.1, 0.25]).statistic)
    two = rank_agreements([ce, ce], ps, proxies_higher_is_better=False)
    assert two[0] == two[1]
    with pytest.raises(ValueError, match="rank_agreement"):
        rank_agreement(ce, ps[:2], proxy_higher_is_better=False)


def _coverage(gap: float, n_prompts: int, reps: int, seed: int) -> tuple[float, float, float]:
    """Simulated coverage of the true τ of the population means, and mean width, over ``reps`` draws."""
    rng = np.random.default_rng(seed)
    k = 10
    mu = np.arange(k) * gap  # the proxy's population means (lower is better)
    nu = -mu + rng.normal(0, 2 * gap, k)  # Pass@N's: agrees with the proxy only partly
    truth = stats.kendalltau(-mu, nu).statistic
    hits, widths = 0, []
    for _ in range(reps):
        difficulty = rng.normal(0, 1, n_prompts)  # shared by all models: a paired design
        ce = mu[:, None] + difficulty[None, :] + rng.normal(0, 1, (k, n_prompts))
        ps = nu[:, None] - 0.5 * difficulty[None, :] + rng.normal(0, 1, (k, n_prompts))
        t = rank_agreement(ce, ps, proxy_higher_is_better=False)
        hits += t.lo <= truth <= t.hi
        widths.append(t.hi - t.lo)
    return hits / reps, float(np.mean(widths)), truth


@pytest.mark.parametrize("gap", [0.02, 0.1, 0.3, 1.0])
def test_interval_covers_the_true_tau_by_simulation(gap):
    # From near-ties (where bootstrap intervals cover 5–65%, docs/statistics.md) to well separated.
    coverage, width, _ = _coverage(gap, n_prompts=64, reps=200, seed=7)
    assert coverage >= 0.95
    if gap >= 1.0:
        assert width < 0.3  # well-separated models give a narrow interval, not a vacuous one


def test_interval_narrows_as_prompts_grow():
    _, wide, _ = _coverage(0.3, n_prompts=32, reps=40, seed=3)
    _, narrow, _ = _coverage(0.3, n_prompts=512, reps=40, seed=3)
    assert narrow < wide
