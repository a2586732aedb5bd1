"""Tests of the zoo: config, batching, exact path scoring, the Fig. 1 metrics, and (slow) the trainer end
to end with the tiny preset, loaded back through lm-eval's HF backend."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from covbench.graphs.generator import FIG1_FINETUNE, FIG1_PRETRAIN, fig1_config, path_text, sample_docs
from covbench.graphs.tokenizer import PAD, vocabulary
from covbench.zoo import cli
from covbench.zoo.config import FinetuneSpec, ModelSpec, ft_checkpoint_steps, preset
from covbench.zoo.data import DocStream, collate, encode, valid_path_examples
from covbench.zoo.evaluate import checkpoint_metrics
from covbench.zoo.model import build_model
from covbench.zoo.scoring import DocScores, response_logp, score_docs

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
M = 32
PAD_ID = vocabulary(M)[PAD]


# --- config -------------------------------------------------------------------------------------------

def test_ft_checkpoint_steps_are_log_spaced_distinct_and_span_the_run():
    steps = ft_checkpoint_steps(FinetuneSpec(steps=3000, first_checkpoint=10, n_checkpoints=10))
    assert steps[0] == 10 and steps[-1] == 3000 and steps == sorted(set(steps)) and len(steps) == 10
    ratios = np.diff(np.log(steps))
    assert np.allclose(ratios, ratios.mean(), atol=0.05)  # log-spaced


def test_ft_checkpoint_steps_collapse_duplicates_when_the_run_is_short():
    assert ft_checkpoint_steps(FinetuneSpec(steps=3, first_checkpoint=1, n_checkpoints=10)) == [1, 2, 3]


def test_presets_validate_and_unknown_preset_names_the_choices():
    assert preset("shipped").graph.edge_order == "layered"
    with pytest.raises(ValueError, match="tiny"):
        preset("nope")
    with pytest.raises(ValueError, match="divisible"):
        ModelSpec(d_model=30, n_head=4)


def test_cli_bad_override_is_one_line_naming_the_field(capsys):
    assert cli.main(["train", "--preset", "tiny", "--set", "pretrain.lr=-1", "--out", "/nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pretrain.lr" in err
    assert cli.main(["train", "--preset", "tiny", "--set", "pretrain.nope=1"]) == 2
    assert "pretrain.nope" in capsys.readouterr().err


# --- batches --------------------------------------------------------------------------------------------

def test_collate_marks_only_response_tokens_and_right_pads():
    docs = sample_docs(fig1_config(), FIG1_PRETRAIN, n=5, seed=3)
    exs = [encode(d, M) for d in docs]
    b = collate(exs, PAD_ID)
    for i, e in enumerate(exs):
        n = len(e.prompt) + len(e.response)
        assert b.input_ids[i, :n].tolist() == list(e.prompt + e.response)
        assert (b.input_ids[i, n:] == PAD_ID).all() and b.attention_mask[i].sum() == n
        assert b.labels[i][b.labels[i] != -100].tolist() == list(e.response)
        assert len(e.response) == 6
    with pytest.raises(ValueError):
        collate([], PAD_ID)


def test_doc_stream_is_reproducible_and_follows_the_mixture():
    a = DocStream(fig1_config(), FIG1_FINETUNE, seed=5).take(400)
    b = DocStream(fig1_config(), FIG1_FINETUNE, seed=5).take(400)
    assert [d.to_row() for d in a] == [d.to_row() for d in b]
    share_g2 = np.mean([d.cls == "G2" for d in a])
    assert abs(share_g2 - 0.1) < 3 * math.sqrt(0.09 / 400)


# --- exact scoring --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_model():
    return build_model(ModelSpec(d_model=32, n_layer=1, n_head=2, d_ff=64, max_positions=128), M, seed=0).eval()


def _reference_logp(model, prompt, response) -> float:
    """Independent reference: one unpadded sequence, token by token, no batching or masking."""
    ids = torch.tensor([list(prompt + response)])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
    return sum(float(logp[len(prompt) + k - 1, tok]) for k, tok in enumerate(response))


def test_batched_scoring_matches_unpadded_token_by_token_reference(small_model):
    docs = sample_docs(fig1_config(), FIG1_PRETRAIN, n=6, seed=1)
    exs = [e for d in docs for e in valid_path_examples(d, M)]
    got = response_logp(small_model, exs, PAD_ID, batch_size=5)  # several batches, ragged widths
    want = [_reference_logp(small_model, e.prompt, e.response) for e in exs]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_score_docs_locates_target_and_support(small_model):
    docs = sample_docs(fig1_config(), FIG1_PRETRAIN, n=12, seed=2)
    s = score_docs(small_model, docs, M, PAD_ID)
    for d, lp, ti, si in zip(docs, s.path_logp, s.target_idx, s.support_idx):
        paths = [path_text(p) for p in d.graph.valid_paths()]
        assert len(lp) == d.n_valid == 4 and paths[ti] == d.target
        assert [paths[i] for i in si] == list(d.support)
    mass = s.valid_mass()
    assert ((mass > 0) & (mass <= 1)).all()
    # log π̂(S_x) ≥ log π̂(target) with equality for deterministic classes
    assert (s.logp_support() >= s.logp_target() - 1e-12).all()


def test_valid_mass_against_brute_force_enumeration_of_every_response():
    """L = 2, m = 10: every 4-token response over the 16-token vocabulary is enumerated (one batched
    forward over all 16^3 prefixes); the mass on responses the graph's own edge check accepts equals
    score_docs' valid mass, and the mass over all responses is 1."""
    m = 10
    cfg = fig1_config(n_layers=2, m=m)
    model = build_model(ModelSpec(d_model=16, n_layer=1, n_head=2, d_ff=32, max_positions=64), m, seed=1).eval()
    doc = sample_docs(cfg, FIG1_PRETRAIN, n=1, seed=0)[0]
    prompt = list(encode(doc, m).prompt)
    v = len(vocabulary(m))
    prefixes = torch.cartesian_prod(*[torch.arange(v)] * 3)  # [v^3, 3]
    ids = torch.cat([torch.tensor(prompt).expand(len(prefixes), -1), prefixes], dim=1)
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=ids).logits.double(), -1)
    p0 = len(prompt) - 1
    head = sum(lp[torch.arange(len(ids)), p0 + k, prefixes[:, k]] for k in range(3))  # [v^3]
    full = head[:, None] + lp[:, p0 + 3, :]  # [v^3, v]: log π̂ of every 4-token response
    assert float(full.exp().sum()) == pytest.approx(1.0, abs=1e-9)
    valid = sum(float(full[i, c].exp()) for i, pre in enumerate(prefixes.tolist()) for c in range(m)
                if all(t < m for t in pre) and doc.graph.is_valid_path((*pre, c)))
    s = score_docs(model, [doc], m, vocabulary(m)[PAD])
    assert 0 < valid < 1 and s.valid_mass()[0] == pytest.approx(valid, rel=1e-5)


