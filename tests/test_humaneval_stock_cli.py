"""The HumanEval tasks and a wrapped task under the stock ``lm_eval`` CLI with ``--include_path`` (lm-eval's
own HF backend, a random tiny GPT-2, 2 docs): the code task runs with ``--confirm_run_unsafe_code``
and its samples are judged in covbench's sandbox; the wrapped gsm8k task judges under both of gsm8k's
filters."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from covbench.taskmeta import TASKS_DIR
from covbench.wrap.cli import main as wrap_main

pytestmark = pytest.mark.slow
GSM8K = TASKS_DIR / "gsm8k_cov" / "data"


def test_stock_cli_runs_humaneval_and_a_wrapped_task(tiny_model_dir, tmp_path) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    for name, source in (("he_cli", "humaneval_cov_mini"), ("he_cli_ll", "humaneval_cov_ll_mini")):
        (tasks / f"{name}.yaml").write_text(f"include: {TASKS_DIR / 'humaneval' / source}.yaml\ntask: {name}\n")
    assert wrap_main(["gsm8k", "--out", str(tasks / "wrapped"), "--n", "2", "--data", f"test={GSM8K / 'test.jsonl'}",
                      "--data", f"train={GSM8K / 'train.jsonl'}"]) == 0
    lm_eval = shutil.which("lm_eval", path=str(Path(sys.executable).parent)) or "lm_eval"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "out"
    proc = subprocess.run([lm_eval, "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}",
                           "--tasks", "he_cli,he_cli_ll,gsm8k_wrap,gsm8k_wrap_ll", "--include_path", str(tasks),
                           "--limit", "2", "--gen_kwargs", "max_gen_toks=8", "--confirm_run_unsafe_code",
                           "--output_path", str(out), "--log_samples"],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    assert set(results) == {"he_cli", "he_cli_ll", "gsm8k_wrap", "gsm8k_wrap_ll"}
    assert results["he_cli"]["pass_sampled@4,sandbox"] == 0.0  # random weights: no program passes
    assert results["he_cli_ll"]["cov@1024,none"] == 1.0
    assert {"pass_sampled@2,strict-match", "pass_sampled@2,flexible-extract"} <= set(results["gsm8k_wrap"])
    he = [json.loads(line) for f in out.rglob("samples_he_cli_2*.jsonl") for line in f.read_text().splitlines()]
    # lm-eval writes every filtered response as its str(): each judged record is a Python literal there
    judged = [ast.literal_eval(j) for s in he for j in s["filtered_resps"][0]]
    assert len(judged) == 2 * 4 and all(j["correct"] is False for j in judged)
    assert all(j["detail"].split(":")[0] in ("failed", "crashed", "timeout", "memory", "no_evidence") for j in judged)
