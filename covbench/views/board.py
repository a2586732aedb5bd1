"""Per-task boards: the stored metrics of every model, their ranks, and rank agreement (docs/site.md#boards).

For each task (a sampling task whose ``pairs_with`` scoring task is in the store joins that task's board):
CE, KL, Cov at the task's rank N/2 and Pass@N (measured, exact, predicted) from the store; the ranks by CE
(lower is better), by coverage (lower is better: Cov_N is a bad tail) and by Pass@N (higher is better;
the *used* Pass@N is the measured one where stored, else the exact one); the models whose CE or coverage
rank differs from their Pass@N rank; and Kendall τ of each proxy against Pass@N with its interval
(:func:`covbench.metrics.rank_agreement`). The thresholds come from the task's stored descriptor.
The terminal report and the site both show these boards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from covbench import metrics
from covbench.records import MISSING, Estimate, TaskDescriptor, estimate_of, metric_key
from covbench.store import Catalog, slug

from .vectors import Vectors

if TYPE_CHECKING:
    from .classes import ClassTable

GetVectors = Callable[[int], "Vectors | None"]


@dataclass(frozen=True)
class TaskGroup:
    """One board's inputs: the task's catalog entries (by model) and its paired sampler's, if any."""

    task: str
    descriptor: TaskDescriptor
    entries: tuple[int, ...]  # catalog indices, sorted by model
    samplers: dict[str, int]  # model -> catalog index of its run on the paired sampling task
    sampler_task: str | None


def groups(cat: Catalog) -> list[TaskGroup]:
    """One group per task, in task order; a paired sampling task with its scoring task in the store
    gets no group of its own (its measured Pass@N joins the scoring task's rows)."""
    by_task: dict[str, list[int]] = {}
    for i in range(len(cat)):
        by_task.setdefault(cat.task(i), []).append(i)
    merged = {t: cat.descriptors[ix[0]].pairs_with for t, ix in by_task.items()
              if cat.descriptors[ix[0]].kind == "sample" and cat.descriptors[ix[0]].pairs_with in by_task}
    into = {scorer: sampler for sampler, scorer in merged.items()}
    out = []
    for task in sorted(by_task):
        if task in merged:
            continue
        sampler = into.get(task)
        samplers = {cat.model(i): i for i in by_task[sampler]} if sampler else {}
        out.append(TaskGroup(task, cat.descriptors[by_task[task][0]], tuple(by_task[task]), samplers, sampler))
    return out


@dataclass(frozen=True)
class Row:
    """One model on one task. NaN = missing; rank NaN = not ranked."""

    model: str
    slug: str
    family: str | None
    step: int | None
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
        return {"measured": self.pass_measured, "exact": self.pass_exact}.get(self.pass_source, MISSING)


@dataclass(frozen=True)
class Agreement:
    """τ of a proxy's ranking against the Pass@N ranking: from per-prompt arrays with the pairwise-order
    interval (``source == "per-prompt"``), or, when fewer than two ranked models have arrays, from the
    stored metrics without an interval (``"stored"``)."""

    ci: metrics.TauCI
    n_ranked: int
    source: str


@dataclass(frozen=True)
class Board:
    task: str
    slug: str
    descriptor: TaskDescriptor
    sampler_task: str | None
    rows: tuple[Row, ...]
    tau_ce: Agreement
    tau_cov: Agreement
    picks_ce: tuple[str, ...]
    picks_cov: tuple[str, ...]
    picks_pass: tuple[str, ...]
    headline: str
    classes: ClassTable | None = None  # per-class CE, Cov, Pass@N (covbench.views.classes); None: no classes

    @property
    def n_models(self) -> int:
        return len(self.rows)


def pass_used(measured: Estimate, exact: Estimate) -> tuple[Estimate, str]:
    """The Pass@N a board ranks by: measured (sampled) where stored, else exact; with its source."""
    if not math.isnan(measured.value):
        return measured, "measured"
    if not math.isnan(exact.value):
        return exact, "exact"
    return MISSING, ""


def _ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    r = metrics.ranks(values, higher_is_better).astype(np.float64)  # competition ranks; 0 = missing
    return np.where(r == 0, np.nan, r)