# --- Fig. 1 metrics from known path probabilities -------------------------------------------------------

def _fake_scores(docs, p_g1: float, p_g2: float) -> DocScores:
    """Every doc: π̂ = p_g1 on its G1 rule path, p_g2 on its G2 rule path, the rest split evenly."""
    from covbench.zoo.evaluate import _rule_paths

    path_logp, sup, tgt = [], [], []
    for d in docs:
        paths = [path_text(p) for p in d.graph.valid_paths()]
        r1, r2 = _rule_paths(d)
        p = np.full(len(paths), max(0.0, 1 - p_g1 - p_g2) / (len(paths) - 2))
        p[paths.index(r1)], p[paths.index(r2)] = p_g1, p_g2
        with np.errstate(divide="ignore"):  # a path with π̂ = 0 has log π̂ = −inf
            path_logp.append(np.log(p))
        sup.append(tuple(paths.index(y) for y in d.support))
        tgt.append(paths.index(d.target))
    return DocScores(tuple(path_logp), tuple(sup), tuple(tgt), tuple(d.cls for d in docs),
                     tuple(d.logp_target for d in docs))


@pytest.mark.parametrize(("a", "b"), [(5 / 12, 5 / 12), (0.9, 0.1), (0.7, 0.05)])
def test_checkpoint_metrics_match_closed_forms(a, b):
    docs = sample_docs(fig1_config(), FIG1_FINETUNE, n=300, seed=4)
    f1 = np.mean([d.cls == "G1" for d in docs])
    r = checkpoint_metrics("x", 0, docs, _fake_scores(docs, a, b), n_tokens=6)
    # X = −log a on G1 docs, −log b on G2 docs (π_D deterministic).
    assert r.kl == pytest.approx(f1 * -math.log(a) + (1 - f1) * -math.log(b))
    assert r.ce == pytest.approx(r.kl) and r.ce_per_token == pytest.approx(r.kl / 6)
    assert r.valid_mass == pytest.approx(1.0)
    for n in (2, 4, 8):
        want = f1 * (-math.log(a) >= math.log(n)) + (1 - f1) * (-math.log(b) >= math.log(n))
        assert r.cov[f"cov@{n}"] == pytest.approx(want)
    for n in (4, 8, 12):
        want = f1 * (1 - (1 - a) ** n) + (1 - f1) * (1 - (1 - b) ** n)
        assert r.pass_exact[f"pass_exact@{n}"] == pytest.approx(want)
    assert (r.p_g1_path, r.p_g2_path) == (pytest.approx(a), pytest.approx(b))


