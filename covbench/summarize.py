"""Per-doc arrays of one scored run → the store's flat metric dict, with bootstrap CIs over prompts.

Every metric here is a weighted mean over prompts of a per-prompt value, so one call of
:func:`covbench.metrics.paired_bootstrap` gives its point value and percentile CI (same resamples, same
seed, for every metric and every model). The per-prompt values (paper.md §2.2):

- ``ce``: E_{π_ref(·|x)}[−log π̂(y|x)] (exact over an enumerated support, else −log π̂ of the
  reference response); ``ce_per_token`` / ``bpb``: the same as a ratio of sums over tokens / bytes
  (weights w·count; bpb divided by ln 2).
- ``kl`` (known π_D only): Σ_{y∈S_x} π_D(y|x)·(log π_D(y|x) − log π̂(y|x)) when the support is
  enumerated, else the single-sample X of the reference response.
- ``cov@N``: Σ_{y∈S_x} π_D(y|x)·1[X_y ≥ log N] (exact over an enumerated support), else 1[X ≥ log N].
- ``pass_exact@N``: 1 − (1 − π̂(S_x|x))^N from the scored correct set.
- ``pass_sampled@N``: the unbiased estimator 1 − C(n−c, N)/C(n, N); N > n is missing.
- ``pass_pred@N``: 1 − (1 − π̂(y*|x))^N from the reference answer alone (single-answer prediction),
  and ``pass_pred_lo@N`` / ``pass_pred_hi@N``: the bracket that Cov alone implies (paper.md §1.2),
  reported only when every prompt has a single correct answer (gold tasks, deterministic π_D docs).
"""

from __future__ import annotations

import math

import numpy as np

from covbench import metrics
from covbench.records import DocArrays, Estimate, SampleArrays, metric_key

BOOTSTRAP_B = 1000
BOOTSTRAP_SEED = 0


def summarize(docs: DocArrays | None, samples: SampleArrays | None, reference: str, *,
              cov_ns: tuple[float, ...] = metrics.DEFAULT_COV_NS,
              pass_ns: tuple[float, ...] = metrics.DEFAULT_PASS_NS) -> dict[str, Estimate]:
    """All metrics of one run; keys as in :mod:`covbench.records`. Missing metrics are absent or NaN."""
    out: dict[str, Estimate] = {}
    if docs is not None and docs.doc_id:
        out.update(_scored(docs, reference, cov_ns, pass_ns))
    if samples is not None and samples.doc_id:
        out.update(_sampled(samples, pass_ns))
    return out


def _estimates(names: list[str], per_prompt: np.ndarray, weights: np.ndarray) -> dict[str, Estimate]:
    """Point value, 95% percentile CI and bootstrap stderr of each row's weighted mean."""
    ci = metrics.paired_bootstrap(per_prompt, weights, B=BOOTSTRAP_B, seed=BOOTSTRAP_SEED)
    return {name: Estimate(value=float(ci.value[i]), lo=float(ci.lo[i]), hi=float(ci.hi[i]),
                           stderr=float(ci.stderr[i])) for i, name in enumerate(names)}


def _doc_weights(docs: DocArrays) -> np.ndarray:
    return np.ones(len(docs.doc_id)) if docs.weight is None else np.asarray(docs.weight, dtype=float)


def _scored(docs: DocArrays, reference: str, cov_ns: tuple[float, ...],
            pass_ns: tuple[float, ...]) -> dict[str, Estimate]:
    w = _doc_weights(docs)
    nll = per_doc_nll(docs)
    out = _estimates(["ce"], nll[None, :], w)
    for name, counts, scale in (("ce_per_token", docs.n_tokens, 1.0), ("bpb", docs.n_bytes, math.log(2.0))):
        c = np.asarray(counts, dtype=float)
        if (c > 0).all():
            est = _estimates([name], (nll / c / scale)[None, :], w * c)[name]
            out[name] = est
    x_docs, cov_docs = per_doc_ratios(docs, cov_ns)
    cov_keys = [metric_key("cov", n) for n in cov_ns]
    out.update(_estimates(cov_keys, cov_docs, w))
    if reference == "known":
        out.update(_estimates(["kl"], x_docs[None, :], w))
    if docs.logp_correct is not None:
        per = metrics.pass_at_n_per_prompt(docs.logp_correct, pass_ns)
        out.update(_estimates([metric_key("pass_exact", n) for n in pass_ns], per, w))
    if single_answer(docs, reference):
        out.update(_predicted(docs, w, pass_ns))
    return out


