"""The benchmark suite: ``pytest suite/ --model NAME`` scores each selected model on each task.

Jobs run where ``--executor`` says (local, the default, or ray: docs/executors.md); the outcome, the
store and the failures are the same either way.

Each test runs one (model, task) job through lm-eval (or reuses the stored result), stores it, adds it
to the terminal summary, then asserts what must hold for any model (curves in range, Cov_N
non-increasing in N, exact and sampled Pass@N agreeing within sampling error, measured Pass@N inside
the coverage bracket) and the model's own regression floors from the registry. The checks are pure
functions of stored runs (``covbench.checks``); this test fetches the runs they compare.
"""

from __future__ import annotations

import pytest

from covbench import checks
from covbench.backends import BackendError
from covbench.runner import RunError, TaskError


def test_job(job, covbench_results_dir, covbench_tasks_dir, covbench_samples_n, covbench_executor, covbench_record):
    spec, task = job
    run_job = covbench_executor.run_job  # here (local) or on the Ray cluster (--executor ray); the driver stores
    try:
        outcome = run_job(spec, task, covbench_results_dir, n=covbench_samples_n, tasks_dir=covbench_tasks_dir)
        covbench_record(outcome)
        problems = checks.record_problems(outcome.run)
        partner = outcome.record.descriptor.pairs_with
        if partner and outcome.run.samples is not None:
            scored = run_job(spec, partner, covbench_results_dir, tasks_dir=covbench_tasks_dir)
            covbench_record(scored)
            problems += checks.agreement_problems(outcome.run, scored.run)
        problems += checks.floor_problems(outcome.record, spec.floors)
    except (BackendError, RunError, TaskError) as e:
        pytest.fail(str(e), pytrace=False)
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
