"""A scripted lm-eval LM for task tests: log-likelihoods and samples are functions the test chooses.

``logp_of(context, continuation)`` answers each loglikelihood request; ``sample_of(context, j)`` the j-th
repeat of a generate request for that context. Every request is recorded, so a test can check exactly
what lm-eval asked (the prompt, the scored continuation, the generation settings).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from lm_eval.api.model import LM


class ScriptLM(LM):
    def __init__(self, logp_of: Callable[[str, str], float] | None = None,
                 sample_of: Callable[[str, int], str] | None = None) -> None:
        super().__init__()
        self.logp_of = logp_of or (lambda ctx, cont: -1.0)
        self.sample_of = sample_of or (lambda ctx, j: "")
        self.scored: list[tuple[str, str]] = []
        self.generated: list[tuple[str, dict]] = []

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        out = []
        for req in requests:
            context, continuation = req.args[:2]
            self.scored.append((context, continuation))
            out.append((float(self.logp_of(context, continuation)), False))
        return out

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        seen: Counter[str] = Counter()
        out = []
        for req in requests:
            context, kwargs = req.args[:2]
            self.generated.append((context, dict(kwargs)))
            out.append(self.sample_of(context, seen[context]))
            seen[context] += 1
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("ScriptLM scores continuations only")
