"""Model pages: each model's own results, task by task (docs/site.md#model-pages).

A model page depends on that model's runs only (no ranks, which change whenever another model is added),
so adding a model re-renders one model page. It shows per task the stored metrics at the task's rank N,
the curves over the whole N grid (Cov_N, Pass@N measured/exact/predicted with the coverage bracket, and the
coverage of the correct set Cov_M with its interval, from sampled verdicts: docs/verifier-coverage.md), and
the provenance of each run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from functools import lru_cache

import numpy as np

from covbench.records import Estimate, TaskDescriptor, metric_key, split_key
from covbench.store import Catalog, slug

from .board import Board, Row, TaskGroup
from .classes import ClassTable

CURVES = ("cov", "pass_sampled", "pass_exact", "pass_pred", "pass_pred_lo", "pass_pred_hi", "cov_set")
#: curves stored by sampling runs: taken from the paired sampler's run when the task has one
SAMPLED = ("pass_sampled", "cov_set")


@dataclass(frozen=True, eq=False)
class ModelTask:
    """One model on one task (a scoring task with its paired sampler's measured Pass@N)."""

    task: str
    task_slug: str
    descriptor: TaskDescriptor
    ce: Estimate
    kl: Estimate
    cov: Estimate
    pass_used: Estimate
    pass_source: str
    ns: tuple[float, ...]  # the N grid of the curves
    curves: np.ndarray  # [N, len(CURVES), 4]: (value, lo, hi, stderr) of each curve at each N; NaN missing
    runs: tuple[tuple[str, dict, str, int], ...]  # (task, provenance, run file in the store, catalog index)
    classes: ClassTable | None = None  # this model's per-class numbers (its row of the task's class table)


@dataclass(frozen=True)
class ModelPage:
    name: str
    slug: str
    family: str | None
    family_slug: str
    step: int | None
    description: str
    tasks: tuple[ModelTask, ...]
    entries: tuple[int, ...]  # the catalog indices this page shows (its inputs)


def _layout(cat: Catalog, rows: list[int]) -> tuple[tuple[float, ...], np.ndarray]:
    """The N grid that any of ``rows`` stores a curve at, and ``[N, len(CURVES)]`` key positions (−1: none)."""
    live = tuple(np.flatnonzero(cat.present[rows].any(axis=0)).tolist())
    return _layout_of(cat.keys, live)


@lru_cache(maxsize=256)
def _layout_of(keys: tuple[str, ...], live: tuple[int, ...]) -> tuple[tuple[float, ...], np.ndarray]:
    """:func:`_layout` for a set of stored key positions (runs of one task share it: computed once)."""
    col = {k: i for i, k in enumerate(keys)}
    ns = sorted({n for j in live for b, n in [split_key(keys[j])] if n is not None and b in CURVES})
    at = np.full((len(ns), len(CURVES)), -1, dtype=np.int64)
    for a, n in enumerate(ns):
        for b, name in enumerate(CURVES):
            at[a, b] = col.get(metric_key(name, n), -1)
    at.setflags(write=False)
    return tuple(ns), at


def _curves(cat: Catalog, at: np.ndarray, scorer: int, sampler: int | None) -> np.ndarray:
    out = np.full(at.shape + (4,), np.nan)
    for b, name in enumerate(CURVES):
        src = sampler if (name in SAMPLED and sampler is not None) else scorer
        cols = at[:, b]
        ok = cols >= 0
        ok[ok] = cat.present[src, cols[ok]]
        out[ok, b] = cat.values[src, cols[ok]]
    return out


def model_entries(cat: Catalog, groups: Sequence[TaskGroup]) -> dict[str, list[tuple[TaskGroup, int]]]:
    """Each model's (task group, catalog index) pairs, models in name order: what its page shows."""
    by_model: dict[str, list[tuple[TaskGroup, int]]] = {}
    for g in groups:
        for i in g.entries:
            by_model.setdefault(cat.model(i), []).append((g, i))
    return {name: by_model[name] for name in sorted(by_model)}


def page_entries(pairs: Sequence[tuple[TaskGroup, int]], cat: Catalog) -> tuple[int, ...]:
    """The catalog indices one model page shows (its inputs): each task's run and its paired sampler's."""
    out: list[int] = []
    for g, i in pairs:
        out.append(i)
        sampler = g.samplers.get(cat.model(i))
        if sampler is not None:
            out.append(sampler)
    return tuple(out)


def model_page(cat: Catalog, name: str, pairs: Sequence[tuple[TaskGroup, int]],
               rows_of: Callable[[TaskGroup], dict[str, Row]],
               classes_of: Callable[[TaskGroup], ClassTable | None] | None = None) -> ModelPage:
    """The page of model ``name`` (``pairs``: from :func:`model_entries`); its headline numbers are its rows
    on the task boards (``rows_of(group)``: model name → row), its per-class numbers its rows of the tasks'
    class tables (``classes_of(group)``; None: no per-class numbers)."""
    tasks = []
    for g, i in pairs:
        table = classes_of(g) if classes_of is not None else None
        sampler = g.samplers.get(name)
        row = rows_of(g)[name]
        shown = [i] + ([sampler] if sampler is not None else [])
        ns, at = _layout(cat, shown)  # the N grid this model's own runs store
        tasks.append(ModelTask(task=g.task, task_slug=slug(g.task), descriptor=g.descriptor,
                               ce=row.ce, kl=row.kl, cov=row.cov, pass_used=row.pass_used,
                               pass_source=row.pass_source, ns=ns, curves=_curves(cat, at, i, sampler),
                               runs=tuple((cat.task(j), cat.smalls[j]["provenance"], cat.rels[j], j) for j in shown),
                               classes=None if table is None else table.only(name)))
    s = cat.smalls[pairs[0][1]]
    fam = s.get("family")
    return ModelPage(name=name, slug=slug(name), family=fam, family_slug=slug(fam) if fam else "",
                     step=s.get("step"), description=s.get("description", ""), tasks=tuple(tasks),
                     entries=page_entries(pairs, cat))


def model_pages(cat: Catalog, groups: Sequence[TaskGroup], boards: Sequence[Board]) -> list[ModelPage]:
    """One page per model in the catalog, in name order (its headline numbers are its board rows')."""
    rows = {b.task: {r.model: r for r in b.rows} for b in boards}
    tables = {b.task: b.classes for b in boards}
    return [model_page(cat, name, pairs, lambda g: rows[g.task], lambda g: tables[g.task])
            for name, pairs in model_entries(cat, groups).items()]
