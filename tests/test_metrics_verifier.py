"""Coverage of the correct set from verdicts (docs/verifier-coverage.md): each piece against a reference.

- Chernoff limits: contain Clopper–Pearson's exact limits; hold by simulation for unequal [0, 1] variables.
- Quantile tests: H(t) = γ, H non-increasing, E[V | p] = H(p) by enumerating the binomial.
- Identified bounds: contain the true Cov_M for any p (hypothesis), lie inside the brief's Pass@N
  sandwich, and agree with an independent primal LP on a grid of p.
- NPMLE: certified optimal, at least as likely as a long plain-EM run (an independent implementation).
- verifier_coverage: edge cases, input errors, ordering of its outputs, invariances.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from covbench.metrics import (
    METRICS,
    card_for,
    cov_set_bounds,
    coverage_profile,
    exact_pass_at_n,
    verifier_coverage,
)
from covbench.metrics._chernoff import kl_bernoulli, mean_limits
from covbench.metrics._mixing import CELL_ETA, cells, quantile_curves, quantile_scores
from covbench.metrics._mixing_lp import coverage_range
from covbench.metrics._npmle import binomial_npmle
from covbench.metrics._verifier import SET_GAMMAS


def _truth(p: np.ndarray, Ms: object, weights: object = None) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return coverage_profile(-np.log(p), Ms, weights)


# --- Chernoff limits ------------------------------------------------------------------------------

@pytest.mark.parametrize("m", [1, 7, 40, 120])
def test_kl_limits_contain_clopper_pearson(m):
    """Chernoff's tail bound is above the exact binomial tail, so its limits are wider than CP's."""
    kappa = np.log(40.0)
    for k in range(m + 1):
        lo, hi = mean_limits(k / m, float(m), kappa)
        cp = stats.binomtest(k, m).proportion_ci(confidence_level=1 - 2 * np.exp(-kappa), method="exact")
        assert lo <= cp.low + 1e-12 and cp.high <= hi + 1e-12, (k, m, lo, hi, cp)


@pytest.mark.parametrize("kind", ["bernoulli", "beta"])
def test_kl_limits_hold_for_unequal_weighted_bounded_variables(kind):
    """P(μ < lo) ≤ e^{−κ} and P(μ > hi) ≤ e^{−κ} for independent non-identical [0, 1] variables."""
    rng = np.random.default_rng(5)
    m, reps, kappa = 30, 20_000, np.log(20.0)  # δ = 5% per side
    a, b = rng.uniform(0.2, 3.0, m), rng.uniform(0.2, 3.0, m)
    w = rng.uniform(0.5, 2.0, m)
    u = w / w.sum()
    mean = a / (a + b)
    mu = float(u @ mean)
    draws = (rng.random((reps, m)) < mean) if kind == "bernoulli" else rng.beta(a, b, size=(reps, m))
    lo, hi = mean_limits(draws @ u, 1.0 / u.max(), kappa)
    assert np.mean(mu < lo) <= 0.05 and np.mean(mu > hi) <= 0.05


def test_kl_limits_are_not_vacuous_for_iid_bernoulli():
    """The extreme case for [0, 1] variables: each side fails 0.5–1% of the time at δ = 5%."""
    rng = np.random.default_rng(5)
    means = rng.binomial(30, 0.3, 100_000) / 30
    lo, hi = mean_limits(means, 30.0, np.log(20.0))
    assert 0.002 < np.mean(0.3 < lo) <= 0.05 and 0.002 < np.mean(0.3 > hi) <= 0.05


def test_kl_limits_edges_and_errors():
    lo, hi = mean_limits([0.0, 1.0], 10.0, 3.0)
    assert lo[0] == 0.0 and hi[1] == 1.0
    assert hi[0] == pytest.approx(1 - np.exp(-0.3), abs=1e-12)  # kl(0 ‖ μ) = −log(1 − μ)
    assert kl_bernoulli(0.2, 0.2) == 0.0
    with pytest.raises(ValueError, match="m_eff"):
        mean_limits(0.5, 0.5, 3.0)


# --- quantile tests and cells -------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 2, 5, 16, 64, 300])
@pytest.mark.parametrize("t", [0.5, 1 / 8, 1 / 1024])
def test_quantile_tests_pass_through_gamma_at_t_and_decrease(n, t):
    h_t = quantile_curves(n, t, SET_GAMMAS, np.array([t]))[:, 0]
    np.testing.assert_allclose(h_t, SET_GAMMAS, atol=1e-10)
    grid = np.linspace(0.0, 1.0, 801)
    h = quantile_curves(n, t, SET_GAMMAS, grid)
    assert (np.diff(h, axis=1) <= 1e-12).all()


@pytest.mark.parametrize("n", [1, 3, 12, 40])
def test_quantile_scores_are_unbiased_for_the_curves(n):
    """Σ_c Bin(c; n, p) · V(c) = H(p): enumerate every count (independent of the closed form)."""
    t = 0.15
    c = np.arange(n + 1)
    scores = quantile_scores(np.full(c.size, n), c, t, SET_GAMMAS)  # [J, c]
    for p in (0.0, 0.03, 0.15, 0.4, 1.0):
        expected = scores @ stats.binom.pmf(c, n, p)
        np.testing.assert_allclose(expected, quantile_curves(n, t, SET_GAMMAS, np.array([p]))[:, 0], atol=1e-12)


def test_cells_have_t_as_an_edge_and_small_drops():
    edges, h = cells(20, 1 / 6, SET_GAMMAS)
    assert edges[0] == 0.0 and edges[-1] == 1.0 and 1 / 6 in edges
    assert (np.max(h[:, :-1] - h[:, 1:], axis=0) <= CELL_ETA).all()


# --- identified bounds ---------------------------------------------------------------------------

@st.composite
def prompts_with_known_p(draw):
    """Prompts with p from a few atoms (0, 1, the thresholds themselves among them), ragged n, weights."""
    Ms = draw(st.lists(st.sampled_from([1.0, 1.5, 2.0, 3.0, 8.0, 32.0, 1000.0]), min_size=1, max_size=3))
    atoms = draw(st.lists(st.one_of(st.sampled_from([0.0, 1.0] + [1 / m for m in Ms]), st.floats(0.0, 1.0)),
                          min_size=1, max_size=4))
    size = draw(st.integers(1, 12))
    p = np.array([atoms[draw(st.integers(0, len(atoms) - 1))] for _ in range(size)])
    n = np.array(draw(st.lists(st.sampled_from([0, 1, 2, 5, 16, 40]), min_size=size, max_size=size)))
    w = np.array(draw(st.lists(st.floats(0.1, 3.0), min_size=size, max_size=size)))
    return n, p, w, Ms


@settings(max_examples=60, deadline=None)
@given(prompts_with_known_p())
def test_identified_bounds_contain_the_true_coverage(case):
    """The deterministic property: whatever the p's, the identified set holds P_x[p_x ≤ 1/M]."""
    n, p, w, Ms = case
    lo, hi = cov_set_bounds(n, p, Ms, weights=w)
    truth = _truth(p, Ms, w)
    assert (lo <= truth).all() and (truth <= hi).all(), (lo, truth, hi)
    assert ((0.0 <= lo) & (hi <= 1.0)).all()


