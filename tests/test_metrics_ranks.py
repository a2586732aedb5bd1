"""Rank statistics against scipy and rank flips (τ's interval: tests/test_metrics_agreement.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from covbench.metrics import kendall_tau, rank_flips, ranks, spearman


def test_kendall_and_spearman_equal_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = int(rng.integers(2, 30))
        a, b = rng.integers(0, 5, m).astype(float), rng.normal(size=m)
        if np.all(a == a[0]):
            continue
        assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_missing_models_dropped_and_degenerate_is_nan():
    assert kendall_tau([1, 2, math.nan, 3], [1, 2, 0, 3]) == pytest.approx(1.0)
    assert math.isnan(kendall_tau([], []))
    assert math.isnan(kendall_tau([1.0], [1.0]))
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="kendall_tau: the two columns"):
        kendall_tau([1, 2], [1, 2, 3])


def test_ranks_and_flips():
    assert ranks([3.0, 1.0, 2.0], higher_is_better=False).tolist() == [3, 1, 2]
    names = ["a", "b", "c", "d"]
    ce = [1.0, 2.0, 3.0, math.nan]         # lower is better: a, b, c
    pass8 = [0.5, 0.9, 0.1, 0.7]           # higher is better: b, a, c
    flips = rank_flips(names, ce, pass8, False, True)
    assert [(f.model, f.rank_a, f.rank_b) for f in flips] == [("a", 1, 2), ("b", 2, 1)]
