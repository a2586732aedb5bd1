"""``hf-fast``: lm-eval's HF backend with one prefill per prompt, shared across the prompt's repeats.

lm-eval asks for N samples of a prompt by passing N identical ``Instance`` objects in one flat list
(docs/lm-eval-notes.md#trap-repeats). Stock ``HFLM.generate_until`` encodes and prefills each copy as its
own row, so the prompt's prefill is computed N times. ``FastHFLM.generate_until`` instead

1. groups identical ``(context, gen_kwargs)`` requests (:func:`group_requests`),
2. prefills each *distinct* prompt once, ``batch_size`` distinct prompts per left-padded forward pass,
3. expands the KV cache to the group's repeat count (``Cache.batch_select_indices`` with a
   repeat-interleaved row index: row r of the expanded batch is a copy of prompt ``rows_of[r]``),
4. runs its own multinomial sampling loop (:func:`sample_continuations`) with transformers' own
   logits warpers (temperature, top-k, top-p, min-p, ...) built from the same merged generation config
   that ``model.generate`` would use, the same end-of-sequence ids and the same padding of finished rows,
5. post-processes each continuation exactly as stock does (decode, cut at the first stop string).

So each returned string has the same distribution as stock's, and every prompt's prefill runs once.
Greedy requests (``do_sample`` false) are deterministic: each distinct one is generated once by stock
code and the string is replicated. Anything the loop does not implement (beam search, repetition
penalty, ``max_length`` in gen_kwargs, seq2seq models, ...) falls back to stock ``generate_until``
on those requests, so results never silently change.

Scoring (``loglikelihood``) is under the entry's own sampling policy (``policy=``: temperature,
top-k, top-p, min-p; docs/policies.md): the identity policy is stock ``HFLM`` code, unchanged; any other
policy goes through :func:`covbench.backends.scoring.score_policies`, the same forward pass with the
policy transform applied to the continuation rows. ``loglikelihood_policies(requests, policies)``
scores several policies with one forward pass, and LMs built with a shared
:class:`~covbench.backends.family.PolicyFamily` do that automatically for all members.

Randomness comes from torch's global RNG (``torch.multinomial``), which lm-eval seeds before an
evaluation: runs are reproducible at a fixed seed and batch size (as with stock, the exact samples
depend on the batching, docs/lm-eval-notes.md#trap-batch-size).

>>> from lm_eval.api.registry import get_model
>>> get_model("hf-fast").__name__
'FastHFLM'
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.api.registry import model_registry, register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from tqdm import tqdm
from transformers import GenerationConfig
from transformers.cache_utils import DynamicLayer
from transformers.generation import (
    EpsilonLogitsWarper,
    EtaLogitsWarper,
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)
from transformers.generation.configuration_utils import GenerationMode

from covbench.backends.family import PolicyFamily
from covbench.backends.policy import IDENTITY, Policy
from covbench.backends.scoring import Answer, TokenRequest, encode_requests, score_policies

__all__ = [
    "REGISTRY_NAME",
    "Continuations",
    "FastHFLM",
    "FastStats",
    "PromptGroup",
    "SamplingPlan",
    "group_requests",
    "sample_continuations",
]

REGISTRY_NAME = "hf-fast"
log = logging.getLogger(__name__)

# Warpers that read only the scores (never input_ids or lengths), so they act on a shared-prefill row
# exactly as on a stock row. Any other processor in the chain sends the request to the stock path.
_SCORE_ONLY_WARPERS = (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper,
                       TypicalLogitsWarper, EpsilonLogitsWarper, EtaLogitsWarper)


@dataclass(frozen=True)
class PromptGroup:
    """One distinct ``(context, gen_kwargs)`` and the positions of its copies in the request list."""

    context: str
    gen_kwargs: dict[str, Any]
    indices: tuple[int, ...]

    @property
    def repeats(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class SamplingPlan:
    """What the sampling loop needs for one gen_kwargs: the stock settings, already normalised."""

    until: tuple[str, ...]          # stop strings, eos string included (handle_stop_sequences)
    max_gen_toks: int               # new tokens per row, at most
    warpers: LogitsProcessorList    # transformers' warper chain for the merged generation config
    eos_ids: tuple[int, ...]        # a row that samples one of these is finished (generation_config)
    pad_id: int                     # what a finished row "samples" from then on (as model.generate)


@dataclass(frozen=True)
class Continuations:
    """Output of :func:`sample_continuations` for an expanded batch of R rows and S steps."""

    tokens: torch.Tensor     # [R, S] long; pad_id after a row finished
    logprobs: torch.Tensor   # [R, S] float32: log-softmax of the raw logits at the sampled token
    finished: torch.Tensor   # [R, S] bool: row was already finished before step s (token is pad)
    rows_of: torch.Tensor    # [R] long: the prompt row (of the prefill batch) each expanded row copies


@dataclass
class FastStats:
    """Counters of the last ``generate_until`` call (for tests and benchmarks to see which path ran)."""

    requests: int = 0
    prefill_rows: int = 0          # distinct prompts prefilled by the shared-prefill path
    sampled_rows: int = 0          # requests answered by the sampling loop
    greedy_deduplicated: int = 0   # requests answered by replicating one greedy generation
    fallback_requests: int = 0     # requests sent to stock HFLM.generate_until unchanged
    fallback_reasons: list[str] = field(default_factory=list)
    sampled_policies: list[Policy | None] = field(default_factory=list)   # per plan; None: not a Policy


def _kwargs_key(gen_kwargs: dict[str, Any]) -> str:
    """A hashable, order-independent key for a gen_kwargs dict (values may be lists)."""
    return json.dumps(gen_kwargs, sort_keys=True, default=repr)


def group_requests(requests: Sequence[Instance]) -> list[PromptGroup]:
    """Group identical ``(context, gen_kwargs)`` requests, in order of first appearance.

    >>> from lm_eval.api.instance import Instance
    >>> mk = lambda c: Instance("generate_until", {}, (c, {"until": ["\\n"]}), 0)
    >>> [(g.context, g.indices) for g in group_requests([mk("a"), mk("b"), mk("a")])]
    [('a', (0, 2)), ('b', (1,))]
    """
    positions: dict[tuple[str, str], list[int]] = {}
    first: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for i, req in enumerate(requests):
        context, gen_kwargs = req.args
        key = (context, _kwargs_key(gen_kwargs))
        positions.setdefault(key, []).append(i)
        first.setdefault(key, (context, gen_kwargs))
    return [PromptGroup(first[k][0], first[k][1], tuple(v)) for k, v in positions.items()]


def _position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as model.generate builds them (pads get 0; they are masked)."""
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 0)


