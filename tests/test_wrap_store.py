"""Wrapped tasks through covbench's runner into the store and onto the site: two scripted models on the four
wrapped lm-eval tasks; every stored number is on the task boards, and the model pages show the coverage of
the correct set next to Pass@k (docs/wrap.md, docs/humaneval.md#site)."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from script_lm import ScriptLM
from wrap_data import ARC, GSM8K, MMLU, TRIVIAQA, rows, write_jsonl

from covbench.registry import load_registry
from covbench.runner import run_job
from covbench.site import build, fmt
from covbench.store import catalog, slug
from covbench.wrap.cli import main as wrap_main

N = 8  # the boards rank at Pass@8
TASKS = {"gsm8k": ("gsm8k_wrap", "gsm8k_wrap_ll"), "arc_easy": ("arc_easy_wrap_ll",),
         "mmlu_anatomy": ("mmlu_anatomy_wrap_ll",), "triviaqa": ("triviaqa_wrap", "triviaqa_wrap_ll")}


def model_lm(skill: int) -> ScriptLM:
    """A scripted model: the first ``skill`` of every prompt's N samples give the gold; log-probs by skill."""
    gsm = {r["question"]: r["answer"] for r in rows(GSM8K / "test.jsonl") + rows(GSM8K / "train.jsonl")}
    tqa = {r["question"]: r["answer"]["aliases"][0] for r in TRIVIAQA}

    def sample(ctx: str, j: int) -> str:
        q = ctx.rsplit("Question: ", 1)[-1].split("\n", 1)[0]
        if q in gsm:
            return f" so\n#### {gsm[q].split('####')[-1].strip()}" if j < skill else " #### -1"
        return f" {tqa[q[:-1]]}" if j < skill else " nobody"

    return ScriptLM(logp_of=lambda ctx, cont: -len(cont) / (10.0 * skill), sample_of=sample)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wrap-store")
    data = {"gsm8k": {s: write_jsonl(base / "d" / f"gsm8k_{s}.jsonl", rows(GSM8K / f"{s}.jsonl")) for s in ("test", "train")},
            "arc_easy": {"test": write_jsonl(base / "d" / "arc.jsonl", ARC)},
            "mmlu_anatomy": {"test": write_jsonl(base / "d" / "mmlu.jsonl", MMLU)},
            "triviaqa": {"validation": write_jsonl(base / "d" / "tqa.jsonl", TRIVIAQA)}}
    for task, files in data.items():
        args = [task, "--out", str(base / "tasks"), "--n", str(N), "--num-fewshot", "0"]
        assert wrap_main(args + [a for s, f in files.items() for a in ("--data", f"{s}={f}")]) == 0
    reg = base / "models.yaml"
    reg.write_text(f"models:\n  - name: weak\n    pretrained: {base}\n  - name: strong\n    pretrained: {base}\n")
    registry = load_registry(reg)
    for name, skill in (("weak", 1), ("strong", 3)):
        for origin, tasks in TASKS.items():
            for task in tasks:
                out = run_job(registry.get(name), task, base / "store", get_lm=lambda s, k=skill: model_lm(k),
                              tasks_dir=base / "tasks" / origin)
                assert not out.reused
    return base / "store"


def test_stored_runs_hold_verdicts_pass_at_k_and_cov_set(store) -> None:
    cat = catalog(store)
    assert len(cat) == 2 * sum(len(t) for t in TASKS.values()) and not cat.errors
    for i in range(len(cat)):
        run = cat.load(i)
        if run.record.descriptor.kind == "sample":
            c = 3 if run.record.model == "strong" else 1
            assert [int(r.sum()) for r in run.samples.correct.rows()] == [c] * len(run.samples)
            assert run.record.metrics["pass_sampled@1"].value == pytest.approx(c / N)
            assert {"cov_set@1", "cov_set@2", "cov_set@4"} <= set(run.record.metrics)
            assert run.record.descriptor.pairs_with == run.record.task + "_ll"
        else:
            assert run.docs.logp_ref.tolist() == [0.0] * len(run.docs) and "cov@4" in run.record.metrics


def test_site_shows_the_wrapped_tasks(store, tmp_path) -> None:
    out = tmp_path / "site"
    assert build.main(["build", "--results", str(store), "--out", str(out)]) == 0
    cat = catalog(store)
    for tasks in TASKS.values():
        page = (out / "tasks" / f"{slug(tasks[-1])}.html").read_text()  # the scoring task's board
        for i in (i for i in range(len(cat)) if cat.task(i) in tasks):
            key = "pass_sampled@8" if cat.task(i) != tasks[-1] else "ce"  # a sampler joins its scorer's board
            assert f'data-v="{fmt.sort_key(cat.estimate(i, key).value)}">{fmt.num(cat.estimate(i, key).value)}' in page
        assert "weak" in page and "strong" in page
    model = (out / "models" / f"{slug('strong')}.html").read_text()
    assert "Cov_N of the correct set" in html.unescape(model)
    i = next(i for i in range(len(cat)) if cat.task(i) == "gsm8k_wrap" and cat.model(i) == "strong")
    e = cat.estimate(i, "cov_set@2")
    assert f"{fmt.num(e.value)} <span class=\"ci\" title=\"95% finite-sample interval\">{fmt.interval(e.lo, e.hi)}" in model
