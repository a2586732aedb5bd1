"""Family evaluation on the tiny config: every checkpoint through the runner, picks checked independently."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from covbench import selection
from covbench.finetune.base import build_tiny_llama
from covbench.finetune.config import preset
from covbench.finetune.evaluate import evaluate_family, family_checkpoints, render_markdown
from covbench.finetune.trainer import train
from covbench.metrics import predicted_pass_at_n
from covbench.store import latest_run

pytestmark = pytest.mark.slow

TINY = preset("tiny")


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory, one_torch_thread) -> tuple[Path, Path]:
    """A tiny base registered as ``tiny-base`` and two adapters of a 4-step run (lr high enough to move)."""
    root = tmp_path_factory.mktemp("family")
    base_dir = build_tiny_llama(TINY.base, root / "base", seed=0)
    cfg = TINY.model_copy(update={
        "base": TINY.base.model_copy(update={"pretrained": str(base_dir)}),
        "train": TINY.train.model_copy(update={"steps": 4, "first_checkpoint": 2, "n_checkpoints": 2,
                                               "lr": 0.05})})
    train(cfg, root / "adapters", lambda r: None)
    (root / "models.yaml").write_text(
        "models:\n  - name: tiny-base\n    backend: hf-fast\n    pretrained: base\n    batch_size: 16\n")
    return root / "adapters", root / "models.yaml"


@pytest.fixture(scope="module")
def report(family, tmp_path_factory: pytest.TempPathFactory):
    adapters, models = family
    results = tmp_path_factory.mktemp("results")
    return evaluate_family(adapters, results, models_file=models, base_model="tiny-base"), results


def test_every_checkpoint_and_the_base_are_scored_on_both_tasks(report) -> None:
    rep, results = report
    assert [r.step for r in rep.rows] == [0, 2, 4]
    for row in rep.rows:
        found_ll, found_sample = latest_run(results, row.name, "arith_ll"), latest_run(results, row.name, "arith_sample")
        assert found_ll is not None and found_sample is not None
        ll, sample = found_ll[0], found_sample[0]
        assert ll.record.family == "smollm2-lora" and ll.record.step == row.step
        assert len(ll.docs.doc_id) == 64 and sample.samples.n == 16 and len(sample.samples.doc_id) == 32
        assert row.ce == pytest.approx(float(np.mean(-ll.docs.logp_model)))
        assert row.cov["4"] == pytest.approx(float(np.mean(-ll.docs.logp_model >= math.log(4))))
        by_id = dict(zip(ll.docs.doc_id.tolist(), ll.docs.logp_model.tolist()))
        want = predicted_pass_at_n([by_id[d] for d in sample.samples.doc_id.tolist()], [8.0])[0]
        assert row.pass_pred_32["8"] == pytest.approx(float(want))
        assert 0.0 <= row.pass_strict["8"] <= row.pass_sampled["8"] + 1e-12 <= 1.0 + 1e-12  # a sub-event
    # the adapters change the model: the three checkpoints score differently
    assert len({round(r.ce, 6) for r in rep.rows}) == 3


def test_picks_are_min_ce_and_the_tournament_on_the_stored_matrix(report) -> None:
    rep, results = report
    logp = np.array([latest_run(results, r.name, "arith_ll")[0].docs.logp_model for r in rep.rows])
    names = [r.name for r in rep.rows]
    assert rep.min_ce_pick == names[selection.min_ce(logp)]
    assert rep.tournament_pick == names[selection.tournament(logp, 4.0).pick]
    text = render_markdown(rep)
    assert "min-CE pick" in text and "tournament pick (N = 4)" in text
    assert sum(line[:3] in ("| 0", "| 2", "| 4") for line in text.splitlines()) == 3  # one row per step
    json.dumps(rep.to_dict())  # JSON-able (NaN -> null)


def test_rerun_reuses_the_store_and_refuses_results_of_other_weights(report, family, tmp_path: Path) -> None:
    rep, results = report
    adapters, models = family
    again = evaluate_family(adapters, results, models_file=models, base_model="tiny-base")
    assert [r.ce for r in again.rows] == [r.ce for r in rep.rows]
    assert all(r.wall_s >= 0 for r in rep.rows) and all(math.isnan(r.wall_s) for r in again.rows)
    assert render_markdown(again).count("| reused |") == 3
    other = tmp_path / "adapters"
    shutil.copytree(adapters, other)
    last = family_checkpoints(other)[-1].adapter
    first = family_checkpoints(other)[1].adapter
    shutil.copy(first / "adapter_model.safetensors", last / "adapter_model.safetensors")
    with pytest.raises(ValueError, match="field 'description': stored for other weights"):
        evaluate_family(other, results, models_file=models, base_model="tiny-base")


def test_family_checkpoints_rejects_an_incomplete_folder(tmp_path: Path) -> None:
    (tmp_path / "smollm2-lora-0000003").mkdir()
    with pytest.raises(FileNotFoundError, match="not an adapter checkpoint"):
        family_checkpoints(tmp_path)
    with pytest.raises(FileNotFoundError, match="no smollm2-lora-NNNNNNN adapter folders"):
        family_checkpoints(tmp_path / "empty")
