"""Coverage profile, KL and cross-entropy against direct loops and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covbench.metrics import (
    DEFAULT_COV_NS,
    coverage_profile,
    cross_entropy,
    kl,
    support_log_ratios,
)


def _cov_loop(x, ns, w=None):
    """Direct double loop: Σ w·1[X ≥ log N] / Σ w."""
    w = [1.0] * len(x) if w is None else w
    out = []
    for n in ns:
        num = sum(wi for xi, wi in zip(x, w) if wi > 0 and xi >= math.log(n))
        den = sum(wi for wi in w if wi > 0)
        out.append(num / den if den > 0 else math.nan)
    return out


def test_coverage_equals_direct_loop_unweighted_and_weighted():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(1.5, 2.0, 300), [np.inf, -np.inf, 0.0, math.log(4.0)]])
    w = rng.uniform(0, 3, x.size)
    w[:10] = 0.0
    ns = list(DEFAULT_COV_NS) + [1.0001, 7.3, 1e9]
    np.testing.assert_allclose(coverage_profile(x, ns), _cov_loop(x, ns), rtol=0, atol=1e-15)
    np.testing.assert_allclose(coverage_profile(x, ns, weights=w), _cov_loop(x, ns, w), rtol=1e-12)


def test_threshold_is_inclusive_and_real_valued():
    x = [math.log(4.0), math.log(4.6) - 1e-9]
    assert coverage_profile(x, [4.0, 4.6]).tolist() == [1.0, 0.0]  # X = log 4 counts at N = 4
    assert coverage_profile(x, 4.0).shape == ()  # scalar N gives a 0-d array


def test_plus_inf_uncovered_everywhere_minus_inf_covered():
    cov = coverage_profile([np.inf, -np.inf], [1.0, 1e300])
    assert cov.tolist() == [0.5, 0.5]


@pytest.mark.parametrize("weights", [None, [0.0, 0.0]])
def test_empty_and_zero_weights_are_missing(weights):
    x = [] if weights is None else [1.0, 2.0]
    assert np.isnan(coverage_profile(x, [1.0, 2.0])).all() if weights is None else \
        np.isnan(coverage_profile(x, [1.0, 2.0], weights=weights)).all()
    assert math.isnan(kl(x, weights=weights))
    assert math.isnan(cross_entropy([-v for v in x], weights=weights).per_sequence)


def test_n_equals_one_sample():
    assert coverage_profile([0.7], [1.0, 2.0, 3.0]).tolist() == [1.0, 1.0, 0.0]
    assert kl([0.7]) == 0.7


@pytest.mark.parametrize(("call", "message"), [
    (lambda: coverage_profile([0.0, math.nan], [2.0]), r"coverage_profile: log_ratios\[1\] is NaN"),
    (lambda: coverage_profile([0.0], [0.5]), "coverage_profile: Ns contains 0.5"),
    (lambda: coverage_profile([0.0], [math.nan]), "coverage_profile: Ns contains nan"),
    (lambda: coverage_profile([0.0], [2.0], weights=[-1.0]), r"coverage_profile: weights\[0\]"),
    (lambda: coverage_profile([0.0], [2.0], weights=[1.0, 1.0]), "coverage_profile: weights has shape"),
    (lambda: kl([1.0, -math.inf]), r"kl: log_ratios\[1\] is -inf"),
    (lambda: kl([[1.0]]), "kl: log_ratios must be 1-D"),
    (lambda: cross_entropy([math.nan]), r"cross_entropy: logp_model\[0\] is NaN"),
    (lambda: cross_entropy([math.inf]), r"cross_entropy: logp_model\[0\] is \+inf"),
    (lambda: cross_entropy([-1.0], n_tokens=[-1]), r"cross_entropy: n_tokens\[0\]"),
    (lambda: cross_entropy([-1.0], n_bytes=[1, 2]), "cross_entropy: n_bytes has 2 entries"),
])
def test_bad_input_gives_one_line_error(call, message):
    with pytest.raises(ValueError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_kl_weighted_mean_and_inf():
    assert kl([1.0, 3.0], weights=[3.0, 1.0]) == 1.5
    assert kl([1.0, np.inf]) == np.inf
    assert kl([1.0, np.inf], weights=[1.0, 0.0]) == 1.0  # zero weight never makes 0·inf = NaN


def test_cross_entropy_closed_forms():
    lp = np.array([-2.0, -4.0, -6.0])
    ce = cross_entropy(lp, n_tokens=[1, 2, 3], n_bytes=[4, 4, 4], weights=[1.0, 1.0, 2.0])
    assert ce.per_sequence == pytest.approx((2 + 4 + 12) / 4)
    assert ce.per_token == pytest.approx((2 + 4 + 12) / (1 + 2 + 6))
    assert ce.bits_per_byte == pytest.approx((2 + 4 + 12) / (math.log(2) * 16))
    plain = cross_entropy(lp)
    assert math.isnan(plain.per_token) and math.isnan(plain.bits_per_byte)
    assert cross_entropy([-1.0, -np.inf], n_tokens=[1, 1]).per_token == np.inf
    assert math.isnan(cross_entropy([-1.0], n_tokens=[0]).per_token)


def test_support_log_ratios_gives_exact_expectation():
    # doc 0: π_D = (0.75, 0.25); doc 1: deterministic; π̂ fixed. Exact Cov_2 by hand.
    ref = [np.log([0.75, 0.25]), [0.0]]
    mod = [np.log([0.5, 0.05]), [np.log(0.6)]]
    x, w = support_log_ratios(ref, mod, doc_weights=[1.0, 3.0])
    # ratios: 1.5, 5, 1/0.6=1.67 -> at N=2 only the 0.25-mass path of doc 0 is uncovered
    assert coverage_profile(x, 2.0, weights=w).item() == pytest.approx(0.25 * 1.0 / 4.0)
    expected_kl = (0.75 * math.log(1.5) + 0.25 * math.log(5.0) + 3.0 * math.log(1 / 0.6)) / 4.0
    assert kl(x, weights=w) == pytest.approx(expected_kl)


def test_support_log_ratios_drops_zero_reference_mass():
    x, w = support_log_ratios([[0.0, -np.inf]], [[-1.0, -np.inf]])
    assert x.tolist() == [1.0] and w.tolist() == [1.0]


def test_default_grid_contains_paper_thresholds():
    for n in (2.0, 3.0, 4.0, 4.6, 5.7, 8.0, 16.0, 1024.0):
        assert n in DEFAULT_COV_NS
    assert list(DEFAULT_COV_NS) == sorted(DEFAULT_COV_NS) and min(DEFAULT_COV_NS) >= 1.0


_probs = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6)


def _normalise(p):
    p = np.asarray(p, dtype=np.float64)
    return p / p.sum() if p.sum() > 0 else np.full(p.size, 1.0 / p.size)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_cov_monotone_and_kl_bound_on_exact_distributions(data):
    """Exact Cov_N over a small support: non-increasing in N, and Cov_N ≤ KL/(log N − 1 + 1/N)."""
    size = data.draw(st.integers(1, 6))
    p_d = _normalise(data.draw(st.lists(st.floats(1e-3, 1.0), min_size=size, max_size=size)))
    q = _normalise(data.draw(st.lists(st.floats(0.0, 1.0), min_size=size, max_size=size)))
    with np.errstate(divide="ignore"):
        x, w = support_log_ratios([np.log(p_d)], [np.log(q)])
    ns = np.array(sorted(data.draw(st.lists(st.floats(1.0, 1e4), min_size=1, max_size=8))))
    cov = coverage_profile(x, ns, weights=w)
    assert (np.diff(cov) <= 1e-12).all()
    divergence = kl(x, weights=w)
    assert divergence >= -1e-12  # exact KL of two distributions is >= 0
    big = ns[ns > 1.0 + 1e-6]
    bound = divergence / (np.log(big) - 1.0 + 1.0 / big)  # paper Prop 3.1 / D.1
    assert (coverage_profile(x, big, weights=w) <= bound + 1e-9).all()
