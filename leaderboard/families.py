"""Checkpoint families: the min-CE pick next to the coverage-tournament pick, per task (paper Fig. 1).

The tournament (paper.md §3.1, Eq. 29) runs on the logp matrix ``[checkpoints × prompts]`` of the
reference responses (held-out samples from π_D), at the task's coverage threshold N/2, the
pairing of Fig. 1. The min-CE pick uses the same matrix, so both picks see the same prompts.
Both come from :mod:`covbench.selection`; this module only assembles the matrix and the view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from covbench import selection
from covbench.records import RunRecord
from covbench.store import slug

from .board import Row, TaskBoard
from .defaults import TaskNs


@dataclass(frozen=True)
class FamilyTask:
    """One family on one task: its checkpoints by step, both picks, and the tournament scores."""

    task: str
    task_slug: str
    ns: TaskNs
    rows: tuple[Row, ...]  # sorted by step
    scores: tuple[float, ...]  # worst-case Ĉov_N of each checkpoint (lower is better); NaN: no arrays
    min_ce: str | None
    tournament: str | None
    n_prompts: int
    headline: str


@dataclass(frozen=True)
class Family:
    name: str
    slug: str
    tasks: tuple[FamilyTask, ...]


def _logp_matrix(records: Sequence[RunRecord]) -> tuple[np.ndarray, np.ndarray | None, int] | None:
    """``logp[k, i]`` on the prompts every checkpoint was scored on, their weights, and the count."""
    if any(r.docs is None for r in records):
        return None
    common = set.intersection(*(set(r.docs.doc_id) for r in records))  # type: ignore[union-attr]
    doc_ids = sorted(common)
    if not doc_ids:
        return None
    rows, weights = [], None
    for r in records:
        at = {d: i for i, d in enumerate(r.docs.doc_id)}  # type: ignore[union-attr]
        idx = [at[d] for d in doc_ids]
        rows.append(np.asarray(r.docs.logp_model, dtype=np.float64)[idx])  # type: ignore[union-attr]
        if weights is None and r.docs.weight is not None:  # type: ignore[union-attr]
            weights = np.asarray(r.docs.weight, dtype=np.float64)[idx]  # type: ignore[union-attr]
    logp = np.stack(rows)
    return (None if np.isnan(logp).any() else (logp, weights, len(doc_ids)))


def _pass_text(row: Row | None, n: float) -> str:
    if row is None or math.isnan(row.pass_used.value):
        return ""
    return f" (Pass@{n:g} = {row.pass_used.value:.3f})"


def family_task(board: TaskBoard, records: Sequence[RunRecord]) -> FamilyTask:
    """One family's view of ``board``; ``records`` are its checkpoints on that task."""
    ordered = sorted(records, key=lambda r: (r.step if r.step is not None else math.inf, r.model))
    by_model = {row.model: row for row in board.rows}
    rows = tuple(by_model[r.model] for r in ordered)
    matrix = _logp_matrix(ordered)
    scores: tuple[float, ...] = tuple(math.nan for _ in rows)
    pick_ce = pick_t = None
    n_prompts = 0
    if matrix is not None and len(rows) >= 1:
        logp, weights, n_prompts = matrix
        result = selection.tournament(logp, board.ns.cov_n, weights)
        scores = tuple(float(s) for s in result.scores)
        pick_t = rows[result.pick].model
        pick_ce = rows[selection.min_ce(logp, weights)].model
    ce_row, t_row = by_model.get(pick_ce or ""), by_model.get(pick_t or "")
    if pick_ce is None:
        text = "No per-prompt log-probs stored for every checkpoint: no tournament."
    elif pick_ce == pick_t:
        text = f"min-CE and the tournament both pick {pick_ce}{_pass_text(ce_row, board.ns.pass_n)}."
    else:
        text = (f"min-CE picks {pick_ce}{_pass_text(ce_row, board.ns.pass_n)}; the coverage tournament "
                f"picks {pick_t}{_pass_text(t_row, board.ns.pass_n)}.")
    return FamilyTask(task=board.task, task_slug=board.slug, ns=board.ns, rows=rows, scores=scores,
                      min_ce=pick_ce, tournament=pick_t, n_prompts=n_prompts, headline=text)


def build_families(boards: Sequence[TaskBoard], records: Sequence[RunRecord]) -> list[Family]:
    """Every family named in ``records``, sorted by name, with one view per task it was scored on."""
    names = sorted({r.family for r in records if r.family})
    families = []
    for name in names:
        views = []
        for board in boards:
            members = [r for r in records if r.task == board.task and r.family == name]
            if members:
                views.append(family_task(board, members))
        families.append(Family(name=name, slug=slug(name), tasks=tuple(views)))
    return families
