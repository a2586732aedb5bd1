"""Checkpoint families: the min-CE pick next to the coverage-tournament pick, per task (paper Fig. 1).

The tournament (docs/coverage-principle.md#tournament, Eq. 29) and the min-CE pick both come from
:func:`covbench.selection.family_picks` on the matrix of log π̂ of the reference responses (held-out
samples from π_D) on the prompts every checkpoint was scored on, at the task's coverage threshold N/2
(the pairing of Fig. 1). Where the two picks differ, the view also shows whether the tournament pick's
advantage is real: the paired difference of their per-prompt Pass@N on the same prompts, with its t
interval (:func:`covbench.selection.paired_difference`; per-prompt Pass@N by
:func:`covbench.views.vectors.pass_vector`: exact where stored, else sampled). This module only
assembles the view.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from covbench import selection
from covbench.records import RankNs
from covbench.store import Catalog, slug

from .board import Board, GetVectors, Row
from .vectors import pass_vector


@dataclass(frozen=True)
class FamilyTask:
    """One family on one task: its checkpoints by step, both picks, and the tournament scores."""

    task: str
    task_slug: str
    rank: RankNs
    rows: tuple[Row, ...]  # sorted by position on the family's axis
    xs: tuple[float | None, ...]  # each member's position (step, or the registry's x)
    axis: str  # what the position is ("training step", "temperature", ...)
    entries: tuple[int, ...]  # catalog indices of the members, in row order
    scores: tuple[float, ...]  # worst-case Ĉov_N of each checkpoint (lower is better); NaN: no arrays
    min_ce: str | None
    tournament: str | None
    n_prompts: int
    headline: str
    difference: selection.PairedDifference | None = None  # Pass@N of the tournament pick − the min-CE pick
    difference_source: str = ""  # how the per-prompt Pass@N was obtained: "exact" or "measured"


@dataclass(frozen=True)
class Family:
    name: str
    slug: str
    tasks: tuple[FamilyTask, ...]


def _pass_text(row: Row | None, n: float) -> str:
    if row is None or math.isnan(row.pass_used.value):
        return ""
    return f" (Pass@{n:g} = {row.pass_used.value:.3f})"


def position(small: dict) -> float | None:
    """A member's position on its family's axis: ``x`` where the registry gives one, else the step."""
    x = small.get("x")
    if x is not None:
        return float(x)
    return None if small.get("step") is None else float(small["step"])


def axis_label(cat: Catalog, members: Sequence[int]) -> str:
    labels = sorted({cat.smalls[i].get("axis") or "training step" for i in members})
    return " / ".join(labels)


def picks_of(cat: Catalog, order: Sequence[int], get: GetVectors, rank: RankNs) -> selection.FamilyPicks:
    """The two picks of the members ``order`` (catalog indices) from their per-prompt log-probs."""
    vecs = [get(i) for i in order]
    first = next((v for v in vecs if v is not None), None)
    return selection.family_picks([cat.model(i) for i in order], [None if v is None else v.doc_id for v in vecs],
                                  [None if v is None else v.logp for v in vecs], rank.cov_n,
                                  None if first is None else first.weight, None if first is None else first.doc_id)


PicksFn = Callable[[Catalog, Sequence[int], RankNs], selection.FamilyPicks]


def pick_difference(cat: Catalog, a: int, b: int, sampler_task: str | None, get: GetVectors,
                    rank: RankNs) -> tuple[selection.PairedDifference, str] | None:
    """Pass@N (at the task's N) of catalog entry ``a`` minus entry ``b`` on the prompts both were measured
    on, and how it was measured; None without per-prompt Pass@N for both."""
    vec = []
    for i in (a, b):
        sampler = cat.find(cat.model(i), sampler_task) if sampler_task else None
        vec.append(pass_vector(get(i), None if sampler is None else get(sampler), rank.pass_n))
    va, vb = vec
    if va is None or vb is None:
        return None
    d = selection.paired_difference(va.doc_id, va.values, vb.doc_id, vb.values, va.weight, va.doc_id)
    return d, va.source if va.source == vb.source else f"{va.source} − {vb.source}"


def difference_text(d: selection.PairedDifference, pass_n: float) -> str:
    """``Pass@8: tournament − min-CE = +0.028 [+0.016, +0.040] over 512 prompts``; NaN parts as "—"."""
    sign = lambda v: "—" if math.isnan(v) else f"{v:+.3f}"  # noqa: E731
    ci = "" if math.isnan(d.lo) else f" [{sign(d.lo)}, {sign(d.hi)}]"
    return f"Pass@{pass_n:g}: tournament − min-CE = {sign(d.value)}{ci} over {d.n_prompts} prompts"


def family_task(board: Board, members: Sequence[int], cat: Catalog, get: GetVectors,
                picks_fn: PicksFn | None = None) -> FamilyTask:
    """One family's view of ``board``; ``members``: its checkpoints' catalog indices on that task."""
    order = sorted(members, key=lambda i: (position(cat.smalls[i]) is None, position(cat.smalls[i]) or 0.0,
                                           cat.model(i)))
    by_model = {row.model: row for row in board.rows}
    fam_rows = tuple(by_model[cat.model(i)] for i in order)
    rank = board.descriptor.rank
    picks = picks_fn(cat, order, rank) if picks_fn else picks_of(cat, order, get, rank)
    pick_t = None if picks.tournament is None else picks.names[picks.tournament]
    pick_ce = None if picks.min_ce is None else picks.names[picks.min_ce]
    if pick_ce is None:
        text = "No per-prompt log-probs stored for every checkpoint: no tournament."
    elif pick_ce == pick_t:
        text = f"min-CE and the tournament both pick {pick_ce}{_pass_text(by_model.get(pick_ce), rank.pass_n)}."
    else:
        text = (f"min-CE picks {pick_ce}{_pass_text(by_model.get(pick_ce), rank.pass_n)}; the coverage tournament "
                f"picks {pick_t}{_pass_text(by_model.get(pick_t or ''), rank.pass_n)}.")
    found = None
    if pick_ce is not None and pick_t is not None and pick_ce != pick_t:
        at = {cat.model(i): i for i in order}
        found = pick_difference(cat, at[pick_t], at[pick_ce], board.sampler_task, get, rank)
    return FamilyTask(task=board.task, task_slug=board.slug, rank=rank, rows=fam_rows,
                      xs=tuple(position(cat.smalls[i]) for i in order), axis=axis_label(cat, order),
                      entries=tuple(order), scores=tuple(float(s) for s in picks.scores), min_ce=pick_ce,
                      tournament=pick_t, n_prompts=picks.n_prompts, headline=text,
                      difference=None if found is None else found[0], difference_source="" if found is None else found[1])


def family_members(cat: Catalog, task_order: Sequence[str]) -> dict[str, dict[str, list[int]]]:
    """Each family's members (catalog indices) per task, families by name, tasks in ``task_order``."""
    out: dict[str, dict[str, list[int]]] = {}
    for i, s in enumerate(cat.smalls):
        if s.get("family"):
            out.setdefault(s["family"], {}).setdefault(cat.task(i), []).append(i)
    rank = {t: k for k, t in enumerate(task_order)}
    return {name: {t: out[name][t] for t in sorted(out[name], key=lambda t: rank.get(t, len(rank))) if t in rank}
            for name in sorted(out)}


def family(name: str, members: dict[str, list[int]], boards: dict[str, Board], cat: Catalog, get: GetVectors,
           picks_fn: PicksFn | None = None) -> Family:
    """One family's view: one :class:`FamilyTask` per task board its members are on."""
    views = tuple(family_task(boards[t], idx, cat, get, picks_fn) for t, idx in members.items())
    return Family(name=name, slug=slug(name), tasks=views)


def families(boards: Sequence[Board], cat: Catalog, get: GetVectors, picks_fn: PicksFn | None = None) -> list[Family]:
    """Every family named in the catalog, sorted by name, with one view per task its checkpoints were
    scored on (a task's board)."""
    by_task = {b.task: b for b in boards}
    return [family(name, members, by_task, cat, get, picks_fn)
            for name, members in family_members(cat, [b.task for b in boards]).items()]