def _forward(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             position_ids: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
    """One cached forward pass; returns the last position's logits in float32 ([B, V]) and the cache."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                cache=cache, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1].to(dtype=torch.float32), out.cache


class _BufferedLayer(DynamicLayer):
    """A DynamicLayer that holds its keys/values in a buffer with room for ``extra`` more positions.

    DynamicLayer.update concatenates the whole cache with each new token (a full copy of
    [rows, heads, ctx, d] per layer per step); with prompts x repeats rows that copy was the loop's main
    cost. Here a decode step writes its one position in place and the layer exposes a view.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, extra: int) -> None:
        super().__init__()
        rows, heads, length, dim = keys.shape
        self._k = keys.new_empty(rows, heads, length + extra, dim)
        self._v = values.new_empty(rows, heads, length + extra, values.shape[-1])
        self._k[:, :, :length] = keys
        self._v[:, :, :length] = values
        self._length = length
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self.keys, self.values = self._k[:, :, :length], self._v[:, :, :length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        end = self._length + key_states.shape[-2]
        if end > self._k.shape[-2]:       # never in the loop below; stay correct if it happens
            return super().update(key_states, value_states, *args, **kwargs)
        self._k[:, :, self._length:end] = key_states
        self._v[:, :, self._length:end] = value_states
        self._length = end
        self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
        return self.keys, self.values


def _expand_cache(cache: Any, rows_of: torch.Tensor, extra: int) -> None:
    """Make row r of every layer a copy of prompt row ``rows_of[r]``, with room for ``extra`` tokens.

    Plain DynamicLayers (GPT-2, Llama, ...) become :class:`_BufferedLayer`s; any other layer type
    (sliding windows, ...) is expanded by its own ``batch_select_indices`` and keeps its own update.
    """
    layers = getattr(cache, "layers", None)
    if layers is None or any(type(layer) is not DynamicLayer for layer in layers):
        cache.batch_select_indices(rows_of)
        return
    for i, layer in enumerate(layers):
        layers[i] = _BufferedLayer(layer.keys[rows_of], layer.values[rows_of], extra)


def sample_continuations(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         repeats: Sequence[int], plan: SamplingPlan,
                         stopped: Callable[[list[list[int]]], list[bool]] | None = None) -> Continuations:
    """Prefill P left-padded prompts once, expand the cache to ``repeats[p]`` rows each, and sample.

    Args:
        model: a causal LM taking ``input_ids, attention_mask, position_ids, cache``.
        input_ids, attention_mask: ``[P, T]``, left-padded (lm-eval's ``tok_batch_encode``).
        repeats: samples wanted per prompt row (each >= 1).
        plan: stop settings and the warper chain.
        stopped: maps each unfinished row's generated tokens to "a stop string has appeared"; such a
            row is finished (later tokens are cut by post-processing anyway, so this only saves work).

    Returns:
        :class:`Continuations` with ``sum(repeats)`` rows, prompt p's copies contiguous.
    """
    device = input_ids.device
    # Step 1: one prefill per distinct prompt ([P, T] -> logits [P, V], cache [P, heads, T, d]).
    logits, cache = _forward(model, input_ids, attention_mask, _position_ids(attention_mask), None)
    # Step 2: expand prompt p to repeats[p] rows: copying the cache rows is exactly the cache each copy
    # would have built itself (the prefill is deterministic), at the cost of a gather instead of a forward.
    rows_of = torch.repeat_interleave(torch.arange(len(repeats), device=device),
                                      torch.tensor(list(repeats), device=device))
    _expand_cache(cache, rows_of, extra=plan.max_gen_toks)
    logits, mask, ids = logits[rows_of], attention_mask[rows_of], input_ids[rows_of]
    n_rows = int(rows_of.numel())
    unfinished = torch.ones(n_rows, dtype=torch.bool, device=device)
    eos = torch.tensor(plan.eos_ids, dtype=torch.long, device=device)
    tokens: list[torch.Tensor] = []
    logps: list[torch.Tensor] = []
    was_finished: list[torch.Tensor] = []
    for step in range(plan.max_gen_toks):
        # Step 3: sample as transformers' _sample does: warp, softmax, multinomial on the global RNG.
        probs = torch.softmax(plan.warpers(ids, logits.clone()), dim=-1)
        sampled = torch.multinomial(probs, num_samples=1).squeeze(1)
        sampled = torch.where(unfinished, sampled, torch.full_like(sampled, plan.pad_id))
        logps.append(torch.log_softmax(logits, dim=-1).gather(1, sampled[:, None]).squeeze(1))
        was_finished.append(~unfinished)
        tokens.append(sampled)
        ids = torch.cat([ids, sampled[:, None]], dim=1)
        unfinished = unfinished & ~torch.isin(sampled, eos)
        unfinished = _apply_stop_strings(unfinished, tokens, stopped)
        if step == plan.max_gen_toks - 1 or not bool(unfinished.any()):
            break
        # Step 4: one cached decode step for every row; the new token's position is the count of real
        # tokens before it (left padding is not counted).
        mask = torch.cat([mask, mask.new_ones(n_rows, 1)], dim=1)
        position = mask.long().sum(-1, keepdim=True) - 1
        logits, cache = _forward(model, sampled[:, None], mask, position, cache)
    return Continuations(tokens=torch.stack(tokens, dim=1), logprobs=torch.stack(logps, dim=1),
                         finished=torch.stack(was_finished, dim=1), rows_of=rows_of)


def _apply_stop_strings(unfinished: torch.Tensor, tokens: list[torch.Tensor],
                        stopped: Callable[[list[list[int]]], list[bool]] | None) -> torch.Tensor:
    """Mark rows whose text so far contains a stop string as finished."""
    if stopped is None or not bool(unfinished.any()):
        return unfinished
    live = torch.nonzero(unfinished).squeeze(1)
    generated = torch.stack(tokens, dim=1)[live].tolist()
    hit = torch.tensor(stopped(generated), dtype=torch.bool, device=unfinished.device)
    out = unfinished.clone()
    out[live] = ~hit
    return out


class FastHFLM(HFLM):
    """HFLM whose ``generate_until`` prefills each distinct prompt once and shares it across repeats,
    and whose ``loglikelihood`` scores the sampling policy ``policy``.

    Construction is stock ``HFLM`` plus two keywords: ``policy`` (default: the identity, i.e. stock
    scoring) and ``family`` (a :class:`PolicyFamily` shared with the LMs of the same model). ``batch_size``
    is the number of *distinct* prompts per prefill; the decode batch is that times the repeats (memory
    of the expanded cache: prompts x repeats x (context + new tokens)). ``batch_size="auto"`` uses
    ``max_batch_size``. ``last_stats`` tells which path answered the requests of the last call.
    """

    last_stats: FastStats

    def __init__(self, *args: Any, policy: Policy | None = None, family: PolicyFamily | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy if policy is not None else IDENTITY
        self.family = family
        if family is not None:
            family.add(self.policy)

    # -- scoring under the policy ------------------------------------------------------------------

    def _loglikelihood_tokens(self, requests: list[TokenRequest], disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list[Answer]:
        """``(log π(continuation | context), is_greedy)`` under ``self.policy`` (docs/policies.md)."""
        if self.family is not None and len(self.family.policies) > 1:
            answers = self.family.answers(self, requests, self.policy)
        elif self.policy.is_identity:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        else:
            answers = [a for (a,) in score_policies(self, requests, [self.policy], disable_tqdm)]
        for (request_str, _, _), answer in zip(requests, answers, strict=True):
            if request_str is not None:
                self.cache_hook.add_partial("loglikelihood", request_str, answer)
        return answers

    def loglikelihood_policies(self, requests: Sequence[Instance], policies: Sequence[Policy],
                               disable_tqdm: bool = True) -> list[list[Answer]]:
        """One forward pass, K policies: ``result[k][i]`` is request i's ``(logp, is_greedy)`` under
        ``policies[k]``, each equal to what ``loglikelihood`` gives an LM with that policy."""
        per_request = score_policies(self, encode_requests(self, requests), policies, disable_tqdm)
        return [[answers[k] for answers in per_request] for k in range(len(policies))]

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        self.last_stats = FastStats(requests=len(requests))
        results: list[str | None] = [None] * len(requests)
        groups = group_requests(requests)
        by_kwargs: dict[str, list[PromptGroup]] = {}
        for g in groups:
            by_kwargs.setdefault(_kwargs_key(g.gen_kwargs), []).append(g)
        pbar = tqdm(total=len(requests), disable=(disable_tqdm or self.rank != 0),
                    desc="Running generate_until requests (hf-fast)")
        for same_kwargs in by_kwargs.values():
            plan, reason = self._sampling_plan(same_kwargs[0].gen_kwargs)
            if plan is not None:
                self._check_sampled_policy(plan)
                self._run_sampled(same_kwargs, plan, results, pbar)
            elif reason == "greedy":
                self._run_greedy(requests, same_kwargs, results, pbar)
            else:
                self._run_stock(requests, same_kwargs, reason, results, pbar)
        pbar.close()
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    # -- the three paths ---------------------------------------------------------------------------

    def _run_sampled(self, groups: list[PromptGroup], plan: SamplingPlan, results: list[str | None],
                     pbar: tqdm) -> None:
        """Shared-prefill sampling, ``batch_size`` distinct prompts per prefill, longest first."""
        order = sorted(groups, key=lambda g: (-len(self.tok_encode(g.context)), g.context))
        step = self._prompts_per_batch()
        for start in range(0, len(order), step):
            chunk = order[start:start + step]
            texts = self._sample_chunk(chunk, plan)
            for g, strings in zip(chunk, texts, strict=True):
                for i, s in zip(g.indices, strings, strict=True):
                    results[i] = s
                    self.cache_hook.add_partial("generate_until", (g.context, g.gen_kwargs), s)
                pbar.update(g.repeats)
            self.last_stats.prefill_rows += len(chunk)
            self.last_stats.sampled_rows += sum(g.repeats for g in chunk)

    def _sample_chunk(self, chunk: list[PromptGroup], plan: SamplingPlan) -> list[list[str]]:
        """Strings for every repeat of every prompt in ``chunk`` (one prefill for the chunk)."""
        max_ctx_len = self.max_length - plan.max_gen_toks
        if max_ctx_len <= 0:
            raise ValueError(f"hf-fast: max_gen_toks ({plan.max_gen_toks}) must be less than the model's "
                             f"maximum sequence length ({self.max_length})")
        ids, mask = self.tok_batch_encode([g.context for g in chunk], left_truncate_len=max_ctx_len,
                                          truncation=self.truncation)
        with torch.inference_mode(), torch.autocast(device_type=self.device.type,
                                                    dtype=self.mixed_precision_dtype,
                                                    enabled=self.mixed_precision_dtype is not None):
            out = sample_continuations(self.model, ids.to(self.device), mask.to(self.device),
                                       [g.repeats for g in chunk], plan, self._stop_checker(plan.until))
        texts: list[list[str]] = [[] for _ in chunk]
        for row, cont in zip(out.rows_of.tolist(), out.tokens.tolist(), strict=True):
            texts[row].append(self._postprocess(cont, plan.until))
        return texts

    def _run_greedy(self, requests: list[Instance], groups: list[PromptGroup], results: list[str | None],
                    pbar: tqdm) -> None:
        """Greedy repeats are identical: generate each distinct request once (stock code), replicate."""
        firsts = [requests[g.indices[0]] for g in groups]
        strings = super().generate_until(firsts, disable_tqdm=True)
        for g, s in zip(groups, strings, strict=True):
            for i in g.indices:
                results[i] = s
            pbar.update(g.repeats)
        self.last_stats.greedy_deduplicated += sum(g.repeats for g in groups)

    def _run_stock(self, requests: list[Instance], groups: list[PromptGroup], reason: str,
                   results: list[str | None], pbar: tqdm) -> None:
        """Requests the sampling loop does not implement: stock generate_until, every copy."""
        indices = sorted(i for g in groups for i in g.indices)
        log.warning("hf-fast: stock generate_until for %d requests (%s)", len(indices), reason)
        strings = super().generate_until([requests[i] for i in indices], disable_tqdm=True)
        for i, s in zip(indices, strings, strict=True):
            results[i] = s
        pbar.update(len(indices))
        self.last_stats.fallback_requests += len(indices)
        self.last_stats.fallback_reasons.append(reason)

    # -- settings, mirrored from HFLM.generate_until / _model_generate / model.generate -------------

    def _sampling_plan(self, gen_kwargs: dict[str, Any]) -> tuple[SamplingPlan | None, str]:
        """The plan for these gen_kwargs, or ``(None, why)`` when stock code must handle them."""
        if self.backend != "causal":
            return None, "seq2seq backend"
        kwargs = dict(normalize_gen_kwargs(gen_kwargs, self.max_gen_toks))
        until = handle_stop_sequences(kwargs.pop("until", None), eos=self._eos_string())
        max_gen_toks = int(kwargs.pop("max_gen_toks"))
        if not kwargs.get("do_sample"):
            return None, "greedy"
        if "max_length" in kwargs:
            return None, "max_length in gen_kwargs"
        if max_gen_toks < 1:
            return None, "max_gen_toks < 1"
        if float(kwargs.get("temperature", 0.0)) <= 0.0:
            return None, "do_sample with temperature 0"   # stock raises transformers' error; keep it
        try:
            config = self._generation_config(kwargs)
            warpers = self.model._get_logits_processor(generation_config=config, device=str(self.device))
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # private transformers API changed, or invalid kwargs: stock code then raises the real error
            return None, f"generation config not understood: {type(exc).__name__}: {exc}"
        unsupported = [type(w).__name__ for w in warpers if not isinstance(w, _SCORE_ONLY_WARPERS)]
        if unsupported:
            return None, f"unsupported logits processors {unsupported}"
        if config.get_generation_mode() != GenerationMode.SAMPLE or (config.num_return_sequences or 1) != 1:
            return None, "not plain multinomial sampling"
        eos_ids = _as_tuple(config.eos_token_id)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else \
            (eos_ids[0] if eos_ids else None)
        if pad_id is None:
            return None, "no pad or eos token id"
        plan = SamplingPlan(until=tuple(until), max_gen_toks=max_gen_toks, warpers=warpers,
                            eos_ids=eos_ids, pad_id=int(pad_id))
        return plan, ""

    def _check_sampled_policy(self, plan: SamplingPlan) -> None:
        """Warn when the sampler's warper chain is not the policy this LM scores (docs/policies.md)."""
        sampled = Policy.from_warpers(plan.warpers, vocab_size=self._vocab_width())
        self.last_stats.sampled_policies.append(sampled)
        if sampled != self.policy:
            log.warning("hf-fast: sampling with %s but scoring with %s: sampled Pass@N and the scores describe "
                        "different policies (set the registry's generation block)",
                        sampled.label if sampled is not None else "warpers that are not a policy",
                        self.policy.label)

    def _vocab_width(self) -> int:
        """Width of the logits rows the warpers see (the model's output embedding size)."""
        head = self.model.get_output_embeddings()
        return int(head.weight.shape[0]) if head is not None else int(self.config.vocab_size)

    def _generation_config(self, kwargs: dict[str, Any]) -> GenerationConfig:
        """The merged config model.generate would use: the kwargs over the model's config over defaults."""
        config, unused = self.model._prepare_generation_config(None, **kwargs)
        if unused:
            raise ValueError(f"gen_kwargs that are not generation settings: {sorted(unused)}")
        return config

    def _prompts_per_batch(self) -> int:
        size = self.batch_size
        return int(self.max_batch_size if size == "auto" else size) or 1

    def _eos_string(self) -> str:
        return self.tok_decode(self.eot_token_id, skip_special_tokens=False)

    def _stop_checker(self, until: tuple[str, ...]) -> Callable[[list[list[int]]], list[bool]] | None:
        """True where the decoded text (decoded as post-processing decodes it) contains a stop string."""
        terms = [t for t in until if t]
        if not terms:
            return None

        def stopped(rows: list[list[int]]) -> list[bool]:
            texts = self.tokenizer.batch_decode(rows, skip_special_tokens=True)
            return [any(t in text for t in terms) for text in texts]

        return stopped

    def _postprocess(self, cont_toks: list[int], until: tuple[str, ...]) -> str:
        """Stock HFLM.generate_until's post-processing of one continuation, line for line."""
        if isinstance(self.think_end_token, int):
            marks = [i for i, t in enumerate(cont_toks) if t == self.think_end_token]
            if marks:
                cont_toks = cont_toks[marks[-1] + 1:]
        s = self.tok_decode(cont_toks)
        if isinstance(self.think_end_token, int):
            s = s.lstrip()
        return postprocess_generated_text(
            generation=s, stop=list(until),
            think_end_token=self.think_end_token if isinstance(self.think_end_token, str) else None)


def _as_tuple(ids: int | Sequence[int] | torch.Tensor | None) -> tuple[int, ...]:
    if ids is None:
        return ()
    if isinstance(ids, torch.Tensor):
        return tuple(int(i) for i in ids.flatten().tolist())
    if isinstance(ids, int):
        return (ids,)
    return tuple(int(i) for i in ids)


def _register() -> None:
    """Register ``hf-fast`` once; re-importing this module (or a reload) must not raise."""
    if REGISTRY_NAME not in model_registry:
        register_model(REGISTRY_NAME)(FastHFLM)
        return
    current = model_registry.get(REGISTRY_NAME)
    if (getattr(current, "__module__", None), getattr(current, "__qualname__", None)) != \
            (FastHFLM.__module__, FastHFLM.__qualname__):
        raise ValueError(f"lm-eval model name '{REGISTRY_NAME}' is already taken by {current!r}")


_register()
