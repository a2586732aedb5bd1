"""Tests of the shared-prefill HF backend ``hf-fast`` (covbench/backends/fast_hf.py).

"Same output distribution as stock lm-eval" is checked three ways:
1. exact: with top_k=1 both backends sample deterministically, so their strings must be identical
   (stop strings, eos, max_gen_toks, request order, batching across chunks);
2. exact: every sampled token's log-prob in the shared-prefill loop equals a teacher-forced forward pass
   over the unpadded prompt + sample (padding and cache expansion change nothing), within 1e-5;
3. statistical: the empirical distribution of whole short outputs from both backends passes a
   chi-square test against the exact distribution computed by teacher forcing and enumeration, and
   the same test rejects a wrong distribution (so it has power).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.api.registry import get_model
from lm_eval.models.huggingface import HFLM
from scipy import stats

from covbench.backends import fast_hf
from covbench.backends.fast_hf import FastHFLM, group_requests, sample_continuations
from covbench.tiny import build_tiny_gpt2, sharpen_gpt2

M = 8  # node ids 0..7; then "|"=8, "/"=9, "="=10, "<eos>"=11, "<pad>"=12, "<unk>"=13
VOCAB = M + 6
EOS_ID = 11
PROMPTS = ["3 5 | 5 7 / 3", "1 2 =", "0 1 2 3 4 5 6 7 | 2 4 / 6", "7", "4 4 | 1 /"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny matmuls on a shared 2-core machine: one thread avoids OpenMP spin contention."""