def _supports(docs: DocArrays):
    """Per doc, over the live support (π_ref > 0): normalised π_ref(y|x), log π_ref and log π̂."""
    for ref, mod in zip(docs.support_logp_ref, docs.support_logp_model):
        r, m = np.asarray(ref, dtype=float), np.asarray(mod, dtype=float)
        live = r > -np.inf
        if np.isnan(m[live]).any() or np.isnan(r).any():
            raise ValueError("support log-probs contain NaN")
        p = np.exp(r[live])
        yield p / p.sum(), r[live], m[live]


def per_doc_nll(docs: DocArrays) -> np.ndarray:
    """Per doc E_{π_ref(·|x)}[−log π̂(y|x)]: exact over an enumerated support, else the reference y's.
    The ``ce`` metric is its weighted mean; the leaderboard's paired bootstrap resamples it."""
    if docs.support_logp_ref is None or docs.support_logp_model is None:
        return -np.asarray(docs.logp_model, dtype=float)
    with np.errstate(invalid="ignore"):  # p·inf = inf: a support path with zero model mass
        return np.array([float(np.sum(p * -m)) for p, _, m in _supports(docs)])


def per_doc_ratios(docs: DocArrays, cov_ns: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per doc E_{π_ref(·|x)}[X] and P_{π_ref(·|x)}[X ≥ log N] for each N, shapes ([docs], [Ns, docs]),
    with X = log π_ref(y|x) − log π̂(y|x) (paper Eq. 4; exact over an enumerated support, paper.md §2.2
    step 5, else the single reference response's X)."""
    log_n = np.log(np.asarray(cov_ns, dtype=float))[:, None]
    if docs.support_logp_ref is None or docs.support_logp_model is None:
        x = np.asarray(docs.logp_ref, dtype=float) - np.asarray(docs.logp_model, dtype=float)
        if np.isnan(x).any():
            raise ValueError(f"log-ratio of doc {int(np.flatnonzero(np.isnan(x))[0])} is NaN")
        return x, (x[None, :] >= log_n).astype(float)
    kl_docs, cov_docs = [], []
    for p, r, m in _supports(docs):
        x = r - m
        with np.errstate(invalid="ignore"):  # an uncovered support path is honest +inf KL
            kl_docs.append(float(np.sum(np.where(p > 0, p * x, 0.0))))
        cov_docs.append((x[None, :] >= log_n) @ p)
    return np.asarray(kl_docs), np.stack(cov_docs, axis=1)


def single_answer(docs: DocArrays, reference: str) -> bool:
    """Gold tasks, or known-π_D tasks whose every doc has a deterministic π_D (log π_D = 0)."""
    if reference == "gold":
        return True
    if docs.support_logp_ref is not None:
        return all(len(s) == 1 for s in docs.support_logp_ref)
    return bool(np.all(np.asarray(docs.logp_ref) == 0.0))


def _predicted(docs: DocArrays, w: np.ndarray, pass_ns: tuple[float, ...]) -> dict[str, Estimate]:
    per = metrics.pass_at_n_per_prompt(docs.logp_model, pass_ns)
    out = _estimates([metric_key("pass_pred", n) for n in pass_ns], per, w)
    x = np.asarray(docs.logp_ref, dtype=float) - np.asarray(docs.logp_model, dtype=float)
    bracket = metrics.pass_bracket(x, np.asarray(pass_ns, dtype=float), w)
    for i, n in enumerate(pass_ns):
        out[metric_key("pass_pred_lo", n)] = Estimate(value=float(bracket.lo[i]))
        out[metric_key("pass_pred_hi", n)] = Estimate(value=float(bracket.hi[i]))
    return out


def _sampled(samples: SampleArrays, pass_ns: tuple[float, ...]) -> dict[str, Estimate]:
    """Unbiased Pass@N per prompt from the first n samples of each (n = the smallest row); N > n: NaN."""
    n = samples.n
    c = np.array([sum(row[:n]) for row in samples.correct], dtype=np.int64)
    ks = np.asarray(pass_ns, dtype=np.int64)[:, None]
    per = metrics.pass_at_k(np.full_like(c, n)[None, :], c[None, :], ks)
    return _estimates([metric_key("pass_sampled", k) for k in pass_ns], per, np.ones(c.size))
