"""Per-class views: CE, Cov_N and Pass@N of every model within each class of a task's mixture (docs/selection.md#per-class).

A task's prompts come from a mixture of classes (Fig. 1: G1 90% / G2 10%; Fig. 2: G1–G3; arithmetic: add,
mul, add_word, mul_word). The stored metrics are mixture-weighted means; the paper's mechanism shows
within a class: fine-tuning lowers CE on the 90% class while coverage of the 10% class is lost.

Each number here is the weighted mean, within one class, of the per-prompt values the store's index keeps
for every run (:class:`covbench.summarize.Vectors`, computed once per run by ``covbench.summarize.per_doc_*``,
the same values the stored metrics average), with the t interval of :func:`covbench.metrics.grouped_mean_ci`
(its ends bounded by the metric's range, so a coverage near 1 does not get an interval reaching past 1):

- CE: E_{π_ref(·|x)}[−log π̂(y|x)] per prompt; Cov: P[X ≥ log N/2] per prompt (the task's rank N);
- Pass@N: exact where the scoring run stores the correct set's mass, else the unbiased estimator from the
  paired sampling run (:func:`covbench.views.vectors.pass_vector`), on the prompts that run covers.

Models with the same prompts, classes and weights (the usual case: one prompt list per task) are computed
together, one call per group, so a board of 1,000 models costs a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from covbench import metrics
from covbench.records import RankNs
from covbench.store import Catalog

from .board import GetVectors, Row, TaskGroup
from .vectors import Vectors, pass_vector

METRICS = ("ce", "cov", "pass")
#: the metric card behind each column: its range bounds the interval (a t interval of a proportion near 1
#: would otherwise reach past 1)
_CARDS = ("ce", "cov", "pass_exact")


@dataclass(frozen=True, eq=False)
class ClassRow:
    """One model's per-class numbers: ``values[metric, class]`` = (value, lo, hi, stderr) for the metrics
    :data:`METRICS` (NaN: missing); ``n[metric, class]``: the prompts behind each value."""

    model: str
    slug: str
    values: np.ndarray  # [3, C, 4]
    n: np.ndarray  # [3, C]
    share: np.ndarray  # [C]: each class's share of the weight of this model's scored prompts (NaN: none)
    pass_source: str  # "exact", "measured" or "" (no per-prompt Pass@N)


@dataclass(frozen=True, eq=False)
class ClassTable:
    """The per-class table of one task: class labels (display order), each class's prompt count and share
    of the prompts' weight (of the first model with per-prompt values: the mixture as evaluated; each row
    has its own), and one row per model."""

    labels: tuple[str, ...]
    n_prompts: tuple[int, ...]
    share: tuple[float, ...]
    rank: RankNs
    rows: tuple[ClassRow, ...]

    @cached_property
    def _by_model(self) -> dict[str, ClassRow]:
        return {r.model: r for r in self.rows}

    def only(self, model: str) -> ClassTable | None:
        """This table with ``model``'s row alone (a model page), or None when it has no row."""
        row = self._by_model.get(model)
        if row is None:
            return None
        return ClassTable(self.labels, tuple(int(x) for x in row.n[0]), tuple(float(x) for x in row.share),
                          self.rank, (row,))


def _codes_at(v: Vectors, doc_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The class codes and weights of ``v`` at the prompts ``doc_id`` (−1 and 0 where ``v`` lacks one)."""
    assert v.cls is not None
    if np.array_equal(v.doc_id, doc_id):
        return v.cls, v.weight
    if v.doc_id.size == 0:
        return np.full(doc_id.size, -1, np.int64), np.zeros(doc_id.size)
    order = np.argsort(v.doc_id, kind="stable")
    at = order[np.minimum(np.searchsorted(v.doc_id, doc_id, sorter=order), v.doc_id.size - 1)]
    found = v.doc_id[at] == doc_id
    return np.where(found, v.cls[at], -1), np.where(found, v.weight[at], 0.0)


def _grouped(items: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...]]], n_classes: int,
             out: np.ndarray, counts: np.ndarray, metric: slice, share: np.ndarray | None = None) -> None:
    """Fill ``out[row, metric]`` (and ``share[row]``, each class's weight share) for ``items`` = (row, doc_id,
    codes, weights, k per-prompt value arrays), one :func:`~covbench.metrics.grouped_mean_ci` call per
    distinct (prompts, codes, weights)."""
    groups: dict[bytes, list[int]] = {}
    for j, (_, doc_id, codes, w, _) in enumerate(items):
        groups.setdefault(doc_id.tobytes() + b"|" + codes.tobytes() + b"|" + w.tobytes(), []).append(j)
    for members in groups.values():
        _, doc_id, codes, w, _ = items[members[0]]
        if not (codes >= 0).any():
            continue
        k = len(items[members[0]][4])
        stacked = np.stack([np.stack([items[j][4][q] for j in members]) for q in range(k)], axis=1)  # [M, k, n]
        ci = metrics.grouped_mean_ci(stacked, codes, n_classes, w)
        rows = np.array([items[j][0] for j in members])
        out[rows, metric] = np.stack([ci.value, ci.lo, ci.hi, ci.stderr], axis=-1)
        counts[rows, metric] = ci.n
        if share is not None and w.sum() > 0:
            live = codes >= 0
            share[rows] = np.bincount(codes[live], weights=w[live], minlength=n_classes) / w.sum()


def class_table(cat: Catalog, g: TaskGroup, board_rows: Sequence[Row], get: GetVectors) -> ClassTable | None:
    """The per-class table of one task group (rows in board order), or None when the task declares no
    classes (``metadata.covbench.classes``) or none of its runs keeps per-prompt classes."""
    labels = g.descriptor.classes
    if not labels:
        return None
    by_model = {cat.model(i): i for i in g.entries}
    c = len(labels)
    values = np.full((len(board_rows), len(METRICS), c, 4), np.nan)
    counts = np.zeros((len(board_rows), len(METRICS), c), dtype=np.int64)
    shares = np.full((len(board_rows), c), np.nan)
    scored, passed, sources = [], [], []
    for j, r in enumerate(board_rows):
        v = get(by_model[r.model])
        source = ""
        if v is not None and v.cls is not None and v.nll is not None and v.cov is not None:
            scored.append((j, v.doc_id, v.cls, v.weight, (v.nll, v.cov)))
            sampler = get(g.samplers[r.model]) if r.model in g.samplers else None
            pv = pass_vector(v, sampler, g.descriptor.rank.pass_n)
            if pv is not None:
                codes, w = _codes_at(v, pv.doc_id)
                passed.append((j, pv.doc_id, codes, w, (pv.values,)))
                source = pv.source
        sources.append(source)
    if not scored:
        return None  # no run of this task keeps per-prompt classes (e.g. a sampling task on its own)
    _grouped(scored, c, values, counts, slice(0, 2), shares)
    _grouped(passed, c, values, counts, slice(2, 3))
    for k, name in enumerate(_CARDS):
        low, high = metrics.METRICS[name].range
        values[:, k, :, 1:3] = np.clip(values[:, k, :, 1:3], low, high)  # NaN stays NaN
    rows = tuple(ClassRow(r.model, r.slug, values[j], counts[j], shares[j], sources[j])
                 for j, r in enumerate(board_rows))
    first = scored[0][0]
    return ClassTable(labels, tuple(int(x) for x in counts[first, 0]), tuple(float(x) for x in shares[first]),
                      g.descriptor.rank, rows)
