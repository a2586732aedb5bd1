"""Parametrises the suite: one test per (model, task) pair selected by --model / --tasks.

A model's tasks are ``--tasks`` when given, else the registry entry's ``tasks`` list, else every suite
task (every task YAML under tasks/ with a ``metadata.covbench`` block).
"""

from __future__ import annotations

import pytest

from covbench.plugin import SESSION_KEY
from covbench.runner import suite_tasks


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "job" not in metafunc.fixturenames:
        return
    session = metafunc.config.stash[SESSION_KEY]
    every = suite_tasks()
    unknown = [t for t in (session.tasks or []) if t not in every]
    if unknown:
        raise pytest.UsageError(f"--tasks: unknown task '{unknown[0]}' (suite tasks: {', '.join(every)})")
    jobs = [(spec, task) for spec in session.specs
            for task in (session.tasks or getattr(spec, "tasks", None) or every)]
    metafunc.parametrize("job", jobs, ids=[f"{spec.name}::{task}" for spec, task in jobs])
