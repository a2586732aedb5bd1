"""The graph tasks under lm-eval: shipped YAMLs, the in-memory loader, process_results, the store adapter,
exact vs sampled Pass@N through ``simple_evaluate``, and the stock CLI from another working directory."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from covbench.graphs import lmeval
from covbench.graphs.cli import main as data_main
from covbench.records import DocArrays, SampleArrays

ROOT = Path(__file__).resolve().parents[1]
from covbench.taskmeta import TASKS_DIR  # noqa: E402
GRAPH_DIR = TASKS_DIR / "graph"


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def load_yaml(name: str) -> dict:
    return yaml.load((GRAPH_DIR / f"{name}.yaml").read_text(), Loader=_Loader)


# --- YAMLs and data -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(lmeval.TASKS))
def test_shipped_yaml_is_current_and_carries_the_covbench_block(name: str) -> None:
    assert (GRAPH_DIR / f"{name}.yaml").read_text() == lmeval.task_yaml(lmeval.TASKS[name]), \
        "stale YAML: run `covbench data yaml`"
    cfg = load_yaml(name)
    block = cfg["metadata"]["covbench"]
    assert block["reference"] == "known" and block["adapter"] == "covbench.graphs.lmeval:records"
    assert block["kind"] == lmeval.TASKS[name].kind
    keys = [m["metric"] for m in cfg["metric_list"]]
    assert "cov@4" in keys and "kl" in keys if block["kind"] == "loglikelihood" else "pass_sampled@8" in keys


def test_covbench_data_yaml_rewrites_the_same_files(tmp_path: Path) -> None:
    assert data_main(["yaml", "--tasks-dir", str(tmp_path)]) == 0
    for name in lmeval.TASKS:
        assert (tmp_path / f"{name}.yaml").read_text() == (GRAPH_DIR / f"{name}.yaml").read_text()


def test_covbench_data_write_and_sample_are_deterministic(tmp_path: Path) -> None:
    assert data_main(["write", "--out", str(tmp_path / "a"), "graph_fig1_sample"]) == 0
    assert data_main(["write", "--out", str(tmp_path / "b"), "graph_fig1_sample"]) == 0
    a = (tmp_path / "a" / "graph_fig1_sample.jsonl").read_text()
    assert a == (tmp_path / "b" / "graph_fig1_sample.jsonl").read_text() and a.count("\n") == 128
    args = ["sample", "--n", "5", "--seed", "1", "--mixture", "fig1_pretrain"]
    assert data_main(args + ["--out", str(tmp_path / "s1.jsonl")]) == 0
    assert data_main(args + ["--out", str(tmp_path / "s2.jsonl")]) == 0
    assert (tmp_path / "s1.jsonl").read_bytes() == (tmp_path / "s2.jsonl").read_bytes()


def test_covbench_data_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert data_main(["write", "--out", str(tmp_path), "graph_nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "graph_nope" in err


def test_load_dataset_is_deterministic_and_cwd_independent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = load_yaml("graph_fig1_sample")["metadata"]
    first = lmeval.load_dataset(**meta, pretrained="ignored")["test"]
    monkeypatch.chdir(tmp_path)
    second = lmeval.load_dataset(**meta)["test"]
    assert len(first) == 128 and first.to_list() == second.to_list()
    full = lmeval.load_dataset(**load_yaml("graph_fig1")["metadata"])["test"]
    assert len(full) == 512 and full.to_list()[:128] == first.to_list()  # the sample task's docs are fig1's first 128
    row = first[0]
    assert row["support"][row["target_idx"]] == row["target"] and row["n_tokens"] == 6


def test_load_dataset_without_spec_names_the_field() -> None:
    with pytest.raises(ValueError, match="metadata.covbench.data"):
        lmeval.load_dataset(version=1.0)
    with pytest.raises(ValueError, match="mixture"):
        lmeval.load_dataset(covbench={"data": {"family": "fig1", "n_layers": 4, "m": 32, "mixture": "x",
                                               "seed": 0, "n": 2}})


# --- process_results and the adapter ------------------------------------------------------------------

def _doc(name: str, cls: str) -> dict:
    return next(r for r in lmeval.task_rows(lmeval.TASKS[name]) if r["cls"] == cls)


def test_process_results_ll_scores_the_whole_support() -> None:
    doc = _doc("graph_fig2_h8", "G3")  # 16 paths, π_D = 1/16 each
    lls = list(np.linspace(-1.0, -12.0, 16))
    out = lmeval.process_results_ll_weighted(doc, [(x, False) for x in lls])
    x = np.log(1 / 16) - np.array(lls)
    assert out["kl"] == (pytest.approx(x.mean()), doc["weight"])
    assert out["cov@4"][0] == pytest.approx(np.mean(x >= np.log(4)))
    assert out["pass_exact@8"][0] == pytest.approx(1 - (1 - np.exp(lls).sum()) ** 8)
    plain = lmeval.process_results_ll(_doc("graph_fig1", "G1"), [(-0.2, True)])
    assert plain["kl"] == pytest.approx(0.2) and plain["cov@1"] == 1.0 and plain["cov@1.5"] == 0.0


def test_process_results_sample_uses_the_verifier() -> None:
    doc = _doc("graph_fig1_sample", "G1")
    target = doc["target"].strip()
    gens = [target + " 3 3", "1 2 3", " " + target, target[:-1]] * 8
    out = lmeval.process_results_sample(doc, [gens])
    assert out["pass_sampled@1"] == pytest.approx(0.5)
    assert out["pass_sampled@32"] == 1.0


def _ll_sample(doc_id: int, doc: dict, lls: list[float], as_text: bool) -> dict:
    resps = [[str(x), "False"] if as_text else (x, False) for x in lls]
    return {"doc_id": doc_id, "doc": doc, "filtered_resps": resps, "resps": [[r] for r in resps]}


@pytest.mark.parametrize("as_text", [False, True])
def test_records_builds_doc_arrays(as_text: bool) -> None:
    docs = [_doc("graph_fig2_h8", c) for c in ("G1", "G3")]
    lls = [[-0.5], list(np.linspace(-2, -5, 16))]
    samples = [_ll_sample(1, docs[1], lls[1], as_text), _ll_sample(0, docs[0], lls[0], as_text)]
    arrays, sampled = lmeval.records(samples, "loglikelihood")
    assert sampled is None and isinstance(arrays, DocArrays)
    assert arrays.doc_id.tolist() == [0, 1] and arrays.cls == ("G1", "G3")
    assert arrays.weight.tolist() == [docs[0]["weight"], docs[1]["weight"]]
    assert arrays.logp_model.tolist() == [-0.5, pytest.approx(lls[1][docs[1]["target_idx"]])]
    assert arrays.logp_ref.tolist() == [0.0, pytest.approx(math.log(1 / 16))]
    assert arrays.logp_correct[1] == pytest.approx(math.log(np.exp(lls[1]).sum()))
    assert arrays.n_tokens.tolist() == [10, 10] and len(arrays.support_logp_model.row(1)) == 16


def test_records_builds_sample_arrays_and_handles_empty() -> None:
    doc = _doc("graph_fig1_sample", "G1")
    gen_kwargs = {"until": ["\n"], "max_gen_toks": 7, "do_sample": True, "temperature": 1.0}
    sample = {"doc_id": 3, "doc": doc, "arguments": [(doc["prompt"], gen_kwargs)],
              "filtered_resps": [[doc["target"].strip(), "1 2"]]}
    arrays_, sampled = lmeval.records([sample], "sample")
    assert arrays_ is None and isinstance(sampled, SampleArrays)
    assert sampled.correct.row(0).tolist() == [True, False] and sampled.max_gen_toks == 7 and sampled.n == 2
    assert lmeval.records([], "sample") == (None, None)
    with pytest.raises(ValueError, match="kind"):
        lmeval.records([sample], "other")


def test_task_manager_builds_every_task_with_one_request_per_support_path() -> None:
    from lm_eval.tasks import TaskManager

    tasks = TaskManager(include_path=str(TASKS_DIR), include_defaults=False).load(list(lmeval.TASKS))["tasks"]
    assert set(tasks) == set(lmeval.TASKS)
    for name, task in tasks.items():
        docs = list(task.test_docs())
        assert len(docs) == {"graph_fig1": 512, "graph_fig1_sample": 128}.get(name, 768)
        task.build_all_requests(limit=4)
        per_doc = [len([i for i in task.instances if i.doc_id == d]) for d in range(4)]
        if lmeval.TASKS[name].kind == "loglikelihood":
            assert per_doc == [len(docs[d]["support"]) for d in range(4)]
            assert all(i.args[1] in docs[i.doc_id]["support"] for i in task.instances)
        else:
            assert per_doc == [1] * 4 and task.instances[0].repeats == 32


# --- end to end through lm-eval ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def warm_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 fitted briefly on Fig. 1 docs: real, imperfect mass on valid paths."""
    import torch

    from covbench.graphs.generator import fig1_config
    from covbench.tiny import warm_tiny_gpt2

    torch.set_num_threads(1)  # 2 shared cores: more threads only contend
    return warm_tiny_gpt2(tmp_path_factory.mktemp("warm"), cfg=fig1_config(), steps=120, batch_size=32, lr=6e-3)