@pytest.fixture(scope="module")
def sharp_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 whose weights are re-drawn with a large std, so its next-token distributions are far
    from uniform and depend on position (a padding or position-id bug changes them measurably)."""
    out = build_tiny_gpt2(tmp_path_factory.mktemp("sharp"), m=M, n_layer=2, n_embd=32, n_head=2,
                          n_positions=64)
    sharpen_gpt2(out, std=0.35, seed=7)
    return out


@pytest.fixture(scope="module")
def fast(sharp_model_dir: Path) -> FastHFLM:
    return FastHFLM(pretrained=str(sharp_model_dir), device="cpu", batch_size=2)


@pytest.fixture(scope="module")
def stock(sharp_model_dir: Path) -> HFLM:
    return HFLM(pretrained=str(sharp_model_dir), device="cpu", batch_size=64)


def _requests(prompts: list[str], gen_kwargs: dict, repeats: int, interleave: bool = False) -> list[Instance]:
    """The flat list lm-eval hands the LM: each request repeated (copies adjacent unless interleaved)."""
    base = [Instance("generate_until", {}, (p, gen_kwargs), i, repeats=repeats) for i, p in enumerate(prompts)]
    if interleave:
        return [r for _ in range(repeats) for r in base]
    return [r for r in base for _ in range(repeats)]


# -- registration and grouping ------------------------------------------------------------------------

def test_registered_with_lm_eval_and_reregistration_is_harmless() -> None:
    assert get_model("hf-fast") is FastHFLM
    fast_hf._register()  # what a second import would do: must not raise
    assert get_model("hf-fast") is FastHFLM
    assert issubclass(FastHFLM, HFLM)


def test_group_requests_by_context_and_kwargs() -> None:
    a = {"until": ["="], "do_sample": True, "temperature": 1.0}
    a_reordered = {"temperature": 1.0, "do_sample": True, "until": ["="]}
    b = {"until": ["|"], "do_sample": True, "temperature": 1.0}
    reqs = [Instance("generate_until", {}, args, 0) for args in
            [("x", a), ("y", a), ("x", a_reordered), ("x", b), ("y", a)]]
    groups = group_requests(reqs)
    assert [(g.context, g.indices) for g in groups] == [("x", (0, 2)), ("y", (1, 4)), ("x", (3,))]
    assert [g.repeats for g in groups] == [2, 2, 1]
    assert group_requests([]) == []


def test_empty_request_list(fast: FastHFLM) -> None:
    assert fast.generate_until([]) == []


# -- 1. exact agreement with stock at top_k = 1 ---------------------------------------------------------

@pytest.mark.parametrize(("until", "max_gen_toks"), [
    (["="], 6),            # a one-token stop string
    (["4 4"], 9),          # a multi-token stop string
    (["|", "/"], 5),       # several stop strings: cut at the first occurrence of any
    ([], 12),              # eos only (handle_stop_sequences adds it), long budget
    (["="], 1),            # max_gen_toks = 1
])
def test_top_k_1_matches_stock_exactly(fast: FastHFLM, stock: HFLM, until: list[str], max_gen_toks: int) -> None:
    prompts = PROMPTS + ["2 6 | 6 1", "5 5 5 =", "0 | 3 / 7 =", "6 2 1"]
    kw = {"do_sample": True, "temperature": 0.8, "top_k": 1, "until": until, "max_gen_toks": max_gen_toks}
    reqs = _requests(prompts, kw, repeats=3, interleave=True)
    got = fast.generate_until(reqs)
    assert fast.last_stats.sampled_rows == len(reqs) and fast.last_stats.fallback_requests == 0
    assert fast.last_stats.prefill_rows == len(prompts)   # one prefill per distinct prompt
    assert got == stock.generate_until(reqs)
    # copies of one prompt agree (top_k = 1 is deterministic) and sit at the request's positions
    for i in range(len(prompts)):
        assert len({got[j] for j in range(i, len(reqs), len(prompts))}) == 1


def test_top_k_1_cases_cover_cut_eos_and_budget(fast: FastHFLM) -> None:
    """Guard against a vacuous exactness test: the cases above include a stop-string cut, an eos stop
    and a run to max_gen_toks."""
    prompts = PROMPTS + ["2 6 | 6 1", "5 5 5 =", "0 | 3 / 7 =", "6 2 1"]
    ids, mask = fast.tok_batch_encode(prompts)
    plan, _ = fast._sampling_plan({"do_sample": True, "temperature": 0.8, "top_k": 1, "max_gen_toks": 12})
    with torch.inference_mode():
        out = sample_continuations(fast.model, ids, mask, [1] * len(prompts), plan)
    texts = [fast.tok_decode(t, skip_special_tokens=False) for t in out.tokens.tolist()]
    assert any("<eos>" in t for t in texts) and any("<eos>" not in t for t in texts)
    assert any(any(s in t for s in ["=", "|", "/"]) for t in texts)


# -- greedy and fallback paths --------------------------------------------------------------------------

def test_greedy_repeats_generated_once_and_replicated(fast: FastHFLM, stock: HFLM,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    kw = {"do_sample": False, "until": ["="], "max_gen_toks": 6}
    reqs = _requests(PROMPTS, kw, repeats=4)
    seen: list[int] = []
    real = HFLM.generate_until

    def counting(self: HFLM, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        seen.append(len(requests))
        return real(self, requests, disable_tqdm)

    monkeypatch.setattr(HFLM, "generate_until", counting)
    got = fast.generate_until(reqs)
    assert seen == [len(PROMPTS)]           # stock code saw each distinct prompt once
    assert fast.last_stats.greedy_deduplicated == len(reqs)
    monkeypatch.setattr(HFLM, "generate_until", real)
    assert got == stock.generate_until(reqs)


def test_unsupported_settings_fall_back_to_stock_unchanged(fast: FastHFLM, stock: HFLM) -> None:
    kw = {"do_sample": True, "temperature": 1.0, "repetition_penalty": 1.5, "until": ["="], "max_gen_toks": 5}
    reqs = _requests(PROMPTS, kw, repeats=3)
    fast.batch_size_per_gpu = stock.batch_size_per_gpu = 64   # same batching -> same RNG stream
    try:
        torch.manual_seed(11)
        got = fast.generate_until(reqs)
        torch.manual_seed(11)
        want = stock.generate_until(reqs)
    finally:
        fast.batch_size_per_gpu = 2
    assert fast.last_stats.fallback_requests == len(reqs) and fast.last_stats.sampled_rows == 0
    assert "RepetitionPenaltyLogitsProcessor" in fast.last_stats.fallback_reasons[0]
    assert got == want


def test_mixed_kwargs_keep_request_order(fast: FastHFLM, stock: HFLM) -> None:
    greedy = {"do_sample": False, "until": ["|"], "max_gen_toks": 4}
    top1 = {"do_sample": True, "temperature": 1.0, "top_k": 1, "until": ["="], "max_gen_toks": 7}
    reqs = [Instance("generate_until", {}, (p, kw), i) for i, (p, kw) in
            enumerate(itertools.product(PROMPTS, [greedy, top1, greedy]))]
    assert fast.generate_until(reqs) == stock.generate_until(reqs)
    assert fast.last_stats.sampled_rows == len(PROMPTS) and fast.last_stats.greedy_deduplicated == 2 * len(PROMPTS)


def test_seeded_runs_reproduce(fast: FastHFLM) -> None:
    kw = {"do_sample": True, "temperature": 1.0, "until": ["="], "max_gen_toks": 6}
    reqs = _requests(PROMPTS, kw, repeats=8)
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        runs.append(fast.generate_until(reqs))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert len(set(runs[0])) > len(PROMPTS)   # repeats of a prompt are independent samples, not copies


# -- 2. per-step log-probs equal a teacher-forced forward pass ------------------------------------------

def test_logprobs_equal_teacher_forcing(fast: FastHFLM) -> None:
    prompts = PROMPTS[:4]                    # lengths differ -> left padding up to 11 tokens
    repeats = [2, 3, 1, 4]
    ids, mask = fast.tok_batch_encode(prompts)
    assert int((mask == 0).sum()) > 0
    plan, _ = fast._sampling_plan({"do_sample": True, "temperature": 1.0, "max_gen_toks": 10})
    plan = dataclasses.replace(plan, eos_ids=(), until=())     # run every row for all 10 steps
    torch.manual_seed(0)
    with torch.inference_mode():
        out = sample_continuations(fast.model, ids, mask, repeats, plan)
    assert out.tokens.shape == (sum(repeats), 10)
    assert out.rows_of.tolist() == [0, 0, 1, 1, 1, 2, 3, 3, 3, 3]
    for r, p in enumerate(out.rows_of.tolist()):
        prompt = ids[p][mask[p].bool()].tolist()
        seq = torch.tensor([prompt + out.tokens[r].tolist()])
        with torch.inference_mode():
            logp = torch.log_softmax(fast.model(seq).logits[0].float(), dim=-1)
        positions = torch.arange(len(prompt) - 1, seq.shape[1] - 1)
        want = logp[positions, out.tokens[r]]
        torch.testing.assert_close(out.logprobs[r], want, atol=1e-5, rtol=0)


def test_finished_rows_are_padded(fast: FastHFLM) -> None:
    ids, mask = fast.tok_batch_encode(PROMPTS)
    plan, _ = fast._sampling_plan({"do_sample": True, "temperature": 2.0, "max_gen_toks": 20})
    torch.manual_seed(5)
    with torch.inference_mode():
        out = sample_continuations(fast.model, ids, mask, [20] * len(PROMPTS), plan)
    tokens = out.tokens
    for row, fin in zip(tokens.tolist(), out.finished.tolist(), strict=True):
        if EOS_ID in row:
            k = row.index(EOS_ID)
            assert all(t == plan.pad_id for t in row[k + 1:]) and not any(fin[:k + 1]) and all(fin[k + 1:])
    assert any(EOS_ID in row for row in tokens.tolist())


# -- 3. the distribution of whole outputs, against exact probabilities ----------------------------------

def _reference_warp(logits: np.ndarray, temperature: float, top_k: int | None,
                    top_p: float | None = None) -> np.ndarray:
    """Independent numpy reference of temperature -> top-k -> top-p sampling probabilities."""
    z = logits / temperature
    if top_k is not None:
        z = np.where(z >= np.sort(z)[-top_k], z, -np.inf)
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p is not None:
        # keep the most probable tokens until their mass reaches top_p (the token that crosses is kept)
        order = np.argsort(-p)
        mass_before = np.cumsum(p[order]) - p[order]
        keep = np.zeros_like(p, dtype=bool)
        keep[order[mass_before < top_p]] = True
        p = np.where(keep, p, 0.0)
        p /= p.sum()
    return p


def _exact_string_distribution(lm: FastHFLM, prompt: str, until: list[str], temperature: float,
                               top_k: int | None, top_p: float | None = None) -> dict[str, float]:
    """P(output string) for max_gen_toks = 2, by enumerating all two-token continuations.

    Token probabilities come from teacher forcing on the unpadded prompt; each two-token continuation is
    mapped to its output string by stock post-processing (after eos the row is padded, as generate does).
    """
    model, prompt_ids = lm.model, lm.tok_encode(prompt)
    with torch.inference_mode():
        first = model(torch.tensor([prompt_ids])).logits[0, -1].double().numpy()
        second = model(torch.tensor([prompt_ids + [a] for a in range(VOCAB)])).logits[:, -1].double().numpy()
    p1 = _reference_warp(first, temperature, top_k, top_p)
    eos = lm.tok_decode(lm.eot_token_id, skip_special_tokens=False)
    stops = tuple(until + [eos])
    dist: dict[str, float] = {}
    for a in range(VOCAB):
        if p1[a] == 0:
            continue
        if a == EOS_ID:
            s = lm._postprocess([a, lm.tokenizer.pad_token_id], stops)
            dist[s] = dist.get(s, 0.0) + p1[a]
            continue
        p2 = _reference_warp(second[a], temperature, top_k, top_p)
        for b in range(VOCAB):
            s = lm._postprocess([a, b], stops)
            dist[s] = dist.get(s, 0.0) + p1[a] * p2[b]
    return dist


def _chi_square_p(samples: list[str], dist: dict[str, float]) -> float:
    """Goodness-of-fit p-value; outcomes with expected count < 5 are pooled into one bin."""
    n = len(samples)
    assert set(samples) <= {s for s, p in dist.items() if p > 0}, "a sample the model cannot produce"
    counts = {s: 0 for s in dist}
    for s in samples:
        counts[s] += 1
    big = [s for s in dist if dist[s] * n >= 5]
    obs = [counts[s] for s in big] + [n - sum(counts[s] for s in big)]
    exp = [dist[s] * n for s in big] + [n - sum(dist[s] * n for s in big)]
    if exp[-1] < 1e-9:
        obs, exp = obs[:-1], exp[:-1]
    return float(stats.chisquare(obs, exp).pvalue)


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [(1.0, None, None), (0.7, 3, None), (1.3, None, 0.8)])
def test_output_distribution_matches_exact_probabilities(fast: FastHFLM, stock: HFLM, temperature: float,
                                                         top_k: int | None, top_p: float | None) -> None:
    until = ["="]
    kw = {"do_sample": True, "temperature": temperature, "until": until, "max_gen_toks": 2}
    if top_k is not None:
        kw["top_k"] = top_k
    if top_p is not None:
        kw["top_p"] = top_p
    prompts = PROMPTS[:3]
    torch.manual_seed(2026)
    fast_out = fast.generate_until(_requests(prompts, kw, repeats=3000))
    assert fast.last_stats.sampled_rows == 3 * 3000
    stock_out = stock.generate_until(_requests(prompts, kw, repeats=600))
    for i, prompt in enumerate(prompts):
        exact = _exact_string_distribution(fast, prompt, until, temperature, top_k, top_p)
        assert abs(sum(exact.values()) - 1.0) < 1e-9
        assert _chi_square_p(fast_out[i * 3000:(i + 1) * 3000], exact) > 1e-3
        assert _chi_square_p(stock_out[i * 600:(i + 1) * 600], exact) > 1e-3
        # power: the fast samples are rejected against the distribution at another temperature
        wrong = _exact_string_distribution(fast, prompt, until, temperature * 2.0, top_k, top_p)
        assert _chi_square_p(fast_out[i * 3000:(i + 1) * 3000], wrong) < 1e-6


def test_warper_chain_is_transformers_default(fast: FastHFLM) -> None:
    """model.generate's defaults apply: do_sample alone means top_k = 50 (transformers 5), top_k=0 means
    none; top_p and temperature come in transformers' order."""
    def names(kw: dict) -> list[tuple[str, int | None]]:
        return [(type(w).__name__, getattr(w, "top_k", None)) for w in fast._sampling_plan(kw)[0].warpers]

    assert names({"do_sample": True, "temperature": 1.0}) == [("TopKLogitsWarper", 50)]
    assert names({"do_sample": True, "temperature": 1.0, "top_k": 0}) == []
    assert [n for n, _ in names({"do_sample": True, "temperature": 0.5, "top_k": 0, "top_p": 0.9})] == [
        "TemperatureLogitsWarper", "TopPLogitsWarper"]