SEEDED = {
    "point masses": lambda rng, m: rng.choice([0.0, 0.02, 0.3, 1.0], size=m),
    "Beta(0.5, 2)": lambda rng, m: rng.beta(0.5, 2.0, m),
    "spike at 0 + bulk": lambda rng, m: np.where(rng.random(m) < 0.3, 0.0, rng.beta(4.0, 2.0, m)),
    "near the threshold 1/8": lambda rng, m: rng.choice([0.1, 0.124, 0.125, 0.126, 0.15], size=m),
}


@pytest.mark.parametrize("name", sorted(SEEDED))
@pytest.mark.parametrize("n", [1, 4, 16, 64])
def test_identified_bounds_contain_truth_and_sit_inside_the_pass_sandwich(name, n):
    """Brief's bounds: for every N ≤ n, Cov_M ∈ [1 − Pass@N − (1−1/M)^N, (1 − Pass@N)/(1−1/M)^N]."""
    p = SEEDED[name](np.random.default_rng(n), 400)
    Ms = np.array([2.0, 8.0, 32.0])
    lo, hi = cov_set_bounds(np.full(p.size, n), p, Ms)
    truth = _truth(p, Ms)
    assert (lo <= truth).all() and (truth <= hi).all()
    with np.errstate(divide="ignore"):
        fail = 1.0 - exact_pass_at_n(np.log(p), np.arange(1, n + 1))  # 1 − Pass@N, N = 1..n
    q = (1.0 - 1.0 / Ms[:, None]) ** np.arange(1, n + 1)[None, :]
    sandwich_lo = np.max((fail[None, :] - q) / (1.0 - q), axis=1)  # the sharpened form, docs §3
    sandwich_hi = np.min(fail[None, :] / q, axis=1)
    assert (sandwich_lo <= truth + 1e-12).all() and (truth <= sandwich_hi + 1e-12).all()
    assert (lo >= np.clip(sandwich_lo, 0, 1) - 2e-3).all() and (hi <= np.clip(sandwich_hi, 0, 1) + 2e-3).all()


