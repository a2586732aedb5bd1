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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import groupby

import numpy as np

from covbench import metrics, summarize
from covbench.records import Estimate, RunRecord, metric_key
from covbench.store import slug

from .defaults import PAIRS, TaskNs, task_ns

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
    """Kendall τ of a proxy's ranking against the Pass@N ranking, with its bootstrap interval.

    The point and the interval come from the same per-prompt arrays (the models that have them,
    on the prompts they share): the point is τ of the full-sample means, the interval is the
    percentile interval of τ over paired prompt resamples, re-centred on the point
    (:func:`_centred_interval`). Only when fewer than two
    models have per-prompt arrays is the point τ of the stored metrics, without an interval.
    """

    tau: float
    lo: float
    hi: float
    rho: float
    n_models: int  # models behind the point value (and the interval)
    n_ranked: int  # models ranked on the table by stored CE/Cov and Pass@N
    n_prompts: int
    source: str  # "per-prompt" or "stored"

    @property
    def n_boot_models(self) -> int:
        return self.n_models if self.source == "per-prompt" else 0


@dataclass(frozen=True)
class TaskBoard:
    task: str
    slug: str
    reference: str
    ns: TaskNs
    rows: tuple[Row, ...]
    tau_ce: Agreement | None  # None only inside a BoardPlan, before its τ work is done
    tau_cov: Agreement | None
    picks_ce: tuple[str, ...]
    picks_cov: tuple[str, ...]
    picks_pass: tuple[str, ...]
    headline: str


def _ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    # metrics.ranks gives competition ranks (ties share the best rank) and 0 for missing.
    r = metrics.ranks(values, higher_is_better).astype(np.float64)
    return np.where(r == 0, np.nan, r)


def _sampler(record: RunRecord, paired: Mapping[str, RunRecord]) -> RunRecord:
    """The record holding this model's sampled generations: its sampling task's, if paired."""
    return paired.get(record.model, record)


def build_rows(records: Sequence[RunRecord], ns: TaskNs,
               paired: Mapping[str, RunRecord] | None = None) -> tuple[Row, ...]:
    """Rows of one task (records sorted by model), with ranks and flips from the stored metrics.

    ``paired`` maps a model to its record on the sampling task paired with this one
    (:data:`leaderboard.defaults.PAIRS`): its measured Pass@N fills this task's row.
    """
    paired = paired or {}
    k = {name: metric_key(name, n) for name, n in (("ce", None), ("kl", None), ("cov", ns.cov_n),
                                                   ("pass_sampled", ns.pass_n), ("pass_exact", ns.pass_n),
                                                   ("pass_pred", ns.pass_n), ("pass_pred_lo", ns.pass_n),
                                                   ("pass_pred_hi", ns.pass_n))}

    def get(record: RunRecord, name: str) -> Estimate:
        return record.metrics.get(k[name], MISSING)

    names = [r.model for r in records]
    measured = [get(_sampler(r, paired), "pass_sampled") for r in records]
    exact = [get(r, "pass_exact") for r in records]
    sources = ["measured" if math.isfinite(m.value) else ("exact" if math.isfinite(x.value) else "")
               for m, x in zip(measured, exact)]
    ce = np.array([get(r, "ce").value for r in records], dtype=np.float64)
    cov = np.array([get(r, "cov").value for r in records], dtype=np.float64)
    pas = np.array([m.value if s == "measured" else x.value for m, x, s in zip(measured, exact, sources)],
                   dtype=np.float64)
    rank_ce, rank_cov, rank_pass = _ranks(ce, False), _ranks(cov, False), _ranks(pas, True)
    flips_ce = {f.model for f in metrics.rank_flips(names, ce, pas, False, True)}
    flips_cov = {f.model for f in metrics.rank_flips(names, cov, pas, False, True)}
    return tuple(
        Row(model=r.model, slug=slug(r.model), family=r.family, step=r.step, description=r.description,
            time=r.provenance.time, ce=get(r, "ce"), kl=get(r, "kl"), cov=get(r, "cov"),
            pass_measured=measured[i], pass_exact=exact[i], pass_pred=get(r, "pass_pred"),
            pass_pred_lo=get(r, "pass_pred_lo").value, pass_pred_hi=get(r, "pass_pred_hi").value,
            pass_source=sources[i], rank_ce=float(rank_ce[i]), rank_cov=float(rank_cov[i]),
            rank_pass=float(rank_pass[i]), flip_ce=r.model in flips_ce, flip_cov=r.model in flips_cov)
        for i, r in enumerate(records))


