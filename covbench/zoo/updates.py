"""Gradient estimators and update rules of the Fig. 2 trainer (docs/zoo.md, "Gradient normalization").

All three rules start from the same estimator: ĝ = the batch mean over K sequences of the *per-sequence
summed* token gradients, ĝ = (1/K) Σ_{(x,y)} Σ_h w_h ∇ log π_θ(y_h | x, y_{<h}) (paper Eq. 17, a sum over
tokens, not a mean, so its scale grows with the sequence length H). They differ in the weights w_h and
in the step:

- ``plain``       (paper Eq. 14, minibatched): w_h = 1,   θ ← θ + η ĝ;
- ``normalized``  (Eq. 17/18):                  w_h = 1,   θ ← θ + η ĝ / (λ + ‖ĝ‖), ‖·‖ the global L2 norm
                                                             over every parameter;
- ``truncated``   (distillation, Eq. 24–26):    w_h = α_h, θ ← θ + η ĝ, with α_h from
                                                             :func:`truncation_weights` (constants: no
                                                             gradient flows through them).

The trainer minimises the negative log-likelihood, so its ``grad`` is −ĝ and every step is a descent
step θ ← θ − η·(…); the formulas are the paper's with the sign folded in. An optional heavy-ball momentum
(``torch.optim.SGD``) acts on the rescaled gradient the same way for all three rules; the paper's rules
have none (momentum 0, the default).

>>> a = torch.tensor([[1.0, 2.0, 3.0]]); truncation_weights(a, A=2.5).tolist()
[[1.0, 0.75, 0.0]]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

GradRule = Literal["plain", "normalized", "truncated"]


def truncation_weights(a: torch.Tensor, A: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Weights α_h of paper Eq. 24–26 for per-token teacher–student KLs ``a[..., h] ≥ 0`` and cap A = log N.

    With C_h = Σ_{j≤h} a_j:  α_h = 1 if C_h ≤ A;  α_h = 0 if C_{h−1} > A;  α_h = (A − C_{h−1}) / a_h otherwise
    (the token whose KL crosses the cap gets the partial weight). So α_h ∈ [0, 1] and
    Σ_h α_h a_h = min(A, Σ_h a_h): the gradient sees the cumulative per-token KL stopped at log N, the
    stopped KL of the paper's Prop. D.10 (docs/zoo.md). ``mask`` (same shape, bool) marks real tokens; α is 0
    elsewhere and masked tokens add nothing to C. The result carries no gradient.

    >>> a = torch.tensor([[0.5, 0.0, 1.0, 2.0, 0.25]])
    >>> alpha = truncation_weights(a, A=math.log(4))
    >>> [round(x, 4) for x in alpha[0].tolist()], round(float((alpha * a).sum()), 4) == round(math.log(4), 4)
    ([1.0, 1.0, 0.8863, 0.0, 0.0], True)
    """
    if not A >= 0:
        raise ValueError(f"truncation cap A = log N must be >= 0, got {A}")
    a = a.detach()
    if mask is not None:
        a = torch.where(mask, a, torch.zeros_like(a))
    if bool((a < 0).any()):
        raise ValueError("per-token KLs must be >= 0")
    cum = a.cumsum(-1)
    prev = cum - a
    partial = (A - prev) / a.clamp(min=torch.finfo(a.dtype).tiny)
    alpha = torch.where(cum <= A, torch.ones_like(a), torch.where(prev > A, torch.zeros_like(a), partial))
    alpha = alpha.clamp(0.0, 1.0)
    return alpha if mask is None else torch.where(mask, alpha, torch.zeros_like(alpha))


def global_grad_norm(params: Iterable[torch.nn.Parameter]) -> float:
    """‖g‖ = sqrt(Σ over every parameter tensor of Σ g²) (the global L2 norm of paper Eq. 18)."""
    total = 0.0
    for p in params:
        if p.grad is not None:
            total += float(p.grad.detach().double().pow(2).sum())
    return math.sqrt(total)


@dataclass(frozen=True)
class StepInfo:
    """What one update did: the gradient's global norm and the multiplier applied to it before the step."""

    grad_norm: float
    scale: float  # 1 (plain, truncated) or 1 / (λ + ‖g‖) (normalized)


def rescale_gradient(params: Sequence[torch.nn.Parameter], rule: GradRule, damping: float) -> StepInfo:
    """Rescale the accumulated gradients in place for ``rule``: g ← g / (λ + ‖g‖) when normalized.

    Called after backward and before the optimizer step, so ``torch.optim.SGD(lr=η)`` then takes exactly
    θ ← θ − η g / (λ + ‖g‖) (Eq. 18 with the descent sign).
    """
    norm = global_grad_norm(params)
    if rule != "normalized":
        return StepInfo(norm, 1.0)
    if not damping > 0:
        raise ValueError(f"normalized SGD needs a damping λ > 0, got {damping}")
    scale = 1.0 / (damping + norm)
    for p in params:
        if p.grad is not None:
            p.grad.mul_(scale)
    return StepInfo(norm, scale)
