"""The YAML-only extension of a gsm8k-style task with covbench's coverage and Pass@N (docs/gold-answer.md)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import lm_eval
import numpy as np
import pytest
from scipy.special import comb

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from covbench.arith import lmeval
from covbench.arith.fakelm import KnownLM
from covbench.arith.verifier import extract_number

from covbench.taskmeta import TASKS_DIR as TASKS  # noqa: E402
DATA = TASKS / "gsm8k_cov" / "data"
REAL_GSM8K = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml"


def rows(split: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"{split}.jsonl").read_text().splitlines()]


def logp_of(solution: str) -> float:
    return -len(solution) / 20.0  # known: −log π̂(y*|x) grows with the solution's length


def n_ok(solution: str) -> int:
    return int(extract_number(solution)) % 3 + 1  # 1..3 of the n samples verify


def sample_of(solution: str, j: int) -> str:
    gold = int(extract_number(solution))
    if j >= n_ok(solution):
        return f" I think it is {gold + 2}.\n#### {gold + 2}"
    return f" Step by step: ...\n#### {gold:,}" if j % 2 == 0 else f" The answer is {gold}."


def known_lm() -> KnownLM:
    table = {r["question"]: r["answer"] for r in rows("train") + rows("test")}
    return KnownLM(table, logp_of=logp_of, sample_of=sample_of,
                   continuation_of=lambda sol: f" {sol}", question_marker="Question: ")


def evaluate(tasks: list[str], include_path: list[str]) -> dict:
    return simple_evaluate(model=known_lm(), tasks=tasks, log_samples=True, bootstrap_iters=0,
                           task_manager=TaskManager(include_path=include_path, include_defaults=False))


def expected_sampled(n: int, k: int) -> float:
    c = np.array([n_ok(r["answer"]) for r in rows("test")])
    return float(np.mean(1 - comb(n - c, k) / comb(n, k)))


def test_data_file_is_in_gsm8k_format() -> None:
    for r in rows("train") + rows("test"):
        assert set(r) == {"question", "answer"}
        assert r["answer"].splitlines()[-1].startswith("#### ")
        assert extract_number(r["answer"]) is not None


def test_shipped_extension_sampled_and_ll() -> None:
    out = evaluate(["gsm8k_cov", "gsm8k_cov_ll"], [str(TASKS)])
    res = out["results"]["gsm8k_cov"]
    for k in (1, 2, 4, 8):
        assert res[f"pass_sampled@{k},all"] == pytest.approx(expected_sampled(8, k))
    # the prompt is gsm8k's own: 5-shot "Question: ...\nAnswer: <solution>", ending in "Answer:"
    ctx = out["samples"]["gsm8k_cov"][0]["arguments"][0][0]
    assert ctx.count("Question: ") == 6 and ctx.endswith("\nAnswer:")
    ll = out["results"]["gsm8k_cov_ll"]
    p = np.exp([logp_of(r["answer"]) for r in rows("test")])
    assert ll["ce,none"] == pytest.approx(float(np.mean(-np.log(p))))
    for n in (2, 16, 1024):
        assert ll[f"cov@{n},none"] == pytest.approx(float(np.mean(p <= 1 / n)))
    assert ll["pass_pred@8,none"] == pytest.approx(float(np.mean(1 - (1 - p) ** 8)))
    docs, _ = lmeval.records(out["samples"]["gsm8k_cov_ll"], "loglikelihood")
    assert docs is not None and docs.logp_ref.tolist() == [0.0] * len(p)
    _, sampled = lmeval.records(out["samples"]["gsm8k_cov"], "sample")
    assert sampled is not None and [int(sum(r)) for r in sampled.correct.rows()] == [n_ok(r["answer"]) for r in rows("test")]


def test_include_the_real_lm_eval_gsm8k_yaml(tmp_path: Path) -> None:
    """The documented recipe, literally: include lm-eval's own gsm8k.yaml, point it at a local file."""
    assert REAL_GSM8K.is_file()
    (tmp_path / "my_gsm8k_cov.yaml").write_text(f"""
include: {REAL_GSM8K}
task: my_gsm8k_cov
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files: {{train: {DATA / 'train.jsonl'}, test: {DATA / 'test.jsonl'}}}
repeats: 4
generation_kwargs: {{until: ["Question:"], max_gen_toks: 256, do_sample: true, temperature: 1.0}}
filter_list:
  - name: all
    filter: [{{function: custom, filter_fn: !function covbench.taskglue.keep_all}}]
process_results: !function covbench.arith.lmeval.process_verified
metric_list:
  - {{metric: "pass_sampled@1", aggregation: mean, higher_is_better: true}}
  - {{metric: "pass_sampled@4", aggregation: mean, higher_is_better: true}}
  - {{metric: "answered", aggregation: mean, higher_is_better: true}}
metadata:
  version: 3.0
  covbench: {{reference: gold, kind: sample, adapter: "covbench.arith.lmeval:records"}}
""")
    res = evaluate(["my_gsm8k_cov"], [str(tmp_path)])["results"]["my_gsm8k_cov"]
    assert res["pass_sampled@1,all"] == pytest.approx(expected_sampled(4, 1))
    assert res["pass_sampled@4,all"] == pytest.approx(expected_sampled(4, 4))
    assert res["answered,all"] == 1.0
    assert not math.isnan(res["pass_sampled@1,all"])