def test_max_gen_toks_over_model_length_is_a_one_line_error(fast: FastHFLM) -> None:
    kw = {"do_sample": True, "temperature": 1.0, "max_gen_toks": 64}   # the model has 64 positions
    with pytest.raises(ValueError, match=r"^hf-fast: max_gen_toks \(64\) must be less than .* \(64\)$"):
        fast.generate_until(_requests(PROMPTS[:1], kw, repeats=2))


# -- through lm-eval's evaluator ------------------------------------------------------------------------

@pytest.mark.slow
def test_simple_evaluate_with_repeats(sharp_model_dir: Path, tmp_path: Path) -> None:
    from lm_eval import simple_evaluate

    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS[:3]))
    task = {
        "task": "fast_hf_probe", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test", "output_type": "generate_until", "doc_to_text": "{{prompt}}",
        "doc_to_target": "", "repeats": 6,
        "generation_kwargs": {"until": ["="], "max_gen_toks": 4, "do_sample": True, "temperature": 1.0},
        "filter_list": [{"name": "all", "filter": [{"function": "take_first_k", "k": 6}]}],
        "process_results": lambda doc, results: {"n_samples": float(len(results[0]))},
        "metric_list": [{"metric": "n_samples", "aggregation": "mean", "higher_is_better": True}],
    }
    res = simple_evaluate(model="hf-fast", model_args={"pretrained": str(sharp_model_dir), "device": "cpu",
                                                       "batch_size": 2},
                          tasks=[task], log_samples=True, bootstrap_iters=0)
    assert res["results"]["fast_hf_probe"]["n_samples,all"] == 6.0
    resps = [s["resps"][0] for s in res["samples"]["fast_hf_probe"]]
    assert all(len(r) == 6 and all(isinstance(x, str) for x in r) for r in resps)
