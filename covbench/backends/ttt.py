"""Test-time-training decoding (paper Eq. 22–23) as an lm-eval LM: ``TTTLM`` (docs/ttt.md).

Given weights θ and a prompt x, decoding keeps a per-sequence copy ϑ of the weights, ϑ_0 = θ, and for
h = 1, 2, ...

1. draws (or, when scoring, reads) the token y_h from π_{ϑ_{h−1}}(· | x, y_{<h});
2. takes one gradient step that raises its log-probability,
   ϑ_h = Proj(ϑ_{h−1} + η ∇_ϑ log π_{ϑ_{h−1}}(y_h | x, y_{<h})),
   where Proj is the identity (``project: null``) or the projection onto the ball ‖ϑ − θ‖₂ ≤ r
   (``project: r``, global L2 norm over every parameter);

and after the sequence it resets to θ (``reset: per_sequence``). This defines the improper model
π^TTT(y|x) = Π_h π_{ϑ_{h−1}(x, y_{<h})}(y_h | x, y_{<h}): the weights used for token h depend on the
prefix y_{<h} itself. Scoring a given response is therefore teacher-forced *with* the same updates
along that response (:meth:`TTTDecoder.score`), and every response gets its own update path. That is
what makes CE, Cov_N and exact Pass@N of the TTT policy measured rather than guessed: π^TTT sums to one
over all responses, and the sampler draws from exactly it (tests/test_ttt.py enumerates both).

Responses that share a prefix share its updates, so :meth:`TTTDecoder.score_many` walks the prefix
tree of all continuations of one context (depth first, one forward per tree node, one gradient per
edge) instead of replaying each response: the numbers are the same, the work is the tree's size.

``TTTLM`` subclasses lm-eval's ``HFLM``: loading, tokenisation, request handling and post-processing are
stock; ``_loglikelihood_tokens`` (scoring), ``generate_until`` (sampling) and ``loglikelihood_rolling``
(scoring a whole text) run the loop above, one sequence at a time on the CPU. Sampling supports
temperature 1 without top-k/top-p (the policy whose log-probs scoring reports) and greedy decoding;
anything else is a one-line error. Randomness: ``torch.multinomial`` on torch's global RNG, which
lm-eval seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.api.registry import model_registry, register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from tqdm import tqdm

__all__ = ["REGISTRY_NAME", "TTTLM", "Rollout", "TTTDecoder", "TTTSettings"]

REGISTRY_NAME = "hf-ttt"


@dataclass(frozen=True)
class TTTSettings:
    """η (``lr``), the projection radius r (None: no projection) and the reset rule."""

    lr: float
    project: float | None = None
    reset: str = "per_sequence"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr >= 0):
            raise ValueError(f"ttt: field 'lr': must be a finite number >= 0, got {self.lr}")
        if self.project is not None and not (math.isfinite(self.project) and self.project > 0):
            raise ValueError(f"ttt: field 'project': must be null or a radius > 0, got {self.project}")
        if self.reset != "per_sequence":
            raise ValueError(f"ttt: field 'reset': only 'per_sequence' is supported, got {self.reset!r}")


@dataclass(frozen=True)
class Rollout:
    """One response under π^TTT: its tokens, log π_{ϑ_{h−1}}(y_h | x, y_{<h}) per token, greedy flags."""

    tokens: tuple[int, ...]
    logprobs: tuple[float, ...]
    greedy: tuple[bool, ...]

    @property
    def logprob(self) -> float:
        """log π^TTT(y|x) = Σ_h log π_{ϑ_{h−1}}(y_h | x, y_{<h})."""
        return math.fsum(self.logprobs)


class TTTDecoder:
    """The TTT loop on one causal LM: scoring (teacher-forced, with updates) and sampling.

    The model's parameters are updated in place during a sequence and restored to θ after it, also
    when an error interrupts the sequence.
    """

    def __init__(self, model: torch.nn.Module, settings: TTTSettings) -> None:
        self.model = model
        self.settings = settings
        self.params = [p for p in model.parameters()]

    # -- the two public operations ---------------------------------------------------------------------

    def score(self, context: Sequence[int], continuation: Sequence[int]) -> Rollout:
        """Teacher-force ``continuation`` after ``context`` with one update per token."""
        return self.score_many(context, [continuation])[0]

    def score_many(self, context: Sequence[int], continuations: Sequence[Sequence[int]]) -> list[Rollout]:
        """Score several continuations of one context; shared prefixes share their updates."""
        if not context:
            raise ValueError("ttt: the context must hold at least one token")
        if any(len(c) == 0 for c in continuations):
            raise ValueError("ttt: a continuation to score must hold at least one token")
        trie = _Trie.build(continuations)
        found: dict[tuple[int, ...], tuple[float, bool]] = {}
        with self._sequence():
            self._walk(list(context), (), trie, found)
        out = []
        for cont in continuations:
            steps = [found[tuple(cont[: h + 1])] for h in range(len(cont))]
            out.append(Rollout(tuple(cont), tuple(s[0] for s in steps), tuple(s[1] for s in steps)))
        return out

    def sample(self, context: Sequence[int], max_new_tokens: int, *, greedy: bool = False,
               stop: Callable[[list[int]], bool] | None = None,
               generator: torch.Generator | None = None) -> Rollout:
        """Draw y_1, y_2, ... from π^TTT (or take the argmax), updating after each token.

        Stops after ``max_new_tokens`` or as soon as ``stop(tokens so far)`` is true. The update after
        the last token is skipped: the weights reset before anything could use it.
        """
        if not context:
            raise ValueError("ttt: the context must hold at least one token")
        tokens: list[int] = []
        logps: list[float] = []
        flags: list[bool] = []
        with self._sequence():
            ids = list(context)
            for h in range(max_new_tokens):
                logp = self._next_logp(ids)
                probs = logp.detach().exp()
                tok = int(probs.argmax()) if greedy else int(torch.multinomial(probs, 1, generator=generator))
                tokens.append(tok)
                logps.append(float(logp[tok].detach()))
                flags.append(tok == int(probs.argmax()))
                ids.append(tok)
                if h == max_new_tokens - 1 or (stop is not None and stop(tokens)):
                    break
                grads = torch.autograd.grad(logp[tok], self.params)
                self._step(grads)
        return Rollout(tuple(tokens), tuple(logps), tuple(flags))

    # -- internals ---------------------------------------------------------------------------------------

    def _next_logp(self, ids: list[int]) -> torch.Tensor:
        """log π_ϑ(· | ids) at the current weights ϑ, float32 [V], differentiable in ϑ."""
        out = self.model(input_ids=torch.tensor([ids], dtype=torch.long), logits_to_keep=1)
        return torch.log_softmax(out.logits[0, -1].float(), dim=-1)

    def _walk(self, ids: list[int], prefix: tuple[int, ...], node: _Trie,
              found: dict[tuple[int, ...], tuple[float, bool]]) -> None:
        """Depth-first over the prefix tree: one forward at ``prefix``, one gradient per child token."""
        logp = self._next_logp(ids)
        best = int(logp.detach().argmax())
        children = sorted(node.children.items())
        grads = {}
        for tok, child in children:
            found[(*prefix, tok)] = (float(logp[tok].detach()), tok == best)
            if child.children:  # the update only matters to tokens that follow
                grads[tok] = torch.autograd.grad(logp[tok], self.params, retain_graph=True)
        del logp
        if not grads:
            return
        here = [p.detach().clone() for p in self.params]
        for tok, child in children:
            if tok not in grads:
                continue
            self._step(grads[tok])
            self._walk([*ids, tok], (*prefix, tok), child, found)
            _assign(self.params, here)

    @torch.no_grad()
    def _step(self, grads: Sequence[torch.Tensor]) -> None:
        """ϑ ← Proj(ϑ + η g) in place; Proj onto ‖ϑ − θ‖₂ ≤ r when ``project`` is set."""
        for p, g in zip(self.params, grads):
            p.add_(g, alpha=self.settings.lr)
        r = self.settings.project
        if r is None:
            return
        dist = math.sqrt(sum(float((p - t).double().pow(2).sum()) for p, t in zip(self.params, self._theta)))
        if dist > r:
            shrink = r / dist
            for p, t in zip(self.params, self._theta):
                p.copy_(t + (p - t) * shrink)

    def _sequence(self) -> _SequenceScope:
        return _SequenceScope(self)


class _SequenceScope:
    """Snapshot θ on entry and restore it on exit (``reset: per_sequence``), with gradients enabled."""

    def __init__(self, decoder: TTTDecoder) -> None:
        self.decoder = decoder

    def __enter__(self) -> None:
        self._grad = torch.enable_grad()
        self._inference = torch.inference_mode(False)
        self._inference.__enter__()
        self._grad.__enter__()
        self.decoder._theta = [p.detach().clone() for p in self.decoder.params]

    def __exit__(self, *exc: object) -> None:
        _assign(self.decoder.params, self.decoder._theta)
        self.decoder.model.zero_grad(set_to_none=True)
        self._grad.__exit__(*exc)
        self._inference.__exit__(*exc)


@torch.no_grad()
def _assign(params: Sequence[torch.nn.Parameter], values: Sequence[torch.Tensor]) -> None:
    for p, v in zip(params, values):
        p.copy_(v)


@dataclass
class _Trie:
    children: dict[int, _Trie]

    @classmethod
    def build(cls, sequences: Sequence[Sequence[int]]) -> _Trie:
        root = cls({})
        for seq in sequences:
            node = root
            for tok in seq:
                node = node.children.setdefault(int(tok), cls({}))
        return root


class TTTLM(HFLM):
    """lm-eval's HF backend with test-time-training decoding (``ttt_lr``, ``ttt_project``, ``ttt_reset``).

    Built by :func:`covbench.backends.factory.make_lm` for a registry entry with a ``ttt`` block. Importing
    this module registers it with lm-eval as ``hf-ttt`` (``simple_evaluate(model="hf-ttt",
    model_args="pretrained=DIR,ttt_lr=0.001")``).
    """

    def __init__(self, ttt_lr: float = 0.0, ttt_project: float | None = None, ttt_reset: str = "per_sequence",
                 **kwargs: Any) -> None:
        no_projection = ttt_project is None or str(ttt_project).strip().lower() in ("", "null", "none")
        settings = TTTSettings(lr=float(ttt_lr), project=None if no_projection else float(ttt_project),
                               reset=str(ttt_reset))
        super().__init__(**kwargs)
        if self.backend != "causal":
            raise ValueError("ttt: test-time training decoding needs a causal (decoder-only) model")
        self.model.eval()
        self.decoder = TTTDecoder(self.model, settings)

    @property
    def ttt(self) -> TTTSettings:
        return self.decoder.settings

    # -- scoring ---------------------------------------------------------------------------------------

    def _loglikelihood_tokens(self, requests: list[tuple[tuple[str, str], list[int], list[int]]],
                              disable_tqdm: bool = False, override_bs: int | None = None,
                              ) -> list[tuple[float, bool]]:
        """Each continuation teacher-forced with its own update path; one prefix tree per context."""
        by_context: dict[tuple[int, ...], list[int]] = {}
        for i, (_, context_enc, continuation_enc) in enumerate(requests):
            by_context.setdefault(tuple(self._fit(context_enc, continuation_enc)), []).append(i)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        pbar = tqdm(total=len(requests), disable=(disable_tqdm or self.rank != 0),
                    desc="Running loglikelihood requests (ttt)")
        for context, indices in by_context.items():
            rollouts = self.decoder.score_many(list(context), [requests[i][2] for i in indices])
            for i, roll in zip(indices, rollouts, strict=True):
                results[i] = (roll.logprob, all(roll.greedy))
                self.cache_hook.add_partial("loglikelihood", requests[i][0], results[i])
            pbar.update(len(indices))
        pbar.close()
        return [r for r in results if r is not None]

    def _fit(self, context_enc: list[int], continuation_enc: list[int]) -> list[int]:
        """The context as the model sees it: left-truncated so context + continuation fit max_length + 1."""
        if not continuation_enc or len(continuation_enc) > self.max_length:
            raise ValueError(f"ttt: continuation of {len(continuation_enc)} tokens does not fit "
                             f"max_length {self.max_length}")
        room = self.max_length + 1 - len(continuation_enc)
        return list(context_enc[-room:]) if room > 0 else list(context_enc[-1:])

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        """log π^TTT of each whole text after the prefix token (texts longer than max_length: error)."""
        out = []
        for req in tqdm(requests, disable=(disable_tqdm or self.rank != 0), desc="ttt rolling"):
            tokens = self.tok_encode(req.args[0], add_special_tokens=False)
            if len(tokens) + 1 > self.max_length:
                raise ValueError(f"ttt: rolling log-likelihood of a {len(tokens)}-token text needs "
                                 f"max_length >= {len(tokens) + 1} (windows would break the update path)")
            value = self.decoder.score([self.prefix_token_id], tokens).logprob if tokens else 0.0
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, value)
            out.append(value)
        return out

    # -- sampling --------------------------------------------------------------------------------------

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        out = []
        for req in tqdm(requests, disable=(disable_tqdm or self.rank != 0), desc="ttt generate_until"):
            context, gen_kwargs = req.args
            kwargs = dict(normalize_gen_kwargs(gen_kwargs, self.max_gen_toks))
            until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
            max_gen_toks = int(kwargs.pop("max_gen_toks"))
            greedy = _check_sampling(kwargs)
            room = self.max_length - max_gen_toks
            if room <= 0:
                raise ValueError(f"ttt: max_gen_toks ({max_gen_toks}) must be less than max_length "
                                 f"({self.max_length})")
            context_enc = self.tok_encode(context)[-room:]
            roll = self.decoder.sample(context_enc, max_gen_toks, greedy=greedy, stop=self._stopper(until))
            text = postprocess_generated_text(self.tok_decode(list(roll.tokens)), stop=until,
                                              think_end_token=None)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
            out.append(text)
        return out

    def _stopper(self, until: list[str]) -> Callable[[list[int]], bool]:
        terms = [t for t in until if t]
        eot = self.eot_token_id

        def stop(tokens: list[int]) -> bool:
            return tokens[-1] == eot or any(t in self.tok_decode(tokens) for t in terms)

        return stop


_SAMPLING_KEYS_OK = {"do_sample", "temperature"}
#: Truncation settings at their "off" values (the full distribution): what covbench's sampling tasks and
#: policies spell out explicitly (``top_k: 0`` switches off transformers' default of 50; docs/policies.md).
_NO_TRUNCATION = {"top_k": (0,), "top_p": (1.0,), "min_p": (0.0,)}


def _check_sampling(kwargs: dict[str, Any]) -> bool:
    """True for greedy decoding; sampling must be plain temperature-1 sampling (one-line error otherwise).

    >>> _check_sampling({"do_sample": True, "temperature": 1.0, "top_k": 0})
    False
    """
    if not kwargs.get("do_sample"):
        return True
    temperature = float(kwargs.get("temperature", 1.0))
    if temperature != 1.0:
        raise ValueError(f"ttt: gen_kwargs field 'temperature': TTT samples at temperature 1 (the policy its "
                         f"scores describe), got {temperature}")
    extra = sorted(k for k, v in kwargs.items()
                   if k not in _SAMPLING_KEYS_OK and v is not None and v not in _NO_TRUNCATION.get(k, ()))
    if extra:
        raise ValueError(f"ttt: gen_kwargs field '{extra[0]}': not supported by test-time-training decoding")
    return False


def _register() -> None:
    """Register ``hf-ttt`` with lm-eval once (re-imports and reloads are fine)."""
    current = model_registry.get(REGISTRY_NAME) if REGISTRY_NAME in model_registry else None
    if current is None:
        register_model(REGISTRY_NAME)(TTTLM)
    elif (getattr(current, "__module__", None), getattr(current, "__qualname__", None)) != \
            (TTTLM.__module__, TTTLM.__qualname__):
        raise ValueError(f"lm-eval model name '{REGISTRY_NAME}' is already taken by {current!r}")


_register()