# ---- per-prompt arrays for the paired bootstrap -----------------------------------------------

def _common_docs(records: Sequence[RunRecord]) -> list[int]:
    lists = [r.docs.doc_id for r in records if r.docs is not None]
    if not lists:
        return []
    if all(ids == lists[0] for ids in lists):  # the usual case: every model scored the same prompts
        return sorted(lists[0])
    return sorted(set.intersection(*(set(ids) for ids in lists)))


def _index(doc_id: list[int], doc_ids: list[int]) -> np.ndarray | slice:
    if doc_id == doc_ids:
        return slice(None)
    at = {d: i for i, d in enumerate(doc_id)}
    return np.array([at[d] for d in doc_ids], dtype=np.int64)


def _per_prompt(record: RunRecord, sampler: RunRecord, source: str, ns: TaskNs, doc_ids: list[int]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(−log π̂, Cov indicator, per-prompt Pass@N, weight) on ``doc_ids``, or None if not stored.

    Each column's weighted mean over prompts is the stored metric, computed per prompt by the same
    functions that computed the store's values (``covbench.summarize.per_doc_nll`` /
    ``per_doc_ratios``: exact over an enumerated support, paper.md §2.2 step 5); Pass@N = mean of the unbiased
    per-prompt estimator from samples (paper.md §7, from ``sampler``, the record that holds the
    samples), or of 1 − (1 − π̂(S_x|x))^N when exact.
    """
    docs = record.docs
    if docs is None:
        return None
    idx = _index(docs.doc_id, doc_ids)
    nll = summarize.per_doc_nll(docs)[idx]
    cov = summarize.per_doc_ratios(docs, (ns.cov_n,))[1][0][idx]
    if source == "measured":
        samples = sampler.samples
        if samples is None or (samples.doc_id != doc_ids and not set(doc_ids).issubset(samples.doc_id)):
            return None
        s_idx = _index(samples.doc_id, doc_ids)
        rows = samples.correct if isinstance(s_idx, slice) else [samples.correct[i] for i in s_idx]
        # (n, c) per prompt; the unbiased estimator runs once for all models in _agreements.
        passes = np.array([list(map(len, rows)), list(map(sum, rows))], dtype=np.float64)
    elif source == "exact" and docs.logp_correct is not None:
        passes = metrics.pass_at_n_per_prompt(np.asarray(docs.logp_correct)[idx], [ns.pass_n])[0]
    else:
        return None
    weight = np.ones(nll.size) if docs.weight is None else np.asarray(docs.weight, dtype=np.float64)[idx]
    arrays = (nll, cov, np.asarray(passes, dtype=np.float64), weight)
    return None if np.isnan(np.concatenate([a.ravel() for a in arrays])).any() else arrays


def _pass_matrix(per: Sequence[tuple[np.ndarray, ...]], pass_n: float) -> np.ndarray:
    """``[models, prompts]`` per-prompt Pass@N: exact rows as stored, sampled rows from their (n, c)."""
    out = np.empty((len(per), per[0][0].size))
    sampled = [i for i, a in enumerate(per) if a[2].ndim == 2]
    for i, a in enumerate(per):
        if a[2].ndim == 1:
            out[i] = a[2]
    if sampled:
        nc = np.stack([per[i][2] for i in sampled]).astype(np.int64)  # [models, 2, prompts]
        # Few distinct (n, c) pairs (n samples, c correct): evaluate the estimator once per pair.
        stride = int(nc.max()) + 1
        keys, inverse = np.unique(nc[:, 0] * stride + nc[:, 1], return_inverse=True)
        values = metrics.pass_at_k(keys // stride, keys % stride, int(pass_n))
        out[sampled] = values[inverse.reshape(-1)].reshape(len(sampled), -1)
    return out


def _resampled_means(values: np.ndarray, counts: np.ndarray, total: np.ndarray) -> np.ndarray:
    """``[models, resamples]`` weighted means; a resample that draws a ±inf prompt has mean ±inf.

    (A plain product would give inf·0 = NaN where the inf prompt is not drawn; −log π̂ = +inf for
    a reference response the model gives zero probability.) Drawing both +inf and −inf: NaN.
    """
    inf = np.isinf(values)
    finite = np.where(inf, 0.0, values) @ counts.T / total
    if not inf.any():
        return finite
    pos = (np.isposinf(values).astype(np.float64) @ counts.T) > 0
    neg = (np.isneginf(values).astype(np.float64) @ counts.T) > 0
    return np.where(pos & neg, np.nan, np.where(pos, np.inf, np.where(neg, -np.inf, finite)))


def _centred_interval(point: float, reps: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates, re-centred so that its median is ``point``.

    τ over resampled means is attenuated towards 0 (resampling adds noise to every model's mean,
    which breaks ties and swaps close models), so the replicates sit below |τ̂| and a plain
    percentile interval can miss the full-sample τ̂ entirely. We estimate that bias as
    median(τ*) − τ̂ and remove it: [τ̂ + q_{α/2} − m, τ̂ + q_{1−α/2} − m] with m = median(τ*),
    clipped to [−1, 1]. The width is the percentile interval's; it always contains the point.

    >>> [round(v, 6) for v in _centred_interval(0.9, np.array([0.7, 0.8, 0.8, 0.9]))]
    [0.8, 1.0]
    """
    reps = reps[~np.isnan(reps)]
    if reps.size == 0 or math.isnan(point):
        return math.nan, math.nan
    alpha = (1.0 - level) / 2.0
    shift = point - float(np.median(reps))
    lo = float(np.quantile(reps, alpha, method="lower")) + shift
    hi = float(np.quantile(reps, 1 - alpha, method="higher")) + shift
    return max(-1.0, lo), min(1.0, hi)