def _primal_on_grid(n: int, t: float, means: np.ndarray, grid: np.ndarray) -> tuple[float, float]:
    """min / max of G([0, t]) over G on ``grid`` with E_G[H_j] = means_j (scipy's LP, primal form)."""
    h = quantile_curves(n, t, SET_GAMMAS, grid)
    a_eq = np.vstack([h, np.ones(grid.size)])
    b_eq = np.concatenate([means, [1.0]])
    covered = (grid <= t).astype(float)
    out = []
    for sign in (1.0, -1.0):
        res = optimize.linprog(sign * covered, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        assert res.status == 0
        out.append(sign * res.fun)
    return out[0], out[1]


@pytest.mark.parametrize(("n", "M"), [(4, 2.0), (16, 8.0), (64, 32.0)])
def test_certificate_bounds_match_a_primal_lp_on_a_grid(n, M):
    """Outer (certificate) bounds ⊇ the grid-restricted primal range, and close to it.

    The grid has points just above t: mass there looks like mass at t but is not covered. The
    cells cost at most Σ_j |λ_j| · CELL_ETA; steep certificates (Σ|λ| ≈ 400 for these atoms at
    n = 16) make that 0.03 (docs/verifier-coverage.md §4)."""
    t = 1.0 / M
    near = t * np.array([0.5, 0.9, 1.0 - 1e-7, 1.0, 1.0 + 1e-7, 1.1, 2.0])
    grid = np.unique(np.concatenate([np.linspace(0.0, 1.0, 401), near]))
    rng = np.random.default_rng(n)
    mass = rng.dirichlet(np.ones(6))
    atoms = np.concatenate([[0.0, t], rng.choice(grid, 4)])
    means = quantile_curves(n, t, SET_GAMMAS, atoms) @ mass
    lo, hi = coverage_range(means, means, [(n, 1.0)], t, SET_GAMMAS)
    ref_lo, ref_hi = _primal_on_grid(n, t, means, grid)
    assert lo <= ref_lo + 1e-9 and ref_hi <= hi + 1e-9
    assert ref_lo - lo <= 0.05 and hi - ref_hi <= 0.05
    assert lo <= mass[atoms <= t].sum() <= hi


def test_identified_set_is_a_point_when_no_mass_is_near_the_threshold():
    p = np.repeat([0.0, 0.5, 0.9], 10)
    lo, hi = cov_set_bounds(np.full(p.size, 64), p, [8.0, 64.0])
    np.testing.assert_allclose(lo, 1 / 3, atol=2e-3)
    np.testing.assert_allclose(hi, 1 / 3, atol=2e-3)


def test_identified_set_is_everything_at_the_threshold_and_only_the_mean_for_n_one():
    lo, hi = cov_set_bounds(np.full(5, 16), np.full(5, 1 / 8), 8.0)
    assert lo == 0.0 and hi == 1.0  # p = 1/8 exactly and p slightly above give the same verdict law
    lo, hi = cov_set_bounds(np.ones(4, int), np.array([0.0, 0.2, 0.6, 0.8]), 2.0)  # E p = 0.4
    assert lo == pytest.approx(1 - 2 * 0.4, abs=2e-3) and hi == 1.0  # [1 − M·E p, (1 − E p)/(1 − 1/M)]


# --- NPMLE ---------------------------------------------------------------------------------------

def _loglik(n, c, atoms, masses):
    return float(np.mean(np.log(stats.binom.pmf(c[:, None], n[:, None], atoms[None, :]) @ masses)))


@pytest.mark.parametrize("n_size", [2, 8, 40])
def test_npmle_is_optimal_and_beats_plain_em(n_size):
    rng = np.random.default_rng(n_size)
    p = np.where(rng.random(150) < 0.3, 0.0, rng.beta(2.0, 3.0, 150))
    n = np.full(p.size, n_size)
    c = rng.binomial(n, p)
    fit = binomial_npmle(n, c, np.ones(p.size))
    assert fit.gap <= 1e-6 and fit.masses.sum() == pytest.approx(1.0) and (fit.masses > 0).all()
    # Independent reference: EM (fixed-point iteration) on a uniform grid, 3,000 steps.
    grid = np.linspace(0.0, 1.0, 201)
    lik = stats.binom.pmf(c[:, None], n[:, None], grid[None, :])
    pi = np.full(grid.size, 1.0 / grid.size)
    for _ in range(3000):
        pi *= (1.0 / (lik @ pi)) @ lik / c.size
    assert _loglik(n, c, fit.atoms, fit.masses) >= _loglik(n, c, grid, pi) - 1e-9


def test_npmle_recovers_a_point_mass_and_the_mean_for_n_one():
    rng = np.random.default_rng(0)
    n = np.full(2000, 64)
    fit = binomial_npmle(n, rng.binomial(n, 0.3), np.ones(n.size))
    assert fit.masses[np.abs(fit.atoms - 0.3) < 0.03].sum() > 0.95
    c = (rng.random(500) < 0.37).astype(np.int64)
    fit = binomial_npmle(np.ones(500, np.int64), c, np.ones(500))
    assert float(fit.expect(lambda q: q)) == pytest.approx(c.mean(), abs=1e-6)


# --- verifier_coverage -----------------------------------------------------------------------------

MS = np.array([1.0, 2.0, 4.0, 16.0, 1024.0])


def _check_order(r):
    shown = np.isfinite(r.point)
    assert (r.lo <= r.bound_lo + 1e-12).all() and (r.bound_lo <= r.bound_hi + 1e-12).all()
    assert (r.bound_hi <= r.hi + 1e-12).all() and ((0 <= r.lo) & (r.hi <= 1)).all()
    assert (r.bound_lo[shown] <= r.point[shown]).all() and (r.point[shown] <= r.bound_hi[shown]).all()


def test_threshold_one_is_exactly_one_and_large_m_is_missing():
    r = verifier_coverage(np.full(40, 8), np.arange(40) % 9, MS)
    _check_order(r)
    assert r.point[0] == r.lo[0] == r.hi[0] == 1.0 and r.resolved[0]
    assert r.resolved.tolist() == [True, True, True, False, False]
    assert np.isnan(r.point[3:]).all() and np.isfinite(r.lo).all() and np.isfinite(r.hi).all()


def test_n_equal_one_reports_no_point_but_the_mean_bounds():
    c = np.r_[np.ones(30, int), np.zeros(70, int)]
    r = verifier_coverage(np.ones(100, int), c, MS)
    _check_order(r)
    assert not r.resolved[1:].any() and np.isnan(r.point[1:]).all()
    assert r.bound_lo[1] == pytest.approx(1 - 2 * 0.3, abs=2e-3)  # one verdict identifies only E p
    assert r.bound_hi[1] == 1.0


def test_all_correct_and_none_correct():
    full = verifier_coverage(np.full(50, 8), np.full(50, 8), MS)
    _check_order(full)
    assert full.point[1:3].tolist() == [0.0, 0.0] and (full.hi[1:] < 0.15).all() and (full.lo[1:] == 0).all()
    none = verifier_coverage(np.full(50, 8), np.zeros(50, int), MS)
    _check_order(none)
    assert none.point[1:3].tolist() == [1.0, 1.0] and (none.hi == 1.0).all() and none.lo[1] > 0.8
    assert none.lo[-1] == 0.0  # 400 failures cannot exclude p = 1e-4 everywhere: M = 1024 is open


def test_ragged_n_zero_samples_and_weights():
    r = verifier_coverage([1, 4, 16, 0, 64, 64], [0, 2, 16, 0, 1, 0], MS)
    _check_order(r)
    assert r.resolved.tolist() == [True, True, False, False, False]  # weighted median n = 4
    blind = verifier_coverage(np.zeros(5, int), np.zeros(5, int), [2.0, 8.0])
    assert blind.lo.tolist() == [0.0, 0.0] and blind.hi.tolist() == [1.0, 1.0] and np.isnan(blind.point).all()
    dropped = verifier_coverage([8, 8, 8], [0, 4, 8], [2.0, 4.0], weights=[1, 0, 1])
    kept = verifier_coverage([8, 8], [0, 8], [2.0, 4.0])
    np.testing.assert_allclose(dropped.point, kept.point)
    np.testing.assert_allclose(dropped.hi, kept.hi)


def test_empty_and_zero_weights_are_missing():
    for r in (verifier_coverage([], [], MS), verifier_coverage([4], [1], MS, weights=[0.0])):
        assert np.isnan(r.point).all() and np.isnan(r.lo).all() and np.isnan(r.bound_hi).all()
        assert not r.resolved.any()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n": [4, np.nan], "c": [1, 1]}, r"n\[1\] is NaN"),
    ({"n": [4, 4], "c": [1, np.nan]}, r"c\[1\] is NaN"),
    ({"n": [4], "c": [5]}, r"c\[0\] = 5 > n\[0\] = 4"),
    ({"n": [4, 2.5], "c": [1, 1]}, r"n\[1\] = 2.5 is not a count"),
    ({"n": [4, -1], "c": [1, 0]}, r"n\[1\] = -1.0 is not a count"),
    ({"n": [4, 4], "c": [1]}, "n has shape"),
    ({"n": [True], "c": [0]}, "integer counts"),
    ({"n": [4], "c": [1], "Ms": [0.5]}, "Ms contains 0.5"),
    ({"n": [4], "c": [1], "Ms": [np.nan]}, "Ms contains nan"),
    ({"n": [4], "c": [1], "level": 1.0}, "level"),
    ({"n": [4], "c": [1], "weights": [-1.0]}, r"weights\[0\]"),
])
def test_bad_input_raises_one_line_errors(kwargs, match):
    args = {"Ms": [2.0], **kwargs}
    with pytest.raises(ValueError, match=match) as info:
        verifier_coverage(args.pop("n"), args.pop("c"), args.pop("Ms"), **args)
    assert "\n" not in str(info.value) and str(info.value).startswith("verifier_coverage:")


