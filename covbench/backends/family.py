"""A policy family: registry entries on one model that differ only in their sampling policy.

The members' LMs share one model object, so their logits for a request are the same and only the
policy transform differs. The family keeps one answer table: when a member is asked to score requests
that some member's policy has not seen, :func:`covbench.backends.scoring.score_policies` scores *every*
member's policy on them in one forward pass and the table keeps the answers; the other members then
read theirs from the table (docs/policies.md "One pass, K policies").

>>> from covbench.backends.policy import Policy
>>> family = PolicyFamily()
>>> family.add(Policy()); family.add(Policy(temperature=0.7)); family.add(Policy())
>>> [p.label for p in family.policies]
['T=1', 'T=0.7']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from covbench.backends.policy import Policy

if TYPE_CHECKING:
    from lm_eval.models.huggingface import HFLM

    from covbench.backends.scoring import Answer, TokenRequest

__all__ = ["PolicyFamily"]

_Key = tuple[tuple[int, ...], tuple[int, ...]]


class PolicyFamily:
    """The distinct policies of a family's members and the answers scored so far."""

    def __init__(self) -> None:
        self.policies: list[Policy] = []
        self._answers: dict[_Key, dict[Policy, Answer]] = {}
        self.passes = 0   # forward passes over a request list (for tests and benchmarks)

    def add(self, policy: Policy) -> None:
        """Make ``policy`` a member's policy (once; the order of first addition is kept)."""
        if policy not in self.policies:
            self.policies.append(policy)

    def answers(self, lm: HFLM, requests: Sequence[TokenRequest], policy: Policy) -> list[Answer]:
        """``policy``'s answers to ``requests``, scoring every member's policy on the missing ones at once."""
        from covbench.backends.scoring import score_policies

        self.add(policy)
        keys = [(tuple(ctx), tuple(cont)) for _, ctx, cont in requests]
        missing = [i for i, k in enumerate(keys) if len(self._answers.get(k, ())) < len(self.policies)]
        if missing:
            scored = score_policies(lm, [requests[i] for i in missing], self.policies)
            self.passes += 1
            for i, per_policy in zip(missing, scored, strict=True):
                self._answers[keys[i]] = dict(zip(self.policies, per_policy, strict=True))
        return [self._answers[k][policy] for k in keys]

    def clear(self) -> None:
        """Forget the scored answers (the policies stay)."""
        self._answers.clear()