def rows(cat: Catalog, g: TaskGroup) -> tuple[Row, ...]:
    """The rows of one group, with ranks and flips from the stored metrics."""
    ns = g.descriptor.rank
    at = np.asarray(g.entries, dtype=np.int64)
    names = [cat.model(i) for i in g.entries]
    sampler = np.array([g.samplers.get(m, i) for m, i in zip(names, g.entries)], dtype=np.int64)
    measured = cat.block(sampler, metric_key("pass_sampled", ns.pass_n))
    exact = cat.block(at, metric_key("pass_exact", ns.pass_n))
    has_measured, has_exact = ~np.isnan(measured[:, 0]), ~np.isnan(exact[:, 0])
    source = np.where(has_measured, "measured", np.where(has_exact, "exact", ""))
    used = np.where(has_measured[:, None], measured, exact)
    ce, kl = cat.block(at, "ce"), cat.block(at, "kl")
    cov = cat.block(at, metric_key("cov", ns.cov_n))
    pred = cat.block(at, metric_key("pass_pred", ns.pass_n))
    lo = cat.block(at, metric_key("pass_pred_lo", ns.pass_n))[:, 0]
    hi = cat.block(at, metric_key("pass_pred_hi", ns.pass_n))[:, 0]
    pas = used[:, 0]
    r_ce, r_cov, r_pass = _ranks(ce[:, 0], False), _ranks(cov[:, 0], False), _ranks(pas, True)
    flips_ce = {f.model for f in metrics.rank_flips(names, ce[:, 0], pas, False, True)}
    flips_cov = {f.model for f in metrics.rank_flips(names, cov[:, 0], pas, False, True)}
    est = lambda a, j: estimate_of(*a[j].tolist())  # noqa: E731
    out = []
    for j, i in enumerate(g.entries):
        s = cat.smalls[i]
        out.append(Row(model=names[j], slug=slug(names[j]), family=s.get("family"), step=s.get("step"),
                       ce=est(ce, j), kl=est(kl, j), cov=est(cov, j), pass_measured=est(measured, j),
                       pass_exact=est(exact, j), pass_pred=est(pred, j), pass_pred_lo=float(lo[j]),
                       pass_pred_hi=float(hi[j]), pass_source=str(source[j]), rank_ce=float(r_ce[j]),
                       rank_cov=float(r_cov[j]), rank_pass=float(r_pass[j]), flip_ce=names[j] in flips_ce,
                       flip_cov=names[j] in flips_cov))
    return tuple(out)


# ---- τ from per-prompt arrays ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TauInputs:
    """The per-prompt matrices of a board's ranked models on the prompts they all share (model order =
    row order): −log π̂, the Cov_{N/2} indicator and the used Pass@N, with the prompts' weights."""

    models: tuple[str, ...]
    nll: np.ndarray
    cov: np.ndarray
    pas: np.ndarray
    weight: np.ndarray
    doc_id: np.ndarray


def tau_inputs(g: TaskGroup, board_rows: Sequence[Row], cat: Catalog, get: GetVectors) -> TauInputs | None:
    """The matrices of the ranked rows that have per-prompt arrays; None when fewer than two do."""
    ns = g.descriptor.rank
    picked: list[tuple[Row, Vectors, Vectors | None]] = []
    by_model = {cat.model(i): i for i in g.entries}
    for r in board_rows:
        if math.isnan(r.rank_ce) or math.isnan(r.rank_cov) or math.isnan(r.rank_pass):
            continue
        v = get(by_model[r.model])
        if v is None or v.nll is None or v.cov is None:
            continue
        smp = None
        if r.pass_source == "measured":
            smp = get(g.samplers[r.model]) if r.model in g.samplers else v
            if smp is None or smp.n is None:
                continue
        elif v.pass_exact is None:
            continue
        picked.append((r, v, smp))
    if len(picked) < 2:
        return None
    ids = picked[0][1].doc_id
    for _, v, smp in picked:
        for arr in (v.doc_id,) if smp is None else (v.doc_id, smp.doc_id):
            if not np.array_equal(arr, ids):  # the usual case is one shared prompt list: no set algebra
                ids = np.intersect1d(ids, arr)
    if ids.size == 0:
        return None

    positions: dict[int, slice | np.ndarray] = {}

    def at(v: Vectors) -> slice | np.ndarray:
        """Where ``ids`` sit in ``v`` (computed once per vector)."""
        if id(v) not in positions:
            if np.array_equal(v.doc_id, ids):
                positions[id(v)] = slice(None)
            else:
                order = np.argsort(v.doc_id, kind="stable")
                positions[id(v)] = order[np.searchsorted(v.doc_id, ids, sorter=order)]
        return positions[id(v)]

    nll = np.stack([v.nll[at(v)] for _, v, _ in picked])  # type: ignore[index]
    cov = np.stack([v.cov[at(v)] for _, v, _ in picked])  # type: ignore[index]
    pas = np.empty(nll.shape)
    measured = [j for j, (_, _, smp) in enumerate(picked) if smp is not None]
    for j, (_, v, smp) in enumerate(picked):
        if smp is None:
            pas[j] = v.pass_exact[at(v)]  # type: ignore[index]
    if measured:  # one call of the unbiased estimator for every sampled model
        n = np.stack([picked[j][2].n[at(picked[j][2])] for j in measured])  # type: ignore[index,union-attr]
        c = np.stack([picked[j][2].c[at(picked[j][2])] for j in measured])  # type: ignore[index,union-attr]
        pas[measured] = metrics.pass_at_k(n, c, int(ns.pass_n))
    weight = picked[0][1].weight[at(picked[0][1])]
    return TauInputs(tuple(r.model for r, *_ in picked), nll, cov, pas, weight, ids)


