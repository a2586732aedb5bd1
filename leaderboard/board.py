"""Per-task leaderboard tables: the stored metrics of every model, their ranks, and rank agreement.

For each task: CE, KL, Cov at the task's N/2 and Pass@N (measured, exact, predicted) from the
store; the ranks by CE (lower is better), by coverage (lower is better: Cov_N is a bad tail) and
by Pass@N (higher is better; measured when stored, else exact); the models whose CE or coverage
rank differs from their Pass@N rank; and Kendall τ of each proxy against Pass@N with paired
bootstrap intervals over prompts (every model sees the same resampled prompts). All statistics
come from :mod:`covbench.metrics`; this module only picks the columns and the per-prompt arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np

from covbench import metrics
from covbench.records import Estimate, RunRecord, metric_key
from covbench.store import slug

from .defaults import TaskNs, task_ns

MISSING = Estimate(value=math.nan)
BOOTSTRAP_B = 200  # resamples per τ interval (percentile CIs at 95%)
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Row:
    """One model on one task, as the index table shows it. NaN = missing; rank NaN = not ranked."""

    model: str
    slug: str
    family: str | None
    step: int | None
    description: str
    time: str
    ce: Estimate
    kl: Estimate
    cov: Estimate
    pass_measured: Estimate
    pass_exact: Estimate
    pass_pred: Estimate
    pass_pred_lo: float
    pass_pred_hi: float
    pass_source: str  # "measured", "exact" or "" (neither stored)
    rank_ce: float
    rank_cov: float
    rank_pass: float
    flip_ce: bool  # CE rank differs from the Pass@N rank
    flip_cov: bool  # coverage rank differs from the Pass@N rank

    @property
    def pass_used(self) -> Estimate:
        return self.pass_measured if self.pass_source == "measured" else (
            self.pass_exact if self.pass_source == "exact" else MISSING)


@dataclass(frozen=True)
class Agreement:
    """Kendall τ of a proxy's ranking against the Pass@N ranking, with its bootstrap interval."""

    tau: float
    lo: float
    hi: float
    rho: float
    n_models: int  # models ranked by both (the point value)
    n_boot_models: int  # models with per-prompt arrays on the common prompts (the interval)
    n_prompts: int


@dataclass(frozen=True)
class TaskBoard:
    task: str
    slug: str
    reference: str
    ns: TaskNs
    rows: tuple[Row, ...]
    tau_ce: Agreement
    tau_cov: Agreement
    picks_ce: tuple[str, ...]
    picks_cov: tuple[str, ...]
    picks_pass: tuple[str, ...]
    headline: str


def _get(record: RunRecord, name: str, n: float | None = None) -> Estimate:
    return record.metrics.get(metric_key(name, n), MISSING)


def _ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    # metrics.ranks gives competition ranks (ties share the best rank) and 0 for missing.
    r = metrics.ranks(values, higher_is_better).astype(np.float64)
    return np.where(r == 0, np.nan, r)


def _pass_source(record: RunRecord, n: float) -> str:
    if math.isfinite(_get(record, "pass_sampled", n).value):
        return "measured"
    return "exact" if math.isfinite(_get(record, "pass_exact", n).value) else ""


def build_rows(records: Sequence[RunRecord], ns: TaskNs) -> tuple[Row, ...]:
    """Rows of one task (records sorted by model), with ranks and flips from the stored metrics."""
    names = [r.model for r in records]
    sources = [_pass_source(r, ns.pass_n) for r in records]
    ce = np.array([_get(r, "ce").value for r in records], dtype=np.float64)
    cov = np.array([_get(r, "cov", ns.cov_n).value for r in records], dtype=np.float64)
    pas = np.array([_get(r, "pass_sampled" if s == "measured" else "pass_exact", ns.pass_n).value
                    for r, s in zip(records, sources)], dtype=np.float64)
    rank_ce, rank_cov, rank_pass = _ranks(ce, False), _ranks(cov, False), _ranks(pas, True)
    flips_ce = {f.model for f in metrics.rank_flips(names, ce, pas, False, True)}
    flips_cov = {f.model for f in metrics.rank_flips(names, cov, pas, False, True)}
    return tuple(
        Row(model=r.model, slug=slug(r.model), family=r.family, step=r.step, description=r.description,
            time=r.provenance.time, ce=_get(r, "ce"), kl=_get(r, "kl"), cov=_get(r, "cov", ns.cov_n),
            pass_measured=_get(r, "pass_sampled", ns.pass_n), pass_exact=_get(r, "pass_exact", ns.pass_n),
            pass_pred=_get(r, "pass_pred", ns.pass_n), pass_pred_lo=_get(r, "pass_pred_lo", ns.pass_n).value,
            pass_pred_hi=_get(r, "pass_pred_hi", ns.pass_n).value, pass_source=sources[i],
            rank_ce=float(rank_ce[i]), rank_cov=float(rank_cov[i]), rank_pass=float(rank_pass[i]),
            flip_ce=r.model in flips_ce, flip_cov=r.model in flips_cov)
        for i, r in enumerate(records))


