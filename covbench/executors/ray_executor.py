"""The Ray executor: every (model, task) job on a Ray cluster; the driver alone writes the store.

Per model, one Ray actor (:class:`~covbench.executors.worker.ModelWorker`) holds the registry's
``resources`` (CPUs, GPUs, memory), loads the model once and runs that model's jobs one after another,
the grouping of ``--dist loadgroup``. The driver plans every job from the store up front
(:func:`covbench.runner.plan_job`), submits the ones that need a model, writes each run with
:func:`covbench.store.write_run` as soon as it arrives (once per job, atomically), and hands the
outcome to the suite's test when it asks, with the message a local run would give ("scored"). Workers never see the store, so they need no shared filesystem (a ``--tasks-dir`` folder
is shipped to them, :mod:`covbench.executors.taskship`).

Faults (docs/executors.md "Faults"):

- a worker process or node that dies: Ray restarts the model's actor (on any node with room) and runs
  the unfinished jobs again, at most ``retries`` times (``max_restarts`` / ``max_task_retries``); past
  that, the job fails with one line. A retried job still gives one result, so one stored file;
- a model-side failure (weights that do not load, a crash in a task) is a normal result carrying the
  one-line message: it is not retried, and the suite fails that test as the local path does;
- a driver killed and started again plans from the store: what was stored is reused, not redone. Only
  results still in flight (not yet received) when it died are computed again; a file is only ever
  renamed into place whole, so nothing partial is stored.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from covbench.executors import ExecutorError
from covbench.executors.base import Executor, Job, plan_key
from covbench.executors.progress import Progress
from covbench.executors.worker import JobResult, ModelWorker
from covbench.registry import ModelSpec, ResourceSpec
from covbench.runner import TASKS_DIR, JobPlan, RunOutcome, TaskError, TaskInfo, load_task, plan_job
from covbench.store import write_run

#: Environment passed to every worker: nothing from a hub, one torch thread unless told otherwise.
WORKER_ENV_KEYS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TOKENIZERS_PARALLELISM", "COVBENCH_THREADS")
DEFAULT_RETRIES = 3


@dataclass(frozen=True)
class _Submitted:
    """A job handed to a worker: its plan, the store its run goes to, and the suite's request it answers."""

    plan: JobPlan
    results_dir: Path
    request: tuple[Any, ...] | None  # (spec hash, n, tasks dir, store) as the suite will ask; None: ad hoc


@dataclass
class _ModelState:
    """One model's actor and the jobs submitted to it, in order."""

    actor: Any
    ready: Any  # ObjectRef of actor.ready(): resolved once the worker is up
    created: float = field(default_factory=time.perf_counter)
    pending: dict[tuple[str, str], Any] = field(default_factory=dict)  # key -> ObjectRef


