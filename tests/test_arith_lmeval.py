"""arith_ll / arith_sample through lm-eval on a model whose probabilities are known (closed forms)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.special import comb

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from covbench.arith import lmeval
from covbench.arith.fakelm import KnownLM
from covbench.arith.generator import generate
from covbench.metrics import DEFAULT_COV_NS, DEFAULT_PASS_NS, pass_bracket
from covbench.records import DocArrays, SampleArrays

from covbench.taskmeta import TASKS_DIR as TASKS  # noqa: E402
N_LL, N_SAMPLE, REPEATS = 64, 32, 16


def p_gold(answer: int) -> float:
    """π̂(y*|x) = 2^-(answer mod 9): from 1 down to 1/256, so every Cov_N threshold is crossed."""
    return 2.0 ** -(answer % 9)


def n_correct(answer: int) -> int:
    return answer % 5  # 0..4 of the 16 samples verify


def sample_of(answer: int, j: int) -> str:
    """The j-th sample: correct ones alternate strict (" 68") and verifier-only ("The answer is 68.")."""
    if j >= n_correct(answer):
        return f" {answer + 1}"
    return f" {answer}" if j % 2 == 0 else f" The answer is {answer}."


def known_lm() -> KnownLM:
    problems = generate(N_LL, seed=1234) + generate(8, seed="arith-fewshot-1234")
    return KnownLM({p.question: p.answer for p in problems}, logp_of=lambda a: math.log(p_gold(a)),
                   sample_of=sample_of, continuation_of=lambda a: f" {a}\n")


@pytest.fixture(scope="module")
def run() -> tuple[dict, KnownLM]:
    lm = known_lm()
    out = simple_evaluate(model=lm, tasks=["arith_ll", "arith_sample"], log_samples=True,
                          task_manager=TaskManager(include_path=str(TASKS), include_defaults=False),
                          bootstrap_iters=0)
    return out, lm


def test_ll_metrics_match_closed_forms(run) -> None:
    out, _ = run
    res = out["results"]["arith_ll"]
    p = np.array([p_gold(d.answer) for d in generate(N_LL, seed=1234)])
    assert res["ce,none"] == pytest.approx(np.mean(-np.log(p)))
    for n in DEFAULT_COV_NS:
        key = f"cov@{lmeval.metric_key('cov', n).split('@')[1]},none"
        # Cov_N = P_x[π̂(y*|x) ≤ 1/N] (docs/coverage-principle.md#gold-reference), compared in log space
        expected = np.mean(-np.log(p) >= math.log(n) - 1e-12)
        assert res[key] == pytest.approx(expected), key
    for n in DEFAULT_PASS_NS:
        assert res[f"pass_pred@{n},none"] == pytest.approx(np.mean(1 - (1 - p) ** n))
        b = pass_bracket(-np.log(p), [n])
        assert res[f"pass_pred_lo@{n},none"] == pytest.approx(float(b.lo[0]))
        assert res[f"pass_pred_hi@{n},none"] == pytest.approx(float(b.hi[0]))
        assert b.lo[0] - 1e-12 <= res[f"pass_pred@{n},none"] <= b.hi[0] + 1e-12
    assert math.isnan(res["ce_per_token,none"])  # stock responses carry no token counts: missing, not 0


def test_sampled_pass_matches_unbiased_estimator(run) -> None:
    out, _ = run
    res = out["results"]["arith_sample"]
    answers = [d.answer for d in generate(N_SAMPLE, seed=1234)]
    for k in [k for k in DEFAULT_PASS_NS if k <= REPEATS]:
        c = np.array([n_correct(a) for a in answers])
        strict = (c + 1) // 2  # even-indexed correct samples are the exact string
        expect = np.mean(1 - comb(REPEATS - c, k) / comb(REPEATS, k))
        expect_strict = np.mean(1 - comb(REPEATS - strict, k) / comb(REPEATS, k))
        assert res[f"pass_sampled@{k},all"] == pytest.approx(expect)
        assert res[f"pass_strict@{k},all"] == pytest.approx(expect_strict)
    assert "pass_sampled@32,all" not in res  # N > n: not reported
    assert res["answered,all"] == 1.0


def test_prompt_format_base(run) -> None:
    out, _ = run
    ctx = out["samples"]["arith_ll"][0]["arguments"][0][0]
    assert ctx.startswith("Answer each question with a number.\n\nQ: ")
    assert ctx.endswith("\nA:") and ctx.count("\nA: ") == 4  # 4 solved few-shot examples
    assert out["samples"]["arith_ll"][0]["arguments"][0][1] == f" {generate(1, seed=1234)[0].answer}\n"


def test_adapter_records(run) -> None:
    out, _ = run
    docs, none = lmeval.records(out["samples"]["arith_ll"], "loglikelihood")
    assert none is None and isinstance(docs, DocArrays)
    answers = [d.answer for d in generate(N_LL, seed=1234)]
    assert docs.doc_id.tolist() == list(range(N_LL))
    assert docs.logp_model.tolist() == pytest.approx([math.log(p_gold(a)) for a in answers])
    assert docs.logp_ref.tolist() == [0.0] * N_LL
    assert docs.n_bytes.tolist() == [len(f" {a}\n") for a in answers]
    none, samples = lmeval.records(out["samples"]["arith_sample"], "sample")
    assert none is None and isinstance(samples, SampleArrays)
    assert samples.n == REPEATS and samples.max_gen_toks == 10 and samples.temperature == 1.0
    answers = answers[:N_SAMPLE]
    assert [int(sum(row)) for row in samples.correct.rows()] == [n_correct(a) for a in answers]
    assert lmeval.records([], "sample") == (None, None)


def test_chat_format_opens_the_assistant_turn_with_the_prefix() -> None:
    lm = known_lm()
    out = simple_evaluate(model=lm, tasks=["arith_ll"], limit=2, log_samples=True, apply_chat_template=True,
                          fewshot_as_multiturn=True, bootstrap_iters=0,
                          task_manager=TaskManager(include_path=str(TASKS), include_defaults=False))
    ctx = out["samples"]["arith_ll"][0]["arguments"][0][0]
    assert ctx.startswith("<|im_start|>system\nAnswer each question with a number.")
    assert ctx.count("<|im_start|>assistant\nA: ") == 4  # few-shot answers as assistant turns
    assert ctx.endswith("<|im_start|>assistant\nA:")  # y* = " 68\n" continues the same turn


def test_yaml_metric_lists_match_process_results() -> None:
    ll = yaml.load((TASKS / "arith_ll.yaml").read_text(), Loader=_AnyTagLoader)
    assert [m["metric"] for m in ll["metric_list"]] == lmeval.ll_metric_names()
    block = ll["metadata"]["covbench"]
    assert {k: block[k] for k in ("reference", "kind", "adapter")} == {
        "reference": "gold", "kind": "loglikelihood", "adapter": "covbench.arith.lmeval:records"}
    assert block["classes"] == ["add", "mul", "add_word", "mul_word"]
    sample = yaml.load((TASKS / "arith_sample.yaml").read_text(), Loader=_AnyTagLoader)
    assert [m["metric"] for m in sample["metric_list"]] == lmeval.sample_metric_names(sample["repeats"])
    assert sample["metadata"]["covbench"]["kind"] == "sample"
    for m in ll["metric_list"] + sample["metric_list"]:
        assert m["higher_is_better"] is (m["metric"].startswith("pass") or m["metric"] == "greedy_gold"
                                         or m["metric"] == "answered"), m


def test_process_functions_edge_cases() -> None:
    m = lmeval.process_ll({"answer": 3}, [(float("-inf"), False)])  # y* impossible under the model
    assert m["ce"] == math.inf and m["cov@1024"] == 1.0 and m["pass_pred@32"] == 0.0
    m = lmeval.process_ll({"answer": 3}, [(0.0, True, [0.0, 0.0])])  # certain; token counts known
    assert m["cov@1"] == 1.0 and m["cov@1.5"] == 0.0 and m["pass_pred@1"] == 1.0
    assert m["ce_per_token"] == (0.0, 2.0) and m["greedy_gold"] == 1.0
    v = lmeval.process_verified({"answer": 5}, [" 5"])  # a single sample (take_first) is n = 1
    assert v == {"pass_sampled@1": 1.0, "answered": 1.0}
    assert math.isnan(lmeval.agg_bracket_lo([]))


class _AnyTagLoader(yaml.SafeLoader):
    """Reads task YAMLs without resolving lm-eval's !function tags."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: f"!{suffix}")