# ---- per-prompt arrays for the paired bootstrap -----------------------------------------------

def _per_prompt(record: RunRecord, source: str, ns: TaskNs, doc_ids: Sequence[int]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(−log π̂, Cov indicator, per-prompt Pass@N, weight) on ``doc_ids``, or None if not stored.

    Each column's weighted mean over prompts is the stored metric: CE = mean −log π̂ (paper §1.3);
    Cov_N = mean 1[X ≥ log N] with X = log π_ref − log π̂, or with an enumerated support the
    per-prompt π_ref-mass of {X ≥ log N} (paper.md §2.2 step 5); Pass@N = mean of the unbiased
    per-prompt estimator from samples, or of 1 − (1 − π̂(S_x|x))^N when exact.
    """
    docs = record.docs
    if docs is None:
        return None
    at = {d: i for i, d in enumerate(docs.doc_id)}
    idx = np.array([at[d] for d in doc_ids])
    lp = np.asarray(docs.logp_model, dtype=np.float64)[idx]
    ref = np.asarray(docs.logp_ref, dtype=np.float64)[idx]
    log_n = math.log(ns.cov_n)
    if docs.support_logp_ref is not None and docs.support_logp_model is not None:
        cov = np.array([float(np.sum(np.exp(np.asarray(docs.support_logp_ref[i])) *
                                     ((np.asarray(docs.support_logp_ref[i]) -
                                       np.asarray(docs.support_logp_model[i])) >= log_n)))
                        for i in idx])
    else:
        with np.errstate(invalid="ignore"):
            cov = (ref - lp >= log_n).astype(np.float64)
    if source == "measured":
        if record.samples is None:
            return None
        s_at = {d: i for i, d in enumerate(record.samples.doc_id)}
        if any(d not in s_at for d in doc_ids):
            return None
        rows = [record.samples.correct[s_at[d]] for d in doc_ids]
        passes = metrics.pass_at_k(np.array([len(r) for r in rows]), np.array([sum(r) for r in rows]),
                                   int(ns.pass_n))
    elif source == "exact" and docs.logp_correct is not None:
        passes = metrics.pass_at_n_per_prompt(np.asarray(docs.logp_correct)[idx], [ns.pass_n])[0]
    else:
        return None
    weight = np.ones(idx.size) if docs.weight is None else np.asarray(docs.weight, dtype=np.float64)[idx]
    arrays = (-lp, cov, np.asarray(passes, dtype=np.float64), weight)
    return None if any(np.isnan(a).any() for a in arrays) else arrays


def _agreements(records: Sequence[RunRecord], rows: Sequence[Row], ns: TaskNs,
                B: int) -> tuple[Agreement, Agreement]:
    """τ(CE, Pass@N) and τ(Cov, Pass@N): point values on the stored metrics, intervals by bootstrap."""
    ranked = [(rec, row) for rec, row in zip(records, rows)
              if not (math.isnan(row.rank_ce) or math.isnan(row.rank_cov) or math.isnan(row.rank_pass))]
    common: set[int] | None = None
    for rec, _ in ranked:
        if rec.docs is not None:
            common = set(rec.docs.doc_id) if common is None else common & set(rec.docs.doc_id)
    doc_ids = sorted(common or ())
    per = [(row.model, _per_prompt(rec, row.pass_source, ns, doc_ids)) for rec, row in ranked]
    per = [(m, a) for m, a in per if a is not None]
    pas = np.array([r.pass_used.value for r in rows])
    out = []
    columns = ((np.array([r.ce.value for r in rows]), 0), (np.array([r.cov.value for r in rows]), 1))
    boot = _bootstrap_taus(per, B) if len(per) >= 3 and doc_ids else None
    for (column, k), (lo, hi) in zip(columns, boot or ((math.nan, math.nan), (math.nan, math.nan))):
        out.append(Agreement(tau=metrics.kendall_tau(-column, pas),  # both oriented "higher is better"
                             lo=lo, hi=hi, rho=metrics.spearman(-column, pas), n_models=len(ranked),
                             n_boot_models=len(per), n_prompts=len(doc_ids)))
    return out[0], out[1]


def _bootstrap_taus(per: Sequence[tuple[str, tuple[np.ndarray, ...]]], B: int
                    ) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile 95% intervals of τ(CE, Pass@N) and τ(Cov, Pass@N) over paired prompt resamples.

    Resample b weights prompt i by its count C[b, i] (metrics.bootstrap_counts: the same resamples
    for every model), so each model's resampled mean is one matrix product; τ per resample is
    metrics.kendall_tau (scipy, O(M log M)), which keeps 1,000 models affordable where the
    all-pairs ``rank_comparison`` is O(M²) per resample.
    """
    weights = per[0][1][3]
    counts = metrics.bootstrap_counts(weights.size, B, BOOTSTRAP_SEED) * weights  # [B, prompts]
    total = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = [np.stack([a[k] for _, a in per]) @ counts.T / total for k in range(3)]  # [models, B]
    usable = total > 0
    out = []
    for proxy in means[:2]:
        taus = np.array([metrics.kendall_tau(-proxy[:, b], means[2][:, b]) for b in np.flatnonzero(usable)])
        taus = taus[~np.isnan(taus)]
        out.append((float(np.quantile(taus, 0.025)), float(np.quantile(taus, 0.975))) if taus.size
                   else (math.nan, math.nan))
    return out[0], out[1]


# ---- the headline --------------------------------------------------------------------------

def _picks(rows: Sequence[Row], attr: str) -> tuple[str, ...]:
    return tuple(r.model for r in rows if getattr(r, attr) == 1.0)


def _names(picks: Sequence[str]) -> str:
    return " and ".join(picks) if picks else "no model"


def headline(picks_ce: Sequence[str], picks_cov: Sequence[str], picks_pass: Sequence[str],
             pass_n: float, cov_n: float) -> str:
    """One sentence: which model each proxy ranks first and which of them Pass@N agrees with.

    >>> headline(("a",), ("b",), ("b",), 8.0, 4.0)
    'CE picks a, Cov_4 picks b; Pass@8 follows coverage (best: b).'
    >>> headline(("a",), ("a",), ("a",), 8.0, 4.0)
    'CE and Cov_4 both pick a; Pass@8 agrees (best: a).'
    """
    n, c = metric_key("Pass", pass_n), metric_key("Cov", cov_n).replace("@", "_")
    best = set(picks_pass)
    if not best:
        return f"CE picks {_names(picks_ce)}, {c} picks {_names(picks_cov)}; {n} is not stored."
    if set(picks_ce) == set(picks_cov):
        verdict = "agrees" if set(picks_ce) & best else "disagrees with both"
        return f"CE and {c} both pick {_names(picks_ce)}; {n} {verdict} (best: {_names(picks_pass)})."
    by_ce, by_cov = bool(set(picks_ce) & best), bool(set(picks_cov) & best)
    follows = {(True, False): "follows CE", (False, True): "follows coverage",
               (True, True): "is split between them", (False, False): "follows neither"}[(by_ce, by_cov)]
    return (f"CE picks {_names(picks_ce)}, {c} picks {_names(picks_cov)}; "
            f"{n} {follows} (best: {_names(picks_pass)}).")


def build_board(task: str, records: Sequence[RunRecord], B: int = BOOTSTRAP_B) -> TaskBoard:
    """The leaderboard of one task from its records (one per model, sorted by model)."""
    ns = task_ns(task)
    rows = build_rows(records, ns)
    tau_ce, tau_cov = _agreements(records, rows, ns, B)
    picks = [_picks(rows, a) for a in ("rank_ce", "rank_cov", "rank_pass")]
    references = sorted({r.reference for r in records})
    return TaskBoard(task=task, slug=slug(task), reference="/".join(references), ns=ns, rows=rows,
                     tau_ce=tau_ce, tau_cov=tau_cov, picks_ce=picks[0], picks_cov=picks[1],
                     picks_pass=picks[2], headline=headline(*picks, ns.pass_n, ns.cov_n))


def build_boards(records: Sequence[RunRecord], B: int = BOOTSTRAP_B) -> list[TaskBoard]:
    """One board per task, in task order (``records`` as :func:`covbench.store.scan` returns them)."""
    ordered = sorted(records, key=lambda r: (r.task, r.model))
    return [build_board(task, list(group), B) for task, group in groupby(ordered, key=lambda r: r.task)]
