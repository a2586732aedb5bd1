"""Policy scoring (covbench/backends/policy.py, scoring.py, family.py; docs/policies.md).

The scored log-probs are checked against an independent numpy brute force on a tiny model: every
continuation of length 3 (14^3 sequences) is scored by the backend, the numpy reference applies
temperature, top-k, top-p and min-p by hand in float64, the probabilities of all sequences sum to 1
under each policy, and every sequence's log-prob (−inf included) matches. The sampler's empirical
distribution of whole outputs (generate_until, 3,000 draws per prompt) passes a chi-square test
against the distribution the backend *scores*, and fails it against another policy's (power).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from scipy import stats

from covbench.backends import clear_cache, get_lms, make_lm
from covbench.backends.fast_hf import FastHFLM
from covbench.backends.policy import IDENTITY, Policy, policy_logprobs
from covbench.registry import ModelSpec
from covbench.tiny import build_tiny_gpt2, sharpen_gpt2

M = 8          # node ids 0..7, then "|", "/", "=", "<eos>", "<pad>", "<unk>"
VOCAB = M + 6
EOS_ID = 11
PROMPTS = ["3 5 | 5 7 / 3", "1 2 =", "0 1 2 3 4 5 6 7 | 2 4 / 6"]

POLICIES = [Policy(), Policy(temperature=0.7), Policy(temperature=1.3), Policy(top_k=3), Policy(top_p=0.8),
            Policy(min_p=0.25), Policy(temperature=0.7, top_k=4, top_p=0.9)]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny matmuls on a shared 2-core machine: one thread avoids OpenMP spin contention."""


