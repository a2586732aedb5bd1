"""Teacher-forced scoring of K policies with one forward pass (docs/policies.md "One pass, K policies").

Every policy of a family reads the same logits; only the transform differs. :func:`score_policies`
therefore runs lm-eval's own log-likelihood batching (``Collator`` with the same sort and the same
one-token-continuation grouping, right-padded batches of ``batch_size`` requests, left truncation to
``max_length``) once, keeps only the rows that predict continuation tokens, and applies
:func:`covbench.backends.policy.policy_logprobs` to those rows once per policy:

    log π_k(y|x) = Σ_{t ∈ response} policy_logprobs(z_t, policy_k)[y_t]

``is_greedy`` keeps lm-eval's meaning: every response token is the argmax of the raw logits, which
is also the argmax of every policy (temperature and truncation never move or drop the top token), so
greedy decoding produces the response. A greedy response therefore always has a finite log-prob.

Cost: one forward pass per batch, plus per policy one transform of R × V values (R = response
tokens in the batch), instead of K forward passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from lm_eval.models.utils import Collator
from lm_eval.models.utils_hf import pad_and_concat
from tqdm import tqdm

from covbench.backends.policy import Policy, policy_logprobs

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

__all__ = ["Answer", "TokenRequest", "encode_requests", "score_policies"]

#: lm-eval's tokenised log-likelihood request: ((context, continuation) or None, context ids, continuation ids)
TokenRequest = tuple[tuple[str, str] | None, list[int], list[int]]
#: lm-eval's answer to one request: (log π(continuation | context), is_greedy)
Answer = tuple[float, bool]


def encode_requests(lm: HFLM, requests: Sequence[Instance]) -> list[TokenRequest]:
    """Tokenise ``loglikelihood`` requests exactly as lm-eval's ``TemplateLM.loglikelihood`` does.

    An empty context becomes the prefix token (BOS/EOS), unless the continuation already starts with it.
    """
    out: list[TokenRequest] = []
    for context, continuation in (req.args for req in requests):
        if context == "":
            cont = lm.tok_encode(continuation, add_special_tokens=False)
            ctx, cont = ([lm.prefix_token_id], cont) if lm.prefix_token_id != cont[0] else (cont[:1], cont[1:])
        else:
            ctx, cont = lm._encode_pair(context, continuation)
        out.append(((context, continuation), ctx, cont))
    return out


def score_policies(lm: HFLM, requests: Sequence[TokenRequest], policies: Sequence[Policy],
                   disable_tqdm: bool = True) -> list[tuple[Answer, ...]]:
    """Per request (in the given order), one ``(logp, is_greedy)`` per policy, from one forward pass.

    Causal models only (lm-eval's seq2seq path scores the decoder side differently); ``lm`` is an
    ``HFLM`` (or subclass) whose ``_model_call`` returns the logits ``[batch, length, vocab]``.
    """
    if lm.backend != "causal":
        raise ValueError("policy scoring supports causal language models only (this model is seq2seq)")
    if not policies:
        raise ValueError("score_policies needs at least one policy")
    re_ord = Collator(list(requests), sort_fn=_sort_key,
                      group_by="contexts" if lm.logits_cache else None, group_fn=_group_key)
    size = lm.batch_size if isinstance(lm.batch_size, int) else int(lm.max_batch_size)
    results: list[tuple[Answer, ...]] = []
    pbar = tqdm(total=len(requests), disable=disable_tqdm or lm.rank != 0, desc="Scoring policies")
    for chunk in re_ord.get_batched(n=size, batch_fn=None):
        rows, lengths = _continuation_logits(lm, chunk)
        greedy = rows.argmax(dim=-1)                                      # [R]
        logps = [policy_logprobs(rows, p, dtype=lm.softmax_dtype) for p in policies]   # K x [R, V]
        start = 0
        for (req_str, ctx_toks, cont_toks), length in zip(chunk, lengths, strict=True):
            stop = start + length
            # the one-token-continuation cache (lm-eval): requests sharing context + continuation[:-1]
            # were computed once; each gets its own trailing rows of the shared logits
            for _, member_cont, _ in re_ord.get_cache(req_str=req_str, cxt_toks=ctx_toks, cont_toks=cont_toks,
                                                      logits=_PLACEHOLDER):
                span = slice(stop - len(member_cont), stop)
                ids = torch.tensor(member_cont, dtype=torch.long, device=rows.device)
                is_greedy = bool((greedy[span] == ids).all())
                results.append(tuple((float(lp[span].gather(1, ids[:, None]).squeeze(1).sum()), is_greedy)
                                     for lp in logps))
                pbar.update(1)
            start = stop
    pbar.close()
    return re_ord.get_original(results)


_PLACEHOLDER = torch.empty(1, 1, 1)   # Collator.get_cache only expands the logits it is given


def _sort_key(req: TokenRequest) -> tuple[int, tuple[int, ...]]:
    toks = req[1] + req[2]
    return -len(toks), tuple(toks)       # lm-eval's order: longest first


def _group_key(req: TokenRequest) -> list[int]:
    return req[-2] + req[-1][:-1]        # lm-eval's one-token-continuation grouping


def _continuation_logits(lm: HFLM, chunk: Sequence[TokenRequest]) -> tuple[torch.Tensor, list[int]]:
    """One forward pass over a right-padded batch; the logits rows that predict continuation tokens.

    Returns ``[R, V]`` (the chunk's continuation rows, request after request) and each request's count.
    Inputs are built as lm-eval builds them: ``(context + continuation)[-(max_length + 1):][:-1]``.
    """
    inputs = [torch.tensor((ctx + cont)[-(lm.max_length + 1):][:-1], dtype=torch.long, device=lm.device)
              for _, ctx, cont in chunk]
    in_lens = [len(x) for x in inputs]            # before pad_and_concat, which reshapes its list in place
    cont_lens = [len(cont) for _, _, cont in chunk]
    logits: Any = lm._model_call(pad_and_concat(max(in_lens), inputs, padding_side="right"))  # [B, width, V]
    rows = [logits[b, n - c:n] for b, (n, c) in enumerate(zip(in_lens, cont_lens, strict=True))]
    return torch.cat(rows), cont_lens
