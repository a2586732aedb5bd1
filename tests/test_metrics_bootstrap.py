"""Paired bootstrap: same resamples for every model, fast path equals the generic path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from covbench.metrics import bootstrap_counts, bootstrap_indices, bootstrap_statistic, paired_bootstrap


def test_fast_path_equals_explicit_resampling():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, 30))
    w = rng.uniform(0.1, 2.0, 30)
    fast = paired_bootstrap(v, w, B=300, seed=7)
    slow = bootstrap_statistic(lambda i: (v[:, i] * w[i]).sum(1) / w[i].sum(), 30, B=300, seed=7)
    for field in ("value", "lo", "hi", "stderr"):
        np.testing.assert_allclose(getattr(fast, field), getattr(slow, field), rtol=1e-10)


def test_resamples_are_paired_across_models():
    # model 2 = model 1 + 1 on every prompt, so every resampled difference is exactly 1.
    rng = np.random.default_rng(1)
    a = rng.normal(size=50)
    ci = paired_bootstrap(np.stack([a, a + 1.0]), B=200, seed=3)
    diff = bootstrap_statistic(lambda i: np.array([a[i].mean() + 1.0 - a[i].mean()]), 50, B=200, seed=3)
    assert diff.lo[0] == pytest.approx(1.0) and diff.hi[0] == pytest.approx(1.0)
    assert ci.hi[1] - ci.hi[0] == pytest.approx(1.0) and ci.lo[1] - ci.lo[0] == pytest.approx(1.0)


def test_counts_match_indices_and_are_cached_read_only():
    idx = bootstrap_indices(6, 4, 0)
    counts = bootstrap_counts(6, 4, 0)
    for b in range(4):
        assert counts[b].tolist() == np.bincount(idx[b], minlength=6).tolist()
    assert bootstrap_counts(6, 4, 0) is counts
    with pytest.raises(ValueError):
        counts[0, 0] = 1.0


def test_interval_covers_mean_of_bernoulli():
    rng = np.random.default_rng(2)
    v = (rng.uniform(size=400) < 0.3).astype(float)
    ci = paired_bootstrap(v[None, :], B=1000, seed=0)
    se = math.sqrt(v.mean() * (1 - v.mean()) / v.size)
    assert ci.lo[0] < v.mean() < ci.hi[0]
    assert ci.stderr[0] == pytest.approx(se, rel=0.15)  # bootstrap SE ≈ binomial SE


def test_edge_cases_missing_inf_single_prompt_empty():
    ci = paired_bootstrap([[1.0, math.nan], [1.0, 2.0], [1.0, math.inf], [3.0, 3.0]], B=100, seed=0)
    assert math.isnan(ci.value[0]) and math.isnan(ci.lo[0]) and math.isnan(ci.stderr[0])
    assert ci.value[2] == math.inf and ci.hi[2] == math.inf
    assert ci.lo[3] == ci.hi[3] == 3.0 and ci.stderr[3] == 0.0
    one = paired_bootstrap([[0.4]], B=50, seed=0)
    assert one.lo[0] == one.hi[0] == 0.4
    empty = paired_bootstrap(np.zeros((2, 0)), B=50, seed=0)
    assert np.isnan(empty.value).all() and np.isnan(empty.lo).all()
    zero_w = paired_bootstrap([[1.0, 2.0]], weights=[0.0, 0.0], B=50, seed=0)
    assert np.isnan(zero_w.value).all() and np.isnan(zero_w.hi).all()


def test_ratio_of_sums_via_weights_and_bad_input():
    # per-token CE: Σ nll / Σ tokens = weighted mean of nll/tokens with weights = tokens
    nll, tok = np.array([2.0, 6.0]), np.array([1.0, 3.0])
    assert paired_bootstrap((nll / tok)[None], tok, B=10).value[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="weights must be finite"):
        paired_bootstrap([[1.0]], weights=[-1.0])
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap([[1.0]], level=1.5)
    with pytest.raises(ValueError, match="B >= 1"):
        paired_bootstrap([[1.0]], B=0)


@pytest.mark.benchmark(group="bootstrap")
def test_bench_paired_bootstrap_1000_models(benchmark):
    rng = np.random.default_rng(4)
    v = rng.normal(size=(1000, 500))
    ci = benchmark.pedantic(paired_bootstrap, args=(v,), kwargs={"B": 1000, "seed": 0}, rounds=1)
    assert ci.lo.shape == (1000,) and (ci.lo < ci.hi).all()
