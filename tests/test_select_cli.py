"""covbench select: the comparison on constructed records, and the command end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from covbench import selection
from covbench.records import DocArrays, Run
from covbench.select_cli import compare, main, render
from records_factory import record


def _ckpt(name, step, p_target, kl):
    lp = np.log(p_target).tolist()
    docs = DocArrays(doc_id=list(range(len(lp))), logp_model=lp, logp_ref=[0.0] * len(lp),
                     n_tokens=[6] * len(lp), n_bytes=[12] * len(lp))
    rec = record(name, "graph_fig1", {"ce": float(np.mean(-np.log(p_target))), "kl": kl,
                                      "pass_exact@8": 0.9}, reference="known", family="f", step=step)
    return Run(rec, docs)


def test_tournament_and_min_ce_disagree_on_a_fig1_like_family():
    # 90% majority prompts, 10% minority: "late" fits the majority better (lower CE) but starves the
    # minority (p = 0.02 < 1/4); "early" covers both.
    maj, mino = 9, 1
    early = _ckpt("early", 10, [0.6] * maj * 10 + [0.4] * mino * 10, 0.55)
    late = _ckpt("late", 100, [0.98] * maj * 10 + [0.02] * mino * 10, 0.41)
    result = compare([early, late], 4.0)
    assert result["n_prompts"] == 100
    assert result["min_ce_pick"] == "late" and result["min_kl_pick"] == "late"
    assert result["tournament_pick"] == "early"
    logp = np.array([early.docs.logp_model, late.docs.logp_model])
    assert result["tournament_scores"]["late"] == pytest.approx(selection.tournament(logp, 4.0).scores[1])
    row = result["checkpoints"][0]
    assert set(row) == {"name", "step", "ce", "kl", "cov", "pass_at"}
    assert row["pass_at"]["8"] == 0.9 and row["pass_at"]["4"] is None  # missing is null, never 0
    text = render(result)
    assert "T = coverage tournament at N = 4 (early)" in text and "C = min CE (late)" in text


def test_picks_use_only_the_prompts_every_checkpoint_shares():
    a = _ckpt("a", 1, [0.5] * 10, 0.7)
    b = _ckpt("b", 2, [0.5] * 10, 0.7)
    fewer = Run(b.record, b.docs.take(np.arange(2, 10)))  # b was scored on prompts 2..9 only
    result = compare([a, fewer], 2.0)
    assert result["n_prompts"] == 8


def test_bad_arguments_are_one_line(tmp_path, capsys):
    reg = tmp_path / "models.yaml"
    reg.write_text("models:\n  - name: a\n    pretrained: org/a\n")
    assert main(["--family", "nope", "--task", "graph_fig1", "--models-file", str(reg)]) == 2
    assert "no family 'nope'" in capsys.readouterr().err
    assert main(["--family", "x", "--task", "t", "--n", "0.5", "--models-file", str(reg)]) == 2


@pytest.mark.slow
def test_command_end_to_end_json(tmp_path, capsys, tiny_model_dir):
    from covbench.graphs.lmeval import DataSpec, TaskSpec, task_yaml
    from covbench.tiny import build_tiny_gpt2

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    data = DataSpec(family="fig1", n_layers=4, m=32, mixture="fig1_finetune", seed=3, n=10)
    (tasks / "mini.yaml").write_text(task_yaml(TaskSpec("mini", data, "loglikelihood")))
    other = build_tiny_gpt2(tmp_path / "other", m=128, seed=1)
    reg = tmp_path / "models.yaml"
    reg.write_text(f"models:\n  - {{name: c0, pretrained: {tiny_model_dir}, family: fam, step: 0}}\n"
                   f"  - {{name: c1, pretrained: {other}, family: fam, step: 5}}\n")
    argv = ["--family", "fam", "--task", "mini", "--n", "2", "--json", "--models-file", str(reg),
            "--results-dir", str(tmp_path / "results"), "--tasks-dir", str(tasks)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in out["checkpoints"]] == ["c0", "c1"] and out["tournament_n"] == 2
    assert out["min_ce_pick"] in ("c0", "c1") and out["tournament_pick"] in ("c0", "c1")
    assert all(math.isfinite(c["ce"]) and 0 <= c["cov"]["2"] <= 1 for c in out["checkpoints"])
    assert main(argv) == 0  # the second run reuses the store
    assert "reused the stored result" in capsys.readouterr().err
