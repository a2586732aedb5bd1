"""Per-prompt values of a run, and the run's metrics with bootstrap CIs over prompts.

This module is the one implementation of every per-prompt value (docs/coverage-principle.md#estimators):
the store's metrics (:func:`summarize`), the values lm-eval aggregates inside a task (``covbench.taskglue``,
one prompt at a time), the leaderboard's rank statistics and the suite's checks all call these functions.

Per prompt x (vectorised over prompts; an enumerated support S_x is one :class:`~covbench.records.Ragged`
row, and only its live entries, π_ref(y|x) > 0, count):

- ``nll``: E_{π_ref(·|x)}[−log π̂(y|x)] (exact over S_x, else −log π̂ of the reference response);
- ``kl`` (known π_D): E_{π_ref(·|x)}[X] with X = log π_ref(y|x) − log π̂(y|x);
- ``cov@N``: P_{π_ref(·|x)}[X ≥ log N] (paper Eq. 4; exact over S_x, else the indicator 1[X ≥ log N]);
- ``pass_exact@N``: 1 − (1 − π̂(S_x|x))^N from the scored correct set;
- ``pass_pred@N``: 1 − (1 − π̂(y*|x))^N from the reference answer alone (single-answer tasks), and the
  bracket that Cov alone implies (docs/coverage-principle.md#bon-sandwich);
- ``pass_sampled@N``: the unbiased estimator 1 − C(n−c, N)/C(n, N) from n samples; N > n is missing.

A metric is the weighted mean of its per-prompt values over prompts (weights: the docs' class-mixture
weights; ``ce_per_token`` and ``bpb`` weight by token and byte counts, a ratio of sums), with a paired
percentile bootstrap CI (:func:`covbench.metrics.paired_bootstrap`).

One metric is not a mean of per-prompt values: ``cov_set@M``, the coverage of the correct set
Cov_M = P_x[π̂(S_x|x) ≤ 1/M], estimated from every sampling run's verdicts by
:func:`covbench.metrics.verifier_coverage` (docs/verifier-coverage.md): its NPMLE point, its
finite-sample interval and the bootstrap spread of the point, for the M of the grid that the run's n
resolves (M ≤ n/2). On a task whose verifier matches final answers it is the answer-level coverage of
paper §7.1 (docs/verifier-coverage.md §8, docs/humaneval.md#cov-set).
"""

from __future__ import annotations

import math

import numpy as np

from covbench import metrics
from dataclasses import dataclass

from covbench.records import DocArrays, Estimate, RankNs, SampleArrays, metric_key

BOOTSTRAP_B = 1000
BOOTSTRAP_SEED = 0
#: Resamples for the stderr of ``cov_set@M`` (each refits the NPMLE; its interval does not use them).
COV_SET_B = 200


# ---- per-prompt values -----------------------------------------------------------------------------


