"""Rank statistics against scipy, rank flips, and bootstrap CIs of τ."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from covbench.metrics import (
    kendall_tau,
    kendall_tau_fast,
    kendall_tau_rows,
    rank_comparison,
    rank_flips,
    ranks,
    spearman,
    spearman_rows,
)


def test_kendall_and_spearman_equal_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = int(rng.integers(2, 30))
        a, b = rng.integers(0, 5, m).astype(float), rng.normal(size=m)
        if np.all(a == a[0]):
            continue
        assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_row_versions_equal_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 6, (40, 12)).astype(float), rng.integers(0, 6, (40, 12)).astype(float)
    a[0, 0], a[0, 1], b[0, 0], b[0, 1] = np.inf, np.inf, -np.inf, 3.0  # infinities tie with each other
    tau, rho = kendall_tau_rows(a, b), spearman_rows(a, b)
    for r in range(40):
        assert tau[r] == pytest.approx(stats.kendalltau(a[r], b[r]).statistic, abs=1e-12)
        assert rho[r] == pytest.approx(stats.spearmanr(a[r], b[r]).statistic, abs=1e-12)


def test_row_versions_equal_scipy_above_pairwise_limit():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(3, 300)), rng.integers(0, 9, (3, 300)).astype(float)
    a[2] = 1.0  # constant row: τ undefined
    tau = kendall_tau_rows(a, b)
    assert tau[:2] == pytest.approx([stats.kendalltau(a[r], b[r]).statistic for r in range(2)])
    assert math.isnan(tau[2])


def test_missing_models_dropped_and_degenerate_is_nan():
    assert kendall_tau([1, 2, math.nan, 3], [1, 2, 0, 3]) == pytest.approx(1.0)
    assert math.isnan(kendall_tau([], []))
    assert math.isnan(kendall_tau([1.0], [1.0]))
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="kendall_tau: the two columns"):
        kendall_tau([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="no NaN"):
        kendall_tau_rows([[1.0, math.nan]], [[1.0, 2.0]])


def test_ranks_and_flips():
    assert ranks([3.0, 1.0, 2.0], higher_is_better=False).tolist() == [3, 1, 2]
    names = ["a", "b", "c", "d"]
    ce = [1.0, 2.0, 3.0, math.nan]         # lower is better: a, b, c
    pass8 = [0.5, 0.9, 0.1, 0.7]           # higher is better: b, a, c
    flips = rank_flips(names, ce, pass8, False, True)
    assert [(f.model, f.rank_a, f.rank_b) for f in flips] == [("a", 1, 2), ("b", 2, 1)]


def test_rank_comparison_orients_and_bootstraps():
    rng = np.random.default_rng(2)
    quality = np.linspace(0.2, 0.8, 6)
    pass_pp = (rng.uniform(size=(6, 300)) < quality[:, None]).astype(float)   # higher is better
    ce_pp = -np.log(quality)[:, None] + rng.normal(0, 0.05, (6, 300))           # lower is better
    names = [f"m{i}" for i in range(6)]
    rc = rank_comparison(names, ce_pp, pass_pp, a_higher_is_better=False, b_higher_is_better=True,
                         B=200, seed=0)
    assert rc.tau == pytest.approx(1.0) and rc.rho == pytest.approx(1.0) and rc.flips == ()
    assert rc.tau_lo <= rc.tau <= rc.tau_hi and -1.0 <= rc.tau_lo and rc.rho_lo <= rc.rho_hi
    # the point τ equals scipy's τ on the oriented model means
    means_ce, means_pass = ce_pp.mean(1), pass_pp.mean(1)
    assert rc.tau == pytest.approx(stats.kendalltau(-means_ce, means_pass).statistic)


def test_rank_comparison_missing_model_and_shapes():
    ce = np.array([[1.0, 1.0], [2.0, 2.0], [math.nan, 1.0]])
    ps = np.array([[0.9, 0.9], [0.1, 0.1], [0.5, 0.5]])
    rc = rank_comparison(["a", "b", "c"], ce, ps, a_higher_is_better=False, b_higher_is_better=True, B=20)
    assert rc.tau == pytest.approx(1.0) and all(f.model != "c" for f in rc.flips)
    with pytest.raises(ValueError, match="rank_comparison"):
        rank_comparison(["a"], ce, ps, a_higher_is_better=False, b_higher_is_better=True)


def _scipy_tau_dropping_nan(a: np.ndarray, b: np.ndarray) -> float:
    keep = ~(np.isnan(a) | np.isnan(b))
    if keep.sum() < 2:
        return math.nan
    return float(stats.kendalltau(a[keep], b[keep]).statistic)  # NaN for a constant column


@pytest.mark.parametrize("m", [0, 1, 2, 3, 7, 64, 300, 1024, 1025])
def test_fast_tau_equals_scipy_with_ties_nan_and_inf(m):
    rng = np.random.default_rng(m)
    a = rng.integers(0, 5, (40, m)).astype(float)  # heavy ties
    b = np.round(rng.normal(size=(40, m)), 1)       # some ties
    a[rng.random(a.shape) < 0.08] = np.nan
    b[rng.random(b.shape) < 0.05] = np.nan
    if m >= 3:
        a[0, :2], b[0, :2] = np.inf, -np.inf        # equal infinities tie
        a[1] = 2.0                                  # constant column: undefined
        b[2, 1:] = np.nan                           # one model left: undefined
    tau = kendall_tau_fast(a, b)
    assert tau.shape == (40,)
    ref = [_scipy_tau_dropping_nan(a[r], b[r]) for r in range(40)]
    np.testing.assert_allclose(tau, ref, atol=1e-12, equal_nan=True)
    if m >= 3:
        assert math.isnan(tau[1]) and math.isnan(tau[2])


def test_fast_tau_brute_force_and_extremes():
    rng = np.random.default_rng(11)
    a, b = rng.permutation(200).astype(float), rng.integers(0, 30, 200).astype(float)
    # Brute force over all pairs: Σ sign(Δa) sign(Δb) / √(untied_a · untied_b).
    sa, sb = np.sign(a[:, None] - a[None, :]), np.sign(b[:, None] - b[None, :])
    expect = (sa * sb).sum() / math.sqrt((sa != 0).sum() * (sb != 0).sum())
    assert kendall_tau_fast(a, b)[0] == pytest.approx(expect, abs=1e-12)
    assert kendall_tau_fast(a, a)[0] == 1.0 and kendall_tau_fast(a, -a)[0] == -1.0
    assert kendall_tau_fast(a, b)[0] == pytest.approx(kendall_tau_rows(a[None], b[None])[0], abs=1e-12)
    with pytest.raises(ValueError, match="kendall_tau_fast"):
        kendall_tau_fast([[1.0, 2.0]], [[1.0, 2.0, 3.0]])
