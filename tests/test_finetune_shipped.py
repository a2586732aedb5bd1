"""The shipped LoRA family under covbench/finetune/adapters/: layout, size, provenance, log and report.

These read the shipped files only (no model is loaded); docs/finetune.md has the numbers they pin down.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from covbench.finetune.cli import ADAPTERS
from covbench.finetune.config import FinetuneConfig, checkpoint_steps, preset
from covbench.finetune.evaluate import family_checkpoints
from covbench.finetune.trainer import ADAPTER_WEIGHTS, TRAIN_INFO

SHIPPED = preset("shipped")


@pytest.fixture(scope="module")
def infos() -> dict[int, dict]:
    return {ck.step: json.loads((ck.adapter / TRAIN_INFO).read_text())
            for ck in family_checkpoints(ADAPTERS) if ck.adapter is not None}


def test_seven_log_spaced_checkpoints_of_the_shipped_preset(infos) -> None:
    assert sorted(infos) == checkpoint_steps(SHIPPED.train) and len(infos) >= 6
    for step, info in infos.items():
        assert FinetuneConfig.model_validate(info["config"]) == SHIPPED  # the preset in the code is the run's
        assert info["step"] == step and info["seed"] == SHIPPED.seed
        assert info["examples_seen"] == step * SHIPPED.train.batch_size
        assert info["held_out_docs"] == {"arith_ll": 64, "arith_sample": 32} and info["held_out_facts"] == 62
        assert info["base"]["sha256"]
        assert {"peft", "torch", "transformers", "lm_eval"} <= set(info["versions"])
    walls = [infos[s]["wall_s"] for s in sorted(infos)]
    assert walls == sorted(walls)


def test_adapters_are_float16_lora_weights_of_the_configured_shape_and_fit_the_budget() -> None:
    total = sum(p.stat().st_size for p in ADAPTERS.rglob("*") if p.is_file())
    assert total < 8 * 1024 * 1024  # "a few MB in all"
    for ck in family_checkpoints(ADAPTERS)[1:]:
        cfg = json.loads((ck.adapter / "adapter_config.json").read_text())
        assert cfg["r"] == SHIPPED.lora.r and cfg["lora_alpha"] == SHIPPED.lora.alpha
        assert sorted(cfg["target_modules"]) == sorted(SHIPPED.lora.targets)
        assert not cfg["base_model_name_or_path"].startswith("/")  # portable, never a local path
        with safe_open(str(ck.adapter / ADAPTER_WEIGHTS), "pt") as f:
            shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}  # noqa: SIM118
            dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118
        assert dtypes == {"F16"} and len(shapes) == 30 * 2 * 2  # 30 layers x (q, v) x (A, B)
        assert sum(torch.Size(s).numel() for s in shapes.values()) == 460_800


def test_training_log_covers_the_run_and_the_loss_falls() -> None:
    records = [json.loads(line) for line in (ADAPTERS / "train_log.jsonl").read_text().splitlines()]
    assert records[0]["event"] == "config" and records[-1]["event"] == "done"
    steps = [r for r in records if r["event"] == "step"]
    assert steps[-1]["step"] == SHIPPED.train.steps and records[-1]["examples"] == 9600
    assert steps[-1]["loss"] < 0.2 * steps[0]["loss"]
    assert [r["step"] for r in records if r["event"] == "saved"] == checkpoint_steps(SHIPPED.train)


def test_eval_report_is_consistent_with_its_rows() -> None:
    report = json.loads((ADAPTERS / "eval_report.json").read_text())
    rows = report["rows"]
    assert [r["step"] for r in rows] == [0, *checkpoint_steps(SHIPPED.train)]
    by_ce = min(rows, key=lambda r: r["ce"])
    assert report["min_ce_pick"] == by_ce["name"]
    assert report["tournament_n"] == 4.0
    scores = report["tournament_scores"]
    assert report["tournament_pick"] == min(scores, key=lambda n: (scores[n], next(
        r["ce"] for r in rows if r["name"] == n)))
    for r in rows:
        assert 0 <= r["pass_strict"]["8"] <= r["pass_sampled"]["8"] + 1e-12 <= 1 + 1e-12
        assert all(0 <= v <= 1 for v in r["cov"].values())
