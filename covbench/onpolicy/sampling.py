"""Draw on-policy samples from a model and score any model's log-probability of them (torch, no lm-eval loop).

The offset tournament (docs/selection.md#offset) compares candidates on samples that each candidate draws
itself. A sample here is a **token sequence of fixed length H_x**, the token length of the prompt's
reference response (6 node ids on Fig. 1): y = (y_1, …, y_H) ∼ π(·|x), drawn token by token from the
policy's next-token distribution with no stop string and no end-of-sequence stop. Its law is exactly the
policy's distribution over H-token continuations, and its log-probability under a policy π_j is the
teacher-forced sum

    log π_j(y|x) = Σ_{t=1..H} log π_j(y_t | x, y_<t),

the same sum (and the same policy transform, :func:`covbench.backends.policy.policy_logprobs`) that scores
the reference responses. Working on token ids, never on decoded text, keeps the sample and its score
the same object (no re-tokenisation). Every candidate of a family must therefore share one tokenizer.

Both loops prefill each prompt once and reuse its key/value cache for every sample
(:func:`covbench.backends.fast_hf.sample_continuations` for drawing; :func:`score` below for scoring,
which feeds all H − 1 teacher-forced tokens in one cached forward pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from covbench.backends.fast_hf import (
    SamplingPlan,
    _expand_cache,
    _forward,
    _position_ids,
    sample_continuations,
)
from covbench.backends.policy import IDENTITY, Policy, policy_logprobs

#: rows (prompts × samples) per forward pass: bounds the expanded key/value cache's memory
ROWS_PER_PASS = 2048


@dataclass(frozen=True, eq=False)
class Prompts:
    """The prompts of a task as token ids: ``context[i]`` (already left-truncated to fit ``length[i]`` more
    tokens) and ``length[i]`` = H, the response length in tokens, per prompt ``doc_id[i]``."""

    doc_id: np.ndarray
    context: tuple[tuple[int, ...], ...]
    length: np.ndarray

    def __post_init__(self) -> None:
        if not (len(self.doc_id) == len(self.context) == len(self.length)):
            raise ValueError("Prompts: doc_id, context and length differ in size")
        if len(self.length) and int(np.min(self.length)) < 1:
            raise ValueError("Prompts: every response length must be >= 1 token")
        if any(len(c) == 0 for c in self.context):
            raise ValueError("Prompts: an empty context")

    def __len__(self) -> int:
        return int(self.doc_id.size)


def policy_of_lm(lm: Any) -> Policy:
    """The policy an LM scores: ``hf-fast``'s own, stock ``hf``'s the identity (temperature 1)."""
    return getattr(lm, "policy", IDENTITY)


def _left_pad(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids, mask


def _chunks(prompts: Prompts, rows_per_prompt: int, batch: int) -> list[np.ndarray]:
    """Positions of prompts with equal H, at most ``batch`` prompts and ``ROWS_PER_PASS`` rows a chunk."""
    per = max(1, min(batch, ROWS_PER_PASS // max(rows_per_prompt, 1)))
    out = []
    for h in np.unique(prompts.length):
        at = np.flatnonzero(prompts.length == h)
        out += [at[s:s + per] for s in range(0, at.size, per)]
    return out


def _pad_id(lm: Any) -> int:
    pad = getattr(lm.tokenizer, "pad_token_id", None)
    return int(pad if pad is not None else lm.eot_token_id)


def _batch(lm: Any) -> int:
    size = lm.batch_size
    return int(lm.max_batch_size if size == "auto" else size) or 1


def draw(lm: Any, prompts: Prompts, m: int, seed: int) -> np.ndarray:
    """``[n, m, H]`` token ids: ``m`` samples per prompt from ``lm``'s policy (all prompts must share one
    H). Reproducible for a fixed seed and batch size (torch's global generator is seeded here)."""
    if m < 1:
        raise ValueError(f"draw: m must be >= 1, got {m}")
    hs = np.unique(prompts.length)
    if hs.size != 1:
        raise ValueError(f"draw: prompts have response lengths {hs.tolist()}; draw each length separately")
    h = int(hs[0])
    plan = SamplingPlan(until=(), max_gen_toks=h, warpers=policy_of_lm(lm).warpers(), eos_ids=(), pad_id=_pad_id(lm))
    out = np.zeros((len(prompts), m, h), dtype=np.int64)
    torch.manual_seed(seed)
    with torch.inference_mode():
        for at in _chunks(prompts, m, _batch(lm)):
            ids, mask = _left_pad([prompts.context[i] for i in at], _pad_id(lm))
            got = sample_continuations(lm.model, ids.to(lm.device), mask.to(lm.device), [m] * at.size, plan)
            out[at] = got.tokens.cpu().numpy().reshape(at.size, m, h)
    return out


def score(lm: Any, prompts: Prompts, samples: np.ndarray) -> np.ndarray:
    """``[n, r]`` log π(y|x) under ``lm``'s policy of every sample ``samples[i, s]`` (``[n, r, H]`` token ids),
    teacher-forced: one prefill per prompt, then one cached pass over the first H − 1 tokens of the
    prompt's *distinct* samples (a trained model repeats itself: on Fig. 1, 52 samples of a prompt hold a
    handful of distinct paths), each distinct sample scored once."""
    n, r, h = samples.shape
    if n != len(prompts) or (prompts.length != h).any():
        raise ValueError(f"score: samples are [{n}, {r}, {h}] but the prompts have {len(prompts)} entries "
                         f"of lengths {np.unique(prompts.length).tolist()}")
    distinct, inverse = zip(*(np.unique(samples[i], axis=0, return_inverse=True) for i in range(n)))
    counts = np.array([d.shape[0] for d in distinct])
    policy = policy_of_lm(lm)
    dtype = getattr(lm, "softmax_dtype", None)
    out = np.zeros((n, r), dtype=np.float64)
    with torch.inference_mode():
        for at in _chunks(prompts, int(counts.max()), _batch(lm)):
            ids, mask = _left_pad([prompts.context[i] for i in at], _pad_id(lm))
            ids, mask = ids.to(lm.device), mask.to(lm.device)
            first, cache = _forward(lm.model, ids, mask, _position_ids(mask), None)  # [P, V]: predicts y_1
            rows_of = torch.repeat_interleave(torch.arange(at.size, device=ids.device),
                                              torch.as_tensor(counts[at], device=ids.device))
            ys = torch.as_tensor(np.concatenate([distinct[i] for i in at]), device=ids.device)  # [R, H]
            logits = first[rows_of][:, None]
            if h > 1:
                _expand_cache(cache, rows_of, extra=h - 1)
                past = mask[rows_of]
                position = past.sum(-1, keepdim=True) + torch.arange(h - 1, device=ids.device)[None]
                step = lm.model(input_ids=ys[:, :-1], attention_mask=torch.cat([past, past.new_ones(len(ys), h - 1)], 1),
                                position_ids=position, cache=cache, use_cache=True)
                logits = torch.cat([logits, step.logits.to(torch.float32)], dim=1)  # [R, H, V]: predicts y_1..y_H
            logp = policy_logprobs(logits, policy, dtype=dtype).gather(-1, ys[..., None]).squeeze(-1)
            per_row = logp.to(torch.float64).sum(-1).cpu().numpy()
            starts = np.concatenate([[0], np.cumsum(counts[at])])
            for k, i in enumerate(at):
                out[i] = per_row[starts[k]:starts[k + 1]][np.asarray(inverse[i]).reshape(-1)]
    return out
