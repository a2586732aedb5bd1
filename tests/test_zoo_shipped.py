"""Tests of the shipped family under covbench/zoo/checkpoints/: layout, size budget, provenance, and
(slow) that the stored weights still do what docs/zoo.md says on fresh held-out prompts."""

from __future__ import annotations

import json
import os
from pathlib import Path

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


# --- Fig. 2 (covbench/zoo/checkpoints/fig2, docs/zoo.md "Figure 2") ---------------------------------------

def _fig2_runs():
    from covbench.zoo.fig2_config import fig2_preset, run_name

    cfg = fig2_preset("fig2")
    names = [run_name(m, h, s) for m in cfg.methods for h in cfg.hs for s in cfg.seeds]
    return cfg, names


def test_fig2_grid_is_shipped_with_provenance_and_validation():
    from covbench.zoo.fig2_train import BASE_NAME

    cfg, names = _fig2_runs()
    shipped = {p.name for p in FIG2_CHECKPOINTS.iterdir() if p.is_dir()}
    assert shipped == {*names, BASE_NAME}
    assert len(cfg.seeds) >= 3 and len(cfg.hs) >= 3 and {"sgd", "nsgd", "trunc"} <= set(cfg.methods)
    base = json.loads((FIG2_CHECKPOINTS / BASE_NAME / "covbench_train.json").read_text())
    assert base["steps"] == cfg.base.steps and sorted(map(int, base["validation_by_H"])) == sorted(cfg.hs)
    total_cpu = base["train_cpu_s"]
    for name in names:
        d = FIG2_CHECKPOINTS / name
        assert FILES <= {p.name for p in d.iterdir()}, d
        info = json.loads((d / "covbench_train.json").read_text())
        assert info["run"] == name and info["init"] == BASE_NAME and info["steps"] == cfg.steps
        for part in ("model", "base", "m", "hs", "seeds", "n_val_per_class", "val_seed"):
            assert info["config"][part] == base["config"][part], part  # one stage 1, one validation recipe
        val = info["validation"]
        assert val["n_docs"] == 3 * cfg.n_val_per_class and 0 <= val["cov"]["cov@16"] <= 1 and val["kl"] > 0
        assert json.loads((d / "config.json").read_text())["dtype"] == "float16"
        total_cpu += info["train_cpu_s"]
    assert total_cpu <= 90 * 60  # the budget: ≤ ~90 min of one core for the whole set


def test_fig2_registry_entries_point_at_the_shipped_runs():
    from covbench.registry import load_registry

    _, names = _fig2_runs()
    reg = load_registry(Path(__file__).resolve().parents[1] / "models.yaml")
    for name in names:
        spec = reg.get(name)
        assert Path(spec.source.pretrained).resolve() == (FIG2_CHECKPOINTS / name).resolve()
        h = int(name.split("-h")[1].split("-")[0])
        assert spec.tasks == [f"graph_fig2_h{h}"] and not spec.default
        # one family per rule, placed on the H axis: the family page plots each H's seeds at x = H
        assert spec.family == "fig2-" + name.split("-")[1] and spec.axis == "H" and spec.x == h
    base = reg.get("fig2-base")
    assert base.tasks == [f"graph_fig2_h{h}" for h in (8, 16, 24)] and base.family is None and not base.default


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")  # 2 threads on shared cores: 100 s of CPU; 1: 12 s
def test_fig2_stored_validation_reproduces_from_the_weights():
    """Re-measure one run at the smallest H from its stored float16 weights on its whole validation set:
    the numbers are the ones its covbench_train.json reports (same docs, same weights)."""
    from covbench.graphs.tokenizer import PAD, vocabulary
    from covbench.zoo.fig2_eval import evaluate_docs
    from covbench.zoo.fig2_train import validation_docs
    from covbench.zoo.model import load_checkpoint

    cfg, _ = _fig2_runs()
    h = min(cfg.hs)
    name = f"fig2-nsgd-h{h}-s{cfg.seeds[0]}"
    got = evaluate_docs(load_checkpoint(FIG2_CHECKPOINTS / name), validation_docs(cfg, h), cfg.m,
                        vocabulary(cfg.m)[PAD])
    stored = json.loads((FIG2_CHECKPOINTS / name / "covbench_train.json").read_text())["validation"]
    assert got.kl == pytest.approx(stored["kl"], rel=1e-5)
    assert got.cov == pytest.approx(stored["cov"], abs=1e-9)
