"""covbench's pytest plugin: which models to score, where results go, and the session that collects them.

Options (group ``covbench``)::

    --model NAME         repeatable: a model name, a family name, ``all`` or ``default``
                         (none given: the registry's ``default: true`` models)
    --models-file PATH   registry YAML (default: models.yaml in the pytest rootdir)
    --results-dir PATH   results store (default: results/ in the pytest rootdir)
    --tasks A,B          suite tasks to run (default: all)
    --tasks-dir PATH     folder of lm-eval task YAMLs (default: the tasks shipped with covbench)
    --samples-n N        sampled generations per prompt, overriding the tasks' own n
    --executor NAME      where jobs run: local (this process; -n N for more) or ray (docs/executors.md)
    --ray-address ADDR   --executor ray: an existing cluster ("auto", HOST:PORT); default: start one
    --ray-retries N      --executor ray: restarts of a lost worker before its job fails (default 3)

``--model`` values are checked against the registry in ``pytest_configure``: an unknown name stops the
run with a usage error and a "did you mean". The registry is loaded only when ``--model`` or
``--models-file`` is given, or when a test asks for it, so the project's own tests never need it.

The session lives in ``config.stash[SESSION_KEY]``. Tests use the fixtures ``covbench_session``,
``covbench_registry``, ``covbench_specs``, ``covbench_results_dir``, ``covbench_tasks``,
``covbench_samples_n``, ``covbench_lm`` (spec -> cached lm-eval LM), ``covbench_executor`` (runs a job
where ``--executor`` says, :mod:`covbench.executors`) and ``covbench_record`` (report a stored run for the
terminal summary, xdist-safe); a test with a ``covbench_spec`` argument is parametrised over the selected
models, one test id per model name.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from covbench.registry import ModelSpec, Registry, RegistryError, load_registry

SPEC_ARG = "covbench_spec"


@dataclass(eq=False)  # identity hash: the session is registered as a pytest plugin
class CovbenchSession:
    """Everything the covbench options select, plus the results the suite records for the summary."""

    models_file: Path
    results_dir: Path
    selectors: list[str]
    tasks: list[str] | None = None  # None = every suite task
    samples_n: int | None = None
    tasks_dir: Path | None = None  # None = the project's tasks/
    executor_name: str = "local"
    ray_address: str | None = None
    ray_retries: int = 3
    executor: Any = None  # the Ray executor, built in pytest_configure (local: per process, by the fixture)
    results: list[Any] = field(default_factory=list)
    _registry: Registry | None = None
    _specs: list[ModelSpec] | None = None

    @property
    def registry(self) -> Registry:
        """The registry, loaded (and validated) on first use; a bad file raises ``pytest.UsageError``."""
        if self._registry is None:
            try:
                self._registry = load_registry(self.models_file)
            except RegistryError as e:
                raise pytest.UsageError(str(e)) from None
        return self._registry

    @property
    def specs(self) -> list[ModelSpec]:
        """The selected models (``--model`` values, or the ``default`` set), without duplicates."""
        if self._specs is None:
            try:
                self._specs = self.registry.resolve_many(self.selectors or ["default"])
            except RegistryError as e:
                raise pytest.UsageError(f"--model: {e}") from None
        return self._specs

    def wants_task(self, task: str) -> bool:
        return self.tasks is None or task in self.tasks

    def display(self, tr: Any) -> None:
        """The summary table of every (model, task) scored in this run; nothing when there are none.

        Results arrive as test-report user properties (``RUN_PROPERTY``), so the table is complete
        under pytest-xdist too: workers store the records, the controller reads them back.
        """
        if not self.results:
            return
        from covbench.report import render
        from covbench.store import catalog

        cat = catalog(self.results_dir)
        wanted = {(run["model"], run["task"]) for run in self.results}
        session = cat.subset([i for i in range(len(cat)) if (cat.model(i), cat.task(i)) in wanted])
        tr.write_sep("=", f"covbench: {len(session)} results in {self.results_dir}")
        tr.write_line(render(session))
        tr.write_line("")
        seen = set()
        for run in self.results:
            if run["message"] not in seen:
                seen.add(run["message"])
                tr.write_line(run["message"])
        for err in session.errors:
            tr.write_line(f"unreadable: {err}")
        line = self.executor.summary() if self.executor is not None else None
        if line:
            tr.write_line(line)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect stored runs from test reports (they cross from xdist workers to the controller)."""
        if report.when == "call":
            self.results.extend(v for k, v in report.user_properties if k == RUN_PROPERTY)


#: user-property name under which a suite test reports its stored run (a JSON-able dict).
RUN_PROPERTY = "covbench_run"


SESSION_KEY = pytest.StashKey[CovbenchSession]()


