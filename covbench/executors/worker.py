"""The worker side of a job: one model, loaded once, computing runs from the driver's plans.

:class:`ModelWorker` never touches the store: it gets a :class:`~covbench.runner.JobPlan` (which already
carries the stored samples an extension appends to) and returns a :class:`JobResult` holding the whole
:class:`~covbench.records.Run`. Model-side failures (weights that do not load, a crash while a task
runs, a task the worker cannot build) come back as a failed result with the same one line the local
suite prints; they are never retried (docs/executors.md "Faults"). The class has no Ray import: the
local executor runs it in-process, the Ray executor wraps it in an actor.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from covbench.records import Run
from covbench.registry import ModelSpec

#: Why a job failed: the exception class the driver raises again with the same one-line message.
FailureKind = Literal["backend", "run", "task"]


@dataclass(frozen=True)
class JobResult:
    """What a worker hands back for one job: the run, or the one-line reason it has none."""

    model: str
    task: str
    run: Run | None
    failure: FailureKind | None = None
    message: str = ""
    worker: str = ""  # "host:pid" of the process that ran it
    restarted: bool = False  # computed by a worker restarted after a lost one (a retry)
    seconds: float = 0.0
    path: Path | None = None  # set by a driver that stored the run on arrival (then ``run`` may be dropped)

    def unwrap(self) -> Run:
        """The run, or the job's failure raised again as the exception the local suite raises."""
        if self.run is not None:
            return self.run
        if self.path is not None and self.failure is None:
            from covbench.store import read_run

            return read_run(self.path)
        from covbench.backends import BackendError
        from covbench.runner import RunError, TaskError

        cls = {"backend": BackendError, "task": TaskError}.get(self.failure or "run", RunError)
        raise cls(self.message)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ModelWorker:
    """Serves one model's jobs in one process: the model is loaded on the first job and kept.

    ``spec`` is the driver's spec. A ``pkg:`` source is resolved again here, in this worker's own
    site-packages (against ``base_dir``, the registry file's folder on the driver); a local folder must
    be at the same path on every node, a hub id is fetched by each worker (docs/executors.md).
    ``get_lm``: the LM factory (default :func:`covbench.backends.get_lm`, a per-process cache).
    ``tasks_dir``: the task folder on this machine (None: the tasks shipped with covbench), or a
    :class:`~covbench.executors.taskship.TaskBundle` shipped by the driver.
    """

    def __init__(self, spec: ModelSpec, base_dir: str = ".", get_lm: Callable[[ModelSpec], Any] | None = None,
                 tasks: Any = None, *, in_driver: bool = False) -> None:
        self.driver_spec, self.base_dir, self.get_lm, self.tasks = spec, base_dir, get_lm, tasks
        self.in_driver = in_driver  # running in the driver's own process: its spec and tasks are ours
        self._spec: ModelSpec | None = None
        self._tasks_dir: Path | None = None

    def ready(self) -> str:
        """Where this worker runs ("host:pid"); the driver's first call, so it knows the worker is up."""
        return worker_id()

    def run(self, plan: Any) -> JobResult:
        """Compute the run ``plan`` (a :class:`~covbench.runner.JobPlan`) asks for."""
        return self.run_with(plan, None)

    def run_with(self, plan: Any, info: Any) -> JobResult:
        """:meth:`run`, given the task already built in this process (``info``; None: build it here)."""
        from covbench.backends import BackendError
        from covbench.runner import RunError, TaskError

        start = time.perf_counter()
        try:
            run = self.compute(plan, info)
        except BackendError as e:
            return self._failed(plan, "backend", str(e), start)
        except TaskError as e:
            return self._failed(plan, "task", str(e), start)
        except RunError as e:
            return self._failed(plan, "run", str(e), start)
        return JobResult(plan.model, plan.task, run, worker=worker_id(), restarted=self.restarted(),
                         seconds=time.perf_counter() - start)

    def compute(self, plan: Any, info: Any = None) -> Run:
        """The run of one plan (subclasses may compute it differently, e.g. benchmarks' synthetic runs)."""
        from covbench.runner import RunError, compute_run, load_task

        spec, tasks_dir = self.spec(), self.tasks_dir()
        info = info or load_task(plan.task, tasks_dir)
        if info.task_hash != plan.task_hash:
            raise RunError(f"model '{plan.model}' × task '{plan.task}': the worker's task differs from the "
                           f"driver's (task hash {info.task_hash[:12]} vs {plan.task_hash[:12]}): install the "
                           f"same covbench and task files on every node")
        return compute_run(spec, plan, info, get_lm=self.get_lm, tasks_dir=tasks_dir)

    def spec(self) -> ModelSpec:
        """The model spec, with a ``pkg:`` source found on this machine (a failure: one-line ``BackendError``)."""
        if self._spec is None:
            spec = self.driver_spec
            if spec.pretrained.startswith("pkg:") and not self.in_driver:
                from pydantic import ValidationError

                from covbench.backends import BackendError

                try:
                    spec = ModelSpec.model_validate(spec.model_dump(), context={"base_dir": Path(self.base_dir)})
                except ValidationError as e:
                    err = e.errors()[0]
                    field = getattr((err.get("ctx") or {}).get("error"), "field", None) or "pretrained"
                    raise BackendError(f"model '{spec.name}': on worker {worker_id()}: field '{field}': "
                                       f"{' '.join(str(err['msg']).split())}") from None
            self._spec = spec
        return self._spec

    def tasks_dir(self) -> Path:
        if self._tasks_dir is None:
            from covbench.executors.taskship import TaskBundle
            from covbench.taskmeta import TASKS_DIR

            if self.tasks is None:
                self._tasks_dir = TASKS_DIR
            elif isinstance(self.tasks, TaskBundle):
                self._tasks_dir = self.tasks.unpack()
            else:
                self._tasks_dir = Path(self.tasks)
        return self._tasks_dir

    def restarted(self) -> bool:
        """True in a worker that replaces a lost one (the Ray actor subclass knows; in-process: never)."""
        return False

    def _failed(self, plan: Any, failure: FailureKind, message: str, start: float) -> JobResult:
        return JobResult(plan.model, plan.task, None, failure, message, worker=worker_id(),
                         restarted=self.restarted(), seconds=time.perf_counter() - start)
