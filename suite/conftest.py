"""Parametrises the suite: one test per (model, task) pair selected by --model / --tasks.

A model's tasks are ``--tasks`` when given, else the registry entry's ``tasks`` list, else every suite
task (every task YAML under tasks/ with a ``metadata.covbench`` block). Jobs of one model share an
xdist group, so ``pytest suite/ -n 2 --dist loadgroup`` loads each model in one worker.
"""

from __future__ import annotations

import pytest

from covbench.plugin import SESSION_KEY
from covbench.runner import suite_tasks


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "job" not in metafunc.fixturenames:
        return
    session = metafunc.config.stash[SESSION_KEY]
    every = suite_tasks(session.tasks_dir) if session.tasks_dir else suite_tasks()
    jobs = [(spec, task) for spec in session.specs
            for task in (session.tasks or getattr(spec, "tasks", None) or every)]
    # One xdist group per model: with `-n N --dist loadgroup` a model is loaded by one worker only,
    # and its paired tasks (sampling vs scoring) reuse each other's stored results.
    params = [pytest.param((spec, task), id=f"{spec.name}::{task}", marks=pytest.mark.xdist_group(spec.name))
              for spec, task in jobs]
    metafunc.parametrize("job", params)
