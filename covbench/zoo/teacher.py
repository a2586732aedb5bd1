"""The teacher π_D's next-token distributions along a response, from a doc's enumerated support S_x.

The graph tasks know π_D exactly: every doc lists the responses it gives mass to (``GraphDoc.support``)
with their log-probabilities. The next-token distribution after a prefix y_{<h} of a response is the
conditional of that sequence-level distribution (docs/zoo.md, "Truncated per-token normalization"):

    π_D(v | x, y_{<h}) = P(y_{<h}, v) / P(y_{<h}),   P(z) = Σ_{y' ∈ S_x starting with z} π_D(y'|x)

For the deterministic classes (Fig. 2 G1 and G2, Fig. 1 G1 and G2) this is a point mass on the next
token of the target; for Fig. 2 G3 (uniform over 16 valid paths) it is 1/2 on each passable node of a
branching layer. The per-token teacher–student KL of the distillation variant (paper Eq. 24–26) is
``KL(π_D(·|x, y_{<h}) ‖ π_θ(·|x, y_{<h}))``, computed by :func:`token_kl` from the model's log-softmax.

>>> dists = next_token_distributions([(5, 1, 9), (5, 2, 9)], [math.log(0.5)] * 2, (5, 2, 9))
>>> [sorted(d.items()) for d in dists]
[[(5, 1.0)], [(1, 0.5), (2, 0.5)], [(9, 1.0)]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def next_token_distributions(support: Sequence[Sequence[int]], support_logp: Sequence[float],
                             response: Sequence[int]) -> list[dict[int, float]]:
    """π_D(·|x, y_{<h}) for h = 1..len(response), as ``{token id: probability}`` (support entries only).

    ``response`` must lie in the support (it is a sample of π_D); otherwise the prefix has no mass and
    the conditional is undefined, which raises ``ValueError``.
    """
    probs = [math.exp(lp) for lp in support_logp]
    if len(probs) != len(support):
        raise ValueError(f"support has {len(support)} responses but {len(probs)} log-probs")
    live = [i for i, y in enumerate(support) if probs[i] > 0 and len(y) == len(response)]
    out: list[dict[int, float]] = []
    for h in range(len(response)):
        dist: dict[int, float] = {}
        for i in live:
            dist[support[i][h]] = dist.get(support[i][h], 0.0) + probs[i]
        total = sum(dist.values())
        if not total > 0 or response[h] not in dist:
            raise ValueError(f"response {tuple(response)} is not in the support (no mass at token {h + 1})")
        out.append({v: p / total for v, p in dist.items()})
        live = [i for i in live if support[i][h] == response[h]]
    return out


def teacher_tensor(dists: Sequence[Sequence[dict[int, float]]], vocab_size: int, width: int) -> torch.Tensor:
    """Dense ``[B, width, V]`` teacher probabilities; rows past a response's length are all zero."""
    out = torch.zeros(len(dists), width, vocab_size)
    for b, per_token in enumerate(dists):
        for h, dist in enumerate(per_token):
            for v, p in dist.items():
                out[b, h, v] = p
    return out


def token_kl(teacher: torch.Tensor, logp_model: torch.Tensor) -> torch.Tensor:
    """``a[b, h] = Σ_v p(v) (log p(v) − log π_θ(v))`` with ``p = teacher[b, h]``; 0 where p is all zero.

    >>> p = torch.tensor([[[0.5, 0.5, 0.0]]]); q = torch.log(torch.tensor([[[0.25, 0.25, 0.5]]]))
    >>> round(float(token_kl(p, q)[0, 0]), 6) == round(math.log(2), 6)
    True
    """
    plogp = torch.where(teacher > 0, teacher * torch.log(teacher.clamp(min=1e-30)), torch.zeros_like(teacher))
    cross = torch.where(teacher > 0, teacher * logp_model, torch.zeros_like(teacher))
    return (plogp - cross).sum(-1)
