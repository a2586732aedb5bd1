"""lm-eval glue for gold-answer tasks: dataset, per-doc metrics, aggregations and the store adapter.

Two paths measure the same event, so the prediction can be checked against the measurement:

- ``arith_ll`` (loglikelihood) scores the gold continuation y* = ``" <answer>\\n"`` after a context
  that ends in ``"A:"``. X = −log π̂(y*|x) (π_ref puts mass 1 on y*), so per doc
  ``cov@N = 1[X ≥ log N]`` and ``pass_pred@N = 1 − (1 − π̂(y*|x))^N``; their means over docs are
  Cov_N and predicted Pass@N (docs/coverage-principle.md#cov-def, §1.2; docs/coverage-principle.md#gold-reference).
- ``arith_sample`` (generate_until, ``until: ["\\n"]``) draws n samples of that same continuation.
  ``pass_strict@N`` counts a sample correct iff its text before the stop string is exactly
  ``" <answer>"``: that is y* up to tokenisation, the event the loglikelihood path scores.
  ``pass_sampled@N`` uses the number-extracting verifier (``"68"``, ``" 68."``, ``" The answer is 68"``
  all pass), a superset event: so predicted Pass@N is a *lower bound* on it.

Every YAML names these functions as ``!function covbench.arith.lmeval.NAME`` (lm-eval imports the
module normally because no ``covbench/arith/lmeval.py`` lies next to the YAML).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from covbench import taskglue
from covbench.arith.generator import KINDS, generate
from covbench.arith.verifier import extract_number, is_correct
from covbench.metrics import (
    DEFAULT_COV_NS,
    DEFAULT_PASS_NS,
    coverage_profile,
    pass_at_k,
    pass_bracket,
    predicted_pass_at_n,
)
from covbench.records import DocArrays, SampleArrays, metric_key
from covbench.summarize import per_doc_values

#: Few-shot pool size (the YAMLs take the first ``num_fewshot`` of it: one example per kind).
FEWSHOT_POOL = 8


# ---------------------------------------------------------------- dataset (lm-eval custom_dataset)

def load_arith(n: int = 64, seed: int = 1234, kinds: Sequence[str] | None = None, **_: Any):
    """The ``custom_dataset`` of the arith tasks: ``{"test": n problems, "train": few-shot pool}``.

    lm-eval calls it with the task's ``metadata`` and ``dataset_kwargs`` as keyword arguments
    (``api/task.py`` download), so ``n``/``seed``/``kinds`` come from ``metadata`` in the YAML, which
    ``--metadata '{"n": 256}'`` (or ``TaskManager(metadata=...)``) overrides; other keys (``version``,
    ``covbench``) are ignored. The few-shot pool
    comes from its own seed stream, so it never depends on ``n``.
    """
    import datasets  # lm-eval's dependency; imported here so the module loads without it

    kinds_t = tuple(kinds) if kinds else KINDS
    test = [p.to_doc() for p in generate(int(n), seed=int(seed), kinds=kinds_t)]
    pool = [p.to_doc() for p in generate(FEWSHOT_POOL, seed=f"arith-fewshot-{seed}", kinds=KINDS)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(test),
                                 "train": datasets.Dataset.from_list(pool)})


def gold_continuation(doc: Mapping[str, Any]) -> str:
    """y*: what a correct answer looks like after ``"A:"``, stop string included.

    >>> gold_continuation({"answer": 68})
    ' 68\\n'
    """
    return f" {doc['answer']}\n"


# ---------------------------------------------------------------- loglikelihood: per-doc metrics

def ll_metric_names(cov_ns: Sequence[float] = DEFAULT_COV_NS,
                    pass_ns: Sequence[float] = DEFAULT_PASS_NS) -> list[str]:
    """Every key :func:`process_ll` returns, in order (the YAMLs' metric_list must list them all)."""
    names = ["ce", "ce_per_token", "greedy_gold"]
    names += [metric_key("cov", n) for n in cov_ns]
    for stem in ("pass_pred", "pass_pred_lo", "pass_pred_hi"):
        names += [metric_key(stem, n) for n in pass_ns]
    return names


_ll_result = taskglue.ll_result  # (log π̂(y*|x), is greedy, token count or None)


def process_ll(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, Any]:
    """Per-doc metrics of one scored gold answer (means over docs are the task's metrics).

    ``pass_pred_lo@N`` is not a mean of per-doc values (the bracket minimises over M for the whole
    corpus), so its per-doc value is the pair ``(X, N)`` and :func:`agg_bracket_lo` aggregates it;
    ``ce_per_token`` is a ``(value, tokens)`` pair for :func:`covbench.taskglue.weighted_mean`. Both are
    :class:`covbench.taskglue.Pair` s, so a task whose metric_list leaves them out (lm-eval then uses
    ``mean``) still gets their right values.

    >>> m = process_ll({"answer": 7}, [(math.log(0.25), False)])
    >>> m["ce"] == -math.log(0.25), m["cov@4"], m["cov@4.6"], round(m["pass_pred@2"], 6)
    (True, 1.0, 0.0, 0.4375)
    """
    ll, greedy, n_tok = _ll_result(results)
    docs = DocArrays(doc_id=[0], logp_model=[ll], logp_ref=[0.0], n_tokens=[n_tok or 0], n_bytes=[0])
    out: dict[str, Any] = dict(per_doc_values(docs, None, "gold", cov_ns=DEFAULT_COV_NS, pass_ns=DEFAULT_PASS_NS)[0])
    # Σ nll / Σ tokens over docs (taskglue.weighted_mean); missing without token counts, never 0.
    weighted = taskglue.weighted_mean
    out["ce_per_token"] = taskglue.Pair(out["ce_per_token"], float(n_tok), weighted) if n_tok else \
        taskglue.Pair(math.nan, 0.0, weighted)
    out["greedy_gold"] = float(greedy)
    x = -ll  # X = log π_ref(y*|x) − log π̂(y*|x) with π_ref(y*|x) = 1
    hi = pass_bracket([x], DEFAULT_PASS_NS).hi  # 1 − ½·Cov_{2N}: linear in Cov, so a per-doc mean
    for n, h in zip(DEFAULT_PASS_NS, hi):
        out[metric_key("pass_pred_hi", n)] = float(h)
        out[metric_key("pass_pred_lo", n)] = taskglue.Pair(x, float(n), agg_bracket_lo)
    return out


def agg_bracket_lo(items: Sequence[tuple[float, float]]) -> float:
    """Aggregation of ``pass_pred_lo@N``: ``1 − min_M[Cov_M + (1 − 1/M)^N]`` over all docs (docs/coverage-principle.md#bon-sandwich).

    >>> xs = [-math.log(0.5), -math.log(0.01)]
    >>> agg_bracket_lo([(x, 8.0) for x in xs]) == float(pass_bracket(xs, [8.0]).lo[0])
    True
    """
    if not items:
        return math.nan
    xs = [float(x) for x, _ in items]
    n = float(items[0][1])
    return float(pass_bracket(xs, [n]).lo[0])


# ---------------------------------------------------------------- sampling: per-doc metrics

def _gold_number(doc: Mapping[str, Any]) -> Any:
    return doc["answer"]


def sample_verdicts(doc: Mapping[str, Any], generations: Sequence[str]) -> list[bool]:
    """The verifier's verdict on each sample's whole text (arith stops at ``"\\n"``; gsm8k is multi-line)."""
    return [is_correct(g, _gold_number(doc)) for g in generations]


def _strict(doc: Mapping[str, Any], generations: Sequence[str]) -> list[bool]:
    target = gold_continuation(doc).rstrip("\n")
    return [g == target for g in generations]


def sample_metric_names(n: int, strict: bool = True, pass_ns: Sequence[float] = DEFAULT_PASS_NS) -> list[str]:
    """Keys :func:`process_sample` (``strict``) or :func:`process_verified` return for n samples per doc.

    N > n is left out (Pass@N from fewer than N samples is missing, never 1.0).
    """
    ns = [k for k in pass_ns if k <= n]
    strict_keys = [metric_key("pass_strict", k) for k in ns] if strict else []
    return [metric_key("pass_sampled", k) for k in ns] + strict_keys + ["answered"]


def process_verified(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, float]:
    """Per-doc unbiased Pass@N (Chen et al. 2021) from n samples judged by the number verifier.

    Works for any task whose doc has an ``answer`` field holding the gold number (an int, or a
    gsm8k-style solution ending in ``#### 42``). ``answered`` is the fraction of samples that contain
    any number at all (a format check, not a score).

    >>> process_verified({"answer": "so #### 5"}, [[" 5", " 5.", " 6", "five"]])["pass_sampled@2"]
    0.8333333333333334
    """
    gens = [results[0]] if isinstance(results[0], str) else list(results[0])
    ns = [k for k in DEFAULT_PASS_NS if k <= len(gens)]
    out = taskglue.sampled_metrics(sample_verdicts(doc, gens), pass_ns=ns)
    out["answered"] = float(np.mean([extract_number(g) is not None for g in gens])) if gens else math.nan
    return out


def process_sample(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, float]:
    """:func:`process_verified` plus ``pass_strict@N``: a sample is strictly correct iff its text is
    exactly y* without the stop string (the event ``arith_ll`` scores, up to tokenisation).

    >>> m = process_sample({"answer": 5}, [[" 5", " 5.", " 6", "five"]])
    >>> round(m["pass_sampled@1"], 9), round(m["pass_strict@1"], 9), m["answered"]
    (0.5, 0.25, 0.75)
    """
    out = process_verified(doc, results)
    gens = [results[0]] if isinstance(results[0], str) else list(results[0])
    ns = [k for k in DEFAULT_PASS_NS if k <= len(gens)]
    c_strict = sum(_strict(doc, gens))
    out.update({metric_key("pass_strict", k): float(v) for k, v in zip(ns, pass_at_k(len(gens), c_strict, ns))})
    return out


# ---------------------------------------------------------------- adapter: lm-eval samples -> store arrays

def records(samples: Sequence[Mapping[str, Any]], kind: str) -> tuple[DocArrays | None, SampleArrays | None]:
    """Turn ``simple_evaluate(..., log_samples=True)["samples"][task]`` into the store's arrays.

    A loglikelihood task gives :class:`DocArrays` (logp_ref = 0.0: the gold reference), a sampling
    task :class:`SampleArrays` with the verifier's verdicts. Rows are sorted by doc_id. Token counts
    come from a token-logprob backend's per-token list; stock HFLM does not report them, and then
    ``n_tokens`` is -1 (unknown) for that doc.
    """
    rows = sorted(samples, key=lambda s: int(s["doc_id"]))
    if not rows:
        return None, None
    if kind == "loglikelihood":
        return _doc_arrays(rows), None
    if kind == "sample":
        return None, _sample_arrays(rows)
    raise ValueError(f"covbench.arith.lmeval.records: kind must be 'loglikelihood' or 'sample', got {kind!r}")


def _doc_arrays(rows: Sequence[Mapping[str, Any]]) -> DocArrays:
    logp, n_tokens, n_bytes = [], [], []
    for s in rows:
        ll, _, n_tok = _ll_result(s["filtered_resps"])
        logp.append(ll)
        n_tokens.append(n_tok if n_tok is not None else -1)
        n_bytes.append(len(str(s["target"]).encode("utf-8")))
    return DocArrays(doc_id=[int(s["doc_id"]) for s in rows],
                     cls=[str(s["doc"].get("kind", "")) for s in rows],
                     logp_model=logp, logp_ref=[0.0] * len(rows),
                     n_tokens=n_tokens, n_bytes=n_bytes)


def _sample_arrays(rows: Sequence[Mapping[str, Any]]) -> SampleArrays:
    gens = [[str(g) for g in s["filtered_resps"][0]] for s in rows]
    kwargs = rows[0]["arguments"][0][1] if rows[0].get("arguments") else {}
    return SampleArrays(doc_id=[int(s["doc_id"]) for s in rows],
                        generations=gens,
                        correct=[sample_verdicts(s["doc"], g) for s, g in zip(rows, gens)],
                        temperature=float(kwargs.get("temperature", 1.0)),
                        max_gen_toks=int(kwargs.get("max_gen_toks", 256)))
