"""The mean-with-interval of per-class values and paired differences (covbench.metrics.mean_ci) against
scipy, brute force, the paired bootstrap and simulation with known truth; and selection.paired_difference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from covbench import metrics, selection


def _brute(v, w, level=0.95):
    """The documented formulas, written out with loops."""
    live = [(x, u) for x, u in zip(v, w) if u > 0]
    total = sum(u for _, u in live)
    m = sum(x * u for x, u in live) / total
    n_eff = total ** 2 / sum(u * u for _, u in live)
    se = math.sqrt(sum(u * u * (x - m) ** 2 for x, u in live) / total ** 2 * n_eff / (n_eff - 1))
    q = stats.t.ppf(0.5 + level / 2, n_eff - 1)
    return m, m - q * se, m + q * se, se


@pytest.mark.parametrize("n", [2, 5, 40, 513])
def test_uniform_weights_equal_scipys_t_interval(n):
    rng = np.random.default_rng(n)
    v = rng.normal(0.3, 1.0, n)
    ci = metrics.mean_ci(v)
    ref = stats.ttest_1samp(v, 0.0).confidence_interval(0.95)
    assert ci.value == pytest.approx(v.mean(), rel=1e-12)
    assert ci.stderr == pytest.approx(stats.sem(v), rel=1e-10)
    assert (ci.lo, ci.hi) == (pytest.approx(ref.low, rel=1e-9), pytest.approx(ref.high, rel=1e-9))
    assert int(ci.n) == n


def test_weighted_equals_brute_force_and_ignores_zero_weights():
    rng = np.random.default_rng(1)
    v = rng.uniform(0, 1, 30)
    w = rng.uniform(0, 3, 30)
    w[[3, 7]] = 0.0
    v_poisoned = v.copy()
    v_poisoned[[3, 7]] = np.inf  # a zero weight never lets its value in (not even inf)
    ci = metrics.mean_ci(v_poisoned, w)
    m, lo, hi, se = _brute(v, w)
    assert (float(ci.value), float(ci.lo), float(ci.hi), float(ci.stderr)) == pytest.approx((m, lo, hi, se), rel=1e-10)
    assert int(ci.n) == 28
    scaled = metrics.mean_ci(v, w * 1e-300)  # only relative weights matter (no underflow)
    assert float(scaled.hi) == pytest.approx(hi, rel=1e-9)


def test_rows_are_independent_and_grouped_equals_subsets():
    rng = np.random.default_rng(2)
    v = rng.normal(size=(3, 2, 50))
    codes = rng.integers(-1, 3, 50)
    w = rng.uniform(0.5, 2.0, 50)
    g = metrics.grouped_mean_ci(v, codes, 4, w)
    assert g.value.shape == (3, 2, 4)
    for c in range(3):
        one = metrics.mean_ci(v[1, 0, codes == c], w[codes == c])
        assert g.value[1, 0, c] == pytest.approx(float(one.value)) and g.lo[1, 0, c] == pytest.approx(float(one.lo))
        assert g.n[1, 0, c] == (codes == c).sum()
    assert np.isnan(g.value[..., 3]).all() and (g.n[..., 3] == 0).all()  # an empty class is missing, not 0
    alone = metrics.mean_ci(v[2, 1], w)
    assert float(metrics.mean_ci(v, w).hi[2, 1]) == float(alone.hi)


def test_edge_cases_missing_infinite_single_constant():
    ci = metrics.mean_ci([[1.0, np.nan, 2.0], [1.0, np.inf, 2.0], [0.5, 0.5, 0.5]])
    assert np.isnan([ci.value[0], ci.lo[0], ci.hi[0], ci.stderr[0]]).all()  # NaN row: missing
    assert ci.value[1] == np.inf and ci.lo[1] == np.inf and ci.hi[1] == np.inf  # a zero-probability response
    assert (ci.value[2], ci.lo[2], ci.hi[2], ci.stderr[2]) == (0.5, 0.5, 0.5, 0.0)
    one = metrics.mean_ci([0.7])
    assert float(one.value) == 0.7 and math.isnan(float(one.lo)) and math.isnan(float(one.stderr))
    none = metrics.mean_ci([0.7, 0.1], [0.0, 0.0])
    assert math.isnan(float(none.value)) and int(none.n) == 0
    empty = metrics.mean_ci(np.zeros((2, 0)))
    assert np.isnan(empty.value).all()


@pytest.mark.parametrize(("call", "message"), [
    (lambda: metrics.mean_ci(3.0), "prompts axis"),
    (lambda: metrics.mean_ci([1.0, 2.0], [1.0]), "weights have shape"),
    (lambda: metrics.mean_ci([1.0, 2.0], [1.0, -1.0]), "finite and >= 0"),
    (lambda: metrics.mean_ci([1.0, 2.0], level=1.0), "level"),
    (lambda: metrics.grouped_mean_ci([1.0, 2.0], [0.5, 1.0], 2), "codes must be"),
])
def test_bad_input_is_one_line(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_agrees_with_the_paired_bootstrap():
    # per-prompt Pass@8 of two checkpoints on the same 400 prompts (correlated through prompt difficulty)
    rng = np.random.default_rng(3)
    p = rng.beta(2, 5, 400)
    a, b = 1 - (1 - p) ** 8, 1 - (1 - 0.8 * p) ** 8
    d = a - b
    t = metrics.mean_ci(d)
    boot = metrics.paired_bootstrap(d[None, :], B=4000, seed=0)
    assert float(t.stderr) == pytest.approx(float(boot.stderr[0]), rel=0.1)
    assert float(t.lo) == pytest.approx(float(boot.lo[0]), abs=0.25 * float(t.stderr))
    assert float(t.hi) == pytest.approx(float(boot.hi[0]), abs=0.25 * float(t.stderr))


def test_coverage_by_simulation_with_known_truth():
    # Paired 0/1 outcomes (sampled Pass@1 of two models on the same prompts): true difference known.
    rng = np.random.default_rng(4)
    reps, n, hits = 2000, 60, 0
    p = rng.beta(2, 2, n)  # fixed prompt difficulties; the truth is the mean over them
    truth = float(np.mean(p) - np.mean(0.7 * p))
    for _ in range(reps):
        a = rng.random(n) < p
        b = rng.random(n) < 0.7 * p
        ci = metrics.mean_ci(a.astype(float) - b.astype(float))
        hits += bool(ci.lo <= truth <= ci.hi)
    assert 0.93 <= hits / reps <= 0.97, hits / reps


def test_paired_difference_aligns_prompts_and_is_narrower_than_the_two_intervals():
    rng = np.random.default_rng(5)
    hard = rng.beta(1, 3, 300)  # shared prompt difficulty: it cancels in the difference
    a = np.clip(hard + 0.05 + rng.normal(0, 0.01, 300), 0, 1)
    b = np.clip(hard + rng.normal(0, 0.01, 300), 0, 1)
    ids = np.arange(300)
    perm = rng.permutation(300)
    d = selection.paired_difference(ids, a, ids[perm], b[perm])
    assert d.value == pytest.approx(float(np.mean(a - b))) and d.n_prompts == 300
    ref = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (d.lo, d.hi) == (pytest.approx(ref.low), pytest.approx(ref.high))
    own = metrics.mean_ci(np.stack([a, b]))
    assert d.hi - d.lo < 0.1 * float(own.hi[0] - own.lo[0])
    assert d.lo > 0  # the advantage is resolved
    part = selection.paired_difference(ids[:100], a[:100], ids[50:], b[50:])  # only prompts 50..99 shared
    assert part.n_prompts == 50 and part.value == pytest.approx(float(np.mean(a[50:100] - b[50:100])))
    none = selection.paired_difference([1, 2], [0.5, 0.5], [3], [0.1])
    assert none.n_prompts == 0 and math.isnan(none.value)


def test_paired_difference_weights_come_by_prompt_id():
    a, b = np.array([1.0, 0.0, 0.0]), np.zeros(3)
    d = selection.paired_difference([0, 1, 2], a, [0, 1, 2], b, weights=[1.0, 1.0, 2.0], weight_ids=[2, 1, 0])
    assert d.value == pytest.approx(2.0 / 4.0)  # prompt 0 carries weight 2
