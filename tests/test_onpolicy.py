"""On-policy samples for the offset tournament (covbench.onpolicy): the sampler's law against exact
enumeration, the scorer against lm-eval's own log-likelihoods, the Markov bound, storage and reuse, errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from scipy import stats

from covbench.backends import clear_cache, make_lm
from covbench.backends.policy import Policy, policy_logprobs
from covbench.onpolicy import OnPolicyError, files, onpolicy_logp
from covbench.onpolicy.sampling import Prompts, draw, score
from covbench.registry import ModelSpec
from covbench.tiny import build_tiny_gpt2, sharpen_gpt2

M = 8  # node ids 0..7, then "|", "/", "=", "<eos>", "<pad>", "<unk>": 14 tokens
VOCAB = M + 6
CONTEXTS = ["3 5 | 5 7 / 3 =", "1 2 =", "0 1 2 3 4 5 6 7 | 2 4 / 6 ="]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny matmuls on a shared 2-core machine: one thread avoids OpenMP spin contention."""


def _sharp(out: Path, seed: int) -> Path:
    """A tiny GPT-2 with large random weights: next-token distributions far from uniform."""
    build_tiny_gpt2(out, m=M, n_layer=2, n_embd=32, n_head=2, n_positions=64)
    sharpen_gpt2(out, std=0.3, seed=seed)
    return out


