"""The suite as a user runs it (`pytest suite/ --model NAME`), in a subprocess via pytester.

Small Fig. 1 task versions (12 prompts) in a temporary task folder (`--tasks-dir`) and random tiny
GPT-2s keep each run to seconds. Covers: scoring and the summary table, reuse from the store, growing n,
floors passing and failing, a model that fails to load, and pytest-xdist.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from suite_env import write_suite_env

from covbench.store import read_run, run_files

pytestmark = pytest.mark.slow
SUITE = Path(__file__).resolve().parent.parent / "suite"


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model_dir):
    return write_suite_env(tmp_path_factory.mktemp("suite-env"), tiny_model_dir, tiny_a=", default: true")


def _run(pytester, env, *args, results="results"):
    return pytester.runpytest_subprocess(
        str(SUITE), "-p", "no:randomly", "--models-file", str(env / "models.yaml"),
        "--tasks-dir", str(env / "tasks"), "--results-dir", str(env / results), *args)


def test_scores_stores_and_summarises_then_reuses(pytester, env):
    first = _run(pytester, env, "--model", "tiny-a", results="r1")
    first.assert_outcomes(passed=2)
    out = first.stdout.str()
    assert "covbench: 2 results in" in out and "tiny-a × mini: scored" in out
    header = next(line for line in out.splitlines() if line.startswith("model "))
    assert "CE" in header and "KL" in header and "Cov4" in header and "rCE" in header
    assert len(run_files(env / "r1", "tiny-a", "mini")) == 1 and len(run_files(env / "r1", "tiny-a", "mini_sample")) == 1
    again = _run(pytester, env, "--model", "tiny-a", results="r1")
    again.assert_outcomes(passed=2)
    assert again.stdout.str().count("reused the stored result") == 2
    assert len(run_files(env / "r1", "tiny-a", "mini")) == 1  # nothing rescored, nothing rewritten


def test_growing_n_draws_only_missing_samples(pytester, env):
    _run(pytester, env, "--model", "tiny-a", "--tasks", "mini_sample", results="r2").assert_outcomes(passed=1)
    grown = _run(pytester, env, "--model", "tiny-a", "--tasks", "mini_sample", "--samples-n", "5", results="r2")
    grown.assert_outcomes(passed=1)
    assert "drew 3 more samples per prompt (now 5)" in grown.stdout.str()
    latest = read_run(run_files(env / "r2", "tiny-a", "mini_sample")[-1])
    assert latest.samples.n == 5


def test_floors_gate_and_failing_model_does_not_stop_others(pytester, env):
    result = _run(pytester, env, "--model", "fam", "--model", "no-weights", "--tasks", "mini", results="r3")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert "floor pass_exact@8 ≥ 0.999: got" in out  # tiny-b's floor fails, tiny-a's floors pass
    assert "model 'no-weights': cannot load" in out
    assert run_files(env / "r3", "tiny-a", "mini") and run_files(env / "r3", "tiny-b", "mini")


def test_xdist_runs_jobs_in_parallel_without_losing_results(pytester, env):
    result = _run(pytester, env, "--model", "fam", "-n", "2", "--dist", "loadgroup", "-v", results="r4")
    result.assert_outcomes(passed=3, failed=1)  # tiny-b's floor on mini fails; everything is stored
    out = result.stdout.str()
    workers = {}  # model -> the xdist workers that ran its jobs: one each (covbench's loadgroup scheduler)
    for line in out.splitlines():
        if line.startswith("[gw") and "test_job[" in line:
            model = line.split("test_job[")[1].split("::")[0]
            workers.setdefault(model, set()).add(line.split("]")[0].lstrip("["))
    assert set(workers) == {"tiny-a", "tiny-b"} and all(len(w) == 1 for w in workers.values()), workers
    assert "covbench: 4 results in" in out
    for model in ("tiny-a", "tiny-b"):
        for task in ("mini", "mini_sample"):
            files = run_files(env / "r4", model, task)
            assert len(files) == 1 and read_run(files[0]).record.model == model


def test_unknown_model_and_task_are_usage_errors(pytester, env):
    result = _run(pytester, env, "--model", "tiny-c")
    assert result.ret == 4 and "did you mean" in result.stderr.str()
    result = _run(pytester, env, "--model", "tiny-a", "--tasks", "nope")
    assert result.ret == 4 and "--tasks: unknown task 'nope'" in result.stderr.str()
