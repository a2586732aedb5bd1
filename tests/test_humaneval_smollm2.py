"""SmolLM2-135M-Instruct on a tiny HumanEval slice, through lm-eval with covbench's backend and sandbox:
real generations, real sandboxed verdicts, real scores of the canonical solutions (CI's tiny run; the
documented run is docs/humaneval.md#smollm2)."""

from __future__ import annotations

import numpy as np
import pytest

from covbench.sandbox import STATUSES
from covbench.taskglue import records
from covbench.taskmeta import TASKS_DIR

pytestmark = pytest.mark.slow
PROBLEMS, N = 2, 2


@pytest.fixture(scope="module")
def smol():
    from covbench.arith.measure import smollm2_gguf
    from covbench.backends.fast_hf import FastHFLM

    gguf = smollm2_gguf()
    return FastHFLM(pretrained=str(gguf.parent), gguf_file=gguf.name, device="cpu", batch_size=8)


def _run(lm, task: str, **kw) -> dict:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"n": PROBLEMS})
    built = tm.load([task])["tasks"][task]
    built.config.repeats = N if built.config.output_type == "generate_until" else 1
    return simple_evaluate(model=lm, tasks=[built], task_manager=tm, log_samples=True, bootstrap_iters=0,
                           confirm_run_unsafe_code=True, verbosity="ERROR", **kw)


def test_smollm2_samples_are_judged_in_the_sandbox(smol) -> None:
    out = _run(smol, "humaneval_cov", gen_kwargs={"max_gen_toks": 48})
    samples = out["samples"]["humaneval_cov"]
    assert len(samples) == PROBLEMS
    for s in samples:
        judged = s["filtered_resps"][0]
        assert len(judged) == N and [j["text"] for j in judged] == [str(r) for r in s["resps"][0]]
        assert all(j["detail"].split(":")[0] in STATUSES for j in judged)
    _, arrays = records(samples, "sample")
    res = out["results"]["humaneval_cov"]
    assert res["pass_sampled@1,sandbox"] == pytest.approx(float(np.mean([r.mean() for r in arrays.correct.rows()])))


def test_smollm2_scores_the_canonical_solutions(smol) -> None:
    out = _run(smol, "humaneval_cov_ll")
    docs, _ = records(out["samples"]["humaneval_cov_ll"], "loglikelihood")
    assert len(docs) == PROBLEMS and np.all(np.isfinite(docs.logp_model))
    # a whole program is one string among very many correct ones: far below probability 1/1024
    assert np.all(docs.logp_model < -np.log(1024))
    assert out["results"]["humaneval_cov_ll"]["cov@1024,none"] == 1.0
