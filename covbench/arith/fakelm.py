"""An lm-eval LM whose probabilities are chosen in advance, so Cov_N and Pass@N have closed forms.

``KnownLM`` answers a loglikelihood request for the gold continuation with a log-probability chosen
by ``logp_of(gold)``, and the j-th of the n repeated generate requests for a prompt with
``sample_of(gold, j)``. Tests compare what the tasks report with the closed forms
(``mean 1[p ≤ 1/N]``, ``mean 1 − (1 − p)^N``, ``mean 1 − C(n−c, N)/C(n, N)``).

It finds the gold of a prompt by looking up the prompt's *last* question (the text after the last
``question_marker``, up to the line end) in a table, and refuses any continuation that is not
``continuation_of(gold)``: a wrong y* fails loudly instead of scoring something else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from lm_eval.api.model import LM


class KnownLM(LM):
    """Fake LM: known log π̂(y*|x) and scripted samples; optional ChatML-like chat template."""

    def __init__(self, gold_by_question: Mapping[str, Any], logp_of: Callable[[Any], float],
                 sample_of: Callable[[Any, int], str], continuation_of: Callable[[Any], str],
                 question_marker: str = "Q: ") -> None:
        super().__init__()
        self.gold_by_question = dict(gold_by_question)
        self.logp_of, self.sample_of, self.continuation_of = logp_of, sample_of, continuation_of
        self.marker = question_marker
        self.contexts: list[str] = []  # every context seen, for format tests

    def _gold(self, context: str) -> Any:
        self.contexts.append(context)
        question = context.rsplit(self.marker, 1)[-1].split("\n", 1)[0].split("<|im_end|>", 1)[0]
        if question not in self.gold_by_question:
            raise KeyError(f"KnownLM: no gold for question {question!r}")
        return self.gold_by_question[question]

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        out = []
        for req in requests:
            context, continuation = req.args
            gold = self._gold(context)
            if continuation != self.continuation_of(gold):
                raise AssertionError(f"KnownLM: scored {continuation!r}, expected {self.continuation_of(gold)!r}")
            out.append((float(self.logp_of(gold)), False))
        return out

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        seen: Counter[str] = Counter()
        out = []
        for req in requests:
            context = req.args[0]
            out.append(self.sample_of(self._gold(context), seen[context]))
            seen[context] += 1
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("KnownLM scores continuations only")

    # A ChatML-like template, so the chat prompt format can be checked without a tokenizer.
    @property
    def tokenizer_name(self) -> str:
        return "known-lm"

    def chat_template(self, chat_template: bool | str = False) -> str:
        return "chatml-like"

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        turns = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in chat_history]
        if not add_generation_prompt:  # continue the final (assistant) message: no end tag
            turns[-1] = turns[-1].removesuffix("<|im_end|>\n")
        return "".join(turns) + ("<|im_start|>assistant\n" if add_generation_prompt else "")