def test_cov_set_bounds_input_errors():
    with pytest.raises(ValueError, match=r"p\[1\] = 1.5 is not a probability"):
        cov_set_bounds([4, 4], [0.1, 1.5], [2.0])
    with pytest.raises(ValueError, match=r"p\[0\] is NaN"):
        cov_set_bounds([4], [np.nan], [2.0])
    lo, hi = cov_set_bounds([], [], [[2.0, 4.0]])
    assert lo.shape == (1, 2) and np.isnan(lo).all() and np.isnan(hi).all()


def test_shapes_levels_and_replication():
    rng = np.random.default_rng(1)
    n = np.full(120, 32)
    c = rng.binomial(n, np.where(rng.random(120) < 0.25, 0.0, 0.6))
    Ms = np.array([[2.0, 4.0], [8.0, 64.0]])
    r = verifier_coverage(n, c, Ms)
    assert r.point.shape == r.lo.shape == r.resolved.shape == (2, 2) and r.Ms.shape == (2, 2)
    narrow = verifier_coverage(n, c, Ms, level=0.5)
    assert (narrow.lo >= r.lo - 1e-9).all() and (narrow.hi <= r.hi + 1e-9).all()
    twice = verifier_coverage(np.tile(n, 2), np.tile(c, 2), Ms)  # same law: same fit, more evidence
    np.testing.assert_allclose(twice.point, r.point, atol=1e-6)
    np.testing.assert_allclose(twice.bound_lo, r.bound_lo, atol=2e-3)
    assert (twice.hi - twice.lo <= r.hi - r.lo + 1e-9).all()
    weighted = verifier_coverage(n, c, Ms, weights=np.full(n.size, 3.0))
    np.testing.assert_allclose(weighted.lo, r.lo)


