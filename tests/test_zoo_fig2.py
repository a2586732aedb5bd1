"""Tests of the Fig. 2 trainer: the update rules against hand computations, the exact teacher, the
µ-weighted metrics against closed forms, every training option on a tiny configuration (a loss that
falls), and (slow) the CLI end to end with the ``fig2-tiny`` preset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from covbench.graphs.generator import FIG2_MIXTURE, fig2_config, sample_docs, stratified_docs
from covbench.graphs.tokenizer import PAD, vocabulary
from covbench.zoo import cli
from covbench.zoo.config import ModelSpec
from covbench.zoo.fig2_config import Fig2Config, MethodSpec, curve_steps, fig2_preset, run_name
from covbench.zoo.fig2_eval import metrics_from_logp, ratio
from covbench.zoo.fig2_table import band
from covbench.zoo.fig2_train import _response_logp, _teacher, make_optimizer, train_step
from covbench.zoo.model import build_model
from covbench.zoo.teacher import next_token_distributions, token_kl
from covbench.zoo.updates import global_grad_norm, rescale_gradient, truncation_weights


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny matmuls on a shared 2-core machine."""


# --- normalized SGD (paper Eq. 17/18) on a 2-parameter model -------------------------------------------

def _two_param_step(theta: list[float], seqs: list[list[int]], rule: str, lr: float, damping: float,
                    ) -> list[float]:
    """π_θ(y) = softmax(θ)[y] for y ∈ {0, 1}, tokens i.i.d.; one step of the trainer's machinery."""
    p = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=lr)
    logp = torch.log_softmax(p, 0)
    loss = -sum(logp[y] for s in seqs for y in s) / len(seqs)  # −(1/K) Σ_seq Σ_h log π(y_h)
    loss.backward()
    rescale_gradient([p], rule, damping)  # type: ignore[arg-type]
    opt.step()
    return p.detach().tolist()


def test_normalized_sgd_step_matches_the_hand_computation():
    # θ = (0, 0): π = (1/2, 1/2). Sequences (0, 0) and (0, 1): per-sequence score Σ_h (e_{y_h} − π)
    # = (1, −1) and (0, 0); batch mean ĝ = (1/2, −1/2), ‖ĝ‖ = 1/√2.
    # Eq. 18: θ' = θ + η ĝ / (λ + ‖ĝ‖) with η = 0.1, λ = 0.5 → ±0.05 / (0.5 + 0.70710678) = ±0.04142136.
    got = _two_param_step([0.0, 0.0], [[0, 0], [0, 1]], "normalized", lr=0.1, damping=0.5)
    assert got == pytest.approx([0.04142136, -0.04142136], abs=1e-8)
    # plain SGD (Eq. 14): θ' = θ + η ĝ = (0.05, −0.05)
    assert _two_param_step([0.0, 0.0], [[0, 0], [0, 1]], "plain", lr=0.1, damping=0.5) == pytest.approx(
        [0.05, -0.05], abs=1e-12)