@pytest.fixture(scope="module")
def sharp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 with large random weights: next-token distributions far from uniform, so truncation
    and temperature change them measurably."""
    out = build_tiny_gpt2(tmp_path_factory.mktemp("sharp"), m=M, n_layer=2, n_embd=32, n_head=2, n_positions=64)
    sharpen_gpt2(out, std=0.3, seed=11)
    return out


def _spec(path: Path, name: str = "m", **fields: object) -> ModelSpec:
    return ModelSpec.model_validate({"name": name, "pretrained": str(path), "backend": "hf-fast",
                                     "batch_size": 64, **fields})


def _generation(policy: Policy) -> dict[str, object]:
    return {"temperature": policy.temperature, "top_k": policy.top_k, "top_p": policy.top_p,
            "min_p": policy.min_p}


@pytest.fixture(scope="module")
def lms(sharp_dir: Path) -> dict[Policy, FastHFLM]:
    """One factory-built hf-fast LM per policy, each on its own (no family): the one-policy scoring path."""
    clear_cache()
    yield {p: make_lm(_spec(sharp_dir, f"p{i}", generation=_generation(p))) for i, p in enumerate(POLICIES)}
    clear_cache()


# -- the transform --------------------------------------------------------------------------------------

def test_policy_normalises_off_values_and_rejects_bad_ones() -> None:
    assert Policy(top_k=0, top_p=1.0, min_p=0.0) == IDENTITY and IDENTITY.is_identity
    assert not Policy(temperature=0.5).is_identity and Policy(top_p=0.9).label == "T=1,top_p=0.9"
    for bad in ({"temperature": 0.0}, {"temperature": float("nan")}, {"top_k": -1}, {"top_p": 0.0},
                {"top_p": 1.5}, {"min_p": -0.1}):
        with pytest.raises(ValueError):
            Policy(**bad)  # type: ignore[arg-type]


def _reference_probs(logits: np.ndarray, policy: Policy) -> tuple[np.ndarray, float]:
    """Independent numpy (float64) policy probabilities of one logits row, and the smallest distance
    of any truncation decision from its threshold (so the test can tell it is not a rounding call)."""
    z = logits.astype(np.float64) / policy.temperature
    keep = np.ones_like(z, dtype=bool)
    margin = np.inf
    if policy.top_k is not None:
        kth = np.sort(z)[::-1][min(policy.top_k, z.size) - 1]
        keep &= z >= kth
    def probs() -> np.ndarray:
        e = np.where(keep, np.exp(z - z[keep].max()), 0.0)
        return e / e.sum()
    if policy.top_p is not None:
        p = probs()
        order = np.argsort(-p)
        before = np.cumsum(p[order]) - p[order]          # mass of the strictly more probable tokens
        kept = before < policy.top_p
        kept[0] = True
        margin = min(margin, float(np.min(np.abs(before[p[order] > 0] - policy.top_p))))
        if np.isin(p[order][~kept], p[order][kept]).any():
            margin = 0.0     # tied tokens on both sides of the nucleus: which one stays is sort order
        new_keep = np.zeros_like(keep)
        new_keep[order[kept]] = True
        keep &= new_keep
    if policy.min_p is not None:
        p = probs()
        threshold = policy.min_p * p.max()
        margin = min(margin, float(np.min(np.abs(p[keep] - threshold))))
        keep &= p >= threshold
    return probs(), margin


def test_transform_equals_numpy_reference_and_transformers_chain() -> None:
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(64, 50, generator=gen) * 2.5
    logits[0, :5] = logits[0].max() + 1.0   # five tied at the top: top-k keeps every tied token
    for policy in POLICIES[1:]:
        ours = policy_logprobs(logits, policy)
        theirs = torch.log_softmax(policy.warpers()(None, logits.clone()), dim=-1)
        assert torch.equal(ours, theirs)          # one implementation: transformers' own warpers
        for row in range(logits.shape[0]):
            ref, margin = _reference_probs(logits[row].numpy(), policy)
            if margin < 1e-5:
                continue                          # a float32-vs-float64 rounding call: not a semantics test
            got = ours[row].double().exp().numpy()
            assert np.array_equal(got == 0, ref == 0), (policy, row)
            np.testing.assert_allclose(got, ref, atol=1e-6)
    assert torch.isfinite(policy_logprobs(logits, Policy(top_k=3))[0, :5]).all()   # 5 tied at the top: all kept


def test_identity_transform_is_lm_evals_log_softmax() -> None:
    logits = torch.randn(3, 7, 11)
    assert torch.equal(policy_logprobs(logits, IDENTITY), torch.nn.functional.log_softmax(logits, dim=-1))


# -- brute force: every continuation of length 3 ----------------------------------------------------------

def _all_continuations(length: int) -> list[list[int]]:
    return [list(seq) for seq in itertools.product(range(VOCAB), repeat=length)]


def _brute_force(model: torch.nn.Module, prompt: list[int], length: int, policy: Policy) -> tuple[dict, float]:
    """log π(seq) and greedy-ness of every continuation, from teacher-forced logits and numpy."""
    rows: dict[tuple[int, ...], np.ndarray] = {}
    with torch.inference_mode():
        for k in range(length):
            prefixes = [tuple(p) for p in itertools.product(range(VOCAB), repeat=k)]
            out = model(torch.tensor([prompt + list(p) for p in prefixes])).logits[:, -1]
            rows.update({p: out[i].numpy() for i, p in enumerate(prefixes)})
    probs, margin = {}, np.inf
    for prefix, z in rows.items():
        probs[prefix], m = _reference_probs(z, policy)
        margin = min(margin, m)
    result = {}
    for seq in itertools.product(range(VOCAB), repeat=length):
        p = np.prod([probs[seq[:t]][seq[t]] for t in range(length)])
        greedy = all(int(np.argmax(rows[seq[:t]])) == seq[t] for t in range(length))
        result[seq] = (np.log(p) if p > 0 else -np.inf, greedy)
    return result, margin


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.label)
def test_scores_equal_brute_force_and_sum_to_one(lms: dict[Policy, FastHFLM], policy: Policy) -> None:
    lm = lms[policy]
    prompt = lm.tok_encode(PROMPTS[0])
    conts = _all_continuations(3)
    answers = lm._loglikelihood_tokens([(None, prompt, c) for c in conts])
    logp = np.array([a for a, _ in answers], dtype=np.float64)
    assert abs(np.exp(logp).sum() - 1.0) < 1e-5                       # a distribution over all 14^3
    reference, margin = _brute_force(lm.model, prompt, 3, policy)
    assert margin > 1e-4, "a truncation threshold lies within rounding of a decision: pick another policy"
    ref = np.array([reference[tuple(c)][0] for c in conts])
    assert np.array_equal(np.isneginf(logp), np.isneginf(ref))        # the same sequences are impossible
    live = np.isfinite(ref)
    np.testing.assert_allclose(logp[live], ref[live], atol=2e-5)
    greedy = [g for _, g in answers]
    assert greedy == [reference[tuple(c)][1] for c in conts] and sum(greedy) == 1
    assert all(np.isfinite(lp) for lp, g in answers if g)              # the greedy response is never cut
    if policy.top_k or policy.top_p or policy.min_p:
        assert np.isneginf(logp).sum() > 1000                           # truncation really removes sequences


def test_text_requests_go_through_the_same_path(lms: dict[Policy, FastHFLM]) -> None:
    policy = Policy(top_p=0.8)
    lm = lms[policy]
    requests = [Instance("loglikelihood", {}, (PROMPTS[1], f" {a} {b}"), i)
                for i, (a, b) in enumerate(itertools.product(range(M), repeat=2))]
    by_text = lm.loglikelihood(requests)
    ctx = lm.tok_encode(PROMPTS[1])
    by_tokens = lm._loglikelihood_tokens([(None, ctx, lm.tok_encode(f"{a} {b}"))
                                          for a, b in itertools.product(range(M), repeat=2)])
    assert by_text == by_tokens


def test_identity_policy_is_bit_identical_to_stock_hflm(sharp_dir: Path, lms: dict[Policy, FastHFLM]) -> None:
    stock = HFLM(pretrained=str(sharp_dir), device="cpu", batch_size=64)
    requests = [Instance("loglikelihood", {}, (p, f" {a} {b}"), i)
                for i, (p, (a, b)) in enumerate(itertools.product(PROMPTS, itertools.product(range(M), repeat=2)))]
    expected = stock.loglikelihood(requests)
    assert lms[IDENTITY].loglikelihood(requests) == expected
    # the one-pass path's identity member too (row-sliced log_softmax is bit-identical)
    assert lms[IDENTITY].loglikelihood_policies(requests, [IDENTITY, Policy(top_k=2)])[0] == expected


# -- one pass, K policies --------------------------------------------------------------------------------

def test_loglikelihood_policies_equals_each_policy_scored_alone(lms: dict[Policy, FastHFLM]) -> None:
    requests = [Instance("loglikelihood", {}, (p, f" {a} {b}"), i)
                for i, (p, (a, b)) in enumerate(itertools.product(PROMPTS, itertools.product(range(M), repeat=2)))]
    together = lms[IDENTITY].loglikelihood_policies(requests, POLICIES)
    for policy, answers in zip(POLICIES, together, strict=True):
        assert answers == lms[policy].loglikelihood(requests), policy.label


def test_a_family_scores_every_member_in_one_pass(sharp_dir: Path, lms: dict[Policy, FastHFLM]) -> None:
    clear_cache()
    specs = [_spec(sharp_dir, f"f{i}", generation=_generation(p)) for i, p in enumerate(POLICIES)]
    members = get_lms(specs)
    first = members["f0"]
    assert all(m.model is first.model and m.family is first.family for m in members.values())
    requests = [Instance("loglikelihood", {}, (p, f" {a}"), i) for i, (p, a) in
                enumerate(itertools.product(PROMPTS, range(M)))]
    for i, policy in enumerate(POLICIES):
        assert members[f"f{i}"].loglikelihood(requests) == lms[policy].loglikelihood(requests), policy.label
    assert first.family.passes == 1
    clear_cache()


# -- the sampler draws from the scored policy ----------------------------------------------------------

def test_runner_gen_kwargs_make_the_sampler_chain_the_scored_policy(lms: dict[Policy, FastHFLM],
                                                                    sharp_dir: Path) -> None:
    from covbench.runner import _gen_kwargs

    lm = lms[IDENTITY]
    for i, policy in enumerate(POLICIES):
        spec = _spec(sharp_dir, f"p{i}", generation={**_generation(policy), "max_gen_toks": 2})
        kwargs = {**_gen_kwargs(spec), "until": ["="]}
        plan, reason = lm._sampling_plan(kwargs)
        assert plan is not None, reason
        assert Policy.from_warpers(plan.warpers, VOCAB) == policy and plan.max_gen_toks == 2
    # without top_k: 0, transformers 5 would add top_k = 50; on a 14-token model that is still the identity
    plan, _ = lm._sampling_plan({"do_sample": True, "temperature": 1.0})
    assert Policy.from_warpers(plan.warpers, VOCAB) == IDENTITY
    assert Policy.from_warpers(plan.warpers, 100) == Policy(top_k=50)


def test_sampling_another_policy_than_the_scored_one_warns(lms: dict[Policy, FastHFLM],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    lm = lms[Policy(temperature=0.7)]
    kwargs = {"do_sample": True, "temperature": 1.3, "top_k": 0, "until": ["="], "max_gen_toks": 2}
    with caplog.at_level(logging.WARNING, logger="covbench.backends.fast_hf"):
        lm.generate_until([Instance("generate_until", {}, (PROMPTS[0], kwargs), 0)])
    assert lm.last_stats.sampled_policies == [Policy(temperature=1.3)]
    assert "sampling with T=1.3 but scoring with T=0.7" in caplog.text


def _scored_string_distribution(lm: FastHFLM, prompt: str, until: list[str]) -> dict[str, float]:
    """P(output string) for max_gen_toks = 2, from the backend's own scores of every 2-token continuation.

    A first token eos ends the generation (the sampler pads the row): its mass is the score of [eos].
    """
    ctx = lm.tok_encode(prompt)
    pairs = [[a, b] for a in range(VOCAB) if a != EOS_ID for b in range(VOCAB)]
    scores = lm._loglikelihood_tokens([(None, ctx, c) for c in pairs] + [(None, ctx, [EOS_ID])])
    stops = tuple(until + [lm.tok_decode(lm.eot_token_id, skip_special_tokens=False)])
    dist: dict[str, float] = {}
    for cont, (logp, _) in zip(pairs + [[EOS_ID, lm.tokenizer.pad_token_id]], scores, strict=True):
        s = lm._postprocess(cont, stops)
        dist[s] = dist.get(s, 0.0) + float(np.exp(logp))
    return dist


def _chi_square_p(samples: list[str], dist: dict[str, float]) -> float:
    """Goodness-of-fit p-value; outcomes with expected count < 5 are pooled into one bin."""
    n = len(samples)
    assert set(samples) <= {s for s, p in dist.items() if p > 0}, "a sample the scored policy calls impossible"
    total = sum(dist.values())
    probs = {s: p / total for s, p in dist.items()}
    counts = dict.fromkeys(probs, 0)
    for s in samples:
        counts[s] += 1
    big = [s for s in probs if probs[s] * n >= 5]
    small = [s for s in probs if s not in big and probs[s] > 0]
    obs = [counts[s] for s in big] + ([sum(counts[s] for s in small)] if small else [])
    exp = np.array([probs[s] for s in big] + ([sum(probs[s] for s in small)] if small else [])) * n
    return float(stats.chisquare(obs, exp * (n / exp.sum())).pvalue)


@pytest.mark.parametrize("policy", [Policy(temperature=1.3, top_p=0.8), Policy(temperature=0.7, top_k=4),
                                    Policy(min_p=0.25)], ids=lambda p: p.label)
def test_sampler_distribution_matches_the_scored_distribution(lms: dict[Policy, FastHFLM], sharp_dir: Path,
                                                             policy: Policy) -> None:
    lm = make_lm(_spec(sharp_dir, "chi", generation=_generation(policy)))
    until = ["="]
    kwargs = {**policy.gen_kwargs(), "until": until, "max_gen_toks": 2}
    n = 3000
    torch.manual_seed(2027)   # seeded: the same draws on every run, so the verdict cannot flake
    out = lm.generate_until([Instance("generate_until", {}, (p, kwargs), 0) for p in PROMPTS[:2] for _ in range(n)])
    assert lm.last_stats.sampled_policies == [policy]
    for i, prompt in enumerate(PROMPTS[:2]):
        scored = _scored_string_distribution(lm, prompt, until)
        assert abs(sum(scored.values()) - 1.0) < 1e-5
        draws = out[i * n:(i + 1) * n]
        assert _chi_square_p(draws, scored) > 1e-3
        # power: the same draws are rejected against the model's untruncated T = 1 distribution
        unscored = _scored_string_distribution(lms[IDENTITY], prompt, until)
        assert _chi_square_p(draws, {s: unscored.get(s, 0.0) for s in unscored}) < 1e-6
