"""Fig. 2 evaluation: exact KL and Cov_N against π_D on stratified per-class sets, µ-weighted (docs/zoo.md).

Every response of every doc's support S_x is scored (1 path for G1 and G2, 16 for G3), so per doc the
numbers are exact expectations over y ∼ π_D(·|x) (docs/zoo.md, "Figure 2"): X(y) = log π_D(y|x) − log π̂(y|x),
KL = E[X], Cov_N = P[X ≥ log N]. Docs carry the weight prior/count of their class
(``stratified_docs``), so the weighted mean over all docs is Σ_c µ_c · (class mean), the paper's
µ̃-weighting of per-class metrics (the paper's App. C.3.2). The statistics are ``covbench.metrics``'
(``support_log_ratios``, ``kl``, ``coverage_profile``).

>>> from covbench.graphs.generator import FIG2_MIXTURE, fig2_config, stratified_docs
>>> docs = stratified_docs(fig2_config(4, m=32), FIG2_MIXTURE, 2, seed=0)
>>> lp = [[ref - 1.0 for ref in d.support_logp] for d in docs]    # π̂ = π_D / e on every response
>>> r = metrics_from_logp(docs, lp)
>>> round(r.kl, 6), r.cov["cov@2"], r.cov["cov@4"], sorted(r.per_class)
(1.0, 1.0, 0.0, ['G1', 'G2', 'G3'])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from covbench import metrics
from covbench.graphs.generator import GraphDoc
from covbench.records import metric_key

from .data import encode
from .scoring import response_logp

COV_NS: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


@dataclass(frozen=True)
class Fig2Metrics:
    """µ-weighted KL, Cov_N and CE (nats per sequence) and the same per class (unweighted within a class)."""

    kl: float
    cov: dict[str, float]  # "cov@N" -> value
    ce: float
    per_class: dict[str, dict[str, float]]  # class -> {"kl", "cov@16", "ce", "n"}
    n_docs: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def missing(cls, docs: Sequence[GraphDoc]) -> Fig2Metrics:
        """Every number NaN (a model with non-finite weights has no distribution to measure)."""
        classes = sorted({d.cls for d in docs})
        return cls(kl=math.nan, cov={metric_key("cov", n): math.nan for n in COV_NS}, ce=math.nan,
                   per_class={c: {"kl": math.nan, "cov@16": math.nan, "ce": math.nan,
                                  "n": float(sum(d.cls == c for d in docs))} for c in classes},
                   n_docs=len(docs))

    @classmethod
    def from_dict(cls, d: dict) -> Fig2Metrics:
        return cls(kl=float(d["kl"]), cov={k: float(v) for k, v in d["cov"].items()}, ce=float(d["ce"]),
                   per_class={c: {k: float(v) for k, v in row.items()} for c, row in d["per_class"].items()},
                   n_docs=int(d["n_docs"]))


def _summary(docs: Sequence[GraphDoc], logp_model: Sequence[Sequence[float]], weights: Sequence[float],
             ) -> tuple[float, np.ndarray, float]:
    ref = [d.support_logp for d in docs]
    x, w = metrics.support_log_ratios(ref, logp_model, doc_weights=weights)
    ce = metrics.cross_entropy(-x + np.concatenate([np.asarray(r) for r in ref]), weights=w).per_sequence
    return metrics.kl(x, weights=w), metrics.coverage_profile(x, list(COV_NS), weights=w), ce


def metrics_from_logp(docs: Sequence[GraphDoc], logp_model: Sequence[Sequence[float]]) -> Fig2Metrics:
    """The Fig. 2 numbers from log π̂ of every support response.

    ``logp_model[d][j]`` is log π̂ of ``docs[d].support[j]``.
    """
    if len(docs) != len(logp_model) or not docs:
        raise ValueError(f"metrics_from_logp: {len(docs)} docs but {len(logp_model)} score lists")
    kl, cov, ce = _summary(docs, logp_model, [d.weight for d in docs])
    per_class: dict[str, dict[str, float]] = {}
    for cls in sorted({d.cls for d in docs}):
        idx = [i for i, d in enumerate(docs) if d.cls == cls]
        c_kl, c_cov, c_ce = _summary([docs[i] for i in idx], [logp_model[i] for i in idx], [1.0] * len(idx))
        per_class[cls] = {"kl": c_kl, "cov@16": float(c_cov[COV_NS.index(16.0)]), "ce": c_ce,
                          "n": float(len(idx))}
    return Fig2Metrics(kl=kl, cov={metric_key("cov", n): float(v) for n, v in zip(COV_NS, cov)}, ce=ce,
                       per_class=per_class, n_docs=len(docs))


@torch.no_grad()
def score_supports(model: torch.nn.Module, docs: Sequence[GraphDoc], m: int, pad_id: int,
                   batch_size: int = 128) -> list[list[float]]:
    """log π̂(y|x) of every y in every doc's support S_x (teacher forcing, response tokens only).

    Single-path docs are scored in padded batches (``scoring.response_logp``); a doc with several
    paths (G3: 16) runs its prompt once and its paths from the shared key-value cache
    (:func:`shared_prompt_logp`).
    """
    out: list[list[float] | None] = [None] * len(docs)
    single = [i for i, d in enumerate(docs) if len(d.support) == 1]
    flat = response_logp(model, [encode(docs[i], m) if docs[i].support[0] == docs[i].target
                                 else encode(docs[i], m, response=docs[i].support[0]) for i in single],
                         pad_id, batch_size=batch_size).tolist()
    for i, value in zip(single, flat):
        out[i] = [value]
    for i, d in enumerate(docs):
        if out[i] is None:
            examples = [encode(d, m, response=y) for y in d.support]
            out[i] = shared_prompt_logp(model, examples[0].prompt, [e.response for e in examples])
    return [x for x in out if x is not None]


@torch.no_grad()
def shared_prompt_logp(model: torch.nn.Module, prompt: Sequence[int], responses: Sequence[Sequence[int]],
                       ) -> list[float]:
    """Σ_h log π̂(y_h | x, y_<h) for several equal-length responses y of one prompt x, prompt run once."""
    width = {len(r) for r in responses}
    if len(width) != 1:
        raise ValueError("shared_prompt_logp: responses must have one length")
    out = model(input_ids=torch.tensor([list(prompt)]), use_cache=True)
    first = torch.log_softmax(out.logits[0, -1].float(), -1)
    resp = torch.tensor([list(r) for r in responses])
    total = first[resp[:, 0]].double()
    if resp.shape[1] > 1:
        cache = out.cache
        cache.batch_repeat_interleave(len(responses))
        n_prompt = len(prompt)
        steps = resp.shape[1] - 1
        positions = torch.arange(n_prompt, n_prompt + steps).expand(len(responses), -1)
        mask = torch.ones(len(responses), n_prompt + steps, dtype=torch.long)
        logits = model(input_ids=resp[:, :-1], cache=cache, position_ids=positions,
                       attention_mask=mask, use_cache=True).logits.float()
        rest = torch.log_softmax(logits, -1).gather(-1, resp[:, 1:, None])[..., 0]
        total = total + rest.double().sum(-1)
    return total.tolist()


def evaluate_docs(model: torch.nn.Module, docs: Sequence[GraphDoc], m: int, pad_id: int) -> Fig2Metrics:
    """Score every support response of ``docs`` and summarise (µ-weighted and per class).

    A diverged model (weights or scores not finite, or NaN) gets :meth:`Fig2Metrics.missing`: it has no
    distribution to measure, and a NaN is never turned into a number.
    """
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        return Fig2Metrics.missing(docs)
    scores = score_supports(model, docs, m, pad_id)
    if any(math.isnan(v) for row in scores for v in row):
        return Fig2Metrics.missing(docs)
    return metrics_from_logp(docs, scores)


def ratio(kl: float, cov16: float) -> float:
    """KL / Cov_16 (the Fig. 2 right panel); +inf when Cov_16 = 0 < KL, NaN when either is missing."""
    if math.isnan(kl) or math.isnan(cov16):
        return math.nan
    if cov16 == 0:
        return math.inf if kl > 0 else math.nan
    return kl / cov16