class RayExecutor(Executor):
    """Jobs on Ray: ``address`` of an existing cluster (``"auto"``, ``"HOST:PORT"``), or None to start a
    new local one for the run and stop it at the end (``num_cpus``: default all; ``object_store_mb``:
    Ray's shared-memory store, small because runs are small). ``retries``: restarts of a lost worker.
    ``report``: called with a progress line at most every ``report_every`` seconds while the driver
    waits (and once everything is done). ``get_lm``/``worker_class``: as for the local executor (they
    are sent to the workers by value or by import path)."""

    name = "ray"

    def __init__(self, *, address: str | None = None, retries: int = DEFAULT_RETRIES,
                 get_lm: Callable[[ModelSpec], Any] | None = None, worker_class: type[ModelWorker] = ModelWorker,
                 report: Callable[[str], None] | None = None, report_every: float = 5.0,
                 num_cpus: int | None = None, object_store_mb: int = 512, **options: Any) -> None:
        super().__init__(**options)
        if retries < 0:
            raise ExecutorError(f"retries must be >= 0, got {retries}")
        self.address, self.retries, self.get_lm = address, retries, get_lm
        self.report, self.report_every = report, report_every
        self.progress = Progress()
        self._models: dict[str, _ModelState] = {}
        self._submitted: dict[tuple[str, str], _Submitted] = {}
        self._results: dict[tuple[str, str], JobResult] = {}  # received (and stored), not yet asked for
        self._tasks: dict[tuple[str, str], TaskInfo] = {}
        self._bundles: dict[str, Any] = {}
        self._placeable: dict[tuple[float, ...], dict[str, float] | None] = {}  # shape -> None (fits) or largest node
        self._last_report, self._last_line = 0.0, ""
        self._ray = _import_ray()
        self._owns = not self._ray.is_initialized()
        if self._owns:
            self._init(num_cpus, object_store_mb)
        self._actor_class = self._ray.remote(_actor_class(worker_class))
        self._started_at = time.perf_counter()
        self._workers: set[str] = set()
        self.worker_start_s: list[float] = []  # per actor: from its creation to its first answer

    # ---- connecting ---------------------------------------------------------------------------------

    def _init(self, num_cpus: int | None, object_store_mb: int | None) -> None:
        env = {k: os.environ[k] for k in WORKER_ENV_KEYS if k in os.environ}
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                                  "runtime_env": {"env_vars": env} if env else None}
        if self.address is None:  # "local": a new cluster, never one somebody else started on this machine
            kwargs.update(num_cpus=num_cpus, object_store_memory=object_store_mb << 20)
        else:
            _check_reachable(self.address)  # Ray itself retries an unreachable address for minutes
        try:
            self._ray.init(address=self.address or "local", **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at '{self.address}'" if self.address else "a local Ray cluster"
            raise ExecutorError(f"--executor ray: cannot use {where}: {' '.join(str(e).split())[:300]}") from None

    # ---- the driver ---------------------------------------------------------------------------------

    def task_info(self, task: str, tasks_dir: Path) -> TaskInfo:
        """Built once per task on the driver: the driver only plans, and planning does not change it."""
        key = (task, str(tasks_dir))
        if key not in self._tasks:
            self._tasks[key] = load_task(task, tasks_dir)
        return self._tasks[key]

    def start(self, jobs: Sequence[Job], results_dir: Path, *, n: int | None = None,
              tasks_dir: Path = TASKS_DIR) -> None:
        """Plan every job (and the scoring partner each sampling job is checked against) and submit
        those the store cannot answer, grouped by model in the order given."""
        for job, job_n in self._with_partners(jobs, tasks_dir, n):
            try:
                info = self.task_info(job.task, tasks_dir)
            except TaskError:
                continue  # the suite's test raises it again, in its own one line
            plan = plan_job(job.spec, info, results_dir, n=job_n, seed=self.seed)
            if isinstance(plan, JobPlan) and job.key not in self._submitted:
                request = _request(job.spec, job_n, tasks_dir, results_dir)
                self._submit(job.spec, plan, tasks_dir, _Submitted(plan, Path(results_dir), request))
        self._emit(force=True)

    def _with_partners(self, jobs: Sequence[Job], tasks_dir: Path, n: int | None) -> list[tuple[Job, int | None]]:
        out: list[tuple[Job, int | None]] = []
        seen: set[tuple[str, str]] = set()
        for job in jobs:
            items = [(job, n)]
            try:
                partner = self.task_info(job.task, tasks_dir).descriptor.pairs_with
            except TaskError:
                partner = None
            if partner:
                items.append((Job(job.spec, partner), None))  # the suite scores the partner with its own n
            for item in items:
                if item[0].key not in seen:
                    seen.add(item[0].key)
                    out.append(item)
        return out

    def stored_result(self, spec: ModelSpec, task: str, results_dir: Path, n: int | None,
                      tasks_dir: Path) -> RunOutcome | None:
        """A job submitted up front for exactly this request: wait for it; its run was stored on arrival."""
        key = (spec.name, task)
        sub = self._submitted.get(key)
        if sub is None or sub.request != _request(spec, n, tasks_dir, results_dir):
            return None
        result = self._wait(key)
        run = result.unwrap()
        return RunOutcome(run, result.path or write_run(results_dir, run), False, sub.plan.draw, sub.plan.done_message)

    def result(self, spec: ModelSpec, plan: JobPlan, info: TaskInfo, tasks_dir: Path, results_dir: Path) -> JobResult:
        key = (spec.name, plan.task)
        sub = self._submitted.get(key)
        if sub is None or plan_key(sub.plan) != plan_key(plan) or sub.results_dir != Path(results_dir):
            self.discard(*key)  # not submitted, or planned against another store state
            self._submit(spec, plan, tasks_dir, _Submitted(plan, Path(results_dir), None))
        return self._wait(key)

    def _wait(self, key: tuple[str, str]) -> JobResult:
        while key not in self._results:
            self._poll(timeout=min(1.0, self.report_every))
        self._submitted.pop(key, None)
        return self._results.pop(key)  # handed out once

    def discard(self, model: str, task: str) -> None:
        key = (model, task)
        if key in self._submitted:
            self._submitted.pop(key)
            self._results.pop(key, None)
            state = self._models.get(model)
            if state is not None and key in state.pending:
                state.pending.pop(key)  # still computed by the worker; its result is dropped
                self.progress.finished(model, ok=True)
                self._release_if_idle(model)

    def _submit(self, spec: ModelSpec, plan: JobPlan, tasks_dir: Path, sub: _Submitted) -> None:
        key = (spec.name, plan.task)
        self._submitted[key] = sub
        self.progress.add(spec.name)
        problem = self._unplaceable(spec)
        if problem is not None:
            self._results[key] = JobResult(spec.name, plan.task, None, "run", problem)
            self.progress.finished(spec.name, ok=False)
            return
        state = self._models.get(spec.name)
        if state is None:
            state = self._models[spec.name] = self._new_actor(spec, tasks_dir)
        state.pending[key] = state.actor.run.remote(plan)

    def _new_actor(self, spec: ModelSpec, tasks_dir: Path) -> _ModelState:
        res = spec.resources or ResourceSpec()
        options: dict[str, Any] = {"num_cpus": res.cpus, "num_gpus": res.gpus, "max_restarts": self.retries,
                                   "max_task_retries": self.retries, "max_concurrency": 1}
        if res.memory_gb is not None:
            options["memory"] = int(res.memory_gb * (1 << 30))
        actor = self._actor_class.options(**options).remote(spec, self.base_dir, self.get_lm, self._tasks_arg(tasks_dir))
        return _ModelState(actor, actor.ready.remote())

    def _tasks_arg(self, tasks_dir: Path) -> Any:
        """None for the tasks shipped with covbench (every worker has them), else the folder's bundle."""
        if Path(tasks_dir).resolve() == TASKS_DIR.resolve():
            return None
        key = str(Path(tasks_dir).resolve())
        if key not in self._bundles:
            from covbench.executors.taskship import TaskShipError, pack

            try:
                self._bundles[key] = self._ray.put(pack(Path(tasks_dir)))
            except TaskShipError as e:
                raise TaskError(str(e)) from None
        return self._bundles[key]

    def _unplaceable(self, spec: ModelSpec) -> str | None:
        """Why no node of the cluster can ever hold this model's worker (None: some node can).

        Asked of the cluster once per resource shape (nodes joining later are not seen)."""
        res = spec.resources or ResourceSpec()
        need = {"CPU": res.cpus, "GPU": res.gpus, "memory": (res.memory_gb or 0) * (1 << 30)}
        shape = tuple(need.values())
        if shape not in self._placeable:
            nodes = [n.get("Resources", {}) for n in self._ray.nodes() if n.get("Alive")]
            fits = any(all(r.get(k, 0.0) >= v for k, v in need.items() if v) for r in nodes)
            self._placeable[shape] = None if fits else {k: max((r.get(k, 0.0) for r in nodes), default=0.0) for k in need}
        largest = self._placeable[shape]
        if largest is None:
            return None
        return (f"model '{spec.name}': field 'resources': needs {res.cpus:g} CPU, {res.gpus:g} GPU"
                + (f", {res.memory_gb:g} GiB" if res.memory_gb else "")
                + f" per worker; no node of the Ray cluster has that (largest: {largest['CPU']:g} CPU, "
                  f"{largest['GPU']:g} GPU, {largest['memory'] / (1 << 30):.1f} GiB)")

    # ---- collecting results -------------------------------------------------------------------------

    def _poll(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for any result or worker start, take in everything ready, report."""
        refs = {}
        for model, state in self._models.items():
            if not self.progress.models[model].up and state.ready is not None:
                refs[state.ready] = (model, None)
            refs.update({ref: (model, key) for key, ref in state.pending.items()})
        if refs:
            ready, _ = self._ray.wait(list(refs), num_returns=1, timeout=timeout)
            if ready:
                ready, _ = self._ray.wait(list(refs), num_returns=len(refs), timeout=0)
            for ref in ready:
                model, key = refs[ref]
                if key is None:
                    self._worker_up(model, ref)
                else:
                    self._take(model, key, ref)
        self._emit()

    def _worker_up(self, model: str, ref: Any) -> None:
        try:
            self._workers.add(self._ray.get(ref))
            self.worker_start_s.append(time.perf_counter() - self._models[model].created)
        except self._ray.exceptions.RayError:
            pass  # the worker never came up: its jobs fail with the reason, one by one
        self.progress.started(model)
        self._models[model].ready = None

    def _take(self, model: str, key: tuple[str, str], ref: Any) -> None:
        """Take in one job's result: store its run at once (a driver killed later loses nothing received,
        and memory holds paths, not runs), keep the outcome for the test that asks."""
        state = self._models[model]
        state.pending.pop(key)
        try:
            result = self._ray.get(ref)
        except self._ray.exceptions.RayError as e:
            result = JobResult(model, key[1], None, "run", self._lost_message(model, key[1], e))
        sub = self._submitted.get(key)
        if result.run is not None and sub is not None:
            result = replace(result, run=None, path=write_run(sub.results_dir, result.run))
        if result.worker:
            self._workers.add(result.worker)
        self._results[key] = result
        self.progress.started(model)
        self.progress.finished(model, ok=result.failure is None, retried=result.restarted)
        self._release_if_idle(model)

    def _lost_message(self, model: str, task: str, error: BaseException) -> str:
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        lost = isinstance(error, (self._ray.exceptions.RayActorError, self._ray.exceptions.WorkerCrashedError,
                                  self._ray.exceptions.NodeDiedError, self._ray.exceptions.ObjectLostError))
        what = (f"its worker was lost {self.retries + 1} times (a process or node died); not retried further"
                if lost else "the worker failed outside the model")
        return f"model '{model}' × task '{task}': {what}: {type(error).__name__}: {first[:300]}"

    def _release_if_idle(self, model: str) -> None:
        """Free a model's worker (and its CPUs/GPUs) as soon as it has nothing left to run."""
        state = self._models.get(model)
        if state is not None and not state.pending:
            self._ray.kill(state.actor, no_restart=True)
            del self._models[model]
            self.progress.stopped(model)

    def _emit(self, force: bool = False) -> None:
        """Report the progress line when it changed, at most every ``report_every`` s (always when done)."""
        if self.report is None or not self.progress.models:
            return
        now, line = time.perf_counter(), f"covbench ray: {self.progress.line()}"
        due = force or self.progress.complete or now - self._last_report >= self.report_every
        if due and line != self._last_line:
            self._last_report, self._last_line = now, line
            self.report(line)

    # ---- the end ----------------------------------------------------------------------------------

    def summary(self) -> str | None:
        done, total, _, _, failed, retried = self.progress.totals()
        if not total:
            return None
        return (f"covbench ray: {done}/{total} jobs computed on {len(self._workers)} workers in "
                f"{time.perf_counter() - self._started_at:.1f} s ({failed} failed, {retried} retried after a lost worker)")

    def close(self) -> None:
        for state in self._models.values():
            try:
                self._ray.kill(state.actor, no_restart=True)
            except Exception:  # noqa: BLE001, S110 - the cluster may already be gone: nothing left to release
                pass
        self._models.clear()
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()


def _request(spec: ModelSpec, n: int | None, tasks_dir: Path, results_dir: Path) -> tuple[Any, ...]:
    """What identifies the suite's request for a job: the spec (its hash), n, the task folder, the store."""
    from covbench.backends import spec_hash

    return (spec_hash(spec), n, str(Path(tasks_dir).resolve()), str(Path(results_dir).resolve()))


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A ``HOST:PORT`` address must accept a TCP connection (``auto`` and ``ray://`` are Ray's to resolve)."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ExecutorError(f"--executor ray: cannot use the Ray cluster at '{address}': nothing answers there "
                            f"({e.strerror or e})") from None


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError("--executor ray needs Ray (pip install 'ray==2.60.0'; scripts/setup.sh installs it)") from None
    return ray


def _actor_class(worker_class: type[ModelWorker]) -> type:
    """``worker_class`` with :meth:`~ModelWorker.restarted` answered by Ray (a restarted actor = a retry)."""

    def restarted(self: ModelWorker) -> bool:
        # True for the first job a restarted actor finishes: the one the lost worker was running when it
        # died (the constructor runs again on restart, so the flag starts unset in the new process).
        import ray

        told, self._restart_told = getattr(self, "_restart_told", False), True
        return not told and bool(ray.get_runtime_context().was_current_actor_reconstructed)

    return type(f"Ray{worker_class.__name__}", (worker_class,), {"restarted": restarted})
