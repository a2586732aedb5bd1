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
from collections.abc import Iterable, Sequence

import numpy as np

from covbench import metrics
from covbench.records import metric_key

WEIGHTED_KEYS = ("ce_per_token",)


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
    pairs for :func:`weighted_mean` (``ce_per_token`` always, every key when ``doc_weight`` is given)."""
    out: dict[str, object] = {}
    for key, value in per_doc.items():
        if key in WEIGHTED_KEYS:
            out[key] = (value, float(n_tokens) * (1.0 if doc_weight is None else doc_weight))
        elif doc_weight is None:
            out[key] = value
        else:
            out[key] = (value, float(doc_weight))
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