def _int_at_least(minimum: int, words: str):  # type: ignore[no-untyped-def]
    """An argparse type: an integer ≥ ``minimum``, else a one-line error saying what was expected."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {words}, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {words}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _task_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("covbench", "covbench: coverage and Pass@N benchmarks")
    group.addoption("--model", action="append", default=[], metavar="NAME", dest="covbench_model",
                    help="model, family, 'all' or 'default' from the registry (repeatable)")
    group.addoption("--models-file", default=None, metavar="PATH", dest="covbench_models_file",
                    help="model registry YAML (default: <rootdir>/models.yaml)")
    group.addoption("--results-dir", default=None, metavar="PATH", dest="covbench_results_dir",
                    help="results store folder (default: <rootdir>/results)")
    group.addoption("--tasks", default=None, type=_task_list, metavar="A,B", dest="covbench_tasks",
                    help="comma-separated suite tasks to run (default: all)")
    group.addoption("--tasks-dir", default=None, metavar="PATH", dest="covbench_tasks_dir",
                    help="folder of lm-eval task YAMLs for the suite (default: the tasks shipped with covbench)")
    group.addoption("--samples-n", default=None, type=_positive_int, metavar="N", dest="covbench_samples_n",
                    help="sampled generations per prompt (overrides each task's n)")
    group.addoption("--executor", default="local", choices=["local", "ray"], dest="covbench_executor",
                    help="where (model, task) jobs run: local (default; -n N for processes) or ray")
    group.addoption("--ray-address", default=None, metavar="ADDR", dest="covbench_ray_address",
                    help="--executor ray: existing cluster ('auto' or HOST:PORT); default: start a local one")
    group.addoption("--ray-retries", default=3, type=_non_negative_int, metavar="N", dest="covbench_ray_retries",
                    help="--executor ray: restarts of a lost worker or node before its job fails (default 3)")


def _path_option(config: pytest.Config, value: str | None, default: str) -> Path:
    # An explicit path is relative to where pytest was invoked; the default lives in the rootdir.
    if value is None:
        return config.rootpath / default
    return (config.invocation_params.dir / Path(value).expanduser()).resolve()


def pytest_configure(config: pytest.Config) -> None:
    option = config.option
    session = CovbenchSession(
        models_file=_path_option(config, option.covbench_models_file, "models.yaml"),
        results_dir=_path_option(config, option.covbench_results_dir, "results"),
        selectors=list(option.covbench_model),
        tasks=option.covbench_tasks or None,
        samples_n=option.covbench_samples_n,
        tasks_dir=(None if option.covbench_tasks_dir is None
                   else _path_option(config, option.covbench_tasks_dir, "tasks")),
        executor_name=option.covbench_executor,
        ray_address=option.covbench_ray_address,
        ray_retries=option.covbench_ray_retries,
    )
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "covbench-session")  # receives pytest_runtest_logreport
    if session.selectors or option.covbench_models_file is not None:
        _ = session.specs  # fail now, before collection, on a bad file or an unknown --model
    if session.tasks:
        _check_tasks(session)
    if session.executor_name == "ray":
        _start_ray(config, session)


def _start_ray(config: pytest.Config, session: CovbenchSession) -> None:
    """Connect the Ray executor before collection, so a bad address is a usage error, not N failures."""
    if hasattr(config, "workerinput"):
        return  # an xdist worker (defensive: the controller has already refused -n below)
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("--executor ray runs every job on the Ray cluster from this one process; "
                                "drop -n (pytest-xdist)")
    from covbench.executors import ExecutorError, make_executor

    def report(line: str) -> None:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(line)

    try:
        session.executor = make_executor("ray", address=session.ray_address, retries=session.ray_retries,
                                         report=report, base_dir=session.models_file.parent)
    except ExecutorError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under ``--executor ray``, hand every collected (model, task) job to the cluster at once."""
    cov = session.config.stash.get(SESSION_KEY, None)
    if cov is None or cov.executor is None:
        return
    from covbench.executors.base import Job
    from covbench.runner import TASKS_DIR

    jobs = []
    for item in session.items:
        job = getattr(getattr(item, "callspec", None), "params", {}).get("job")
        if isinstance(job, tuple) and len(job) == 2 and isinstance(job[0], ModelSpec):
            jobs.append(Job(job[0], job[1]))
    if jobs:
        cov.results_dir.mkdir(parents=True, exist_ok=True)
        cov.executor.start(jobs, cov.results_dir, n=cov.samples_n, tasks_dir=cov.tasks_dir or TASKS_DIR)


def _check_tasks(session: CovbenchSession) -> None:
    """``--tasks`` names must be suite tasks of the task folder (usage error with "did you mean")."""
    import difflib

    from covbench.runner import TASKS_DIR, suite_tasks

    every = suite_tasks(session.tasks_dir or TASKS_DIR)
    for task in session.tasks or []:
        if task not in every:
            hint = difflib.get_close_matches(task, every, n=1)
            raise pytest.UsageError(f"--tasks: unknown task '{task}'" + (f"; did you mean '{hint[0]}'?" if hint else "")
                                    + f" (suite tasks: {', '.join(every)})")


def job_id(model: str, task: str) -> str:
    """The suite's test id of one (model, task) job; :func:`job_model` reads the model back."""
    return f"{model}::{task}"


_JOB_ID = re.compile(r"\[(?P<model>.+)::(?P<task>[^:\]]+)\]$")


