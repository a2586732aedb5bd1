"""The runner: scoring through lm-eval, reuse without loading the model, growing n, corrupt files,
and a model that fails to load. Uses 12-doc versions of the Fig. 1 tasks and a random tiny GPT-2."""

from __future__ import annotations

from pathlib import Path

import pytest

from covbench.backends import BackendError, get_lm
from covbench.checks import agreement_problems, record_problems
from covbench.graphs.lmeval import DataSpec, TaskSpec, task_yaml
from covbench.registry import load_registry
from covbench.runner import RunError, TaskError, load_task, run_job, suite_tasks
from covbench.store import run_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mini_tasks(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tasks")
    data = DataSpec(family="fig1", n_layers=4, m=32, mixture="fig1_finetune", seed=7, n=12)
    for spec in (TaskSpec("mini_fig1", data, "loglikelihood"),
                 TaskSpec("mini_fig1_sample", data, "sample", repeats=4, pairs_with="mini_fig1")):
        (folder / f"{spec.name}.yaml").write_text(task_yaml(spec))
    return folder


@pytest.fixture(scope="module")
def spec(tmp_path_factory, tiny_model_dir):
    reg = tmp_path_factory.mktemp("reg") / "models.yaml"
    empty = tmp_path_factory.mktemp("no-weights")
    reg.write_text(f"models:\n  - name: tiny\n    pretrained: {tiny_model_dir}\n    batch_size: 16\n"
                   f"  - name: crashes\n    pretrained: {tiny_model_dir}\n    max_length: 2\n"
                   f"  - name: unloadable\n    pretrained: {empty}\n")
    return load_registry(reg)


class CountingFactory:
    def __init__(self):
        self.calls = 0

    def __call__(self, spec):
        self.calls += 1
        return get_lm(spec)


def test_scoring_then_reuse_without_loading(spec, mini_tasks, tmp_path):
    lm = CountingFactory()
    first = run_job(spec.get("tiny"), "mini_fig1", tmp_path, get_lm=lm, tasks_dir=mini_tasks)
    assert not first.reused and lm.calls == 1 and first.path.exists()
    rec = first.record
    assert rec.reference == "known" and len(first.run.docs) == 12 and first.run.docs.has_support
    assert rec.descriptor.kind == "loglikelihood" and rec.descriptor.rank.pass_n == 8.0
    assert record_problems(first.run) == []
    assert {"ce", "kl", "cov@4", "pass_exact@8", "pass_pred@8"} <= set(rec.metrics)
    again = run_job(spec.get("tiny"), "mini_fig1", tmp_path, get_lm=lm, tasks_dir=mini_tasks)
    assert again.reused and lm.calls == 1 and "model not loaded" in again.message
    assert again.record.model_dump_json() == rec.model_dump_json()  # NaN-safe equality
    assert len(run_files(tmp_path, "tiny", "mini_fig1")) == 1


def test_growing_n_draws_only_the_missing_samples(spec, mini_tasks, tmp_path):
    lm = CountingFactory()
    small = run_job(spec.get("tiny"), "mini_fig1_sample", tmp_path, n=2, get_lm=lm, tasks_dir=mini_tasks)
    assert small.drew == 2 and small.run.samples.n == 2
    grown = run_job(spec.get("tiny"), "mini_fig1_sample", tmp_path, n=5, get_lm=lm, tasks_dir=mini_tasks)
    assert grown.drew == 3 and grown.run.samples.n == 5
    for old, new in zip(small.run.samples.generations.rows(), grown.run.samples.generations.rows()):
        assert tuple(new[:2]) == tuple(old)  # the stored samples are kept, in sample-index order
    same = run_job(spec.get("tiny"), "mini_fig1_sample", tmp_path, n=4, get_lm=lm, tasks_dir=mini_tasks)
    assert same.reused and same.drew == 0 and lm.calls == 2
    assert "pass_sampled@4" in grown.record.metrics
    assert grown.record.metrics["pass_sampled@8"].value != grown.record.metrics["pass_sampled@8"].value  # NaN


def test_sampled_and_exact_agree_on_the_paired_task(spec, mini_tasks, tmp_path):
    out = run_job(spec.get("tiny"), "mini_fig1_sample", tmp_path, n=8, tasks_dir=mini_tasks)
    scored = run_job(spec.get("tiny"), out.record.descriptor.pairs_with, tmp_path, tasks_dir=mini_tasks)
    assert out.record.provenance.sampling["policy"] == scored.record.provenance.sampling["policy"] == "T=1"
    assert agreement_problems(out.run, scored.run) == []


def test_corrupt_latest_file_is_skipped_and_not_deleted(spec, mini_tasks, tmp_path):
    first = run_job(spec.get("tiny"), "mini_fig1", tmp_path, tasks_dir=mini_tasks)
    bad = first.path.parent / "run-99999999T000000000000Z-x-0-0000.safetensors"
    bad.write_bytes(b"{truncated")
    again = run_job(spec.get("tiny"), "mini_fig1", tmp_path, tasks_dir=mini_tasks)
    assert again.reused and again.path == first.path  # the newest *readable* run is the current one
    assert bad.exists() and first.path.exists()


def test_model_that_fails_to_load_is_one_line(spec, mini_tasks, tmp_path):
    with pytest.raises(BackendError) as e:
        run_job(spec.get("unloadable"), "mini_fig1", tmp_path, tasks_dir=mini_tasks)
    assert "model 'unloadable'" in str(e.value) and "\n" not in str(e.value)
    assert run_files(tmp_path, "unloadable", "mini_fig1") == []


def test_model_that_crashes_is_one_line_and_keeps_stored_results(spec, mini_tasks, tmp_path):
    with pytest.raises(RunError) as e:  # max_length 2 cannot hold a prompt: lm-eval asserts
        run_job(spec.get("crashes"), "mini_fig1_sample", tmp_path, n=2, tasks_dir=mini_tasks)
    msg = str(e.value)
    assert "model 'crashes' × task 'mini_fig1_sample': crashed" in msg and "\n" not in msg
    assert run_files(tmp_path, "crashes", "mini_fig1_sample") == []


def test_unknown_task_and_suite_task_list(mini_tasks):
    with pytest.raises(TaskError, match="task 'nope' is not in"):
        load_task("nope", mini_tasks)
    assert suite_tasks(mini_tasks) == ["mini_fig1", "mini_fig1_sample"]
    assert {"graph_fig1", "graph_fig1_sample", "arith_ll", "arith_sample"} <= set(suite_tasks())
