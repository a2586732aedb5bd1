"""Tournament selection (paper Eq. 29, Eq. 32) against brute force; it beats min-CE where it should."""

from __future__ import annotations

import math

import numpy as np
import pytest

from covbench.metrics import coverage_profile
from covbench.selection import min_ce, offset_tournament, pairwise_coverage, tournament


def _pairwise_loop(lp, n):
    k, m = lp.shape
    return np.array([[0.0 if j == c else sum(lp[j, i] - lp[c, i] >= math.log(n) for i in range(m)) / m
                      for c in range(k)] for j in range(k)])


def test_pairwise_equals_direct_loop():
    rng = np.random.default_rng(0)
    lp = rng.normal(-5, 3, (5, 40))
    for n in (1.0, 2.0, 4.6, 100.0):
        np.testing.assert_allclose(pairwise_coverage(lp, n), _pairwise_loop(lp, n))


def _family(rng, n_samples=400, minority=0.1):
    """Fig. 1-like checkpoints on a deterministic π_D (log π_D = 0) with a 90/10 class mixture.

    Later checkpoints fit the majority better and the minority worse, so CE keeps falling while
    coverage of the minority collapses. Returns [K, n] held-out log-probs.
    """
    is_minor = rng.uniform(size=n_samples) < minority
    steps = np.linspace(0, 1, 6)
    major_lp = -1.6 * (1 - steps) - 0.05                 # -1.65 ... -0.05
    minor_lp = np.array([-0.5, -1.0, -4.0, -6.0, -8.0, -10.0])  # minority falls out of reach
    noise = rng.normal(0, 0.1, (steps.size, n_samples))
    return np.where(is_minor[None, :], minor_lp[:, None], major_lp[:, None]) + noise


@pytest.mark.parametrize("seed", range(5))
def test_tournament_picks_best_coverage_where_min_ce_does_not(seed):
    lp = _family(np.random.default_rng(seed))
    n = 8.0
    true_cov = np.array([coverage_profile(-row, n).item() for row in lp])  # X = 0 − log π̂
    result = tournament(lp, n)
    ce_pick = min_ce(lp)
    assert true_cov[result.pick] == true_cov.min()
    assert true_cov[ce_pick] > true_cov.min() + 0.05
    assert result.ce[ce_pick] == result.ce.min()


def test_scores_and_tie_break_by_ce_then_index():
    lp = np.array([[-1.0, -1.0], [-0.5, -0.5], [-0.5, -0.5]])  # nobody beats anybody by 4x
    r = tournament(lp, 4.0)
    assert r.scores.tolist() == [0.0, 0.0, 0.0]
    assert r.pick == 1  # lowest CE among tied scores, then the earliest index (1 before 2)
    assert min_ce(lp) == 1
    assert (np.diag(r.pairwise) == 0).all() and r.n_threshold == 4.0


def test_single_candidate_single_sample_and_minus_inf():
    assert tournament([[-3.0]], 2.0).pick == 0
    lp = np.array([[-np.inf, -1.0], [-np.inf, -np.inf]])
    r = tournament(lp, 2.0)
    assert r.pairwise[0, 1] == 0.5 and r.pairwise[1, 0] == 0.0  # both −inf on sample 0: no win
    assert r.pick == 0 and r.ce.tolist() == [np.inf, np.inf]


def test_weights_change_the_statistic():
    lp = np.array([[0.0, -5.0], [-5.0, 0.0]])
    r = tournament(lp, 2.0, weights=[3.0, 1.0])
    assert r.pairwise[1, 0] == pytest.approx(0.25) and r.pairwise[0, 1] == pytest.approx(0.75)
    assert r.pick == 0


@pytest.mark.parametrize(("call", "message"), [
    (lambda: tournament(np.zeros((0, 3)), 2.0), "tournament: logp must be"),
    (lambda: tournament(np.zeros((2, 0)), 2.0), "tournament: logp must be"),
    (lambda: tournament([[0.0, math.nan]], 2.0), r"tournament: logp\[0, 1\] is NaN"),
    (lambda: tournament([[0.0]], 0.5), "N must be finite and >= 1"),
    (lambda: tournament([[0.0]], 2.0, weights=[0.0]), "positive sum"),
    (lambda: min_ce([[-1.0, 1.0, math.inf]]), r"\+inf"),
    (lambda: offset_tournament([[0.0]], np.zeros((1, 1, 2, 1)), 8.0), "gen_logp must be"),
    (lambda: offset_tournament([[0.0]], np.zeros((1, 1, 1, 1)), 8.0, gamma=0.0), "gamma"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_offset_tournament_equals_brute_force():
    rng = np.random.default_rng(3)
    k, n, m, big_n, gamma = 3, 6, 4, 8.0, 1.0
    lp = rng.normal(-3, 2, (k, n))
    gen = rng.normal(-3, 2, (k, k, n, m))
    r = offset_tournament(lp, gen, big_n, gamma)
    on = np.zeros((k, k))
    for j in range(k):
        for c in range(k):
            if j != c:
                on[j, c] = np.mean([gen[c, j, i, s] - gen[c, c, i, s] >= math.log(big_n)
                                    for i in range(n) for s in range(m)])
    objective = _pairwise_loop(lp, big_n) - 2 * gamma * on
    np.testing.assert_allclose(r.on_policy, on)
    np.testing.assert_allclose(r.pairwise, objective)
    np.testing.assert_allclose(r.scores, objective.max(0))
    assert r.scores[r.pick] == r.scores.min()


def test_offset_term_changes_the_pick():
    # Held out: candidate 0 beats 1 by more than 8x on 3 of 4 samples, 1 beats 0 on the last one, so
    # the simple tournament keeps 0. But 0 also beats 1 on half of 1's *own* samples: Eq. 32 discounts
    # those wins by 2γ·Ĉov^on (a challenger that wins everywhere is over-confident, not better).
    lp = np.array([[0.0, 0.0, 0.0, -9.0], [-3.0, -3.0, -3.0, -3.0]])
    gen = np.full((2, 2, 4, 2), -1.0)   # gen[k, j, i, s] = log π_j(s-th sample of k at x_i)
    gen[1, 0, :, 0] = 2.5               # challenger 0 vs candidate 1 on 1's first samples: e^3.5 > 8
    simple = tournament(lp, 8.0)
    offset = offset_tournament(lp, gen, 8.0, gamma=1.0)
    assert simple.scores.tolist() == [0.25, 0.75] and simple.pick == 0
    assert offset.on_policy.tolist() == [[0.0, 0.5], [0.0, 0.0]]
    assert offset.pairwise[0, 1] == pytest.approx(0.75 - 2 * 0.5)
    assert offset.scores.tolist() == [0.25, 0.0] and offset.pick == 1