def job_model(nodeid: str) -> str | None:
    """The model of a suite job's node id (``...::test_job[MODEL::TASK]``), or None for other tests.

    >>> job_model("suite/test_suite.py::test_job[graph-ft::x::graph_fig1]"), job_model("t.py::test_a")
    ('graph-ft::x', None)
    """
    match = _JOB_ID.search(nodeid)
    return match.group("model") if match else None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: send every job of one model to one worker.

    xdist's own loadgroup marks a test by rewriting ``item._nodeid``, which pytest 9 no longer reads
    (node ids come from ``item._id``), so its ``xdist_group`` marks are silently ignored and two
    workers would load the same model and score its paired tasks twice. This scheduler groups by the
    model named in the job's id instead; other tests are their own scope, as under ``--dist load``.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    scope_of = model_scopes(config.stash[SESSION_KEY].specs)

    class ModelScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            model = job_model(nodeid)
            return nodeid if model is None else scope_of.get(model, f"model:{model}")

    return ModelScheduling(config, log)


def model_scopes(specs: list[ModelSpec]) -> dict[str, str]:
    """Each model's scheduling scope: its policy family (entries that differ only in ``generation``
    share one model object and one forward pass, docs/policies.md), else the model itself."""
    from covbench.backends.factory import family_key

    return {s.name: f"family:{family_key(s)}" if s.backend == "hf-fast" else f"model:{s.name}" for s in specs}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if SPEC_ARG in metafunc.fixturenames:
        specs = metafunc.config.stash[SESSION_KEY].specs
        metafunc.parametrize(SPEC_ARG, specs, ids=[s.name for s in specs])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.display(terminalreporter)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None and session.executor is not None:
        session.executor.close()  # releases workers; stops a Ray cluster started for this run
    # Free the loaded models only if the factory was ever imported (it imports lm-eval lazily).
    import sys

    factory = sys.modules.get("covbench.backends.factory")
    if factory is not None:
        factory.clear_cache()


@pytest.fixture(scope="session")
def covbench_session(pytestconfig: pytest.Config) -> CovbenchSession:
    return pytestconfig.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def covbench_registry(covbench_session: CovbenchSession) -> Registry:
    return covbench_session.registry


@pytest.fixture(scope="session")
def covbench_specs(covbench_session: CovbenchSession) -> list[ModelSpec]:
    return covbench_session.specs


@pytest.fixture(scope="session")
def covbench_results_dir(covbench_session: CovbenchSession) -> Path:
    covbench_session.results_dir.mkdir(parents=True, exist_ok=True)
    return covbench_session.results_dir


@pytest.fixture(scope="session")
def covbench_tasks(covbench_session: CovbenchSession) -> list[str] | None:
    return covbench_session.tasks


@pytest.fixture(scope="session")
def covbench_tasks_dir(covbench_session: CovbenchSession) -> Path:
    """The lm-eval task folder the suite runs (``--tasks-dir``, default the project's tasks/)."""
    from covbench.runner import TASKS_DIR

    return covbench_session.tasks_dir or TASKS_DIR


@pytest.fixture(scope="session")
def covbench_samples_n(covbench_session: CovbenchSession) -> int | None:
    return covbench_session.samples_n


@pytest.fixture(scope="session")
def covbench_lm(covbench_specs: list[ModelSpec]) -> Callable[[ModelSpec], Any]:
    """``covbench_lm(spec)`` -> the lm-eval LM for ``spec``, loaded once per pytest process.

    The first call for an ``hf-fast`` entry builds every selected entry of its policy family with it
    (:func:`covbench.backends.factory.get_lms`), so the first scoring job scores all their policies in
    one forward pass and the others read the answers back.
    """
    from covbench.backends.factory import get_lm, get_lms

    scopes = model_scopes(covbench_specs)

    def lm(spec: ModelSpec) -> Any:
        if spec.backend == "hf-fast" and spec.name in scopes:
            get_lms([s for s in covbench_specs if scopes[s.name] == scopes[spec.name]])
        return get_lm(spec)

    return lm


@pytest.fixture(scope="session")
def covbench_executor(covbench_session: CovbenchSession, covbench_lm: Callable[[ModelSpec], Any]) -> Any:
    """Runs one (model, task) job where ``--executor`` says: ``covbench_executor.run_job(spec, task,
    results_dir, n=..., tasks_dir=...)`` -> ``covbench.runner.RunOutcome`` (same outcome, messages and
    one-line exceptions as :func:`covbench.runner.run_job`)."""
    if covbench_session.executor is not None:
        return covbench_session.executor
    from covbench.executors.local import LocalExecutor

    return LocalExecutor(get_lm=covbench_lm, base_dir=covbench_session.models_file.parent)


@pytest.fixture
def covbench_record(request: pytest.FixtureRequest) -> Callable[[Any], None]:
    """``covbench_record(outcome)`` reports a stored run (a ``covbench.runner.RunOutcome``) for the
    terminal summary, as a test-report user property so it survives pytest-xdist."""

    def record(outcome: Any) -> None:
        value = {"path": str(outcome.path), "task": outcome.record.task, "model": outcome.record.model,
                 "message": outcome.message}
        request.node.user_properties.append((RUN_PROPERTY, value))

    return record
