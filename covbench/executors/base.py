"""The driver side shared by every executor: plan a job from the store, get its result, write it once.

:meth:`Executor.run_job` has the signature and the outcome of :func:`covbench.runner.run_job`
(the same messages, the same one-line exceptions), so the suite calls either without knowing where the
model ran. What differs is :meth:`Executor.result`: in-process (local) or from a Ray actor (ray).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing_extensions import Self

from covbench.registry import ModelSpec
from covbench.runner import DEFAULT_SEED, TASKS_DIR, JobPlan, RunOutcome, TaskInfo, load_task, plan_job
from covbench.store import write_run


@dataclass(frozen=True)
class Job:
    """One (model, task) job of a run, as the suite collects it."""

    spec: ModelSpec
    task: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.spec.name, self.task)


def plan_key(plan: JobPlan) -> tuple[Any, ...]:
    """What makes two plans ask for the same computation (the stored samples are implied by the store)."""
    return (plan.model, plan.task, plan.task_hash, plan.want_n, plan.draw, plan.run_seed)


class Executor:
    """Runs (model, task) jobs; subclasses say where (:meth:`result`).

    ``seed``: every job's seed (the runner's default, as the suite uses). ``base_dir``: the registry
    file's folder (workers resolve ``pkg:`` sources against it).
    """

    name = "base"

    def __init__(self, *, seed: int = DEFAULT_SEED, base_dir: str | Path = ".") -> None:
        self.seed, self.base_dir = seed, str(base_dir)

    # ---- the suite's entry point ------------------------------------------------------------------

    def run_job(self, spec: ModelSpec, task: str, results_dir: Path, *, n: int | None = None,
                tasks_dir: Path = TASKS_DIR) -> RunOutcome:
        """Like :func:`covbench.runner.run_job`: reuse the store, or compute the run and store it (once)."""
        done = self.stored_result(spec, task, results_dir, n, tasks_dir)
        if done is not None:
            return done
        info = self.task_info(task, tasks_dir)
        plan = plan_job(spec, info, results_dir, n=n, seed=self.seed)
        if isinstance(plan, RunOutcome):
            self.discard(spec.name, task)
            return plan
        result = self.result(spec, plan, info, tasks_dir, results_dir)
        run = result.unwrap()
        path = result.path or write_run(results_dir, run)
        return RunOutcome(run, path, False, plan.draw, plan.done_message)

    # ---- what subclasses provide --------------------------------------------------------------------

    def start(self, jobs: Sequence[Job], results_dir: Path, *, n: int | None = None,
              tasks_dir: Path = TASKS_DIR) -> None:
        """Learn every job of the run up front (an executor may start them all at once). Optional."""

    def result(self, spec: ModelSpec, plan: JobPlan, info: TaskInfo, tasks_dir: Path, results_dir: Path) -> Any:
        """The :class:`~covbench.executors.worker.JobResult` of ``plan`` (with ``path`` set when this
        executor already stored the run in ``results_dir``)."""
        raise NotImplementedError

    def stored_result(self, spec: ModelSpec, task: str, results_dir: Path, n: int | None,
                      tasks_dir: Path) -> RunOutcome | None:
        """The outcome of a job this executor computed *and stored* before the suite asked for it (it
        reads as "scored", as it would have locally), or None."""
        return None

    def discard(self, model: str, task: str) -> None:
        """The store already holds what (model, task) asks for: drop any result computed for it."""

    def task_info(self, task: str, tasks_dir: Path) -> TaskInfo:
        """The task, built for planning (a fresh build per job: computing mutates it)."""
        return load_task(task, tasks_dir)

    def close(self) -> None:
        """Release workers and clusters this executor started."""

    def summary(self) -> str | None:
        """One line about the run for the terminal (None: nothing to say)."""
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_all(executor: Executor, jobs: Sequence[Job], results_dir: Path, *, n: int | None = None,
            tasks_dir: Path = TASKS_DIR, on_outcome: Callable[[Job, RunOutcome | None, str | None], None] | None = None
            ) -> list[tuple[Job, RunOutcome | None, str | None]]:
    """Run ``jobs`` on ``executor`` outside pytest: per job (job, outcome, None) or (job, None, one-line error).

    The non-pytest entry point (benchmarks, scripts): the same driver path as the suite's.
    """
    from covbench.backends import BackendError
    from covbench.runner import RunError, TaskError

    executor.start(jobs, results_dir, n=n, tasks_dir=tasks_dir)
    out: list[tuple[Job, RunOutcome | None, str | None]] = []
    for job in jobs:
        try:
            item: tuple[Job, RunOutcome | None, str | None] = (
                job, executor.run_job(job.spec, job.task, results_dir, n=n, tasks_dir=tasks_dir), None)
        except (BackendError, RunError, TaskError) as e:
            item = (job, None, str(e))
        out.append(item)
        if on_outcome is not None:
            on_outcome(*item)
    return out
