"""covbench select: the comparison on constructed records, and the command end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from records_factory import record
from scipy import stats

from covbench import selection
from covbench.records import DocArrays, Run
from covbench.select_cli import compare, main, render


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


# ---- issue 16: the offset tournament and the paired difference ----------------------------------------


def _exact_ckpt(name, step, p_target):
    lp = np.log(np.asarray(p_target, dtype=float))
    n = lp.size
    docs = DocArrays(doc_id=list(range(n)), logp_model=lp, logp_ref=[0.0] * n, n_tokens=[6] * n, n_bytes=[12] * n,
                     logp_correct=lp)
    rec = record(name, "graph_fig1", {"ce": float(np.mean(-lp))}, reference="known", family="f", step=step)
    return Run(rec, docs)


def _onpolicy(names, n, gen):
    from covbench.onpolicy import OnPolicy

    return OnPolicy(tuple(names), np.arange(n), gen, gen.shape[3], 1, (), 0, len(names) ** 2, (), (), 0.1)


def test_offset_pick_paired_difference_and_render():
    early = _exact_ckpt("early", 10, [0.6] * 90 + [0.4] * 10)
    late = _exact_ckpt("late", 100, [0.98] * 90 + [0.02] * 10)
    # late's own samples are beaten by early on a quarter of them (late under-weights what it draws there)
    gen = np.full((2, 2, 100, 4), -1.0)
    gen[1, 0, :, 0] = 2.0
    result = compare([early, late], 4.0, onpolicy=_onpolicy(["early", "late"], 100, gen), gamma=1.0)
    off = result["offset"]
    assert result["tournament_pick"] == "early" and result["min_ce_pick"] == "late"
    # by hand: Ĉov_4(early‖late) = 0.1 held out, Ĉov^on = 0.25 → 0.1 − 2·0.25 < 0, so late's worst case is 0
    assert off["scores"]["late"] == 0.0 and off["on_policy_worst"]["late"] == 0.25 and off["pick"] == "late"
    assert off["guarantee_holds"] is False and off["generations"] == 2 * 100 * 4 and off["scores_computed"] == 1600
    assert "offset" not in result["paired_difference"]  # the offset pick is the min-CE pick: nothing to compare
    d = result["paired_difference"]["tournament"]["8"]
    per = (1 - (1 - np.exp(early.docs.logp_model)) ** 8) - (1 - (1 - np.exp(late.docs.logp_model)) ** 8)
    lo, hi = stats.ttest_1samp(per, 0.0).confidence_interval(0.95)
    assert (d["value"], d["lo"], d["hi"]) == (pytest.approx(per.mean()), pytest.approx(lo), pytest.approx(hi))
    assert d["source"] == "exact" and d["n_prompts"] == 100 and (d["pick"], d["baseline"]) == ("early", "late")
    text = render(result)
    assert "O = offset tournament at N = 4, γ = 1 (late)" in text
    assert f"T − C (early − late, same 100 prompts, exact, paired t 95%): Pass@4 {result['paired_difference']['tournament']['4']['value']:+.3f}" in text
    assert "N ≥ 8γ² (Thm 6.4): not met" in text
    json.dumps(result)  # serialisable as printed by --json


def test_measured_difference_asks_only_for_the_picks_samples():
    early = _ckpt("early", 10, [0.6] * 18 + [0.4] * 2, 0.5)
    late = _ckpt("late", 100, [0.98] * 18 + [0.02] * 2, 0.4)
    asked = []

    def sampler(name):
        from covbench.records import SampleArrays

        asked.append(name)
        rows = [[True] * 3 + [False] * 13] * 20 if name == "early" else [[True] * 2 + [False] * 14] * 20
        return Run(record(name, "s", {}), None, SampleArrays(doc_id=list(range(20)), generations=[["x"] * 16] * 20,
                                                             correct=rows, max_gen_toks=2))

    result = compare([early, late], 4.0, samplers=sampler)
    assert sorted(set(asked)) == ["early", "late"]
    d = result["paired_difference"]["tournament"]["8"]
    assert d["source"] == "measured"
    expected = (1 - math.comb(13, 8) / math.comb(16, 8)) - (1 - math.comb(14, 8) / math.comb(16, 8))
    assert d["value"] == pytest.approx(expected) and d["lo"] == pytest.approx(expected)  # identical prompts


def test_offset_arguments_are_checked_in_one_line(tmp_path, capsys):
    reg = tmp_path / "models.yaml"
    reg.write_text("models:\n  - {name: a, pretrained: org/a, family: f}\n")
    for bad in (["--m", "0"], ["--gamma", "0"], ["--gamma", "nan"]):
        assert main(["--family", "f", "--task", "t", "--method", "offset", "--models-file", str(reg), *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("covbench select: --")


@pytest.mark.slow
def test_offset_method_end_to_end(tmp_path, capsys):
    from covbench.graphs.lmeval import DataSpec, TaskSpec, task_yaml
    from covbench.tiny import build_tiny_gpt2

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    data = DataSpec(family="fig1", n_layers=4, m=32, mixture="fig1_finetune", seed=3, n=8)
    (tasks / "mini.yaml").write_text(task_yaml(TaskSpec("mini", data, "loglikelihood")))
    dirs = [build_tiny_gpt2(tmp_path / f"c{s}", m=128, seed=s, n_positions=128) for s in range(2)]
    reg = tmp_path / "models.yaml"
    reg.write_text("models:\n" + "".join(f"  - {{name: c{s}, pretrained: {d}, family: fam, step: {s}, batch_size: 4}}\n"
                                         for s, d in enumerate(dirs)))
    argv = ["--family", "fam", "--task", "mini", "--n", "2", "--method", "offset", "--m", "2", "--json",
            "--models-file", str(reg), "--results-dir", str(tmp_path / "results"), "--tasks-dir", str(tasks)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    off = out["offset"]
    assert off["pick"] in ("c0", "c1") and off["m"] == 2 and off["n_prompts"] == 8 and off["drawn"] == ["c0", "c1"]
    assert off["generations"] == 2 * 8 * 2 and off["scored"] == 4
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)["offset"]
    assert again["drawn"] == [] and again["scored"] == 0 and again["reused"] == 4 and again["scores"] == off["scores"]