@dataclass(frozen=True)
class TauJob:
    """One task's τ work, ready to run anywhere (plain arrays): the bootstrap means of CE, Cov and
    Pass@N, ``[models, 1 + B]`` each (column 0: every prompt once, the point), or the stored-metric
    agreements when fewer than two models have per-prompt arrays."""

    means: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    n_ranked: int
    n_prompts: int
    stored: tuple[Agreement, Agreement] | None = None


def _tau_job(records: Sequence[RunRecord], rows: Sequence[Row], ns: TaskNs, B: int,
             paired: Mapping[str, RunRecord]) -> TauJob:
    """The per-prompt arrays of the ranked models, resampled: everything τ needs but τ itself."""
    ranked = [(rec, row) for rec, row in zip(records, rows)
              if not (math.isnan(row.rank_ce) or math.isnan(row.rank_cov) or math.isnan(row.rank_pass))]
    doc_ids = _common_docs([rec for rec, _ in ranked])
    for rec, row in ranked:  # sampled Pass@N: only the prompts that were sampled (a paired task's may be fewer)
        sampler = _sampler(rec, paired)
        if row.pass_source == "measured" and sampler is not rec and sampler.samples is not None:
            doc_ids = sorted(set(doc_ids) & set(sampler.samples.doc_id))
    per = [a for a in (_per_prompt(rec, _sampler(rec, paired), row.pass_source, ns, doc_ids)
                       for rec, row in ranked) if a is not None] if doc_ids else []
    if len(per) < 2:  # no per-prompt arrays to speak of: the stored metrics, no interval
        ce, cov, pas = (np.array([getattr(r, a).value for _, r in ranked]) for a in ("ce", "cov", "pass_used"))
        stored = tuple(Agreement(tau=metrics.kendall_tau(-col, pas), lo=math.nan, hi=math.nan,
                                 rho=metrics.spearman(-col, pas), n_models=len(ranked), n_ranked=len(ranked),
                                 n_prompts=0, source="stored") for col in (ce, cov))
        return TauJob(means=None, n_ranked=len(ranked), n_prompts=0, stored=stored)  # type: ignore[arg-type]
    weights = per[0][3]
    # Row 0: every prompt once (the point); rows 1..B: the paired resamples (the same for every model).
    counts = np.vstack([np.ones((1, weights.size)), metrics.bootstrap_counts(weights.size, B, BOOTSTRAP_SEED)])
    counts = counts * weights
    total = counts.sum(axis=1)
    usable = total > 0
    columns = [np.stack([a[0] for a in per]), np.stack([a[1] for a in per]), _pass_matrix(per, ns.pass_n)]
    if np.isnan(columns[2]).any():  # k > n samples somewhere: Pass@N is not measured there
        columns = [c[~np.isnan(columns[2]).any(axis=1)] for c in columns]
    ce, cov, pas = (_resampled_means(c, counts[usable], total[usable]) for c in columns)
    return TauJob(means=(ce, cov, pas), n_ranked=len(ranked), n_prompts=len(doc_ids))


