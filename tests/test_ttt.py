"""Tests of test-time-training decoding (covbench/backends/ttt.py, paper Eq. 22–23, docs/ttt.md).

π^TTT is checked against brute force on tiny models:
1. an independent two-token reference (deepcopy, one hand-applied gradient step) equals the decoder's
   score of every two-token response;
2. with every response of a short length enumerated, each scored with its own update path, the
   probabilities sum to 1 (and differ from π_θ's, so the updates matter);
3. the sampler's empirical distribution passes a chi-square test against those probabilities and is
   rejected against π_θ's (power), seeded;
and the lm-eval wrapper is checked against the decoder and, at η = 0, against stock HFLM.
"""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from scipy import stats
from transformers import LlamaConfig, LlamaForCausalLM

from covbench.backends.ttt import TTTLM, Rollout, TTTDecoder, TTTSettings
from covbench.tiny import build_tiny_gpt2, sharpen_gpt2

V = 4
CONTEXT = [0, 1, 2]
LR = 3.0  # large, so π^TTT is far from π_θ and the tests have power


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny matmuls on a shared 2-core machine."""


def _tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=V, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16,
                      tie_word_embeddings=False, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.8)
    return model.eval()


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    return _tiny_llama()


def _logp_next(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    return torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].double(), -1)


def _reference_two_tokens(model: torch.nn.Module, lr: float) -> np.ndarray:
    """π^TTT(y1, y2) for every (y1, y2), by hand: π_θ(y1) · π_{θ + η∇log π_θ(y1)}(y2)."""
    out = np.zeros((V, V))
    with torch.no_grad():
        p1 = _logp_next(model, CONTEXT).exp()
    for y1 in range(V):
        moved = copy.deepcopy(model)
        logp = torch.log_softmax(moved(input_ids=torch.tensor([CONTEXT])).logits[0, -1], -1)[y1]
        grads = torch.autograd.grad(logp, list(moved.parameters()))
        with torch.no_grad():
            for p, g in zip(moved.parameters(), grads):
                p += lr * g
            p2 = _logp_next(moved, [*CONTEXT, y1]).exp()
        out[y1] = float(p1[y1]) * p2.numpy()
    return out


def _state(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# -- settings ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "field"), [({"lr": -1.0}, "lr"), ({"lr": math.nan}, "lr"),
                                               ({"lr": 0.1, "project": 0.0}, "project"),
                                               ({"lr": 0.1, "reset": "never"}, "reset")])
def test_bad_settings_are_one_line_errors_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^ttt: field '{field}': [^\n]+$"):
        TTTSettings(**kwargs)


# -- π^TTT against brute force ------------------------------------------------------------------------

def test_two_token_scores_equal_the_hand_computed_update(model: LlamaForCausalLM) -> None:
    ref = _reference_two_tokens(model, LR)
    dec = TTTDecoder(model, TTTSettings(lr=LR))
    got = np.array([[math.exp(dec.score(CONTEXT, [a, b]).logprob) for b in range(V)] for a in range(V)])
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-7)
    # The first token is scored at θ itself (ϑ_0 = θ); the second differs from π_θ(y2 | y1).
    plain = _reference_two_tokens(model, 0.0)
    np.testing.assert_allclose(got.sum(1), plain.sum(1), rtol=1e-5)
    assert np.abs(got - plain).max() > 0.05


def test_every_length3_response_scored_on_its_own_path_sums_to_one(model: LlamaForCausalLM) -> None:
    dec = TTTDecoder(model, TTTSettings(lr=LR))
    responses = [list(t) for t in itertools.product(range(V), repeat=3)]
    one_by_one = np.array([dec.score(CONTEXT, r).logprob for r in responses])
    assert math.fsum(np.exp(one_by_one)) == pytest.approx(1.0, abs=1e-5)
    # The prefix-tree walk gives the same numbers as replaying each response.
    together = np.array([r.logprob for r in dec.score_many(CONTEXT, responses)])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    plain = TTTDecoder(model, TTTSettings(lr=0.0))
    base = np.array([plain.score(CONTEXT, r).logprob for r in responses])
    assert math.fsum(np.exp(base)) == pytest.approx(1.0, abs=1e-5)
    assert np.abs(np.exp(one_by_one) - np.exp(base)).max() > 0.02


def test_weights_are_restored_after_every_sequence(model: LlamaForCausalLM) -> None:
    before = _state(model)
    dec = TTTDecoder(model, TTTSettings(lr=LR))
    dec.score_many(CONTEXT, [[1, 2, 3], [1, 2], [3]])
    dec.sample(CONTEXT, 4, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(before, _state(model)))
    assert all(p.grad is None for p in model.parameters())


def test_weights_are_restored_when_a_sequence_fails(model: LlamaForCausalLM) -> None:
    before = _state(model)
    dec = TTTDecoder(model, TTTSettings(lr=LR))

    def boom(tokens: list[int]) -> bool:
        raise RuntimeError("stop check failed")

    with pytest.raises(RuntimeError):
        dec.sample(CONTEXT, 3, stop=boom)
    assert all(torch.equal(a, b) for a, b in zip(before, _state(model)))


def test_projection_keeps_every_iterate_within_the_radius(model: LlamaForCausalLM) -> None:
    radius = 0.05
    dec = TTTDecoder(model, TTTSettings(lr=LR, project=radius))
    theta = _state(model)
    distances = []
    original_step = dec._step

    def spy(grads):  # type: ignore[no-untyped-def]
        original_step(grads)
        distances.append(math.sqrt(sum(float((p - t).pow(2).sum()) for p, t in zip(model.parameters(), theta))))

    dec._step = spy  # type: ignore[method-assign]
    dec.score(CONTEXT, [1, 2, 3, 0])
    assert len(distances) == 3 and max(distances) <= radius * (1 + 1e-5)
    assert distances[0] == pytest.approx(radius, rel=1e-4)  # η = 3 steps far beyond r: on the sphere
    # r → 0 gives π_θ back; a huge r is no projection at all.
    tiny = TTTDecoder(model, TTTSettings(lr=LR, project=1e-9)).score(CONTEXT, [1, 2, 3]).logprob
    assert tiny == pytest.approx(TTTDecoder(model, TTTSettings(lr=0.0)).score(CONTEXT, [1, 2, 3]).logprob, abs=1e-5)
    huge = TTTDecoder(model, TTTSettings(lr=LR, project=1e9)).score(CONTEXT, [1, 2, 3]).logprob
    assert huge == pytest.approx(TTTDecoder(model, TTTSettings(lr=LR)).score(CONTEXT, [1, 2, 3]).logprob, abs=1e-6)


def _chi_square_p(counts: np.ndarray, probs: np.ndarray) -> float:
    """Goodness of fit; outcomes with expected count < 5 pooled into one bin."""
    n = counts.sum()
    exp = probs * n
    big = exp >= 5
    obs = np.append(counts[big], counts[~big].sum())
    want = np.append(exp[big], exp[~big].sum())
    if want[-1] < 1e-9:
        obs, want = obs[:-1], want[:-1]
    return float(stats.chisquare(obs, want * obs.sum() / want.sum()).pvalue)


@pytest.mark.slow
def test_sampler_draws_from_the_scored_distribution(model: LlamaForCausalLM) -> None:
    dec = TTTDecoder(model, TTTSettings(lr=LR))
    exact = _reference_two_tokens(model, LR).ravel()
    gen = torch.Generator().manual_seed(2026)
    n = 2000
    counts = np.zeros(V * V)
    for _ in range(n):
        roll = dec.sample(CONTEXT, 2, generator=gen)
        counts[roll.tokens[0] * V + roll.tokens[1]] += 1
        # the sampler reports the log-probs that scoring gives the same response
        if _ < 20:
            assert roll.logprob == pytest.approx(dec.score(CONTEXT, list(roll.tokens)).logprob, abs=1e-5)
    assert _chi_square_p(counts, exact) > 1e-3
    assert _chi_square_p(counts, _reference_two_tokens(model, 0.0).ravel()) < 1e-6  # power: π_θ is rejected


def test_greedy_decoding_follows_the_argmax_of_the_moving_weights(model: LlamaForCausalLM) -> None:
    dec = TTTDecoder(model, TTTSettings(lr=LR))
    roll = dec.sample(CONTEXT, 3, greedy=True)
    assert all(roll.greedy) and len(roll.tokens) == 3
    assert dec.score(CONTEXT, list(roll.tokens)).greedy == (True, True, True)
    assert isinstance(roll, Rollout)


# -- the lm-eval wrapper ---------------------------------------------------------------------------------

M = 8


@pytest.fixture(scope="module")
def sharp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = build_tiny_gpt2(tmp_path_factory.mktemp("ttt"), m=M, n_layer=1, n_embd=16, n_head=2, n_positions=64)
    sharpen_gpt2(out, std=0.4, seed=3)
    return out


def _ll_requests(pairs: list[tuple[str, str]]) -> list[Instance]:
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


PAIRS = [("3 5 | 5 7 / 3 7 =", " 3 5 7"), ("3 5 | 5 7 / 3 7 =", " 3 4 7"), ("1 2 =", " 1"), ("0 1 / 0", " 1 2 3")]


def test_lm_loglikelihood_is_the_decoder_score_and_stock_at_zero_lr(sharp_dir: Path) -> None:
    lm = TTTLM(pretrained=str(sharp_dir), device="cpu", batch_size=1, ttt_lr=0.5)
    got = lm.loglikelihood(_ll_requests(PAIRS))
    for (ctx, cont), (value, _) in zip(PAIRS, got):
        c_enc, r_enc = lm._encode_pair(ctx, cont)
        assert value == pytest.approx(lm.decoder.score(c_enc, r_enc).logprob, abs=1e-6)
    zero = TTTLM(pretrained=str(sharp_dir), device="cpu", batch_size=1, ttt_lr=0.0)
    stock = HFLM(pretrained=str(sharp_dir), device="cpu", batch_size=4)
    for (a, ga), (b, gb) in zip(zero.loglikelihood(_ll_requests(PAIRS)), stock.loglikelihood(_ll_requests(PAIRS))):
        assert a == pytest.approx(b, abs=1e-4) and ga == gb
    assert any(abs(a - b) > 1e-3 for (a, _), (b, _) in zip(got, stock.loglikelihood(_ll_requests(PAIRS))))


def test_lm_generate_until_samples_and_stops(sharp_dir: Path) -> None:
    lm = TTTLM(pretrained=str(sharp_dir), device="cpu", batch_size=1, ttt_lr=0.5)
    before = _state(lm.model)
    kw = {"until": ["="], "max_gen_toks": 4, "do_sample": True, "temperature": 1.0}
    torch.manual_seed(0)
    out = lm.generate_until([Instance("generate_until", {}, ("3 5 | 5 7 / 3", kw), i) for i in range(5)])
    assert len(out) == 5 and all(isinstance(s, str) and "=" not in s for s in out)
    assert all(len(s.split()) <= 4 for s in out)
    torch.manual_seed(0)
    again = lm.generate_until([Instance("generate_until", {}, ("3 5 | 5 7 / 3", kw), i) for i in range(5)])
    assert again == out
    greedy = {"until": ["="], "max_gen_toks": 3, "do_sample": False}
    g = lm.generate_until([Instance("generate_until", {}, ("1 2 =", greedy), 0)] * 2)
    assert g[0] == g[1]
    assert all(torch.equal(a, b) for a, b in zip(before, _state(lm.model)))


@pytest.mark.parametrize(("kw", "field"), [({"do_sample": True, "temperature": 0.7}, "temperature"),
                                           ({"do_sample": True, "temperature": 1.0, "top_k": 5}, "top_k"),
                                           ({"do_sample": True, "top_k": 0, "top_p": 0.9}, "top_p")])
def test_lm_unsupported_sampling_is_a_one_line_error(sharp_dir: Path, kw: dict, field: str) -> None:
    lm = TTTLM(pretrained=str(sharp_dir), device="cpu", batch_size=1, ttt_lr=0.5)
    with pytest.raises(ValueError, match=rf"^ttt: gen_kwargs field '{field}': [^\n]+$"):
        lm.generate_until([Instance("generate_until", {}, ("1 2 =", {"until": ["="], **kw}), 0)])


def test_registry_ttt_block_builds_the_ttt_backend(sharp_dir: Path, tmp_path: Path) -> None:
    from covbench.backends import make_lm, model_args, spec_hash
    from covbench.registry import ModelSpec, RegistryError, load_registry

    plain = ModelSpec.model_validate({"name": "m", "pretrained": str(sharp_dir)}, context={"base_dir": tmp_path})
    spec = ModelSpec.model_validate({"name": "m", "pretrained": str(sharp_dir), "ttt": {"lr": 0.25}},
                                    context={"base_dir": tmp_path})
    assert spec_hash(spec) != spec_hash(plain)
    assert "ttt_lr" not in model_args(plain) and model_args(spec)["ttt_lr"] == 0.25
    lm = make_lm(spec)
    assert isinstance(lm, TTTLM) and lm.ttt == TTTSettings(lr=0.25, project=None)
    bad = tmp_path / "models.yaml"
    bad.write_text(f"models:\n  - {{name: t, pretrained: {sharp_dir}, ttt: {{lr: 0.1, radius: 2}}}}\n")
    with pytest.raises(RegistryError, match=r"field 'ttt.radius': unknown key.*allowed: lr, project, reset"):
        load_registry(bad)
    bad.write_text(f"models:\n  - {{name: t, pretrained: {sharp_dir}, ttt: {{lr: 0}}}}\n")
    with pytest.raises(RegistryError, match=r"field 'ttt.lr': Input should be greater than 0"):
        load_registry(bad)


# -- end to end: registry entry -> runner -> store, exact vs sampled Pass@N under TTT ---------------------

@pytest.mark.slow
def test_runner_scores_and_samples_the_ttt_policy_consistently(tmp_path: Path) -> None:
    """A TTT entry on 24-doc Fig. 1 tasks: its scores differ from the same weights without TTT, and its
    exact Pass@N (every path of S_x scored with its own updates) agrees with Pass@N measured from its
    own TTT samples within the suite's 4-standard-error check."""
    from covbench.checks import agreement_problems, same_policy
    from covbench.graphs.generator import fig1_config
    from covbench.graphs.lmeval import DataSpec, TaskSpec, task_yaml
    from covbench.registry import load_registry
    from covbench.runner import run_job
    from covbench.tiny import warm_tiny_gpt2

    model_dir = warm_tiny_gpt2(tmp_path / "warm", cfg=fig1_config(), steps=120, batch_size=32, lr=6e-3)
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    data = DataSpec(family="fig1", n_layers=4, m=32, mixture="fig1_finetune", seed=11, n=24)
    for spec in (TaskSpec("ttt_fig1", data, "loglikelihood"),
                 TaskSpec("ttt_fig1_sample", data, "sample", repeats=24, pairs_with="ttt_fig1")):
        (tasks / f"{spec.name}.yaml").write_text(task_yaml(spec))
    reg_path = tmp_path / "models.yaml"
    reg_path.write_text(f"models:\n  - {{name: plain, pretrained: {model_dir}}}\n"
                        f"  - {{name: ttt, pretrained: {model_dir}, ttt: {{lr: 0.05}}}}\n")
    reg = load_registry(reg_path)
    results = tmp_path / "results"
    plain = run_job(reg.get("plain"), "ttt_fig1", results, tasks_dir=tasks).run
    ttt = run_job(reg.get("ttt"), "ttt_fig1", results, tasks_dir=tasks).run
    assert ttt.docs is not None and plain.docs is not None
    assert max(abs(a - b) for a, b in zip(ttt.docs.logp_model, plain.docs.logp_model)) > 1e-3
    assert 0.02 < ttt.record.metrics["pass_exact@1"].value < 0.98  # an informative comparison, not 0 vs 0
    sampled = run_job(reg.get("ttt"), "ttt_fig1_sample", results, tasks_dir=tasks).run
    assert sampled.samples is not None and sampled.samples.n == 24
    assert same_policy(sampled.record, ttt.record)  # else the agreement check below would compare nothing
    assert any(k.startswith("pass_sampled@") for k in sampled.record.metrics)
    assert agreement_problems(sampled, ttt) == []
    # both entries run on one loaded model (docs/ttt.md): after the TTT runs it still holds θ
    from transformers import AutoModelForCausalLM

    from covbench.backends.weights import weights_for

    shared = weights_for(reg.get("ttt")).model
    assert shared is weights_for(reg.get("plain")).model
    fresh = AutoModelForCausalLM.from_pretrained(model_dir).state_dict()
    assert all(torch.equal(t, fresh[k]) for k, t in shared.state_dict().items())
