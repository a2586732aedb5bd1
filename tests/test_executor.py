"""The executor layer without a cluster: driver-side planning, writing once, reuse, failures re-raised as
the local suite raises them, task folders shipped to workers, the registry's ``resources``."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from covbench.backends import BackendError, spec_hash
from covbench.executors import ExecutorError, make_executor, taskship
from covbench.executors.base import Job, run_all
from covbench.executors.local import LocalExecutor
from covbench.executors.synthetic import SyntheticWorker
from covbench.executors.worker import JobResult, ModelWorker
from covbench.graphs.lmeval import DataSpec, TaskSpec, task_yaml
from covbench.registry import ModelSpec, RegistryError, load_registry
from covbench.runner import RunError, TaskError, run_job
from covbench.store import read_run, run_files


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exec-tasks")
    data = DataSpec(family="fig1", n_layers=4, m=32, mixture="fig1_finetune", seed=11, n=12)
    for spec in (TaskSpec("mini", data, "loglikelihood"),
                 TaskSpec("mini_sample", data, "sample", repeats=2, pairs_with="mini")):
        (folder / f"{spec.name}.yaml").write_text(task_yaml(spec))
    return folder


def _specs(n: int) -> list[ModelSpec]:
    return [ModelSpec(name=f"m{i}", pretrained="gpt2") for i in range(n)]


def test_local_executor_writes_each_job_once_then_reuses(tmp_path, tasks):
    jobs = [Job(s, t) for s in _specs(3) for t in ("mini", "mini_sample")]
    first = run_all(LocalExecutor(worker_class=SyntheticWorker), jobs, tmp_path, tasks_dir=tasks)
    assert [o.message for _, o, _ in first] == [f"{j.spec.name} × {j.task}: " + ("scored" if j.task == "mini" else
                                                 "drew 2 more samples per prompt (now 2)") for j in jobs]
    for job, outcome, _ in first:
        (path,) = run_files(tmp_path, *job.key)
        assert outcome.path == path and read_run(path).equals(outcome.run)
        assert outcome.record.provenance.model_spec_hash == spec_hash(job.spec)
    again = run_all(LocalExecutor(worker_class=SyntheticWorker), jobs, tmp_path, tasks_dir=tasks)
    assert all(o.reused and "reused the stored result" in o.message for _, o, _ in again)
    assert all(len(run_files(tmp_path, *j.key)) == 1 for j in jobs)


class _Failing(ModelWorker):
    failure: type[Exception] = RunError

    def compute(self, plan, info=None):
        raise self.failure(f"model '{plan.model}' × task '{plan.task}': boom")


@pytest.mark.parametrize("failure", [RunError, BackendError, TaskError])
def test_model_side_failure_is_raised_again_in_one_line_and_nothing_is_stored(tmp_path, tasks, failure):
    worker = type("W", (_Failing,), {"failure": failure})
    executor = LocalExecutor(worker_class=worker)
    (spec,) = _specs(1)
    with pytest.raises(failure, match=r"^model 'm0' × task 'mini': boom$"):
        executor.run_job(spec, "mini", tmp_path, tasks_dir=tasks)
    assert run_files(tmp_path, "m0", "mini") == []
    (item,) = run_all(executor, [Job(spec, "mini")], tmp_path, tasks_dir=tasks)
    assert item[1] is None and item[2] == "model 'm0' × task 'mini': boom"


def test_job_result_unwrap_maps_failure_kinds():
    assert pytest.raises(BackendError, JobResult("m", "t", None, "backend", "x").unwrap).value.args == ("x",)
    assert pytest.raises(TaskError, JobResult("m", "t", None, "task", "y").unwrap).type is TaskError
    assert pytest.raises(RunError, JobResult("m", "t", None, "run", "z").unwrap).type is RunError


def test_worker_refuses_a_task_that_differs_from_the_drivers(tmp_path, tasks):
    from covbench.runner import load_task, plan_job

    (spec,) = _specs(1)
    plan = plan_job(spec, load_task("mini", tasks), tmp_path)
    stale = type(plan)(**{**plan.__dict__, "task_hash": "0" * 64})
    result = ModelWorker(spec, tasks=str(tasks)).run(stale)
    assert result.run is None and result.failure == "run"
    assert "the worker's task differs from the driver's (task hash" in result.message


@pytest.mark.slow
def test_local_executor_matches_run_job_on_a_real_model(tmp_path, tasks, tiny_model_dir):
    spec = ModelSpec(name="tiny", pretrained=str(tiny_model_dir))
    for task in ("mini", "mini_sample"):
        direct = run_job(spec, task, tmp_path / "direct", tasks_dir=tasks)
        via = LocalExecutor().run_job(spec, task, tmp_path / "executor", tasks_dir=tasks)
        assert via.message == direct.message and not via.reused
        strip = {"provenance": {"time"}}
        assert via.record.model_dump_json(exclude=strip) == direct.record.model_dump_json(exclude=strip)
        assert via.run.docs.equals(direct.run.docs) if direct.run.docs is not None else via.run.docs is None
        assert via.run.samples.equals(direct.run.samples) if direct.run.samples is not None else True


def test_unreachable_ray_address_is_one_line():
    import socket

    from covbench.executors.ray_executor import _check_reachable

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(ExecutorError, match=rf"^--executor ray: cannot use the Ray cluster at '127.0.0.1:{port}': "
                                            r"nothing answers there \(Connection refused\)$"):
        _check_reachable(f"127.0.0.1:{port}")
    _check_reachable("auto")  # Ray resolves it (the current cluster on this machine); nothing to probe


def test_make_executor_names():
    assert make_executor("local").name == "local"
    with pytest.raises(ExecutorError, match="unknown executor 'slurm' \\(known: local, ray\\)"):
        make_executor("slurm")


# ---- task folders sent to workers ------------------------------------------------------------------


def test_task_bundle_round_trip_and_stable_digest(tmp_path, tasks):
    (tasks / "__pycache__").mkdir(exist_ok=True)
    (tasks / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (tasks / "sub").mkdir(exist_ok=True)
    (tasks / "sub" / "data.jsonl").write_text('{"a": 1}\n')
    a, b = taskship.pack(tasks), taskship.pack(tasks)
    assert a.digest == b.digest and len(a.digest) == 64
    out = a.unpack(tmp_path)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "mini.yaml", "mini_sample.yaml", "sub/data.jsonl"]
    assert (out / "mini.yaml").read_bytes() == (tasks / "mini.yaml").read_bytes()
    assert a.unpack(tmp_path) == out  # unpacked once
    (tasks / "sub" / "data.jsonl").write_text('{"a": 2}\n')
    assert taskship.pack(tasks).digest != a.digest


def test_task_bundle_limits_are_one_line(tmp_path, monkeypatch):
    (tmp_path / "big.bin").write_bytes(__import__("os").urandom(4096))
    monkeypatch.setattr(taskship, "MAX_BYTES", 1024)
    with pytest.raises(taskship.TaskShipError, match=r"^.*: task folder too large to send to workers \(over 0 MiB"):
        taskship.pack(tmp_path)


def test_task_bundle_refuses_paths_out_of_its_folder(tmp_path):
    import io

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    bundle = taskship.TaskBundle("x", "f" * 64, buffer.getvalue())
    with pytest.raises(tarfile.OutsideDestinationError):
        bundle.unpack(tmp_path / "root")
    assert not (tmp_path / "escape.txt").exists()


# ---- the registry's resources ---------------------------------------------------------------------


def _registry(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(f"models:\n  - {{name: a, pretrained: gpt2{extra}}}\n")
    return path


def test_resources_are_read_and_do_not_change_the_spec_hash(tmp_path):
    plain = load_registry(_registry(tmp_path, "")).get("a")
    sized = load_registry(_registry(tmp_path, ", resources: {cpus: 2, gpus: 0.5, memory_gb: 3}")).get("a")
    assert plain.resources is None and (sized.resources.cpus, sized.resources.gpus, sized.resources.memory_gb) == (2, 0.5, 3)
    assert spec_hash(plain) == spec_hash(sized)


@pytest.mark.parametrize("extra, message", [
    (", resources: {cpus: -1}", "field 'resources.cpus': Input should be greater than or equal to 0 (got -1)"),
    (", resources: {memory_gb: 0}", "field 'resources.memory_gb': Input should be greater than 0 (got 0)"),
    (", resources: {gpu: 1}", "field 'resources.gpu': unknown key; did you mean 'gpus'? (allowed: cpus, gpus, memory_gb)"),
    (", resources: {cpus: true}", "field 'resources.cpus': Input should be a number, got a boolean"),
])
def test_bad_resources_are_one_line(tmp_path, extra, message):
    with pytest.raises(RegistryError) as e:
        load_registry(_registry(tmp_path, extra))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_suite_options_refuse_bad_values(pytester):
    pytester.makepyfile("def test_x(): pass")
    bad = pytester.runpytest("-p", "covbench.plugin", "--executor", "slurm")
    assert bad.ret == 4 and "invalid choice: 'slurm'" in bad.stderr.str()
    bad = pytester.runpytest("-p", "covbench.plugin", "--ray-retries", "-1")
    assert bad.ret == 4 and "expected an integer >= 0, got -1" in bad.stderr.str()
