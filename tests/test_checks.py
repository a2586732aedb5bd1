"""The suite's assertions as pure functions: each check can fail, and says why in one line."""

from __future__ import annotations

from covbench.checks import agreement_problems, floor_problems, record_problems
from covbench.records import Estimate
from covbench.registry import ModelSpec
from records_factory import provenance, record


def _spec(floors):
    return ModelSpec.model_validate({"name": "m", "pretrained": "org/some-model", "floors": floors})


def test_clean_record_has_no_problems():
    assert record_problems(record(metrics={"cov@2": 0.5, "cov@4": 0.2, "pass_exact@1": 0.3,
                                           "pass_exact@8": 0.9, "ce": 1.0})) == []


def test_coverage_must_not_increase_and_values_in_range():
    problems = record_problems(record(metrics={"cov@2": 0.2, "cov@4": 0.5, "pass_exact@8": 1.5}))
    assert any("cov is not non-increasing" in p for p in problems)
    assert any("pass_exact@8 = 1.5 is outside [0, 1]" in p for p in problems)


def test_pass_must_not_decrease_in_n():
    problems = record_problems(record(metrics={"pass_sampled@1": 0.9, "pass_sampled@2": 0.8}))
    assert problems and "non-decreasing" in problems[0]


def test_missing_values_are_not_problems():
    assert record_problems(record(metrics={"cov@2": float("nan"), "cov@4": 0.1})) == []


def _with_se(metrics):
    return {k: Estimate(value=v, stderr=se) for k, (v, se) in metrics.items()}


def test_sampled_and_exact_agree_within_four_standard_errors():
    scored = record(metrics={}).model_copy(update={"metrics": _with_se({"pass_exact@8": (0.90, 0.01)})})
    near = record(metrics={}).model_copy(update={"metrics": _with_se({"pass_sampled@8": (0.93, 0.01)})})
    far = record(metrics={}).model_copy(update={"metrics": _with_se({"pass_sampled@8": (0.99, 0.01)})})
    assert agreement_problems(near, scored) == []
    assert "differ by more than 4 standard errors" in agreement_problems(far, scored)[0]


def test_measured_pass_inside_coverage_bracket():
    scored = record(metrics={}).model_copy(update={"metrics": _with_se(
        {"pass_pred_lo@4": (0.5, float("nan")), "pass_pred_hi@4": (0.7, float("nan"))})})
    inside = record(metrics={}).model_copy(update={"metrics": _with_se({"pass_sampled@4": (0.6, 0.01)})})
    outside = record(metrics={}).model_copy(update={"metrics": _with_se({"pass_sampled@4": (0.9, 0.01)})})
    assert agreement_problems(inside, scored) == []
    assert "outside the coverage bracket" in agreement_problems(outside, scored)[0]


def test_floors_pass_fail_and_missing():
    spec = _spec({"t": {"pass_exact@8": 0.9, "cov@4": 0.1, "kl": 1.0}})
    ok = record(metrics={"pass_exact@8": 0.95, "cov@4": 0.05, "kl": 0.5})
    assert floor_problems(ok, spec) == []
    bad = record(metrics={"pass_exact@8": 0.85, "cov@4": 0.2})
    problems = floor_problems(bad, spec)
    assert "floor pass_exact@8 ≥ 0.9: got 0.8500" in problems
    assert "floor cov@4 ≤ 0.1: got 0.2000" in problems  # lower-is-better metrics are upper bounds
    assert "floor kl ≤ 1: the metric is missing" in problems
    assert floor_problems(record(task="other", metrics={}), spec) == []


def test_unplain_sampling_is_recorded():
    rec = record(metrics={}, prov=provenance(sampling={"temperature": 0.7}))
    assert rec.provenance.sampling["temperature"] == 0.7
