"""Pass@k, exact and predicted Pass@N against brute force, the binomial formula and closed forms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import comb

from covbench.metrics import (
    DEFAULT_PASS_NS,
    exact_pass_at_n,
    pass_at_k,
    pass_at_n_per_prompt,
    predicted_pass_at_n,
    sampled_pass_at_n,
)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_equals_enumeration_of_all_k_subsets(n):
    for c in range(n + 1):
        samples = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            brute = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k).item() == pytest.approx(brute, abs=1e-14)


def test_pass_at_k_equals_binomial_formula_on_random_inputs():
    rng = np.random.default_rng(1)
    n = rng.integers(1, 200, 2000)
    c = rng.integers(0, n + 1)
    k = rng.integers(1, n + 1)
    direct = 1.0 - comb(n - c, k, exact=False) / comb(n, k, exact=False)
    np.testing.assert_allclose(pass_at_k(n, c, k), direct, rtol=1e-9, atol=1e-12)


def test_pass_at_k_keeps_tiny_values():
    # 1 − C(n−1, k)/C(n, k) = k/n exactly; 1 − ratio would cancel for n huge, the product form does not.
    assert pass_at_k(10**9, 1, 1).item() == pytest.approx(1e-9, rel=1e-12)


def test_k_greater_than_n_is_missing_never_one():
    out = pass_at_k([3, 3, 0], [3, 0, 0], [4, 4, 1])
    assert np.isnan(out).all()


def test_n_equals_one_and_broadcast_over_k():
    assert pass_at_k(1, 1, 1).item() == 1.0 and pass_at_k(1, 0, 1).item() == 0.0
    grid = pass_at_k(np.array([10, 20])[None, :], np.array([2, 5])[None, :], np.array([1, 5])[:, None])
    assert grid.shape == (2, 2)
    assert grid[0].tolist() == pytest.approx([0.2, 0.25])


@pytest.mark.parametrize(("args", "message"), [
    ((5, 6, 1), "c > n"), ((5, 1, 0), "k must be >= 1"), ((5, -1, 1), "c must be >= 0"),
    ((5.5, 1, 1), "n must be integer counts"), ((math.nan, 1, 1), "n must be integer counts"),
    ((5, True, 1), "c must be integer counts"),
])
def test_pass_at_k_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        pass_at_k(*args)


def test_pass_at_k_empty():
    assert pass_at_k([], [], 1).shape == (0,)


def test_sampled_pass_at_n_ragged_rows_and_missing():
    correct = [[True, False, False, False], [False, True], [False, False, False]]
    out = sampled_pass_at_n(correct, [1, 2, 3])
    assert out[0] == pytest.approx((0.25 + 0.5 + 0.0) / 3)
    assert out[1] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert math.isnan(out[2])  # the second prompt has only 2 samples
    assert np.isnan(sampled_pass_at_n([], [1])).all()
    assert np.isnan(sampled_pass_at_n([[True]], [1], weights=[0.0])).all()


def test_exact_pass_equals_closed_form():
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, 50)
    w = rng.uniform(0, 2, 50)
    ns = np.array(DEFAULT_PASS_NS, dtype=float)
    closed = np.array([np.sum(w * (1 - (1 - p) ** n)) / w.sum() for n in ns])
    np.testing.assert_allclose(exact_pass_at_n(np.log(p), ns, weights=w), closed, rtol=1e-12)


def test_exact_pass_is_accurate_at_extreme_masses():
    tiny, near_one = 1e-300, 1.0 - 1e-12
    out = pass_at_n_per_prompt([math.log(tiny), math.log1p(-1e-12)], [1.0, 4.0, 1e6])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 0], [1e-300, 4e-300, 1e-294], rtol=1e-9)
    # 1 − (1e-12)^N: N = 1 keeps the last digits (a naive 1 − (1 − p) would lose them)
    assert out[0, 1] == pytest.approx(near_one, rel=0, abs=1e-15)
    assert out[1, 1] == 1.0 and out[2, 1] == 1.0


def test_exact_pass_edges():
    assert pass_at_n_per_prompt([0.0, -np.inf], [3]).tolist() == [[1.0, 0.0]]
    assert np.isnan(exact_pass_at_n([], [1, 2])).all()
    assert np.isnan(exact_pass_at_n([-1.0], [1], weights=[0.0])).all()
    assert exact_pass_at_n([-1.0], 2.0).shape == ()
    assert pass_at_n_per_prompt([1e-9], [2]).tolist() == [[1.0]]  # logsumexp rounding above 0
    with pytest.raises(ValueError, match="pass_at_n: log_p"):
        pass_at_n_per_prompt([0.1], [2])
    with pytest.raises(ValueError, match=r"log_p\[0\] is NaN"):
        exact_pass_at_n([math.nan], [2])


def test_predicted_equals_exact_for_single_answer():
    lp = np.log([0.3, 0.9, 1e-5])
    np.testing.assert_array_equal(predicted_pass_at_n(lp, [1, 8]), exact_pass_at_n(lp, [1, 8]))


def test_sampled_agrees_with_exact_within_sampling_error():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.3, 400)
    correct = rng.uniform(size=(400, 64)) < p[:, None]
    sampled = sampled_pass_at_n(correct.tolist(), [1, 8])
    exact = exact_pass_at_n(np.log(p), [1, 8])
    assert np.abs(sampled - exact).max() < 0.03
