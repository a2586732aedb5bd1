"""covbench.taskglue: per-doc values against brute-force references, and the weighted aggregation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import comb, logsumexp

from covbench import taskglue

COV_NS = [1.0, 2.0, 4.6, 16.0]
PASS_NS = [1, 4, 12]


def reference(logp_ref: list[float], logp_model: list[float], n_tok: int) -> dict[str, float]:
    """Plain-loop references: expectations over π_ref, Pass@N from the summed probability."""
    p_ref = [math.exp(r) for r in logp_ref]
    x = [r - m for r, m in zip(logp_ref, logp_model)]
    out = {"kl": sum(p * xi for p, xi in zip(p_ref, x)), "ce": sum(-p * m for p, m in zip(p_ref, logp_model))}
    out["ce_per_token"] = out["ce"] / n_tok
    for n in COV_NS:
        out[f"cov@{n:g}"] = sum(p for p, xi in zip(p_ref, x) if xi >= math.log(n))
    mass = sum(math.exp(m) for m in logp_model)
    for n in PASS_NS:
        out[f"pass_exact@{n}"] = 1 - (1 - mass) ** n
    return out


@pytest.mark.parametrize(("logp_ref", "logp_model"), [
    ([0.0], [-0.3]),
    ([0.0], [-5.0]),
    ([math.log(0.25)] * 4, [-1.0, -2.0, -3.5, -8.0]),
    ([math.log(0.5), math.log(0.5)], [math.log(0.5), math.log(0.5)]),  # perfect model: X = 0
    ([math.log(1 / 16)] * 16, list(np.linspace(-2.0, -9.0, 16))),
])
def test_support_metrics_match_brute_force(logp_ref: list[float], logp_model: list[float]) -> None:
    got = taskglue.support_metrics(logp_ref, logp_model, n_tokens=[6] * len(logp_ref), cov_ns=COV_NS,
                                   pass_ns=PASS_NS)
    want = reference(logp_ref, logp_model, 6)
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_support_metrics_with_a_zero_probability_path() -> None:
    got = taskglue.support_metrics([math.log(0.5)] * 2, [-1.0, -math.inf], n_tokens=[3, 3], cov_ns=COV_NS,
                                   pass_ns=PASS_NS)
    assert got["kl"] == math.inf and got["ce"] == math.inf
    assert got["cov@16"] == pytest.approx(0.5)  # only the unreachable half is uncovered at N = 16
    assert got["pass_exact@1"] == pytest.approx(math.exp(-1.0))


def test_support_metrics_rejects_mismatched_or_empty_support() -> None:
    with pytest.raises(ValueError):
        taskglue.support_metrics([0.0], [-1.0, -2.0], n_tokens=[1])
    with pytest.raises(ValueError):
        taskglue.support_metrics([], [], n_tokens=[])
    with pytest.raises(ValueError, match="NaN"):
        taskglue.support_metrics([0.0], [math.nan], n_tokens=[1])


@pytest.mark.parametrize(("n", "c"), [(32, 0), (32, 1), (32, 7), (32, 32), (5, 2), (1, 1)])
def test_sampled_metrics_match_the_combinatorial_formula(n: int, c: int) -> None:
    got = taskglue.sampled_metrics([True] * c + [False] * (n - c), pass_ns=[1, 2, 4, 8, 32])
    for k in (1, 2, 4, 8, 32):
        value = got[f"pass_sampled@{k}"]
        if k > n:
            assert math.isnan(value)  # missing, never 1.0
        else:
            assert value == pytest.approx(1 - comb(n - c, k, exact=True) / comb(n, k, exact=True))


def test_log_sum_exp_matches_scipy() -> None:
    values = [-1.0, -3.0, -math.inf, -700.0]
    assert taskglue.log_sum_exp(values) == pytest.approx(logsumexp(values))
    assert taskglue.log_sum_exp([-math.inf, -math.inf]) == -math.inf
    assert taskglue.log_sum_exp([]) == -math.inf


def test_weighted_mean_and_lm_eval_values() -> None:
    assert taskglue.weighted_mean([(1.0, 0.94), (5.0, 0.05), (9.0, 0.01)]) == pytest.approx(0.94 + 0.25 + 0.09)
    assert math.isnan(taskglue.weighted_mean([]))
    assert math.isnan(taskglue.weighted_mean([(1.0, 0.0)]))
    assert math.isnan(taskglue.weighted_mean([(math.nan, 1.0), (1.0, 1.0)]))
    per_doc = {"ce": 3.0, "ce_per_token": 0.5, "cov@2": 1.0}
    assert taskglue.lm_eval_values(per_doc, n_tokens=6) == {"ce": 3.0, "ce_per_token": (0.5, 6.0), "cov@2": 1.0}
    assert taskglue.lm_eval_values(per_doc, n_tokens=6, doc_weight=0.01) == {
        "ce": (3.0, 0.01), "ce_per_token": (0.5, 0.06), "cov@2": (1.0, 0.01)}


def test_ce_per_token_aggregates_as_a_ratio_of_sums() -> None:
    docs = [([0.0], [-2.0], 2), ([0.0], [-9.0], 3)]
    items = [taskglue.lm_eval_values(taskglue.support_metrics(r, m, n_tokens=[t]), n_tokens=t)["ce_per_token"]
             for r, m, t in docs]
    assert taskglue.weighted_mean(items) == pytest.approx(11.0 / 5.0)


def test_metric_names_and_directions() -> None:
    names = taskglue.metric_names("loglikelihood", cov_ns=[2, 4.6], pass_ns=[8])
    assert names == ["ce", "ce_per_token", "kl", "cov@2", "cov@4.6", "pass_exact@8"]
    assert [taskglue.higher_is_better(k) for k in names] == [False] * 5 + [True]
    with pytest.raises(ValueError):
        taskglue.metric_names("greedy")
