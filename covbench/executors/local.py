"""The local executor: every job computed in the calling process (the suite's path since the start).

One :class:`~covbench.executors.worker.ModelWorker` per model, kept for the process's life, so a model
is loaded once per process (the backend cache) and serves all its tasks; pytest-xdist with
``--dist loadgroup`` gives parallelism across processes. The sequence per job is
:func:`covbench.runner.run_job`'s: build the task, plan from the store, compute, write.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from covbench.executors.base import Executor
from covbench.executors.worker import JobResult, ModelWorker
from covbench.registry import ModelSpec
from covbench.runner import JobPlan, TaskInfo


class LocalExecutor(Executor):
    """Jobs run here, one after another. ``get_lm``: the LM factory (default: the backend cache);
    ``worker_class``: what computes a run (a :class:`ModelWorker` subclass)."""

    name = "local"

    def __init__(self, *, get_lm: Callable[[ModelSpec], Any] | None = None,
                 worker_class: type[ModelWorker] = ModelWorker, **options: Any) -> None:
        super().__init__(**options)
        self.get_lm, self.worker_class = get_lm, worker_class
        self._workers: dict[str, ModelWorker] = {}

    def result(self, spec: ModelSpec, plan: JobPlan, info: TaskInfo, tasks_dir: Path,
               results_dir: Path) -> JobResult:
        worker = self._workers.get(spec.name)
        if worker is None or worker.driver_spec != spec or worker.tasks != str(tasks_dir):
            worker = self._workers[spec.name] = self.worker_class(spec, self.base_dir, self.get_lm, str(tasks_dir),
                                                                         in_driver=True)
        return worker.run_with(plan, info)
