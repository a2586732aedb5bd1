"""The suite's assertions as pure functions: each check can fail, and says why in one line."""

from __future__ import annotations

import numpy as np

from covbench.checks import agreement_problems, floor_problems, record_problems, same_policy
from covbench.records import DocArrays, Estimate, Run, SampleArrays
from records_factory import gold_docs, provenance, record, run


def test_clean_record_has_no_problems():
    assert record_problems(run(metrics={"cov@2": 0.5, "cov@4": 0.2, "pass_exact@1": 0.3,
                                        "pass_exact@8": 0.9, "ce": 1.0})) == []


def test_coverage_must_not_increase_and_values_in_range():
    problems = record_problems(run(metrics={"cov@2": 0.2, "cov@4": 0.5, "pass_exact@8": 1.5, "cov_set@2": -0.1}))
    assert any("cov is not non-increasing" in p for p in problems)
    assert any("pass_exact@8 = 1.5 is outside [0, 1]" in p for p in problems)
    assert any("cov_set@2 = -0.1 is outside [0, 1]" in p for p in problems)  # every card is checked


def test_pass_must_not_decrease_in_n():
    problems = record_problems(run(metrics={"pass_sampled@1": 0.9, "pass_sampled@2": 0.8}))
    assert problems and "non-decreasing" in problems[0]


def test_missing_values_are_not_problems():
    assert record_problems(run(metrics={"cov@2": float("nan"), "cov@4": 0.1})) == []


def test_negative_kl_is_a_problem_only_for_an_exact_expectation():
    one_sample = run(metrics={"kl": -0.2}, docs=gold_docs([-1.0]), reference="known")
    assert record_problems(one_sample) == []  # one reference response per prompt: KL's estimate may be < 0
    docs = DocArrays(doc_id=[0], logp_model=[-1.0], logp_ref=[0.0], n_tokens=[1], n_bytes=[1],
                     support_logp_ref=[[0.0]], support_logp_model=[[-1.0]])
    exact = run(metrics={"kl": -0.2}, docs=docs, reference="known")
    assert any("kl = -0.2 is outside" in p for p in record_problems(exact))


def _pair(p_model, measured, reference="known", se=0.01):
    """A scored record whose docs give each prompt π̂(y*|x) = p (the only correct answer), and a
    sampled record on the same prompts whose measured Pass@N values are ``measured``."""
    n = len(p_model)
    lp = np.log(p_model).tolist()
    docs = DocArrays(doc_id=list(range(n)), logp_model=lp, logp_ref=[0.0] * n, n_tokens=[3] * n, n_bytes=[6] * n,
                     logp_correct=lp if reference == "known" else None)
    scored = Run(record(task="s", reference=reference), docs)
    samples = SampleArrays(doc_id=list(range(n)), generations=[["x"]] * n, correct=[[True]] * n, max_gen_toks=3)
    metrics = {k: Estimate(value=v, stderr=se) for k, v in measured.items()}
    sampled = record(task="m", reference=reference, kind="sample").model_copy(update={"metrics": metrics})
    return Run(sampled, None, samples), scored


def test_sampled_and_exact_agree_within_four_standard_errors():
    p = np.full(200, 0.3)  # exact Pass@1 = 0.3, Pass@4 = 1 − 0.7^4 = 0.7599
    near, scored = _pair(p, {"pass_sampled@1": 0.32, "pass_sampled@4": 0.75})
    assert agreement_problems(near, scored) == []
    far, scored = _pair(p, {"pass_sampled@1": 0.45})
    assert "differ by more than 4 standard errors" in agreement_problems(far, scored)[0]


def test_zero_bootstrap_se_still_allows_sampling_noise():
    # every sampled prompt succeeded (bootstrap SE 0) while the exact value is just below 1
    p = np.full(128, 0.5)  # exact Pass@8 = 1 − 0.5^8 = 0.9961
    allwin, scored = _pair(p, {"pass_sampled@8": 1.0}, se=0.0)
    assert agreement_problems(allwin, scored) == []


def test_measured_pass_inside_coverage_bracket():
    p = np.array([0.9] * 50 + [0.001] * 50)  # half covered at any small N, half not
    inside, scored = _pair(p, {"pass_sampled@2": float(np.mean(1 - (1 - p) ** 2))}, reference="gold")
    assert agreement_problems(inside, scored) == []
    above, scored = _pair(p, {"pass_sampled@2": 0.99}, reference="known")  # hi = 1 − ½·Cov_4 = 0.75
    assert "outside the coverage bracket" in agreement_problems(above, scored)[-1]
    lenient, scored = _pair(p, {"pass_sampled@2": 0.99}, reference="gold")  # a lenient verifier may exceed hi
    assert agreement_problems(lenient, scored) == []
    below, scored = _pair(p, {"pass_sampled@2": 0.05}, reference="gold")  # lo ≈ 0.49
    assert "outside the coverage bracket" in agreement_problems(below, scored)[0]


def test_floors_pass_fail_and_missing():
    floors = {"t": {"pass_exact@8": 0.9, "cov@4": 0.1, "kl": 1.0}}
    ok = record(metrics={"pass_exact@8": 0.95, "cov@4": 0.05, "kl": 0.5})
    assert floor_problems(ok, floors) == []
    bad = record(metrics={"pass_exact@8": 0.85, "cov@4": 0.2})
    problems = floor_problems(bad, floors)
    assert "floor pass_exact@8 ≥ 0.9: got 0.8500" in problems
    assert "floor cov@4 ≤ 0.1: got 0.2000" in problems  # lower-is-better metrics are upper bounds
    assert "floor kl ≤ 1: the metric is missing" in problems
    assert floor_problems(record(task="other", metrics={}), floors) == []


def test_runs_of_different_policies_are_not_compared():
    p = np.full(100, 0.3)
    far, scored = _pair(p, {"pass_sampled@1": 0.6})
    assert agreement_problems(far, scored)  # same (default) policy: compared, and they disagree
    hot = Run(far.record.model_copy(update={"provenance": provenance(sampling={"policy": "T=1.3"})}), None, far.samples)
    cold = Run(scored.record.model_copy(update={"provenance": provenance(sampling={"policy": "T=1"})}), scored.docs)
    assert not same_policy(hot.record, cold.record) and agreement_problems(hot, cold) == []
    same = Run(cold.record, None, far.samples)
    assert same_policy(same.record, cold.record)