def agreements(board_rows: Sequence[Row], inputs: TauInputs | None) -> tuple[Agreement, Agreement]:
    """τ(CE, Pass@N) and τ(Cov, Pass@N): from per-prompt arrays when at least two ranked models have
    them, else from the stored metrics without an interval."""
    ranked = [r for r in board_rows if not (math.isnan(r.rank_ce) or math.isnan(r.rank_cov)
                                            or math.isnan(r.rank_pass))]
    if inputs is not None:
        keep = ~np.isnan(inputs.pas).any(axis=1)  # a model with Pass@N missing somewhere (k > n) is not ranked
        taus = metrics.rank_agreements([inputs.nll[keep], inputs.cov[keep]], inputs.pas[keep], inputs.weight,
                                       proxies_higher_is_better=False)
        return Agreement(taus[0], len(ranked), "per-prompt"), Agreement(taus[1], len(ranked), "per-prompt")
    pas = np.array([r.pass_used.value for r in ranked])
    out = []
    for col in (np.array([r.ce.value for r in ranked]), np.array([r.cov.value for r in ranked])):
        tau = metrics.kendall_tau(-col, pas) if len(ranked) >= 2 else math.nan
        out.append(Agreement(metrics.TauCI(tau, math.nan, math.nan, len(ranked), 0, 0,
                                           len(ranked) * (len(ranked) - 1) // 2, 0.95), len(ranked), "stored"))
    return out[0], out[1]


# ---- the headline ----------------------------------------------------------------------------------


def _picks(board_rows: Sequence[Row], attr: str) -> tuple[str, ...]:
    return tuple(r.model for r in board_rows if getattr(r, attr) == 1.0)


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


TauFn = Callable[[TaskGroup, tuple[Row, ...]], tuple[Agreement, Agreement]]


def board(cat: Catalog, g: TaskGroup, get: GetVectors, tau: TauFn | None = None,
          board_rows: tuple[Row, ...] | None = None) -> Board:
    """The board of one task group; ``tau``: how to get its agreements (default: compute them; the site
    passes a memo keyed by the group's runs); ``board_rows``: its rows if already made."""
    board_rows = board_rows if board_rows is not None else rows(cat, g)
    if tau is None:
        tau_ce, tau_cov = agreements(board_rows, tau_inputs(g, board_rows, cat, get))
    else:
        tau_ce, tau_cov = tau(g, board_rows)
    picks = [_picks(board_rows, a) for a in ("rank_ce", "rank_cov", "rank_pass")]
    ns = g.descriptor.rank
    from .classes import class_table  # classes builds on this module's rows

    return Board(task=g.task, slug=slug(g.task), descriptor=g.descriptor, sampler_task=g.sampler_task,
                 rows=board_rows, tau_ce=tau_ce, tau_cov=tau_cov, picks_ce=picks[0], picks_cov=picks[1],
                 picks_pass=picks[2], headline=headline(*picks, ns.pass_n, ns.cov_n),
                 classes=class_table(cat, g, board_rows, get))