def _support(docs: DocArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Live support entries: (row of each entry, normalised π_ref(y|x), log π_ref, log π̂)."""
    ref, mod = docs.support_logp_ref, docs.support_logp_model
    assert ref is not None and mod is not None
    row = np.repeat(np.arange(len(docs)), ref.lengths)
    r, m = ref.values, mod.values
    if np.isnan(r).any() or np.isnan(m).any():
        raise ValueError("support log-probs contain NaN")
    live = r > -np.inf
    row, r, m = row[live], r[live], m[live]
    p = np.exp(r)
    total = np.bincount(row, weights=p, minlength=len(docs))
    with np.errstate(invalid="ignore", divide="ignore"):
        return row, p / total[row], r, m


def _row_sum(row: np.ndarray, values: np.ndarray, n: int, live_rows: np.ndarray) -> np.ndarray:
    """Σ per row (bincount keeps ±inf); rows without a live entry are NaN (no reference mass: missing)."""
    with np.errstate(invalid="ignore"):
        out = np.bincount(row, weights=values, minlength=n)
    return np.where(live_rows, out, np.nan)


def per_doc_nll(docs: DocArrays) -> np.ndarray:
    """Per prompt E_{π_ref(·|x)}[−log π̂(y|x)] (exact over an enumerated support)."""
    if not docs.has_support:
        return -docs.logp_model.astype(np.float64)
    row, p, _, m = _support(docs)
    live = np.bincount(row, minlength=len(docs)) > 0
    with np.errstate(invalid="ignore"):
        return _row_sum(row, np.where(p > 0, p * -m, 0.0), len(docs), live)


def per_doc_ratios(docs: DocArrays, cov_ns: tuple[float, ...] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt E[X] and P[X ≥ log N] for each N, shapes ([docs], [Ns, docs]) (paper Eq. 4)."""
    log_n = np.log(metrics._inputs.as_thresholds(cov_ns, "per_doc_ratios").reshape(-1))[:, None]
    if not docs.has_support:
        x = docs.logp_ref - docs.logp_model
        if np.isnan(x).any():
            raise ValueError(f"log-ratio of doc {int(docs.doc_id[np.flatnonzero(np.isnan(x))[0]])} is NaN")
        return x, (x[None, :] >= log_n).astype(np.float64)
    row, p, r, m = _support(docs)
    n = len(docs)
    live = np.bincount(row, minlength=n) > 0
    x = r - m
    with np.errstate(invalid="ignore"):  # an uncovered support path is an honest +inf KL
        kl = _row_sum(row, np.where(p > 0, p * x, 0.0), n, live)
    cov = np.stack([_row_sum(row, p * (x >= ln), n, live) for ln in log_n[:, 0]])
    return kl, cov


def per_doc_pass_exact(docs: DocArrays, pass_ns: tuple[float, ...]) -> np.ndarray | None:
    """``[Ns, docs]`` 1 − (1 − π̂(S_x|x))^N, or None when the correct set's mass is not stored."""
    if docs.logp_correct is None:
        return None
    return metrics.pass_at_n_per_prompt(docs.logp_correct, pass_ns)


def single_answer(docs: DocArrays, reference: str) -> bool:
    """Gold tasks, or known-π_D tasks whose every doc has a deterministic π_D (log π_D = 0)."""
    if reference == "gold":
        return True
    if docs.support_logp_ref is not None:
        return bool((docs.support_logp_ref.lengths == 1).all())
    return bool(np.all(docs.logp_ref == 0.0))


def per_doc_pass_pred(docs: DocArrays, pass_ns: tuple[float, ...]) -> np.ndarray:
    """``[Ns, docs]`` 1 − (1 − π̂(y*|x))^N: the single-answer prediction from scoring the reference."""
    return metrics.pass_at_n_per_prompt(docs.logp_model, pass_ns)


def per_doc_pass_sampled(samples: SampleArrays, pass_ns: tuple[float, ...], n: int | None = None) -> np.ndarray:
    """``[Ns, docs]`` unbiased Pass@N from the first ``n`` samples of each prompt (default: the smallest
    row, so every prompt uses the same n); NaN where N > n."""
    n = samples.n if n is None else n
    drawn, correct = samples.counts(n)
    ks = np.asarray(pass_ns, dtype=np.int64)[:, None]
    return metrics.pass_at_k(drawn[None, :], correct[None, :], ks)


# ---- the per-prompt vectors the views need -----------------------------------------------------------
# A board's τ needs each ranked model's per-prompt −log π̂, Cov_{N/2} indicator and Pass@N; a family's
# tournament needs log π̂ of the reference responses. The store's index keeps them for every latest run
# (computed once per run, when it is first indexed), so a site build reads no run file.


@dataclass(frozen=True, eq=False)
class Vectors:
    """Per prompt (aligned with ``doc_id``); None where the run has no such values.

    ``nll``: E_{π_ref}[−log π̂]; ``cov``: P[X ≥ log cov_n]; ``pass_exact``: exact Pass@pass_n;
    ``logp``: log π̂ of the reference response (the tournament's input); ``n`` / ``c``: samples drawn
    and correct (sampling runs); ``cls``: each prompt's class as a code into the task's
    ``TaskDescriptor.classes`` (−1: a label the descriptor does not list; None: no classes), so the views
    average the same per-prompt values within each class (docs/selection.md#per-class).
    """

    doc_id: np.ndarray
    weight: np.ndarray
    nll: np.ndarray | None = None
    cov: np.ndarray | None = None
    pass_exact: np.ndarray | None = None
    logp: np.ndarray | None = None
    n: np.ndarray | None = None
    c: np.ndarray | None = None
    cls: np.ndarray | None = None

    FIELDS = ("weight", "nll", "cov", "pass_exact", "logp", "n", "c", "cls")

    def pass_sampled(self, pass_n: float) -> np.ndarray | None:
        """Per-prompt unbiased Pass@pass_n from (n, c); NaN where n < pass_n."""
        if self.n is None or self.c is None:
            return None
        return metrics.pass_at_k(self.n, self.c, int(pass_n))


def class_codes(labels: tuple[str, ...] | None, classes: tuple[str, ...]) -> np.ndarray | None:
    """Each prompt's class as a code into ``classes`` (−1 for a label not listed); None without labels
    or without declared classes.

    >>> class_codes(("G2", "G1", "G9"), ("G1", "G2")).tolist()
    [1, 0, -1]
    """
    if labels is None or not classes:
        return None
    at = {c: i for i, c in enumerate(classes)}
    return np.array([at.get(c, -1) for c in labels], dtype=np.int64)


def vectors_of(arrays: tuple[DocArrays | None, SampleArrays | None], rank: RankNs,
               classes: tuple[str, ...] = ()) -> Vectors:
    """A run's :class:`Vectors` at ``rank`` (its task's N) from its (docs, samples) arrays; ``classes``:
    the task's class labels in display order (``TaskDescriptor.classes``)."""
    docs, samples = arrays
    if docs is not None and len(docs):
        exact = per_doc_pass_exact(docs, (rank.pass_n,))
        n = c = None
        if samples is not None and np.array_equal(samples.doc_id, docs.doc_id):
            n, c = samples.counts()  # a run holding both its scores and its samples
        return Vectors(doc_id=docs.doc_id, weight=docs.weights(), nll=per_doc_nll(docs),
                       cov=per_doc_ratios(docs, (rank.cov_n,))[1][0],
                       pass_exact=None if exact is None else exact[0], logp=docs.logp_model, n=n, c=c,
                       cls=class_codes(docs.cls, classes))
    if samples is not None and len(samples):
        n, c = samples.counts()
        return Vectors(doc_id=samples.doc_id, weight=np.ones(len(samples)), n=n, c=c)
    return Vectors(doc_id=np.zeros(0, np.int64), weight=np.zeros(0))


# ---- metrics ---------------------------------------------------------------------------------------


def _estimates(names: list[str], per_prompt: np.ndarray, weights: np.ndarray) -> dict[str, Estimate]:
    """Point value, 95% percentile CI and bootstrap stderr of each row's weighted mean."""
    ci = metrics.paired_bootstrap(per_prompt, weights, B=BOOTSTRAP_B, seed=BOOTSTRAP_SEED)
    return {name: Estimate(value=float(ci.value[i]), lo=float(ci.lo[i]), hi=float(ci.hi[i]),
                           stderr=float(ci.stderr[i])) for i, name in enumerate(names)}


def summarize(docs: DocArrays | None, samples: SampleArrays | None, reference: str, *,
              cov_ns: tuple[float, ...] = metrics.DEFAULT_COV_NS,
              pass_ns: tuple[float, ...] = metrics.DEFAULT_PASS_NS) -> dict[str, Estimate]:
    """All metrics of one run; keys as in :mod:`covbench.records`. Missing metrics are absent or NaN."""
    out: dict[str, Estimate] = {}
    if docs is not None and len(docs):
        out.update(_scored(docs, reference, cov_ns, pass_ns))
    if samples is not None and len(samples):
        per = per_doc_pass_sampled(samples, pass_ns)
        out.update(_estimates([metric_key("pass_sampled", k) for k in pass_ns], per, np.ones(len(samples))))
        out.update(cov_set(samples, cov_ns))
    return out


def cov_set(samples: SampleArrays, cov_ns: tuple[float, ...] = metrics.DEFAULT_COV_NS) -> dict[str, Estimate]:
    """``cov_set@M`` for each M of ``cov_ns`` that the verdicts resolve (M = 1, and M ≤ n/2 for the median
    n of samples per prompt, every sample of every prompt used): ``Estimate(value=point, lo, hi,
    stderr)`` from :func:`covbench.metrics.verifier_coverage` (docs/verifier-coverage.md §5–7).

    >>> s = SampleArrays(doc_id=[0, 1, 2, 3], generations=None, max_gen_toks=1,
    ...                  correct=[[True] * 4, [False] * 4, [True, False, False, False], [True, True, False, False]])
    >>> sorted(cov_set(s))
    ['cov_set@1', 'cov_set@1.5', 'cov_set@2']
    """
    drawn, correct = samples.counts()
    if not len(samples) or drawn.max() < 1:
        return {}
    candidates = [m for m in cov_ns if m == 1.0 or m <= drawn.max() / 2]
    r = metrics.verifier_coverage(drawn, correct, candidates, B=COV_SET_B, seed=BOOTSTRAP_SEED)
    return {metric_key("cov_set", m): Estimate(value=float(r.point[i]), lo=float(r.lo[i]), hi=float(r.hi[i]),
                                               stderr=float(r.stderr[i]))
            for i, m in enumerate(candidates) if r.resolved[i]}


def _scored(docs: DocArrays, reference: str, cov_ns: tuple[float, ...],
            pass_ns: tuple[float, ...]) -> dict[str, Estimate]:
    w = docs.weights()
    nll = per_doc_nll(docs)
    out = _estimates(["ce"], nll[None, :], w)
    for name, counts, scale in (("ce_per_token", docs.n_tokens, 1.0), ("bpb", docs.n_bytes, math.log(2.0))):
        c = counts.astype(np.float64)
        if (c > 0).all():
            out.update(_estimates([name], (nll / c / scale)[None, :], w * c))
    kl, cov = per_doc_ratios(docs, cov_ns)
    out.update(_estimates([metric_key("cov", n) for n in cov_ns], cov, w))
    if reference == "known":
        out.update(_estimates(["kl"], kl[None, :], w))
    exact = per_doc_pass_exact(docs, pass_ns)
    if exact is not None:
        out.update(_estimates([metric_key("pass_exact", n) for n in pass_ns], exact, w))
    if single_answer(docs, reference):
        out.update(_estimates([metric_key("pass_pred", n) for n in pass_ns], per_doc_pass_pred(docs, pass_ns), w))
        bracket = metrics.pass_bracket(docs.logp_ref - docs.logp_model, np.asarray(pass_ns, dtype=float), w)
        for i, n in enumerate(pass_ns):
            out[metric_key("pass_pred_lo", n)] = Estimate(value=float(bracket.lo[i]))
            out[metric_key("pass_pred_hi", n)] = Estimate(value=float(bracket.hi[i]))
    return out


def per_doc_values(docs: DocArrays | None, samples: SampleArrays | None, reference: str, *,
                   cov_ns: tuple[float, ...] = metrics.DEFAULT_COV_NS,
                   pass_ns: tuple[float, ...] = metrics.DEFAULT_PASS_NS) -> list[dict[str, float]]:
    """Every per-prompt value :func:`summarize` averages, one dict per prompt (store keys): what an lm-eval
    ``process_results`` returns for its doc, so lm-eval's own mean is the store's metric."""
    rows: list[dict[str, float]] = []
    if docs is not None and len(docs):
        nll = per_doc_nll(docs)
        kl, cov = per_doc_ratios(docs, cov_ns)
        exact = per_doc_pass_exact(docs, pass_ns)
        pred = per_doc_pass_pred(docs, pass_ns) if single_answer(docs, reference) else None
        tokens = docs.n_tokens.astype(np.float64)
        for d in range(len(docs)):
            row = {"ce": float(nll[d]), "ce_per_token": float(nll[d] / tokens[d]) if tokens[d] > 0 else math.nan}
            if reference == "known":
                row["kl"] = float(kl[d])
            row.update({metric_key("cov", n): float(cov[i, d]) for i, n in enumerate(cov_ns)})
            if exact is not None:
                row.update({metric_key("pass_exact", n): float(exact[i, d]) for i, n in enumerate(pass_ns)})
            if pred is not None:
                row.update({metric_key("pass_pred", n): float(pred[i, d]) for i, n in enumerate(pass_ns)})
            rows.append(row)
    if samples is not None and len(samples):
        per = per_doc_pass_sampled(samples, pass_ns, n=None)
        sampled = [{metric_key("pass_sampled", n): float(per[i, d]) for i, n in enumerate(pass_ns)}
                   for d in range(len(samples))]
        rows = sampled if not rows else [{**a, **b} for a, b in zip(rows, sampled)]
    return rows