@pytest.mark.slow
def test_exact_and_sampled_pass_at_n_agree_within_4_standard_errors(warm_model_dir: Path) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from covbench.metrics import pass_at_k

    n_docs = 64
    lm = HFLM(pretrained=str(warm_model_dir), device="cpu", batch_size=64)
    res = simple_evaluate(model=lm, tasks=["graph_fig1", "graph_fig1_sample"], limit=n_docs,
                          task_manager=TaskManager(include_path=str(TASKS_DIR), include_defaults=False),
                          log_samples=True, bootstrap_iters=0)
    docs, _ = lmeval.records(res["samples"]["graph_fig1"], "loglikelihood")
    _, sampled = lmeval.records(res["samples"]["graph_fig1_sample"], "sample")
    assert docs.doc_id.tolist() == sampled.doc_id.tolist() == list(range(n_docs)) and sampled.n == 32
    p_correct = np.exp(docs.logp_correct)
    assert 0.01 < p_correct.mean() < 0.9, "model too weak or too strong for an informative comparison"
    c = np.array([int(sum(row)) for row in sampled.correct.rows()])
    for n in (1, 4, 8, 16):
        exact = 1 - (1 - p_correct) ** n
        measured = pass_at_k(32, c, n)
        diff = measured - exact
        se = diff.std(ddof=1) / math.sqrt(n_docs)
        assert abs(diff.mean()) < 4 * se, (n, exact.mean(), measured.mean(), se)
        # the lm-eval aggregates are the same means
        assert res["results"]["graph_fig1"][f"pass_exact@{n},none"] == pytest.approx(exact.mean())
        assert res["results"]["graph_fig1_sample"][f"pass_sampled@{n},all"] == pytest.approx(measured.mean())
    assert res["results"]["graph_fig1"]["kl,none"] == pytest.approx(np.mean(-np.array(docs.logp_model)))


@pytest.mark.slow
@pytest.mark.parametrize("task", list(lmeval.TASKS))
def test_stock_lm_eval_cli_runs_the_task_from_another_directory(task: str, tiny_model_dir: Path,
                                                                tmp_path: Path) -> None:
    limit = "2" if task == "graph_fig1_sample" else "8"
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}",
           "--tasks", task, "--include_path", str(TASKS_DIR), "--device", "cpu", "--batch_size", "16",
           "--limit", limit, "--output_path", str(tmp_path / "out")]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    key = "pass_sampled@8" if task.endswith("sample") else "cov@4"
    assert key in proc.stdout  # the printed results table
    (results,) = (tmp_path / "out").rglob("results_*.json")
    metrics = json.loads(results.read_text())["results"][task]
    value = metrics[f"{key},all" if task.endswith("sample") else f"{key},none"]
    assert 0.0 <= value <= 1.0