def test_the_metric_card():
    card = METRICS["cov_set"]
    assert card_for("cov_set@16") is card and not card.higher_is_better and card.range == (0.0, 1.0)
    assert "1/M" in card.formula and "verifier-coverage.md" in card.card


def test_bootstrap_stderr_of_the_point():
    """B paired resamples of the prompts: the spread of the refitted NPMLE, about the binomial sd
    sqrt(Cov (1 − Cov) / m) of a share when the identified set is narrow (spike + bulk, n = 32, M = 8)."""
    rng = np.random.default_rng(3)
    p = np.where(rng.random(200) < 0.3, 0.0, rng.beta(4.0, 2.0, 200))
    n = np.full(200, 32)
    c = rng.binomial(n, p)
    r = verifier_coverage(n, c, [8.0, 64.0], B=200, seed=0)
    assert 0.5 < r.stderr[0] / np.sqrt(0.3 * 0.7 / 200) < 2.0 and np.isnan(r.stderr[1])  # M = 64 > n/2
    again = verifier_coverage(n, c, [8.0, 64.0], B=200, seed=0)
    np.testing.assert_array_equal(again.stderr, r.stderr)
    plain = verifier_coverage(n, c, [8.0, 64.0])
    assert np.isnan(plain.stderr).all()
    np.testing.assert_array_equal(plain.lo, r.lo)  # the interval does not depend on B or seed
    with pytest.raises(ValueError, match="B must be"):
        verifier_coverage(n, c, [8.0], B=-1)