def test_the_coordinators_fig1_expectation_in_closed_form():
    """The effect the family must show: the 90/10 optimum loses Pass@8 against the pre-trained mixture."""
    docs = sample_docs(fig1_config(), FIG1_FINETUNE, n=2000, seed=6)
    pre = checkpoint_metrics("pt", 0, docs, _fake_scores(docs, 5 / 12, 5 / 12), 6)
    opt = checkpoint_metrics("ft", 1, docs, _fake_scores(docs, 0.9, 0.1 - 1e-9), 6)
    assert opt.kl < pre.kl and opt.cov["cov@8"] > pre.cov["cov@8"]
    assert opt.pass_exact["pass_exact@8"] < pre.pass_exact["pass_exact@8"] - 0.02


# --- the trainer end to end (tiny preset) ----------------------------------------------------------------

@pytest.mark.slow
def test_tiny_training_end_to_end_loads_through_lm_eval(tmp_path):
    from covbench.zoo.evaluate import evaluate_family
    from covbench.zoo.trainer import train

    cfg = preset("tiny")
    records = []
    res = train(cfg, tmp_path, records.append)
    pt, ft = res["pretrain"], res["finetune"]
    assert pt.losses[-1] < pt.losses[0] - 0.1  # the loss falls
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["graph-ft-0000005", "graph-ft-0000020", "graph-pt"]
    info = json.loads((tmp_path / "graph-pt" / "covbench_train.json").read_text())
    assert info["pretrain_steps"] == pt.steps and info["config"]["name"] == "tiny" and info["seed"] == 0
    assert len(ft.checkpoints) == 2 and any(r.get("phase") == "finetune" for r in records)

    # A saved checkpoint scores through lm-eval's HF backend the same as through our exact scoring.
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from covbench.zoo.model import load_checkpoint
    ckpt = tmp_path / "graph-ft-0000020"
    lm = HFLM(pretrained=str(ckpt), device="cpu", batch_size=8, dtype="float32")
    docs = sample_docs(fig1_config(), FIG1_FINETUNE, n=4, seed=9)
    reqs = [Instance(request_type="loglikelihood", doc={}, arguments=(d.prompt, d.target), idx=i)
            for i, d in enumerate(docs)]
    got = np.array([ll for ll, _ in lm.loglikelihood(reqs)])
    ours = score_docs(load_checkpoint(ckpt), docs, M, PAD_ID).logp_target()
    np.testing.assert_allclose(got, ours, atol=1e-3)

    rep = evaluate_family(tmp_path, n_prompts=32, n_selection=16, seed=1)
    assert [r.step for r in rep.checkpoints] == [0, 5, 20]
    assert all(math.isfinite(r.kl) and 0 <= r.pass_exact["pass_exact@8"] <= 1 for r in rep.checkpoints)


@pytest.mark.slow
def test_pretraining_is_deterministic_given_the_seed(tmp_path):
    from covbench.zoo.trainer import pretrain

    cfg = preset("tiny").model_copy(update={"pretrain": preset("tiny").pretrain.model_copy(
        update={"max_steps": 4, "eval_every": 4, "n_eval_prompts": 2})})
    torch.set_num_threads(cfg.threads)
    a = pretrain(cfg, tmp_path / "a", lambda r: None)
    b = pretrain(cfg, tmp_path / "b", lambda r: None)
    assert a.losses == b.losses
    wa = (tmp_path / "a" / "graph-pt" / "model.safetensors").read_bytes()
    assert wa == (tmp_path / "b" / "graph-pt" / "model.safetensors").read_bytes()
    c = pretrain(cfg.model_copy(update={"seed": 1}), tmp_path / "c", lambda r: None)
    assert c.losses != a.losses
