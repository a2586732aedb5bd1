"""Tests of the shipped family under covbench/zoo/checkpoints/: layout, size budget, provenance, and
(slow) that the stored weights still do what docs/zoo.md says on fresh held-out prompts."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from covbench.zoo.cli import CHECKPOINTS, FIG2_CHECKPOINTS
from covbench.zoo.config import FinetuneSpec, ft_checkpoint_steps

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "covbench_train.json"}


def _family():
    """The Fig. 1 family: checkpoint folders directly under CHECKPOINTS (Fig. 2 lives in its own subfolder)."""
    dirs = sorted(p for p in CHECKPOINTS.iterdir() if p.is_dir() and p != FIG2_CHECKPOINTS)
    return dirs, [json.loads((d / "covbench_train.json").read_text()) for d in dirs]


def test_family_layout_and_size_budget():
    dirs, _ = _family()
    names = [d.name for d in dirs]
    assert "graph-pt" in names
    ft = [n for n in names if n.startswith("graph-ft-")]
    assert len(ft) >= 8
    for d in dirs:
        assert FILES <= {p.name for p in d.iterdir()}, d
    fig1 = sum(p.stat().st_size for d in dirs for p in d.rglob("*") if p.is_file())
    assert fig1 <= 20 * 1024 * 1024
    total = sum(p.stat().st_size for p in CHECKPOINTS.rglob("*") if p.is_file())
    assert total <= 40 * 1024 * 1024  # the whole zoo, Fig. 2 included


def test_family_provenance_and_log_spaced_steps():
    dirs, infos = _family()
    by_name = dict(zip([d.name for d in dirs], infos))
    pt = by_name["graph-pt"]
    assert pt["finetune_step"] == 0 and pt["valid_mass_heldout"] >= 0.95  # the stop rule
    ft = sorted((i for n, i in by_name.items() if n != "graph-pt"), key=lambda i: i["finetune_step"])
    spec = FinetuneSpec(**ft[0]["config"]["finetune"])
    assert [i["finetune_step"] for i in ft] == ft_checkpoint_steps(spec)
    assert all(i["seed"] == pt["seed"] for i in ft)
    for part in ("graph", "model", "pretrain", "pretrain_more"):  # the pre-training recipe is shared
        assert all(i["config"].get(part) == pt["config"].get(part) for i in ft)
    assert all(i["pretrain_steps"] == pt["pretrain_steps"] for i in ft)
    for d in dirs:
        assert json.loads((d / "config.json").read_text())["dtype"] == "float16"


@pytest.mark.slow
def test_stored_weights_show_the_fig1_effect_on_fresh_prompts():
    """On 256 fresh held-out 90/10 prompts (a seed docs/zoo.md does not use): the pre-trained model
    covers the valid paths, and the last fine-tuning checkpoint has lower KL but a higher Cov_8."""
    from covbench.graphs.generator import FIG1_FINETUNE, fig1_config, sample_docs
    from covbench.graphs.tokenizer import PAD, vocabulary
    from covbench.zoo.evaluate import checkpoint_metrics
    from covbench.zoo.model import load_checkpoint
    from covbench.zoo.scoring import score_docs

    dirs, infos = _family()
    g = infos[0]["config"]["graph"]
    cfg = fig1_config(n_layers=g["n_layers"], m=g["m"], edge_order=g["edge_order"])
    docs = sample_docs(cfg, FIG1_FINETUNE, n=256, seed=777)
    pad = vocabulary(cfg.m)[PAD]
    last = max((d for d in dirs if d.name.startswith("graph-ft-")), key=lambda d: d.name)
    pt, ft = (checkpoint_metrics(d.name, 0, docs, score_docs(load_checkpoint(d), docs, cfg.m, pad), 6)
              for d in (CHECKPOINTS / "graph-pt", last))
    assert pt.valid_mass >= 0.93  # ≥ 0.95 on the stop-rule prompts; 256 prompts leave sampling noise
    assert ft.kl < pt.kl and ft.cov["cov@8"] > pt.cov["cov@8"]
    assert np.isfinite([pt.kl, ft.kl]).all()
