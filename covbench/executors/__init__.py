"""Executors: where the suite's (model, task) jobs run (docs/executors.md).

Every executor splits a job the same way (:mod:`covbench.runner`): the *driver* plans it from the store
(:func:`~covbench.runner.plan_job`: reuse, or how many samples to draw), a *worker* computes the run
(:class:`~covbench.executors.worker.ModelWorker`: one model loaded once, serving all its tasks), and the
driver writes the run to the store (:func:`covbench.store.write_run`), once per job.

- ``local`` (:class:`~covbench.executors.local.LocalExecutor`): the worker runs in the calling process,
  as the suite always has (parallelism from pytest-xdist, ``-n 2 --dist loadgroup``).
- ``ray`` (:class:`~covbench.executors.ray_executor.RayExecutor`): one Ray actor per model with the
  registry's ``resources``; results come back to the driver, so workers need no shared filesystem;
  lost workers and nodes are retried a bounded number of times.

>>> from covbench.executors import EXECUTORS
>>> EXECUTORS
('local', 'ray')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from covbench.executors.base import Executor

EXECUTORS = ("local", "ray")


class ExecutorError(Exception):
    """An executor that cannot start (Ray missing, no cluster at the address); one line."""


def make_executor(name: str, **options: Any) -> Executor:
    """The executor called ``name`` (one of :data:`EXECUTORS`), built with ``options``.

    ``local`` takes ``get_lm`` and ``worker_class``; ``ray`` also ``address``, ``retries``, ``report``,
    ``num_cpus`` (see each class).
    """
    if name == "local":
        from covbench.executors.local import LocalExecutor

        return LocalExecutor(**options)
    if name == "ray":
        from covbench.executors.ray_executor import RayExecutor

        return RayExecutor(**options)
    raise ExecutorError(f"unknown executor '{name}' (known: {', '.join(EXECUTORS)})")
