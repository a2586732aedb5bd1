"""LoRA training data: disjoint from the evaluation docs, rendered and tokenised as lm-eval does."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from covbench.arith.generator import KINDS, generate
from covbench.arith.training import fact, problem_stream, training_problems
from covbench.finetune.config import preset
from covbench.finetune.data import IGNORE, TokenPair, collate, held_out, load_eval_task, render

SHIPPED = preset("shipped")
# every problem the shipped run draws (steps x batch), and some more
N_SHIPPED = SHIPPED.train.steps * SHIPPED.train.batch_size


@pytest.fixture(scope="module")
def eval_docs() -> dict[str, list[dict]]:
    return {name: list(load_eval_task(name).eval_docs) for name in ("arith_ll", "arith_sample")}


@pytest.fixture(scope="module")
def held():
    return held_out(SHIPPED.data.eval_tasks)


def test_held_out_is_every_doc_of_both_evaluation_tasks(eval_docs, held) -> None:
    assert held.n_docs == {"arith_ll": 64, "arith_sample": 32}
    questions = {d["question"] for docs in eval_docs.values() for d in docs}
    assert held.questions == questions and len(questions) == 64  # arith_sample's docs are arith_ll's first 32
    assert {(d["op"], min(d["a"], d["b"]), max(d["a"], d["b"])) for d in eval_docs["arith_ll"]} == held.facts


def test_no_training_question_equals_an_evaluation_question(eval_docs, held) -> None:
    """The shipped stream (seed 0) and another seed, over more problems than the shipped run draws."""
    eval_questions = {d["question"] for docs in eval_docs.values() for d in docs}
    for seed in (SHIPPED.seed, 7):
        train = training_problems(N_SHIPPED + 2000, seed=seed, exclude=held.facts)
        assert not eval_questions & {p.question for p in train}
        assert not held.facts & {fact(p) for p in train}  # stronger: no held-out fact, in any wording


def test_without_the_exclusion_the_same_stream_would_hit_evaluation_facts(held) -> None:
    """The exclusion does real work: the unfiltered training distribution contains held-out facts."""
    raw = training_problems(N_SHIPPED, seed=SHIPPED.seed)
    assert held.facts & {fact(p) for p in raw}


def test_training_stream_is_seeded_balanced_and_differs_from_the_evaluation_stream(held) -> None:
    a = training_problems(400, seed=0, exclude=held.facts)
    assert a == training_problems(400, seed=0, exclude=held.facts)
    assert a[:100] == training_problems(100, seed=0, exclude=held.facts)  # prefix-stable
    assert a != training_problems(400, seed=1, exclude=held.facts)
    assert Counter(p.kind for p in a) == {k: 100 for k in KINDS}
    assert all(p.answer == (p.a + p.b if p.op == "+" else p.a * p.b) for p in a)
    assert [p.question for p in a[:8]] != [p.question for p in generate(8, seed=0)]  # its own seed stream


def test_stream_refuses_a_kind_whose_every_fact_is_excluded() -> None:
    every_mul_word = {("*", min(a, b), max(a, b)) for a in range(2, 13) for b in range(2, 10)}
    stream = problem_stream(0, every_mul_word, kinds=("mul_word",))
    with pytest.raises(ValueError, match="every draw of kind 'mul_word' is excluded"):
        next(stream)


def test_render_reproduces_lm_evals_arith_ll_requests_exactly(eval_docs) -> None:
    """Training prompts are rendered by the same code as the evaluation's: every arith_ll request."""
    task = load_eval_task("arith_ll")
    task.build_all_requests()
    expected = {inst.doc_id: inst.args for inst in task.instances}
    problems = generate(64, seed=1234)
    assert [p.question for p in problems] == [d["question"] for d in eval_docs["arith_ll"]]
    for p in problems:
        assert render(task, p) == expected[p.doc_id]
    ctx, cont = render(task, problems[0])
    assert ctx.startswith("Answer each question with a number.\n\nQ: ") and ctx.endswith(
        f"Q: {problems[0].question}\nA:") and cont == f" {problems[0].answer}\n"
    short, _ = render(task, problems[0], few_shot=False)
    assert short == f"Answer each question with a number.\n\nQ: {problems[0].question}\nA:"


def test_collate_shares_the_common_prefix_and_aligns_answers_at_the_end() -> None:
    pairs = [TokenPair((9, 9, 1, 2), (5, 6, 7)), TokenPair((9, 9, 3), (8,)),
             TokenPair((9, 9, 1, 4, 4), (2, 2))]
    b = collate(pairs, pad_id=0)
    assert b.prefix_ids.tolist() == [[9, 9]]
    assert b.labels.tolist() == [[5, 6, 7], [IGNORE, IGNORE, 8], [IGNORE, 2, 2]]
    assert b.n_scored == 6
    # each row, unpadded, is its context + continuation after the prefix, at consecutive positions
    for row, p in enumerate(pairs):
        real = b.attention_mask[row, 2:].bool()
        assert b.input_ids[row][real].tolist() == list(p.context[2:] + p.continuation)
        assert b.position_ids[row][real].tolist() == list(range(2, len(p.context) + len(p.continuation)))
    assert b.attention_mask.shape == (3, 2 + b.input_ids.shape[1])


def test_collate_keeps_one_context_token_per_row_and_rejects_empty_input() -> None:
    same = [TokenPair((1, 2, 3), (4,)), TokenPair((1, 2, 3), (5, 6))]
    b = collate(same, pad_id=0)
    assert b.prefix_ids.tolist() == [[1, 2]] and b.input_ids[:, -3:].tolist() == [[0, 3, 4], [3, 5, 6]]
    single = collate([TokenPair((7,), (8,))], pad_id=0)
    assert single.prefix_ids.shape == (1, 0) and single.input_ids.tolist() == [[7, 8]]
    with pytest.raises(ValueError, match="no pairs"):
        collate([], pad_id=0)
    with pytest.raises(ValueError, match="non-empty"):
        collate([TokenPair((), (1,))], pad_id=0)
    assert b.labels.dtype == torch.long


@pytest.mark.slow
def test_encode_pair_is_lm_evals_tokenisation(tmp_path) -> None:
    """Token for token what HFLM scores, trailing-space move included (tiny byte-level model)."""
    from lm_eval.models.huggingface import HFLM

    from covbench.finetune.base import build_tiny_llama
    from covbench.finetune.data import encode_pair

    folder = build_tiny_llama(preset("tiny").base, tmp_path, seed=0)
    lm = HFLM(pretrained=str(folder), device="cpu", batch_size=1)
    task = load_eval_task("arith_ll")
    cases = [render(task, p) for p in generate(4, seed=1234)] + [("Q: 2 + 2?\nA: ", "4\n"), ("x  ", " y")]
    for ctx, cont in cases:
        got = encode_pair(lm.tokenizer, ctx, cont)
        want_ctx, want_cont = lm._encode_pair(ctx, cont)
        assert (list(got.context), list(got.continuation)) == (want_ctx, want_cont)