@pytest.fixture(scope="module")
def sharp(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return [_sharp(tmp_path_factory.mktemp(f"sharp{s}"), s) for s in (11, 12)]


def _spec(path: Path, name: str, **fields: object) -> ModelSpec:
    return ModelSpec.model_validate({"name": name, "pretrained": str(path), "backend": "hf-fast",
                                     "batch_size": 2, **fields})


@pytest.fixture(scope="module")
def lms(sharp: list[Path]):
    clear_cache()
    yield {"a": make_lm(_spec(sharp[0], "a")), "b": make_lm(_spec(sharp[1], "b")),
           "a_top3": make_lm(_spec(sharp[0], "a_top3", generation={"top_k": 3, "temperature": 0.8}))}
    clear_cache()


def _prompts(lm, h: int) -> Prompts:
    ctx = tuple(tuple(lm.tok_encode(c)) for c in CONTEXTS)
    return Prompts(np.arange(len(CONTEXTS)), ctx, np.full(len(CONTEXTS), h))


def _exact_logp(lm, context: tuple[int, ...], h: int, policy: Policy) -> dict[tuple[int, ...], float]:
    """log π(y|x) of every y in V^h by plain full forward passes (no cache, no batching tricks)."""
    out = {}
    with torch.no_grad():
        for y in itertools.product(range(VOCAB), repeat=h):
            ids = torch.tensor([list(context) + list(y)])
            logits = lm.model(ids).logits[0, len(context) - 1:-1].float()
            lp = policy_logprobs(logits, policy)
            out[y] = float(sum(lp[t, y[t]] for t in range(h)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["a", "a_top3"])
def test_samples_follow_the_policys_exact_distribution(lms, name):
    lm = lms[name]
    prompts = _prompts(lm, 2)
    samples = draw(lm, prompts, 3000, seed=5)
    assert samples.shape == (3, 3000, 2)
    for i in (0, 2):
        exact = _exact_logp(lm, prompts.context[i], 2, lm.policy)
        probs = np.exp(np.array(list(exact.values())))
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
        index = {y: k for k, y in enumerate(exact)}
        counts = np.bincount([index[tuple(y)] for y in samples[i].tolist()], minlength=len(index))
        assert counts[probs == 0].sum() == 0  # nothing outside the policy's support (top-k)
        keep = probs * 3000 >= 5  # chi-square cells with enough expected counts; the rest pooled
        observed = np.append(counts[keep], counts[~keep].sum())
        expected = np.append(probs[keep], probs[~keep].sum()) * 3000
        observed, expected = observed[expected > 0], expected[expected > 0]
        assert stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue > 1e-3
    again = draw(lm, prompts, 3000, seed=5)
    assert np.array_equal(samples, again)  # reproducible at a fixed seed and batch size


@pytest.mark.slow
@pytest.mark.parametrize("name", ["a", "a_top3"])
def test_scores_equal_lm_evals_loglikelihood(lms, name):
    lm = lms[name]
    prompts = _prompts(lm, 4)
    samples = draw(lms["b"], prompts, 5, seed=1)  # another model's samples: some may be outside a's top-k
    samples[:, 4] = samples[:, 0]  # a repeated sample is scored once and returned twice
    got = score(lm, prompts, samples)
    assert np.array_equal(got[:, 4], got[:, 0])
    # lm-eval's own token-level log-likelihood path (no decode/re-encode: samples may hold special tokens)
    requests = [(None, list(prompts.context[i]), samples[i, s].tolist()) for i in range(3) for s in range(5)]
    ref = np.array([ll for ll, _ in lm._loglikelihood_tokens(requests, disable_tqdm=True)]).reshape(3, 5)
    text = [Instance("loglikelihood", {}, (CONTEXTS[1], " 3 5 7 1"), 0)]  # and the text path, on plain ids
    ids = np.array([[lm.tok_encode(" 3 5 7 1")]])
    assert score(lm, Prompts(np.arange(1), (prompts.context[1],), np.array([4])), ids)[0, 0] == pytest.approx(
        lm.loglikelihood(text, disable_tqdm=True)[0][0], abs=2e-5)
    finite = np.isfinite(ref)
    assert np.array_equal(finite, np.isfinite(got))  # −inf exactly where lm-eval says so (top-k)
    np.testing.assert_allclose(got[finite], ref[finite], atol=2e-5)
    with torch.no_grad():  # and a plain full forward pass (no cache, no batching), for one sample
        ctx, y = list(prompts.context[1]), samples[1, 0].tolist()
        logits = lm.model(torch.tensor([ctx + y])).logits[0, len(ctx) - 1:-1].float()
        plain = float(policy_logprobs(logits, lm.policy).gather(1, torch.tensor(y)[:, None]).sum())
    assert got[1, 0] == pytest.approx(plain, abs=2e-5) or (plain == -np.inf and got[1, 0] == -np.inf)


@pytest.mark.slow
def test_on_policy_wins_obey_markov_bound(lms):
    # P_{y ~ π_k}[π_j(y)/π_k(y) ≥ N] ≤ 1/N for samples drawn from the *denominator* model
    prompts = _prompts(lms["a"], 3)
    for k, j in (("a", "b"), ("b", "a")):
        ys = draw(lms[k], prompts, 2000, seed=3)
        ratio = score(lms[j], prompts, ys) - score(lms[k], prompts, ys)
        for big_n in (1.5, 2.0, 4.0):
            frac = (ratio >= np.log(big_n)).mean()
            assert frac <= 1 / big_n + 3 * np.sqrt(0.25 / ratio.size), (k, j, big_n, frac)


def test_prompts_and_bad_arguments():
    with pytest.raises(ValueError, match="differ in size"):
        Prompts(np.arange(2), ((1,),), np.ones(2, np.int64))
    with pytest.raises(ValueError, match=">= 1 token"):
        Prompts(np.arange(1), ((1,),), np.zeros(1, np.int64))


# ---- the job: storage and reuse ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> Path:
    from covbench.graphs.lmeval import DataSpec, TaskSpec, task_yaml

    out = tmp_path_factory.mktemp("tasks")
    data = DataSpec(family="fig1", n_layers=4, m=32, mixture="fig1_finetune", seed=3, n=6)
    (out / "mini.yaml").write_text(task_yaml(TaskSpec("mini", data, "loglikelihood", classes=("G1", "G2"))))
    (out / "mini_s.yaml").write_text(task_yaml(TaskSpec("mini_s", data, "sample", repeats=2, pairs_with="mini")))
    return out


@pytest.fixture(scope="module")
def family(tmp_path_factory) -> list[ModelSpec]:
    dirs = [build_tiny_gpt2(tmp_path_factory.mktemp(f"fam{s}"), m=128, seed=s, n_positions=128) for s in range(3)]
    return [_spec(d, f"c{s}", batch_size=4) for s, d in enumerate(dirs)]


class _Counting:
    """get_lm that counts model loads (to prove reuse loads nothing)."""

    def __init__(self) -> None:
        self.loaded: list[str] = []

    def __call__(self, spec: ModelSpec):
        from covbench.backends import get_lm

        self.loaded.append(spec.name)
        return get_lm(spec)


@pytest.mark.slow
def test_job_draws_scores_stores_and_reuses(tmp_path, tasks, family):
    results = tmp_path / "results"
    get = _Counting()
    first = onpolicy_logp(family[:2], "mini", results, m=3, get_lm=get, tasks_dir=tasks)
    assert first.gen_logp.shape == (2, 2, 6, 3) and first.doc_id.tolist() == list(range(6))
    assert first.drawn == ("c0", "c1") and first.scored == 4 and first.reused == 0
    assert np.isfinite(first.gen_logp).all() and (first.gen_logp <= 0).all()
    # own scores equal a direct teacher-forced score of the stored samples
    draw0 = files.read_draw(results, "mini", first.draws[0])
    assert draw0.tokens[6].shape == (6, 3, 6)  # 6 prompts, m = 3, 6 response tokens (L + 2 node ids)
    from covbench.onpolicy.job import prompts_of
    from covbench.runner import load_task

    lm0 = get(family[0])
    prompts = prompts_of(load_task("mini", tasks), lm0, False)
    np.testing.assert_allclose(first.gen_logp[0, 0], score(lm0, prompts, draw0.tokens[6]), atol=1e-9)
    assert {int(h) for h in prompts.length} == {6}

    get.loaded.clear()
    again = onpolicy_logp(family[:2], "mini", results, m=2, get_lm=get, tasks_dir=tasks)
    assert get.loaded == [] and again.drawn == () and again.scored == 0 and again.reused == 4
    np.testing.assert_array_equal(again.gen_logp, first.gen_logp[..., :2])  # the first m samples of the draw

    grown = onpolicy_logp(family, "mini", results, m=3, get_lm=get, tasks_dir=tasks)
    assert grown.drawn == ("c2",)
    assert grown.scored == 2 + 3 and grown.reused == 4  # old scorers: the new draw; the new scorer: all three
    np.testing.assert_array_equal(grown.gen_logp[:2, :2], first.gen_logp)

    more = onpolicy_logp(family[:1], "mini", results, m=5, get_lm=get, tasks_dir=tasks)
    assert more.drawn == ("c0",) and more.gen_logp.shape == (1, 1, 6, 5)  # more samples than stored: a new draw


@pytest.mark.slow
def test_unreadable_files_are_skipped_in_one_line(tmp_path, tasks, family):
    results = tmp_path / "results"
    first = onpolicy_logp(family[:1], "mini", results, m=2, tasks_dir=tasks)
    folder = files.task_dir(results, "mini") / first.draws[0].split("/")[0]
    (folder / "draw-99999999T000000000000Z-x-1-deadbeef.safetensors").write_bytes(b"junk")
    (folder / "scores-99999999T000000000000Z-x-1-deadbeef.safetensors").write_bytes(b"\x08" + b"\x00" * 7 + b"{}      ")
    again = onpolicy_logp(family[:1], "mini", results, m=2, tasks_dir=tasks)
    assert again.drawn == () and again.scored == 0
    assert len(again.problems) == 2 and all("\n" not in p and "deadbeef" in p for p in again.problems)
    assert "field '(file)'" in again.problems[0]


def test_errors_are_one_line(tmp_path, tasks, family, sharp):
    with pytest.raises(OnPolicyError, match="sampling task"):
        onpolicy_logp(family[:1], "mini_s", tmp_path, tasks_dir=tasks)
    with pytest.raises(OnPolicyError, match="m must be"):
        onpolicy_logp(family[:1], "mini", tmp_path, m=0, tasks_dir=tasks)
    mixed = [family[0], family[1].model_copy(update={"chat_template": True})]
    with pytest.raises(OnPolicyError, match="chat-template"):
        onpolicy_logp(mixed, "mini", tmp_path, tasks_dir=tasks)


@pytest.mark.slow
def test_a_family_must_share_one_tokenizer(tmp_path, tasks, family, sharp):
    other = _spec(sharp[0], "m8")  # the 8-id tokenizer: not the family's 128-id one
    with pytest.raises(OnPolicyError, match="one tokenizer"):
        onpolicy_logp([family[0], other], "mini", tmp_path, tasks_dir=tasks)
