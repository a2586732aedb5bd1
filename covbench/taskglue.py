"""Shared lm-eval glue: per-doc coverage / CE / Pass@N values for ``process_results``, and their aggregation.

Every covbench task's ``process_results`` returns, per doc, the store's metric keys (covbench/records.py):
``ce``, ``ce_per_token``, ``kl``, ``cov@N``, ``pass_exact@N`` (scoring tasks) or ``pass_sampled@N``
(sampling tasks). Each per-doc value is an exact expectation over that doc's reference distribution,
computed with ``covbench.metrics``; lm-eval then averages over docs (``aggregation: mean``), so the task's
number is the mean over prompts, as the paper's estimators (docs/coverage-principle.md#cov-def, #estimators).

Two cases need a weighted mean instead of ``mean``; their values are ``(value, weight)`` pairs and the
YAML names :func:`weighted_mean` as the aggregation (a callable: no lm-eval registry, so no import-order
or double-registration traps, docs/lm-eval-notes.md#trap-registry-order):

- ``ce_per_token`` is a ratio of sums Σ nll / Σ tokens (as lm-eval's bits_per_byte), so each doc is
  weighted by its token count;
- stratified tasks (Fig. 2) weight each doc by class prior / class doc count (docs/coverage-principle.md#estimators), so every
  metric is a weighted mean.

Gold-answer tasks reuse the same helpers with a one-element support of log π_ref = 0.

>>> v = support_metrics([0.0], [-0.5], n_tokens=[2], n_bytes=[4], cov_ns=[1, 2], pass_ns=[1])
>>> v["kl"], v["cov@1"], v["cov@2"], round(v["pass_exact@1"], 4)
(0.5, 1.0, 0.0, 0.6065)
>>> weighted_mean([(1.0, 1.0), (3.0, 3.0)])
2.5
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self

import numpy as np

from covbench import metrics
from covbench.records import DocArrays, SampleArrays, metric_key

WEIGHTED_KEYS = ("ce_per_token",)


class Pair(tuple):
    """A per-doc value that is a pair (``(value, weight)``, ``(X, N)``), with the aggregation it needs.

    lm-eval aggregates a key that the task's ``metric_list`` does not name with ``mean``, i.e.
    ``sum(items) / len(items)`` (``evaluator_utils._compute_task_aggregations``). With plain tuples that
    crashed (``TypeError: unsupported operand type(s) for +: 'int' and 'tuple'``). A ``Pair`` makes that
    ``mean`` compute the key's own aggregation: ``sum`` gathers the pairs (:meth:`__radd__`) and the
    division by the count applies ``agg`` to all of them, so a task whose metric_list omits the key, or
    names ``aggregation: mean`` for it, gets the right number (docs/lm-eval-notes.md#trap-aggregation).
    lm-eval's closed-form stderr of a mean, ``(x − mean)²``, is NaN for a pair: no such stderr exists.

    >>> items = [Pair(1.0, 1.0, weighted_mean), Pair(3.0, 3.0, weighted_mean)]
    >>> sum(items) / len(items), weighted_mean(items)
    (2.5, 2.5)
    """

    agg: Callable[[Sequence[tuple[float, float]]], float]

    def __new__(cls, first: float, second: float,
                agg: Callable[[Sequence[tuple[float, float]]], float]) -> Self:
        out = super().__new__(cls, (first, second))
        out.agg = agg
        return out

    def __radd__(self, other: object) -> _Pooled:
        if isinstance(other, int) and other == 0:  # the start of sum()
            return _Pooled([self])
        return NotImplemented

    def __sub__(self, other: object) -> float:
        return math.nan

    def __reduce__(self) -> tuple:
        return (Pair, (self[0], self[1], self.agg))


class _Pooled:
    """The pairs ``sum`` has gathered so far; dividing by the count applies their aggregation."""

    def __init__(self, items: list[Pair]) -> None:
        self.items = items

    def __add__(self, other: object) -> _Pooled:
        if not isinstance(other, Pair):
            return NotImplemented
        return _Pooled(self.items + [other])

    def __truediv__(self, count: object) -> float:
        return float(self.items[0].agg(self.items))


def support_metrics(support_logp_ref: Sequence[float], support_logp_model: Sequence[float],
                    n_tokens: Sequence[int], n_bytes: Sequence[int] | None = None,
                    cov_ns: Iterable[float] = metrics.DEFAULT_COV_NS,
                    pass_ns: Iterable[float] = metrics.DEFAULT_PASS_NS) -> dict[str, float]:
    """Per-doc metrics, exact expectations over y ∼ π_ref(·|x) on the enumerated support S_x, computed by
    :func:`covbench.summarize.per_doc_values` (the one implementation) on this one doc.

    ``n_tokens``: per support entry (the paths of a graph doc all have the same length; the first is used).
    ``pass_exact@N`` uses log π̂(S_x|x) = logsumexp over the support (docs/coverage-principle.md#est-pass-exact).
    """
    from covbench.records import DocArrays
    from covbench.summarize import per_doc_values

    ref = np.asarray(support_logp_ref, dtype=np.float64)
    model = np.asarray(support_logp_model, dtype=np.float64)
    if ref.size == 0 or ref.size != model.size:
        raise ValueError(f"support_metrics: support has {ref.size} reference and {model.size} model log-probs")
    docs = DocArrays(doc_id=[0], logp_model=[model[int(np.argmax(ref))]], logp_ref=[ref.max()],
                     n_tokens=[int(list(n_tokens)[0])], n_bytes=[int(list(n_bytes)[0]) if n_bytes else 0],
                     support_logp_ref=[ref], support_logp_model=[model], logp_correct=[log_sum_exp(model)])
    values = per_doc_values(docs, None, "known", cov_ns=tuple(cov_ns), pass_ns=tuple(pass_ns))[0]
    listed = set(metric_names("loglikelihood", cov_ns, pass_ns))  # only what the task's metric_list names
    return {k: v for k, v in values.items() if k in listed}


def sampled_metrics(correct: Sequence[bool], pass_ns: Iterable[float] = metrics.DEFAULT_PASS_NS
                    ) -> dict[str, float]:
    """Per-doc unbiased ``pass_sampled@N`` from n verdicts (NaN where N > n: missing, never 1.0).

    >>> {k: round(v, 6) for k, v in sampled_metrics([True, False, False, False], pass_ns=[1, 4, 8]).items()}
    {'pass_sampled@1': 0.25, 'pass_sampled@4': 1.0, 'pass_sampled@8': nan}
    """
    from covbench.records import SampleArrays
    from covbench.summarize import per_doc_values

    samples = SampleArrays(doc_id=[0], generations=[[""] * len(correct)], correct=[list(correct)], max_gen_toks=1)
    return per_doc_values(None, samples, "gold", pass_ns=tuple(pass_ns))[0]


def log_sum_exp(values: Sequence[float]) -> float:
    """log Σ exp(v), with an all −inf input giving −inf (the model puts no mass on the set).

    >>> round(log_sum_exp([math.log(0.25)] * 4), 12), log_sum_exp([float("-inf")])
    (0.0, -inf)
    """
    arr = np.asarray(values, dtype=np.float64)
    top = float(arr.max()) if arr.size else -math.inf
    if top == -math.inf:
        return -math.inf
    return top + math.log(float(np.exp(arr - top).sum()))


def lm_eval_values(per_doc: dict[str, float], n_tokens: float, doc_weight: float | None = None
                   ) -> dict[str, object]:
    """Shape per-doc values for lm-eval: plain floats for ``aggregation: mean``; ``(value, weight)``
    :class:`Pair` s for :func:`weighted_mean` (``ce_per_token`` always, every key when ``doc_weight`` is
    given)."""
    out: dict[str, object] = {}
    for key, value in per_doc.items():
        if key in WEIGHTED_KEYS:
            out[key] = Pair(value, float(n_tokens) * (1.0 if doc_weight is None else doc_weight), weighted_mean)
        elif doc_weight is None:
            out[key] = value
        else:
            out[key] = Pair(value, float(doc_weight), weighted_mean)
    return out


def weighted_mean(items: Sequence[tuple[float, float]]) -> float:
    """lm-eval aggregation over ``(value, weight)`` pairs: Σ w·v / Σ w over w > 0; NaN when empty.

    NaN values propagate (a missing per-doc value makes the aggregate missing, never 0).
    """
    pairs = [(float(v), float(w)) for v, w in items if float(w) > 0]
    total = sum(w for _, w in pairs)
    if not pairs or not total > 0:
        return math.nan
    return sum(w * v for v, w in pairs) / total


def metric_names(kind: str, cov_ns: Iterable[float] = metrics.DEFAULT_COV_NS,
                 pass_ns: Iterable[float] = metrics.DEFAULT_PASS_NS) -> list[str]:
    """The keys a task of ``kind`` (``loglikelihood`` | ``sample``) emits, in YAML order.

    >>> metric_names("sample", pass_ns=[1, 2])
    ['pass_sampled@1', 'pass_sampled@2']
    """
    if kind == "sample":
        return [metric_key("pass_sampled", n) for n in pass_ns]
    if kind != "loglikelihood":
        raise ValueError(f"metric_names: kind must be 'loglikelihood' or 'sample', got {kind!r}")
    return (["ce", "ce_per_token", "kl"] + [metric_key("cov", n) for n in cov_ns]
            + [metric_key("pass_exact", n) for n in pass_ns])


def higher_is_better(key: str) -> bool:
    """Direction of a store key, from its metric card (CE, KL and Cov_N lower, Pass@N higher is better)."""
    return metrics.card_for(key).higher_is_better


def metric_list(keys: Iterable[str], weighted: bool, aggregation_fn: str) -> list[dict]:
    """The YAML ``metric_list`` for ``keys``; ``aggregation_fn`` is the ``!function`` target of
    :func:`weighted_mean` (e.g. ``utils.weighted_mean``), used for weighted keys."""
    rows = []
    for key in keys:
        uses_weights = weighted or key in WEIGHTED_KEYS
        rows.append({"metric": key, "aggregation": f"!function {aggregation_fn}" if uses_weights else "mean",
                     "higher_is_better": higher_is_better(key)})
    return rows


def keep_all(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """lm-eval ``custom`` filter that keeps every sample of every doc, however many ``repeats`` ran.

    (``take_first_k`` would pin the count and fail when the runner draws more or fewer samples.)
    """
    return resps


# ---- gold answers and judged samples: the glue of covbench.humaneval and covbench.wrap ------------------


def ll_result(results: Sequence[Any]) -> tuple[float, bool, int | None]:
    """(log π̂(y*|x), is greedy, token count or None) from lm-eval's loglikelihood response.

    Stock HFLM answers ``(ll, is_greedy)``; a token-logprob backend (docs/lm-eval-notes.md#trap-token-logprobs)
    answers ``(ll, is_greedy, [per-token log-probs])``, which also gives the token count.

    >>> ll_result([(-2.5, False)]), ll_result([(-2.5, True, [-1.0, -1.5])])
    ((-2.5, False, None), (-2.5, True, 2))
    """
    resp = results[0]
    ll, greedy = float(resp[0]), bool(resp[1])
    n_tok = len(resp[2]) if len(resp) > 2 and resp[2] is not None else None
    return ll, greedy, n_tok


def judged(text: str, correct: bool, detail: str = "") -> dict[str, Any]:
    """One sample as a judging filter hands it on: its text, the verdict, and why (one line, ≤ 300 chars).

    A judging filter (``covbench.humaneval.lmeval.sandbox_verdicts``, ``covbench.wrap``'s judge) replaces
    each doc's n responses with n such records, so the verdicts are computed once and
    :func:`process_judged` (inside lm-eval) and :func:`records` (the store's adapter) both read them.

    >>> judged("  return 1", True, "passed:   the program ran")
    {'text': '  return 1', 'correct': True, 'detail': 'passed: the program ran'}
    """
    return {"text": str(text), "correct": bool(correct), "detail": " ".join(str(detail).split())[:300]}


def process_judged(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, float]:
    """lm-eval ``process_results`` of a task whose filter judged every sample (:func:`judged` records):
    per-doc unbiased ``pass_sampled@k`` for the k ≤ n of the default grid (N > n is left out: missing).

    >>> rows = [judged("a", True), judged("b", False), judged("c", False), judged("d", False)]
    >>> {k: round(v, 6) for k, v in process_judged({}, [rows]).items()}
    {'pass_sampled@1': 0.25, 'pass_sampled@2': 0.5, 'pass_sampled@4': 1.0}
    """
    verdicts = [bool(r["correct"]) for r in results[0]]
    ns = tuple(k for k in metrics.DEFAULT_PASS_NS if k <= len(verdicts))
    return sampled_metrics(verdicts, pass_ns=ns) if ns else {}


def records(samples: Sequence[Mapping[str, Any]], kind: str) -> tuple[DocArrays | None, SampleArrays | None]:
    """The store adapter of gold-answer scoring tasks and of judged sampling tasks (``metadata.covbench.adapter:
    covbench.taskglue:records``), from ``simple_evaluate(..., log_samples=True)["samples"][task]``.

    ``loglikelihood``: per doc log π̂(y*|x) of the one scored gold continuation (the first request's
    response), log π_ref = 0, its token count where the backend reports one (else −1: unknown) and its
    UTF-8 byte count. ``sample``: per doc the n :func:`judged` records of the first filter in the task's
    ``filter_list`` (a task may judge under several filters; the first one is the stored verdict).
    Rows are sorted by doc_id.
    """
    if kind not in ("loglikelihood", "sample"):
        raise ValueError(f"covbench.taskglue.records: kind must be 'loglikelihood' or 'sample', got {kind!r}")
    first = samples[0]["filter"] if samples and "filter" in samples[0] else None
    rows = sorted((s for s in samples if s.get("filter") == first), key=lambda s: int(s["doc_id"]))
    if not rows:
        return None, None
    if kind == "loglikelihood":
        return gold_arrays(rows), None
    return None, judged_arrays(rows)


def gold_arrays(rows: Sequence[Mapping[str, Any]]) -> DocArrays:
    """:class:`DocArrays` of scored gold continuations (logged samples sorted by doc_id)."""
    logp, n_tokens, n_bytes = [], [], []
    for s in rows:
        ll, _, n_tok = ll_result(s["filtered_resps"])
        logp.append(ll)
        n_tokens.append(n_tok if n_tok is not None else -1)
        n_bytes.append(len(str(s["arguments"][0][1]).encode("utf-8")))
    return DocArrays(doc_id=[int(s["doc_id"]) for s in rows], logp_model=logp, logp_ref=[0.0] * len(rows),
                     n_tokens=n_tokens, n_bytes=n_bytes)


def judged_arrays(rows: Sequence[Mapping[str, Any]]) -> SampleArrays:
    """:class:`SampleArrays` of judged samples (logged samples of one filter, sorted by doc_id)."""
    judged_rows = [list(s["filtered_resps"][0]) for s in rows]
    kwargs = rows[0]["arguments"][0][1] if rows[0].get("arguments") else {}
    return SampleArrays(doc_id=[int(s["doc_id"]) for s in rows],
                        generations=[[str(r["text"]) for r in j] for j in judged_rows],
                        correct=[[bool(r["correct"]) for r in j] for j in judged_rows],
                        temperature=float(kwargs.get("temperature", 1.0)),
                        max_gen_toks=int(kwargs.get("max_gen_toks", 256)))
