"""summarize(): per-doc arrays → metrics, checked against direct numpy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import comb

from covbench.records import DocArrays, SampleArrays
from covbench.summarize import summarize
from records_factory import gold_docs

NS = (1.0, 2.0, 4.0, 8.0)


def test_gold_reference_matches_direct_formulas():
    p = np.array([0.9, 0.5, 0.2, 0.01, 0.3])
    m = summarize(gold_docs(np.log(p).tolist()), None, "gold", cov_ns=NS, pass_ns=(1.0, 4.0))
    assert m["ce"].value == pytest.approx(np.mean(-np.log(p)))
    assert m["ce_per_token"].value == pytest.approx(np.sum(-np.log(p)) / (2 * p.size))
    assert m["bpb"].value == pytest.approx(np.sum(-np.log(p)) / (4 * p.size) / math.log(2))
    for n in NS:  # Cov_N = P_x[π̂(y*|x) ≤ 1/N]
        assert m[f"cov@{n:g}"].value == pytest.approx(np.mean(p <= 1 / n))
    for n in (1, 4):
        pred = np.mean(1 - (1 - p) ** n)
        assert m[f"pass_pred@{n}"].value == pytest.approx(pred)
        assert m[f"pass_pred_lo@{n}"].value <= pred + 1e-12 <= m[f"pass_pred_hi@{n}"].value + 2e-12
    assert "kl" not in m and "pass_exact@1" not in m
    assert m["ce"].lo <= m["ce"].value <= m["ce"].hi and m["ce"].stderr > 0


def test_known_reference_with_support_is_exact_expectation():
    # doc 0: π_D uniform over 2 paths; doc 1: deterministic.
    ref = [[math.log(0.5)] * 2, [0.0]]
    mod = [[math.log(0.4), math.log(0.05)], [math.log(0.7)]]
    docs = DocArrays(doc_id=[0, 1], logp_model=[math.log(0.4), math.log(0.7)], logp_ref=[math.log(0.5), 0.0],
                     n_tokens=[3, 3], n_bytes=[6, 6], support_logp_ref=ref, support_logp_model=mod,
                     logp_correct=[math.log(0.45), math.log(0.7)])
    m = summarize(docs, None, "known", cov_ns=(2.0, 8.0), pass_ns=(1.0, 2.0))
    ce0 = 0.5 * -math.log(0.4) + 0.5 * -math.log(0.05)
    assert m["ce"].value == pytest.approx((ce0 - math.log(0.7)) / 2)  # exact expectation over π_D
    kl0 = 0.5 * math.log(0.5 / 0.4) + 0.5 * math.log(0.5 / 0.05)
    kl1 = math.log(1 / 0.7)
    assert m["kl"].value == pytest.approx((kl0 + kl1) / 2)
    # X: doc0 paths 0.223, 2.303; doc1 0.357. Cov_2 (log 2 = 0.693): doc0 0.5, doc1 0 → 0.25
    assert m["cov@2"].value == pytest.approx(0.25)
    assert m["cov@8"].value == pytest.approx(0.25)  # 2.303 ≥ log 8 = 2.079
    assert m["pass_exact@2"].value == pytest.approx(np.mean([1 - 0.55 ** 2, 1 - 0.3 ** 2]))
    assert "pass_pred@1" not in m  # doc 0 has two correct answers: no single-answer bracket


def test_sampled_pass_is_unbiased_estimator_and_missing_beyond_n():
    correct = [[True, False, False, True], [False] * 4, [True] * 4]
    s = SampleArrays(doc_id=[0, 1, 2], generations=[["x"] * 4] * 3, correct=correct, max_gen_toks=5)
    m = summarize(None, s, "known", pass_ns=(1.0, 2.0, 8.0))
    direct = np.mean([1 - comb(4 - sum(r), 2) / comb(4, 2) for r in correct])
    assert m["pass_sampled@2"].value == pytest.approx(direct)
    assert m["pass_sampled@1"].value == pytest.approx(6 / 12)
    assert math.isnan(m["pass_sampled@8"].value)  # k > n: missing, never 1.0


def test_uncovered_reference_is_inf_not_nan():
    m = summarize(gold_docs([-math.inf, -0.1]), None, "gold", cov_ns=(2.0,), pass_ns=(1.0,))
    assert m["ce"].value == math.inf
    assert m["cov@2"].value == pytest.approx(0.5)


def test_empty_run_has_no_metrics():
    assert summarize(None, None, "gold") == {}
