"""LoRA training data: held-out facts, lm-eval-rendered prompts, token pairs, shared-prefix batches.

1. :func:`held_out` reads the evaluation docs of the arith tasks through lm-eval (the tasks' YAMLs are
   the one source of their seed and size) and returns their facts and questions.
2. :func:`render` turns a problem into exactly the ``(context, continuation)`` request lm-eval builds for
   an ``arith_ll`` doc: the task's own ``fewshot_context`` (description, the 4 few-shot examples,
   ``Q: <question>\\n``, ``gen_prefix`` "A:") and ``target_delimiter + doc_to_target`` = y* = ``" 68\\n"``.
3. :func:`encode_pair` tokenises the pair as lm-eval's HF backend does (``TemplateLM._encode_pair``:
   trailing context spaces move to the continuation, the whole string is encoded and split at the
   context's length), so the trainer's labels are the tokens the evaluation scores.
4. :func:`collate` builds a :class:`SharedPrefixBatch`: every prompt starts with the same few-shot
   context, so the batch's longest common token prefix is run once (batch 1) and its key/value cache
   is broadcast to every row; each row then runs only its own question and answer, left-padded so the
   answers end together and the LM head runs on the last K + 1 positions only (docs/finetune.md "Data").

>>> b = collate([TokenPair((1, 2, 3, 4), (5,)), TokenPair((1, 2, 3, 7, 8), (5, 6))], pad_id=0)
>>> b.prefix_ids.tolist(), b.input_ids.tolist(), b.labels.tolist()
([[1, 2, 3]], [[0, 0, 4, 5], [7, 8, 5, 6]], [[-100, 5], [5, 6]])
>>> b.position_ids.tolist(), b.attention_mask.tolist()
([[0, 0, 3, 4], [3, 4, 5, 6]], [[1, 1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1, 1]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from covbench.arith.generator import Problem
from covbench.arith.training import Fact, fact

IGNORE = -100  # label of a position that is not scored (torch cross_entropy's ignore_index)


@dataclass(frozen=True)
class HeldOut:
    """What the training stream must avoid: every evaluation doc's fact and question, per task."""

    facts: frozenset[Fact]
    questions: frozenset[str]
    n_docs: dict[str, int]


@dataclass(frozen=True)
class TokenPair:
    """One training example as token ids: the context and the scored continuation y*."""

    context: tuple[int, ...]
    continuation: tuple[int, ...]


@dataclass(frozen=True)
class SharedPrefixBatch:
    """A batch whose rows share ``prefix_ids``; row i = prefix + its left-padded suffix.

    ``input_ids``/``position_ids``: [B, T] suffix tokens and their positions (P + index among the row's
    real tokens; 0 on pads, which are masked). ``attention_mask``: [B, P + T] over prefix and suffix.
    ``labels``: [B, K], the last K suffix tokens' targets (y* tokens, ``IGNORE`` elsewhere), K = the
    longest continuation: the logits of the last K + 1 positions predict them.
    """

    prefix_ids: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor

    @property
    def n_scored(self) -> int:
        return int((self.labels != IGNORE).sum())


def load_eval_task(name: str, tasks_dir: Path | None = None) -> Any:
    """The lm-eval task object of one project task (built by the runner's task manager)."""
    from covbench.runner import TASKS_DIR, load_task

    return load_task(name, tasks_dir or TASKS_DIR).task


def held_out(task_names: Sequence[str], tasks_dir: Path | None = None) -> HeldOut:
    """Facts and questions of every evaluation doc of ``task_names``, as lm-eval loads them."""
    facts: set[Fact] = set()
    questions: set[str] = set()
    n_docs: dict[str, int] = {}
    for name in task_names:
        docs = list(load_eval_task(name, tasks_dir).eval_docs)
        n_docs[name] = len(docs)
        for d in docs:
            facts.add(fact(Problem(**{k: d[k] for k in Problem.__dataclass_fields__})))
            questions.add(str(d["question"]))
    return HeldOut(frozenset(facts), frozenset(questions), n_docs)


def render(task: Any, problem: Problem, few_shot: bool = True) -> tuple[str, str]:
    """``(context, continuation)`` of ``problem`` as lm-eval renders an ``arith_ll`` request.

    ``few_shot=False`` keeps the description and the question but drops the few-shot examples.
    """
    doc = problem.to_doc()
    cfg = task.config
    context = task.fewshot_context(doc, num_fewshot=int(cfg.num_fewshot or 0) if few_shot else 0,
                                   gen_prefix=task.doc_to_prefix(doc))
    return context, f"{cfg.target_delimiter}{task.doc_to_target(doc)}"


def encode_pair(tokenizer: Any, context: str, continuation: str) -> TokenPair:
    """Tokenise as lm-eval's HF backend does for a loglikelihood request (``TemplateLM._encode_pair``)."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = tokenizer.encode(context + continuation)
    n_ctx = len(tokenizer.encode(context))
    return TokenPair(tuple(whole[:n_ctx]), tuple(whole[n_ctx:]))


def _common_prefix(rows: Sequence[tuple[int, ...]]) -> int:
    first = rows[0]
    n = min(len(r) for r in rows)
    for i in range(n):
        if any(r[i] != first[i] for r in rows):
            return i
    return n


def collate(pairs: Sequence[TokenPair], pad_id: int) -> SharedPrefixBatch:
    """Split ``pairs`` into the longest common context prefix and left-padded per-row suffixes.

    The prefix stops at least one token before the shortest context, so every row keeps the context
    token whose logit predicts its first answer token.
    """
    if not pairs:
        raise ValueError("collate: no pairs")
    if any(not p.context or not p.continuation for p in pairs):
        raise ValueError("collate: every pair needs a non-empty context and continuation")
    p_len = min(_common_prefix([p.context for p in pairs]), min(len(p.context) for p in pairs) - 1)
    suffixes = [p.context[p_len:] + p.continuation for p in pairs]
    width = max(len(s) for s in suffixes)
    k = max(len(p.continuation) for p in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), p_len + width), dtype=torch.long)
    mask[:, :p_len] = 1
    pos = torch.zeros((len(pairs), width), dtype=torch.long)
    labels = torch.full((len(pairs), k), IGNORE, dtype=torch.long)
    for i, (p, s) in enumerate(zip(pairs, suffixes)):
        start = width - len(s)
        ids[i, start:] = torch.tensor(s)
        mask[i, p_len + start:] = 1
        pos[i, start:] = torch.arange(p_len, p_len + len(s))
        labels[i, k - len(p.continuation):] = torch.tensor(p.continuation)
    prefix = torch.tensor([pairs[0].context[:p_len]], dtype=torch.long)
    return SharedPrefixBatch(prefix, ids, mask, pos, labels)
