"""HumanEval tasks (docs/humaneval.md): the problems offline, verdicts from the sandbox inside lm-eval,
lm-eval's unsafe-code gate and the runner's confirmation, the stored run (Pass@k, cov_set@M), the
canonical-solution scoring task and the T = 0.2 variant's settings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager
from scipy.special import comb
from script_lm import ScriptLM

from covbench.humaneval.lmeval import LIMITS, load_humaneval, sandbox_verdicts
from covbench.registry import load_registry
from covbench.runner import load_task, policy_label, run_job
from covbench.sandbox.humaneval import load_problems
from covbench.taskglue import records
from covbench.taskmeta import TASKS_DIR

HUMANEVAL = TASKS_DIR / "humaneval"
N_PROBLEMS, N_SAMPLES = 6, 4
CORRECT = [0, 1, 2, 3, 4, 1]  # samples of problem i that are its canonical solution (the rest are wrong)
WRONG = ["    return None\n",                       # fails its asserts
         "    import sys\n    sys.exit(0)\n",       # exits 0 before the tests: no evidence, not a pass
         "    return (\n",                          # SyntaxError
         "    return 1 +\n"]


@pytest.fixture(scope="module")
def problems() -> list[dict]:
    return load_problems()[:N_PROBLEMS]


def sample_of(problems: list[dict]):
    by_prompt = {p["prompt"]: i for i, p in enumerate(problems)}

    def sample(context: str, j: int) -> str:
        i = by_prompt[context]
        return problems[i]["canonical_solution"] if j < CORRECT[i] else WRONG[(i + j) % len(WRONG)]

    return sample


@pytest.fixture(scope="module")
def tiny_tasks(tmp_path_factory) -> Path:
    """The shipped tasks on the first 6 problems (the YAMLs included, not copied)."""
    folder = tmp_path_factory.mktemp("he-tasks")
    for name, source, extra in (("he_tiny", "humaneval_cov", "pairs_with: he_tiny_ll, "),
                                ("he_tiny_ll", "humaneval_cov_ll", ""),
                                ("he_tiny_t02", "humaneval_cov_t02", "")):
        kind = "loglikelihood" if name.endswith("_ll") else "sample"
        (folder / f"{name}.yaml").write_text(
            f"include: {HUMANEVAL / source}.yaml\ntask: {name}\nrepeats: {N_SAMPLES if kind == 'sample' else 1}\n"
            f"metadata:\n  version: 1.0\n  n: {N_PROBLEMS}\n"
            f"  covbench: {{{extra}reference: gold, kind: {kind}, adapter: 'covbench.taskglue:records'}}\n")
    return folder


def expected_pass(k: int) -> float:
    c = np.array(CORRECT)
    return float(np.mean(1 - comb(N_SAMPLES - c, k) / comb(N_SAMPLES, k)))


def test_the_164_problems_load_offline_and_slice() -> None:
    full = load_humaneval()["test"]
    assert len(full) == 164 and full[0]["task_id"] == "HumanEval/0" and full[163]["task_id"] == "HumanEval/163"
    assert set(full.features) == {"task_id", "prompt", "canonical_solution", "test", "entry_point"}
    part = load_humaneval(first=10, n=3, version=1.0, covbench={})["test"]  # other metadata keys ignored
    assert [d["task_id"] for d in part] == ["HumanEval/10", "HumanEval/11", "HumanEval/12"]
    for first, n in ((0, 0), (160, 5), (-1, 2)):
        with pytest.raises(ValueError, match="is not a slice of the 164 problems"):
            load_humaneval(first=first, n=n)


def test_filter_judges_every_sample_in_the_sandbox(problems) -> None:
    resps = [[p["canonical_solution"], *WRONG] for p in problems[:2]]
    out = sandbox_verdicts(resps, problems[:2])
    assert [[r["correct"] for r in row] for row in out] == [[True, False, False, False, False]] * 2
    assert [r["text"] for r in out[1]] == resps[1]
    details = [r["detail"].split(":")[0] for r in out[0]]
    assert details == ["passed", "failed", "no_evidence", "failed", "failed"]
    assert "SyntaxError" in out[0][3]["detail"]
    assert LIMITS.cpu_s == 3.0


def test_lm_eval_gates_unsafe_code_and_runs_it_when_confirmed(tiny_tasks, problems) -> None:
    tm = TaskManager(include_path=str(tiny_tasks), include_defaults=False)
    lm = ScriptLM(sample_of=sample_of(problems))
    with pytest.raises(ValueError, match="marked as unsafe"):
        simple_evaluate(model=lm, tasks=["he_tiny"], task_manager=tm, bootstrap_iters=0)
    out = simple_evaluate(model=lm, tasks=["he_tiny"], task_manager=tm, bootstrap_iters=0, log_samples=True,
                          confirm_run_unsafe_code=True)
    res = out["results"]["he_tiny"]
    for k in (1, 2, 4):
        assert res[f"pass_sampled@{k},sandbox"] == pytest.approx(expected_pass(k))
    assert "pass_sampled@8,sandbox" not in res  # N > n: missing, never 1.0
    contexts = {ctx for ctx, _ in lm.generated}
    assert contexts == {p["prompt"] for p in problems}  # 0-shot: the prompt verbatim
    kwargs = lm.generated[0][1]
    assert kwargs["do_sample"] is True and kwargs["temperature"] == 1.0 and kwargs["top_k"] == 0
    assert kwargs["until"] == ["\nclass", "\ndef", "\n#", "\nif", "\nprint"] and kwargs["max_gen_toks"] == 512
    _, samples = records(out["samples"]["he_tiny"], "sample")
    assert [int(row.sum()) for row in samples.correct.rows()] == CORRECT


def test_runner_confirms_and_stores_pass_at_k_and_the_correct_set_coverage(tiny_tasks, problems, tmp_path) -> None:
    reg = tmp_path / "models.yaml"
    reg.write_text(f"models:\n  - name: scripted\n    pretrained: {tmp_path}\n")
    spec = load_registry(reg).get("scripted")
    info = load_task("he_tiny", tiny_tasks)
    assert info.task.UNSAFE_CODE and info.descriptor.pairs_with == "he_tiny_ll"
    out = run_job(spec, "he_tiny", tmp_path / "store", get_lm=lambda s: ScriptLM(sample_of=sample_of(problems)),
                  tasks_dir=tiny_tasks)
    m = out.record.metrics
    for k in (1, 2, 4):
        assert m[f"pass_sampled@{k}"].value == pytest.approx(expected_pass(k))
    assert math.isnan(m["pass_sampled@8"].value)
    assert [int(r.sum()) for r in out.run.samples.correct.rows()] == CORRECT
    assert out.run.samples.generations.row(0)[0] == WRONG[0]
    # n = 4 resolves M <= 2: those are stored with a point and a finite-sample interval, the rest are not
    assert sorted(k for k in m if k.startswith("cov_set@")) == ["cov_set@1", "cov_set@1.5", "cov_set@2"]
    assert m["cov_set@1"].value == 1.0
    for key in ("cov_set@1.5", "cov_set@2"):
        e = m[key]
        assert 0.0 <= e.lo <= e.value <= e.hi <= 1.0 and e.stderr >= 0.0
    # a sixth of the prompts has p = 0 (never solved): Cov_M >= 1/6 at every M
    assert m["cov_set@2"].hi >= 1 / 6


def test_scoring_task_scores_the_canonical_solution_after_the_prompt(tiny_tasks, problems) -> None:
    lm = ScriptLM(logp_of=lambda ctx, cont: -len(cont) / 50.0)
    tm = TaskManager(include_path=str(tiny_tasks), include_defaults=False)
    out = simple_evaluate(model=lm, tasks=["he_tiny_ll"], task_manager=tm, bootstrap_iters=0, log_samples=True,
                          confirm_run_unsafe_code=True)
    assert lm.scored == [(p["prompt"], p["canonical_solution"]) for p in problems]
    lengths = np.array([len(p["canonical_solution"]) for p in problems]) / 50.0
    res = out["results"]["he_tiny_ll"]
    assert res["ce,none"] == pytest.approx(lengths.mean())
    assert res["cov@4,none"] == pytest.approx(float(np.mean(lengths >= math.log(4))))
    docs, _ = records(out["samples"]["he_tiny_ll"], "loglikelihood")
    assert docs.logp_model.tolist() == pytest.approx((-lengths).tolist()) and (docs.logp_ref == 0).all()
    assert docs.n_bytes.tolist() == [len(p["canonical_solution"].encode()) for p in problems]


def test_t02_variant_uses_lm_eval_humaneval_64_decoding(tiny_tasks, tmp_path) -> None:
    info = load_task("he_tiny_t02", tiny_tasks)
    gen = info.task.config.generation_kwargs
    assert gen["temperature"] == 0.2 and gen["top_p"] == 0.95 and "top_k" not in gen and gen["do_sample"]
    shipped = load_task("humaneval_cov_t02")
    assert shipped.descriptor.pairs_with is None and shipped.task.UNSAFE_CODE
    reg = tmp_path / "models.yaml"
    reg.write_text(f"models:\n  - name: m\n    pretrained: {tmp_path}\n")
    assert policy_label(load_registry(reg).get("m"), info) == "T=0.2,top_k=50,top_p=0.95"


def test_shipped_tasks_cover_all_164_problems() -> None:
    for name in ("humaneval_cov", "humaneval_cov_ll", "humaneval_cov_t02"):
        info = load_task(name)
        assert len(info.task.eval_docs) == 164 and info.task.UNSAFE_CODE
    assert load_task("humaneval_cov").repeats == 16
    assert load_task("humaneval_cov").descriptor.pairs_with == "humaneval_cov_ll"
