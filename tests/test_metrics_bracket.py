"""The coverage bracket on Pass@N (docs/coverage-principle.md#bon-sandwich) holds on exact small single-answer distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covbench.metrics import DEFAULT_PASS_NS, coverage_profile, exact_pass_at_n, pass_bracket


@st.composite
def single_answer_task(draw):
    """Prompts with a model distribution over a small support and one gold answer each: p = π̂(y*|x)."""
    n_prompts = draw(st.integers(1, 6))
    p_gold, weights = [], []
    for _ in range(n_prompts):
        size = draw(st.integers(1, 5))
        q = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=size, max_size=size)))
        q = q / q.sum() if q.sum() > 0 else np.full(size, 1.0 / size)
        p_gold.append(q[draw(st.integers(0, size - 1))])
        weights.append(draw(st.floats(0.0, 1.0)))
    return np.array(p_gold), np.array(weights)


@settings(max_examples=300, deadline=None)
@given(single_answer_task(), st.lists(st.floats(1.0, 200.0), min_size=1, max_size=4))
def test_bracket_contains_exact_pass(task, ns):
    p, w = task
    if not w.sum() > 0:
        w = np.ones_like(w)
    with np.errstate(divide="ignore"):
        log_p = np.log(p)
    exact = exact_pass_at_n(log_p, ns, weights=w)
    b = pass_bracket(-log_p, ns, weights=w)
    assert (b.lo <= exact + 1e-12).all()
    assert (exact <= b.hi + 1e-12).all()
    assert (b.lo >= 0).all() and (b.hi <= 1).all()
    # the reported M attains the lower bound
    fail_hi = coverage_profile(-log_p, b.best_m, weights=w) + (1 - 1 / b.best_m) ** np.asarray(ns)
    np.testing.assert_allclose(1 - b.lo, np.minimum(1.0, fail_hi), atol=1e-12)


def test_bracket_closed_form_example():
    # half the prompts certain (p = 1), half impossible (p = 0): Pass@N = 0.5 for every N.
    x = [0.0, np.inf]
    b = pass_bracket(x, [1, 4, 16])
    np.testing.assert_allclose(b.hi, 1 - 0.5 * 0.5)   # Cov_{2N} = 0.5
    # M → just above 1 would give Cov = 0.5 and (1 − 1/M)^N → 0: the best grid M is the smallest > 1
    assert (b.lo <= 0.5).all() and b.lo[-1] > 0.49


def test_bracket_tightens_with_n_on_a_covered_task():
    x = -np.log(np.full(10, 0.2))  # every prompt has p = 0.2: Pass@N = 1 − 0.8^N
    ns = np.array(DEFAULT_PASS_NS, dtype=float)
    b = pass_bracket(x, ns)
    exact = 1 - 0.8 ** ns
    assert (b.lo <= exact).all() and (exact <= b.hi).all()
    assert b.lo[-1] > 0.99  # N = 32: M ≈ 5 covers everything, (1 − 1/5)^32 ≈ 8e-4


def test_bracket_missing_and_bad_input():
    b = pass_bracket([], [2, 4])
    assert np.isnan(b.lo).all() and np.isnan(b.hi).all() and np.isnan(b.best_m).all()
    b = pass_bracket([1.0], 2, weights=[0.0])
    assert math.isnan(float(b.lo)) and math.isnan(float(b.hi))
    with pytest.raises(ValueError, match="pass_bracket: Ms contains 0.5"):
        pass_bracket([1.0], 2, Ms=[0.5])
    with pytest.raises(ValueError, match="coverage_profile: log_ratios"):
        pass_bracket([math.nan], 2)
