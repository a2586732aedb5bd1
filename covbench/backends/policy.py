"""The sampling policy of a registry entry, and the one transform that scores it (docs/policies.md).

A registry entry is a *policy*: weights plus the decoding settings it is sampled with. Per step, the
policy's next-token distribution is built from the model's logits z ∈ R^V by transformers' own
warper chain, in the order ``GenerationMixin._get_logits_processor`` builds it for sampling:

1. temperature T:  z ← z / T
2. top-k:          drop every token whose logit is below the k-th largest (ties with it are kept)
3. top-p:          sort ascending, take the cumulative softmax c; drop tokens with c ≤ 1 − p
                   (the most probable token is always kept)
4. min-p:          drop tokens whose probability is below m · (the largest probability)
5. renormalise:    log π(v) = log_softmax(z)_v over the kept set; a dropped token gets −inf

so log π(y|x) = Σ_t log π(y_t | x, y_<t) over the response tokens, and a response with a dropped
token has log π = −inf: X = log π_ref − log π = +inf, uncovered at every N, and it adds nothing to
π(S_x|x) in exact Pass@N. :func:`policy_logprobs` is that transform, applied to a logits tensor; the
scorer (:mod:`covbench.backends.scoring`) and the sampler (``hf-fast``'s loop, which gets the very
same warper classes from ``model._get_logits_processor``) agree by construction, and
``tests/test_policy.py`` checks both against a numpy brute force.

>>> Policy(temperature=0.7, top_p=0.9).label
'T=0.7,top_p=0.9'
>>> Policy(top_k=0, top_p=1.0, min_p=0.0).is_identity      # the "off" values normalise to None
True
>>> import torch
>>> logp = policy_logprobs(torch.tensor([[2.0, 1.0, 0.0, -1.0]]), Policy(top_k=2))
>>> [round(float(v), 4) for v in logp[0]]
[-0.3133, -1.3133, -inf, -inf]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch/transformers only where a tensor is transformed
    import torch
    from transformers import LogitsProcessorList

    from covbench.registry import GenerationDefaults, ModelSpec

__all__ = ["IDENTITY", "Policy", "policy_logprobs", "policy_of"]


@dataclass(frozen=True)
class Policy:
    """Temperature and truncation of the next-token distribution; ``None`` means "off".

    The values that transformers treats as "off" (``top_k`` 0, ``top_p`` 1, ``min_p`` 0) normalise to
    None, so two spellings of one policy compare (and hash) equal.
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 0):
            raise ValueError(f"top_k must be an integer >= 0 (0 = off), got {self.top_k!r}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.min_p is not None and not 0 <= self.min_p <= 1:
            raise ValueError(f"min_p must be in [0, 1], got {self.min_p!r}")
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "top_k", self.top_k or None)
        object.__setattr__(self, "top_p", None if self.top_p in (None, 1.0) else float(self.top_p))
        object.__setattr__(self, "min_p", None if self.min_p in (None, 0.0) else float(self.min_p))

    @property
    def is_identity(self) -> bool:
        """True when the policy is the model's own distribution (T = 1, nothing truncated)."""
        return self.temperature == 1.0 and self.top_k is None and self.top_p is None and self.min_p is None

    @property
    def label(self) -> str:
        """A short readable name: ``T=1`` for the identity, else the settings that are on."""
        parts = [f"T={self.temperature:g}"]
        parts += [f"{k}={getattr(self, k):g}" for k in ("top_k", "top_p", "min_p") if getattr(self, k) is not None]
        return ",".join(parts)

    def gen_kwargs(self) -> dict[str, Any]:
        """lm-eval gen_kwargs that make the sampler draw from exactly this policy.

        Sampling is explicit (``do_sample``, ``temperature``), and ``top_k: 0`` switches off the
        ``top_k = 50`` that transformers 5 adds by default. ``top_p`` and ``min_p`` appear only when on
        (a ``top_p`` in the model's own ``generation_config.json`` would still apply: ``hf-fast`` warns
        when the sampler's chain is not the scored policy).

        >>> Policy(temperature=0.7).gen_kwargs()
        {'do_sample': True, 'temperature': 0.7, 'top_k': 0}
        """
        kwargs: dict[str, Any] = {"do_sample": True, "temperature": self.temperature, "top_k": self.top_k or 0}
        if self.top_p is not None:
            kwargs["top_p"] = self.top_p
        if self.min_p is not None:
            kwargs["min_p"] = self.min_p
        return kwargs

    def warpers(self) -> LogitsProcessorList:
        """transformers' warpers for this policy, in the order sampling applies them."""
        from transformers import LogitsProcessorList
        from transformers.generation import (
            MinPLogitsWarper,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        chain = LogitsProcessorList()
        if self.temperature != 1.0:
            chain.append(TemperatureLogitsWarper(self.temperature))
        if self.top_k is not None:
            chain.append(TopKLogitsWarper(top_k=self.top_k, min_tokens_to_keep=1))
        if self.top_p is not None:
            chain.append(TopPLogitsWarper(top_p=self.top_p, min_tokens_to_keep=1))
        if self.min_p is not None:
            chain.append(MinPLogitsWarper(min_p=self.min_p, min_tokens_to_keep=1))
        return chain

    @classmethod
    def from_warpers(cls, chain: Sequence[Any], vocab_size: int) -> Policy | None:
        """The policy a sampler's warper chain draws from, or None when the chain is not one.

        A top-k of at least the vocabulary keeps every token and counts as off, so transformers' default
        ``top_k = 50`` on a 38-token model is the identity. Any other warper, a repeated one, an order
        other than :meth:`warpers`', or ``min_tokens_to_keep`` above 1 gives None.

        >>> Policy.from_warpers(Policy(temperature=0.5, top_p=0.9).warpers(), vocab_size=100)
        Policy(temperature=0.5, top_k=None, top_p=0.9, min_p=None)
        """
        order = ("TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper")
        names = [type(w).__name__ for w in chain]
        if any(n not in order for n in names) or names != sorted(set(names), key=order.index):
            return None
        if any(getattr(w, "min_tokens_to_keep", 1) != 1 for w in chain):
            return None
        found = {type(w).__name__: w for w in chain}
        top_k = found["TopKLogitsWarper"].top_k if "TopKLogitsWarper" in found else None
        return cls(temperature=found["TemperatureLogitsWarper"].temperature if "TemperatureLogitsWarper" in found
                   else 1.0,
                   top_k=None if top_k is None or top_k >= vocab_size else top_k,
                   top_p=found["TopPLogitsWarper"].top_p if "TopPLogitsWarper" in found else None,
                   min_p=found["MinPLogitsWarper"].min_p if "MinPLogitsWarper" in found else None)


IDENTITY = Policy()


def policy_logprobs(logits: torch.Tensor, policy: Policy, dtype: torch.dtype | None = None) -> torch.Tensor:
    """log π(v | ·) for every row of ``logits`` ([..., V]): tempered, truncated, renormalised.

    The identity policy is exactly lm-eval's own ``F.log_softmax(logits, dim=-1, dtype=dtype)`` (so
    entries without policy settings score bit-identically). Any other policy is computed in float32,
    the precision the sampler warps in: transformers' warpers (the chain of :meth:`Policy.warpers`)
    set dropped tokens to −inf, and ``log_softmax`` renormalises over the rest.
    """
    import torch
    import torch.nn.functional as F

    if policy.is_identity:
        return F.log_softmax(logits, dim=-1, dtype=dtype)
    flat = logits.reshape(-1, logits.shape[-1]).to(torch.float32)   # the warpers index dim 1
    warped = policy.warpers()(None, flat)  # type: ignore[arg-type]  # these warpers never read input_ids
    return F.log_softmax(warped, dim=-1).reshape(logits.shape)


def policy_of(spec: ModelSpec) -> Policy:
    """The policy a registry entry is scored and sampled with (no ``generation`` block: the identity)."""
    return policy_of_generation(spec.generation)


def policy_of_generation(generation: GenerationDefaults | None) -> Policy:
    if generation is None:
        return IDENTITY
    return Policy(temperature=generation.temperature, top_k=generation.top_k, top_p=generation.top_p,
                  min_p=getattr(generation, "min_p", None))