def agreements(job: TauJob) -> tuple[Agreement, Agreement]:
    """τ(CE, Pass@N) and τ(Cov, Pass@N) with bootstrap intervals, from the same resampled means."""
    if job.means is None:
        return job.stored  # type: ignore[return-value]
    *proxies, pas = job.means
    n_models = pas.shape[0]
    out = []
    for proxy in proxies:  # both oriented "higher is better"
        taus = metrics.kendall_tau_fast(-proxy.T, pas.T)
        lo, hi = _centred_interval(float(taus[0]), taus[1:]) if n_models >= 3 else (math.nan, math.nan)
        out.append(Agreement(tau=float(taus[0]), lo=lo, hi=hi, rho=metrics.spearman(-proxy[:, 0], pas[:, 0]),
                             n_models=n_models, n_ranked=job.n_ranked, n_prompts=job.n_prompts,
                             source="per-prompt"))
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


@dataclass(frozen=True)
class _TauInput:
    """What one task's τ needs; turning it into a :class:`TauJob` (per-prompt arrays, resampled
    means) is part of the τ work, so it can run in another process too."""

    records: Sequence[RunRecord]
    rows: tuple[Row, ...]
    ns: TaskNs
    B: int
    paired: Mapping[str, RunRecord]

    def job(self) -> TauJob:
        return _tau_job(self.records, self.rows, self.ns, self.B, self.paired)


def _plan_board(task: str, records: Sequence[RunRecord], B: int,
                paired: Sequence[RunRecord] = ()) -> tuple[TaskBoard, _TauInput]:
    """The board of one task (records: one per model, sorted by model), τ not yet computed.

    ``paired``: the records of the sampling task that pairs with this one (its measured Pass@N).
    """
    ns = task_ns(task)
    by_model = {r.model: r for r in paired}
    rows = build_rows(records, ns, by_model)
    picks = [_picks(rows, a) for a in ("rank_ce", "rank_cov", "rank_pass")]
    references = sorted({r.reference for r in records})
    board = TaskBoard(task=task, slug=slug(task), reference="/".join(references), ns=ns, rows=rows,
                      tau_ce=None, tau_cov=None, picks_ce=picks[0], picks_cov=picks[1],
                      picks_pass=picks[2], headline=headline(*picks, ns.pass_n, ns.cov_n))
    return board, _TauInput(records=records, rows=rows, ns=ns, B=B, paired=by_model)


@dataclass(frozen=True)
class BoardPlan:
    """Every task's board without its τ (rows, ranks, picks: quick), and the τ work left to do
    (per-prompt arrays, resampled means, the bootstrap: most of the time), which may run in
    another process (:mod:`leaderboard.background`)."""

    boards: list[TaskBoard]
    inputs: list[_TauInput]

    def agreements(self) -> list[tuple[Agreement, Agreement]]:
        """Each board's τ(CE, Pass@N) and τ(Cov, Pass@N) with their bootstrap intervals."""
        return [agreements(i.job()) for i in self.inputs]

    def complete(self, results: Sequence[tuple[Agreement, Agreement]]) -> list[TaskBoard]:
        """The boards with their τ: ``results`` is :meth:`agreements`."""
        return [replace(b, tau_ce=ce, tau_cov=cov) for b, (ce, cov) in zip(self.boards, results, strict=True)]


def plan_boards(records: Sequence[RunRecord], B: int = BOOTSTRAP_B) -> BoardPlan:
    """One board per task, in task order (``records`` as :func:`covbench.store.scan` returns them).

    A sampling task paired with a scoring task that is in the store (:data:`defaults.PAIRS`) gets
    no board of its own: its measured Pass@N is shown on the scoring task's rows.
    """
    ordered = sorted(records, key=lambda r: (r.task, r.model))
    by_task = {task: list(group) for task, group in groupby(ordered, key=lambda r: r.task)}
    merged = {sampler for sampler, scorer in PAIRS.items() if sampler in by_task and scorer in by_task}
    samplers = {PAIRS[t]: by_task[t] for t in merged}
    planned = [_plan_board(task, recs, B, samplers.get(task, ())) for task, recs in by_task.items()
               if task not in merged]
    return BoardPlan(boards=[b for b, _ in planned], inputs=[i for _, i in planned])


def build_boards(records: Sequence[RunRecord], B: int = BOOTSTRAP_B) -> list[TaskBoard]:
    """:func:`plan_boards` with the τ work done here."""
    plan = plan_boards(records, B)
    return plan.complete(plan.agreements())
