"""The benchmark suite: ``pytest suite/ --model NAME`` scores each selected model on each task.

Each test runs one (model, task) job through lm-eval (or reuses the stored result), stores it, adds it
to the terminal summary, then asserts what must hold for any model (curves in range, Cov_N
non-increasing in N, exact and sampled Pass@N agreeing within sampling error, measured Pass@N inside
the coverage bracket) and the model's own regression floors from the registry.
"""

from __future__ import annotations

import pytest

from covbench import checks
from covbench.backends import BackendError
from covbench.runner import RunError, TaskError, run_job


def test_job(job, covbench_results_dir, covbench_tasks_dir, covbench_samples_n, covbench_lm, covbench_record):
    spec, task = job
    try:
        outcome = run_job(spec, task, covbench_results_dir, n=covbench_samples_n, get_lm=covbench_lm,
                          tasks_dir=covbench_tasks_dir)
        covbench_record(outcome)
        problems = checks.record_problems(outcome.record)
        problems += checks.paired_problems(outcome.record, spec, covbench_results_dir, covbench_lm,
                                           tasks_dir=covbench_tasks_dir)
        problems += checks.floor_problems(outcome.record, spec)
    except (BackendError, RunError, TaskError) as e:
        pytest.fail(str(e), pytrace=False)
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