def test_normalized_step_length_is_free_of_the_sequence_length():
    """Repeating each sequence H times multiplies ĝ by H: plain SGD's step grows H-fold, the normalized
    step stays η‖ĝ‖/(λ + ‖ĝ‖) → η (λ small)."""
    lengths = {}
    for rule in ("plain", "normalized"):
        for h in (1, 8, 64):
            new = _two_param_step([0.3, -0.2], [[0] * h, [0, 1] * (h // 2 or 1)], rule, lr=0.1, damping=1e-9)
            lengths[(rule, h)] = math.dist(new, [0.3, -0.2])
    assert lengths[("normalized", 1)] == pytest.approx(0.1, rel=1e-6)
    assert lengths[("normalized", 64)] == pytest.approx(0.1, rel=1e-6)
    assert lengths[("plain", 64)] > 30 * lengths[("plain", 1)]


def test_rescale_gradient_reports_the_global_norm_over_every_tensor():
    a = torch.nn.Parameter(torch.zeros(2))
    b = torch.nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    info = rescale_gradient([a, b], "normalized", damping=5.0)
    assert info.grad_norm == pytest.approx(5.0) and info.scale == pytest.approx(0.1)
    assert a.grad.tolist() == pytest.approx([0.3, 0.0]) and b.grad.tolist() == pytest.approx([0.4])
    assert global_grad_norm([a, b]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="damping"):
        rescale_gradient([a, b], "normalized", damping=0.0)


# --- truncation weights (Eq. 24–26) --------------------------------------------------------------------

def test_truncation_weights_hand_example_with_partial_weight():
    # A = log 8 = 2.0794. a = (0.5, 1.0, 0.3, 2.0, 0.1): C = 0.5, 1.5, 1.8, 3.8, 3.9.
    # h=1..3: C_h ≤ A → 1; h=4: C_3 = 1.8 ≤ A < C_4 → (A − 1.8)/2.0 = 0.13972; h=5: C_4 > A → 0.
    a = torch.tensor([[0.5, 1.0, 0.3, 2.0, 0.1]], dtype=torch.float64)
    alpha = truncation_weights(a, math.log(8))
    assert alpha[0].tolist() == pytest.approx([1, 1, 1, (math.log(8) - 1.8) / 2.0, 0], abs=1e-12)
    assert float((alpha * a).sum()) == pytest.approx(math.log(8), abs=1e-12)
    # below the cap: every weight is 1 and Σ α a = Σ a
    small = torch.tensor([[0.1, 0.2, 0.3]], dtype=torch.float64)
    assert truncation_weights(small, math.log(8)).tolist() == [[1.0, 1.0, 1.0]]


def test_truncation_weights_property_sum_is_the_stopped_kl():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(200, 12, generator=gen, dtype=torch.float64) * torch.rand(200, 1, generator=gen) * 2
    a[::7, 3] = 0.0  # zero-KL tokens, including some exactly at the cap's crossing
    mask = torch.rand(200, 12, generator=gen) > 0.1
    for cap in (0.0, 0.5, math.log(16), 100.0):
        alpha = truncation_weights(a, cap, mask)
        assert ((alpha >= 0) & (alpha <= 1)).all() and (alpha[~mask] == 0).all()
        live = torch.where(mask, a, torch.zeros_like(a))
        np.testing.assert_allclose((alpha * live).sum(1), torch.clamp(live.sum(1), max=cap), atol=1e-12)
        # non-increasing along the sequence among real tokens with positive KL
        for row_a, row_w, row_m in zip(live, alpha, mask):
            w = row_w[row_m & (row_a > 0)]
            assert (w[1:] <= w[:-1] + 1e-12).all()
    with pytest.raises(ValueError):
        truncation_weights(-a, 1.0)


# --- the exact teacher -------------------------------------------------------------------------------

def _ids(text: str, m: int) -> tuple[int, ...]:
    vocab = vocabulary(m)
    return tuple(vocab[t] for t in text.split())


def test_teacher_is_a_point_mass_on_deterministic_classes_and_half_half_on_g3_branchings():
    m = 32
    docs = stratified_docs(fig2_config(4, m=m), FIG2_MIXTURE, 3, seed=1)
    for d in docs:
        support = [_ids(y, m) for y in d.support]
        dists = next_token_distributions(support, d.support_logp, _ids(d.target, m))
        assert len(dists) == 6 and all(abs(sum(x.values()) - 1) < 1e-12 for x in dists)
        if d.cls in ("G1", "G2"):
            assert all(len(x) == 1 for x in dists)
        else:  # G3: 4 branching layers among the 4, each 1/2–1/2 (16 paths)
            branch = [x for x in dists if len(x) == 2]
            assert len(branch) == 4 and all(sorted(x.values()) == [0.5, 0.5] for x in branch)
            # the product of the target's conditionals is π_D(target) = 1/16
            target = _ids(d.target, m)
            assert math.prod(x[t] for x, t in zip(dists, target)) == pytest.approx(1 / 16)
    with pytest.raises(ValueError, match="not in the support"):
        next_token_distributions([(1, 2)], [0.0], (1, 3))


def test_token_kl_against_a_direct_sum():
    p = torch.tensor([[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]])
    q = torch.tensor([[[0.2, 0.3, 0.5], [0.25, 0.25, 0.5]]])
    want = [0.5 * math.log(0.5 / 0.2) + 0.5 * math.log(0.5 / 0.3), math.log(1 / 0.25)]
    assert token_kl(p, q.log())[0].tolist() == pytest.approx(want, abs=1e-6)


# --- µ-weighted metrics ---------------------------------------------------------------------------------

def test_metrics_are_mu_weighted_per_class_means():
    """G1: X = 0; G2: X = 5 (uncovered at N = 16: 5 > log 16); G3: X = 1 on half the paths, 0 on the rest.
    KL = 0.94·0 + 0.05·5 + 0.01·0.5 = 0.255; Cov_16 = 0.05; Cov_2 = 0.05 + 0.01·0.5 = 0.055."""
    docs = stratified_docs(fig2_config(8, m=64), FIG2_MIXTURE, 4, seed=3)
    lp = []
    for d in docs:
        shift = {"G1": [0.0], "G2": [5.0]}.get(d.cls, [1.0, 0.0] * 8)
        lp.append([r - s for r, s in zip(d.support_logp, shift)])
    r = metrics_from_logp(docs, lp)
    assert r.kl == pytest.approx(0.255) and r.cov["cov@16"] == pytest.approx(0.05)
    assert r.cov["cov@2"] == pytest.approx(0.055)
    assert r.per_class["G2"]["kl"] == pytest.approx(5.0) and r.per_class["G3"]["kl"] == pytest.approx(0.5)
    assert r.per_class["G1"]["cov@16"] == 0.0 and r.per_class["G2"]["n"] == 4
    assert ratio(r.kl, r.cov["cov@16"]) == pytest.approx(5.1)
    assert ratio(1.0, 0.0) == math.inf and math.isnan(ratio(math.nan, 0.1))


def test_band_is_min_max_below_16_seeds_and_quantiles_from_16():
    assert band([3.0, 1.0, 2.0]) == (2.0, 1.0, 3.0)
    v = list(np.linspace(0, 1, 17))
    med, lo, hi = band(v)
    assert (med, lo, hi) == pytest.approx((0.5, *np.quantile(v, [1 / 16, 15 / 16])))
    assert all(math.isnan(x) for x in band([]))


# --- configuration -----------------------------------------------------------------------------------------

def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="AdamW"):
        MethodSpec(optimizer="adamw", grad="normalized", lr=1.0)
    with pytest.raises(ValueError, match="m >= 4H"):
        Fig2Config(name="x", model=ModelSpec(), methods={"sgd": MethodSpec(lr=1.0)}, hs=(8, 40))
    assert curve_steps(1, 5) == [1] and curve_steps(100, 3) == [1, 10, 100]
    assert run_name("trunc", 8, 0) == "fig2-trunc-h8-s0"
    assert cli.main(["train", "--preset", "fig2-tiny", "--set", "methods.sgd.lr=-1"]) == 2
    assert cli.main(["train", "--preset", "fig2-tiny", "--phase", "finetune"]) == 2
    assert cli.main(["train", "--preset", "fig2-tiny", "--method", "adam"]) == 2


# --- every training option on a tiny configuration -------------------------------------------------------

METHODS = {
    "sgd": MethodSpec(optimizer="sgd", grad="plain", lr=0.02),
    "nsgd": MethodSpec(optimizer="sgd", grad="normalized", lr=0.5, damping=1.0),
    "trunc": MethodSpec(optimizer="sgd", grad="truncated", lr=0.02, trunc_n=1e6),
    "sgd_momentum": MethodSpec(optimizer="sgd", grad="plain", lr=0.01, momentum=0.9),
    "adamw": MethodSpec(optimizer="adamw", grad="plain", lr=3e-3),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_training_option_lowers_the_loss_on_a_fixed_batch(name: str):
    m, h = 32, 4
    docs = sample_docs(fig2_config(h, m=m), FIG2_MIXTURE, 8, seed=4)
    model = build_model(ModelSpec(d_model=16, n_layer=1, n_head=2, d_ff=32, max_positions=128), m, seed=0)
    opt = make_optimizer(model, METHODS[name])
    losses = [train_step(model, opt, docs, METHODS[name], m, vocabulary(m)[PAD]).nll for _ in range(25)]
    assert losses[-1] < losses[0] - 1.0, losses


def test_truncation_at_log16_trains_the_tokens_before_the_cap():
    """From a random init every token's KL is ≈ log V > log 16, so α is (A/a_1, 0, 0, ...): only the first
    response token has weight. Its NLL falls; the loss on the later tokens does not drive the step."""
    m, h = 32, 4
    docs = sample_docs(fig2_config(h, m=m), FIG2_MIXTURE, 8, seed=4)
    pad = vocabulary(m)[PAD]
    method = MethodSpec(optimizer="sgd", grad="truncated", lr=0.1, trunc_n=16.0)
    model = build_model(ModelSpec(d_model=16, n_layer=1, n_head=2, d_ff=32, max_positions=128), m, seed=0)
    opt = make_optimizer(model, method)

    def first_token_nll() -> float:
        with torch.no_grad():
            logp, targets = _response_logp(model, docs, m, pad)
        return float(-logp.gather(-1, targets[..., None])[..., 0][:, 0].mean())

    before = first_token_nll()
    stats = [train_step(model, opt, docs, method, m, pad) for _ in range(25)]
    assert first_token_nll() < before - 1.0
    assert all(s.weighted_nll < 0.25 * s.nll for s in stats)  # only about A = log 16 of ≈ 22 nats has weight


def test_truncated_step_equals_plain_below_the_cap_and_is_zero_at_a_zero_cap():
    m, h = 32, 4
    docs = sample_docs(fig2_config(h, m=m), FIG2_MIXTURE, 6, seed=5)
    pad = vocabulary(m)[PAD]

    def step(method: MethodSpec | None) -> list[torch.Tensor]:
        model = build_model(ModelSpec(d_model=16, n_layer=1, n_head=2, d_ff=32, max_positions=128), m, seed=1)
        if method is not None:
            train_step(model, make_optimizer(model, method), docs, method, m, pad)
        return [p.detach().clone() for p in model.parameters()]

    init = step(None)
    plain = step(MethodSpec(grad="plain", lr=0.05))
    wide = step(MethodSpec(grad="truncated", lr=0.05, trunc_n=1e30))
    zero = step(MethodSpec(grad="truncated", lr=0.05, trunc_n=1.0))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, wide))
    assert all(torch.equal(a, b) for a, b in zip(init, zero))  # A = log 1 = 0: every α is 0
    assert any(not torch.allclose(a, b) for a, b in zip(plain, init))


def test_teacher_tensor_matches_the_model_vocabulary_and_response_length():
    m = 32
    docs = stratified_docs(fig2_config(4, m=m), FIG2_MIXTURE, 1, seed=0)
    t = _teacher(docs, m, 6, len(vocabulary(m)))
    assert t.shape == (3, 6, len(vocabulary(m))) and torch.allclose(t.sum(-1), torch.ones(3, 6))


# --- end to end -----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_trains_the_tiny_grid_deterministically_and_tabulates_it(tmp_path: Path, capsys):
    out = tmp_path / "fig2"
    assert cli.main(["train", "--preset", "fig2-tiny", "--out", str(out)]) == 0
    cfg = fig2_preset("fig2-tiny")
    names = sorted(p.name for p in out.iterdir())
    want = sorted([run_name(mth, h, s) for mth in cfg.methods for h in cfg.hs for s in cfg.seeds]
                  + (["fig2-base"] if cfg.base else []))
    assert names == want
    info = json.loads((out / run_name("nsgd", 4, 0) / "covbench_train.json").read_text())
    assert info["method"] == "nsgd" and info["H"] == 4 and info["steps"] == cfg.steps
    assert info["curve"][-1]["step"] == cfg.steps and info["validation"]["n_docs"] == 3 * cfg.n_val_per_class
    assert json.loads((out / run_name("nsgd", 4, 0) / "config.json").read_text())["dtype"] == "float16"
    capsys.readouterr()
    assert cli.main(["zoo-ignored"] if False else ["fig2-table", "--dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| nsgd | 4 | 1 |" in text and "| trunc | 6 | 1 |" in text
    # deterministic: the same run again gives byte-identical weights
    again = tmp_path / "again"
    assert cli.main(["train", "--preset", "fig2-tiny", "--out", str(again), "--method", "nsgd", "--h", "4"]) == 0
    name = run_name("nsgd", 4, 0)
    assert (again / name / "model.safetensors").read_bytes() == (out / name / "model.safetensors").read_bytes()
    # the table can re-measure from the stored weights; the numbers are the stored ones
    capsys.readouterr()
    assert cli.main(["fig2-table", "--dir", str(out), "--rescore", "--json", str(tmp_path / "t.json")]) == 0
    table = json.loads((tmp_path / "t.json").read_text())
    row = next(r for r in table["runs"] if r["run"] == name)
    assert row["kl"] == pytest.approx(info["validation"]["kl"], rel=1e-6)
    assert cli.main(["fig2-table", "--dir", str(tmp_path / "nothing")]) == 2


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_shared_prompt_scoring_equals_padded_batches(arch: str):
    """G3 docs (16 paths) are scored from one prompt pass and a shared cache; the numbers are those of
    scoring every path as its own padded sequence."""
    from covbench.zoo.data import encode
    from covbench.zoo.fig2_eval import score_supports
    from covbench.zoo.scoring import response_logp

    m = 32
    docs = stratified_docs(fig2_config(4, m=m), FIG2_MIXTURE, 2, seed=9)
    model = build_model(ModelSpec(arch=arch, d_model=16, n_layer=2, n_head=2, d_ff=32, max_positions=128), m,
                        seed=2).eval()
    got = score_supports(model, docs, m, vocabulary(m)[PAD])
    for d, values in zip(docs, got):
        want = response_logp(model, [encode(d, m, response=y) for y in d.support], vocabulary(m)[PAD])
        assert len(values) == len(d.support)
        np.testing.assert_allclose(values, want, atol=1e-4)


def test_table_skips_runs_still_training_and_names_a_broken_file(tmp_path: Path):
    from covbench.zoo.fig2_table import run_rows

    def write(name: str, info: dict | str) -> Path:
        (tmp_path / name).mkdir()
        path = tmp_path / name / "covbench_train.json"
        path.write_text(info if isinstance(info, str) else json.dumps(info))
        return path

    val = {"kl": 2.0, "cov": {"cov@16": 0.5}, "ce": 2.0, "n_docs": 3,
           "per_class": {"G1": {"kl": 1.0, "cov@16": 0.0, "ce": 1.0, "n": 1.0}}}
    write("fig2-sgd-h8-s0", {"run": "fig2-sgd-h8-s0", "method": "sgd", "H": 8, "seed": 0, "train_cpu_s": 1.0,
                             "validation": val})
    write("fig2-sgd-h8-s1", {"run": "fig2-sgd-h8-s1", "method": "sgd", "H": 8, "seed": 1, "train_cpu_s": 1.0})
    rows = run_rows(tmp_path)
    assert [r.run for r in rows] == ["fig2-sgd-h8-s0"] and rows[0].ratio == pytest.approx(4.0)
    bad = write("fig2-sgd-h8-s2", "{not json")
    with pytest.raises(ValueError, match=rf"^{bad}: not readable JSON"):
        run_rows(tmp_path)
    bad.write_text(json.dumps({"run": "x", "validation": val}))
    with pytest.raises(ValueError, match=r"field 'method' is missing"):
        run_rows(tmp_path)


def test_a_diverging_run_is_recorded_with_missing_numbers_not_a_crash(tmp_path: Path, capsys):
    out = tmp_path / "fig2"
    assert cli.main(["train", "--preset", "fig2-tiny", "--out", str(out), "--phase", "runs", "--method", "sgd",
                     "--h", "4", "--set", "base=null", "--set", "methods.sgd.lr=1e12"]) == 0
    info = json.loads((out / "fig2-sgd-h4-s0" / "covbench_train.json").read_text())
    assert info["diverged"] is True and info["step"] < info["steps"]
    assert math.isnan(info["validation"]["kl"]) and math.isnan(info["validation"]["cov"]["cov@16"])
    capsys.readouterr()
    assert cli.main(["fig2-table", "--dir", str(out)]) == 0
    assert "| sgd | 4 | 1 (1 diverged) | NaN [NaN, NaN]" in capsys.readouterr().out
