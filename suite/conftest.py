"""Parametrises the suite: one test per (model, task) pair selected by --model / --tasks.

A model's tasks are ``--tasks`` when given, else the registry entry's ``tasks`` list, else every suite
task (every task YAML under tasks/ with a ``metadata.covbench`` block). Jobs of one model go to one
xdist worker, so ``pytest suite/ -n 2 --dist loadgroup`` loads each model in one worker.
"""

from __future__ import annotations

import pytest

from covbench.plugin import SESSION_KEY, job_id
from covbench.runner import suite_tasks


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "job" not in metafunc.fixturenames:
        return
    session = metafunc.config.stash[SESSION_KEY]
    every = suite_tasks(session.tasks_dir) if session.tasks_dir else suite_tasks()
    jobs = [(spec, task) for spec in session.specs
            for task in (session.tasks or getattr(spec, "tasks", None) or every)]
    # One worker per model under `-n N --dist loadgroup` (covbench.plugin's scheduler reads the model
    # from the id): a model is loaded once and its paired tasks reuse each other's stored results.
    params = [pytest.param((spec, task), id=job_id(spec.name, task)) for spec, task in jobs]
    metafunc.parametrize("job", params)
