"""Plain-text tables of stored runs: the suite's terminal summary (one table per task).

Columns are the metrics that matter for the paper's point: CE, KL (known π_D only), Cov_N at a few N,
Pass@N measured / exact / predicted (with the coverage bracket), and the rank by CE, by coverage and by
Pass@N. A sampling task's measured Pass@N is shown in the row of the scoring task it pairs with
(``metadata.covbench.pairs_with``), so one table contrasts all of them. A column that is missing for
every model is left out; a missing cell prints as "—" (never 0).

>>> from covbench.records import Estimate
>>> fmt_cell(Estimate(value=0.5, lo=0.4, hi=0.6)), fmt_cell(None), fmt_cell(Estimate(value=float("nan")))
('0.500', '—', '—')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from covbench.metrics import ranks
from covbench.records import Estimate, RunRecord, metric_key

COV_NS = (2.0, 4.0, 8.0)
PASS_N = 8.0
RANK_COV_N = PASS_N / 2  # the paper pairs Pass@N with Cov_{N/2} (paper.md §5.2)


@dataclass(frozen=True)
class Row:
    model: str
    metrics: dict[str, Estimate]


def fmt_cell(est: Estimate | None, digits: int = 3) -> str:
    if est is None or math.isnan(est.value):
        return "—"
    return f"{est.value:.{digits}f}"


def merge_rows(records: Iterable[RunRecord], pairs: dict[str, str]) -> dict[str, list[Row]]:
    """Rows per scoring task; a sampling task's metrics join the row of the task it pairs with."""
    by_task: dict[str, dict[str, dict[str, Estimate]]] = {}
    for rec in records:
        task = pairs.get(rec.task, rec.task)
        by_task.setdefault(task, {}).setdefault(rec.model, {}).update(rec.metrics)
    return {task: [Row(m, metrics) for m, metrics in sorted(models.items())]
            for task, models in sorted(by_task.items())}


def _pass_measured(row: Row) -> Estimate | None:
    return row.metrics.get(metric_key("pass_sampled", PASS_N)) or row.metrics.get(metric_key("pass_exact", PASS_N))


def _columns(rows: Sequence[Row]) -> list[tuple[str, str]]:
    """(header, metric key) of every column that has a value for at least one model."""
    wanted = [("CE", "ce"), ("KL", "kl")]
    wanted += [(f"Cov{n:g}", metric_key("cov", n)) for n in COV_NS]
    wanted += [(f"P@{PASS_N:g} meas", metric_key("pass_sampled", PASS_N)),
               (f"P@{PASS_N:g} exact", metric_key("pass_exact", PASS_N)),
               (f"P@{PASS_N:g} pred", metric_key("pass_pred", PASS_N))]
    return [(h, k) for h, k in wanted
            if any(k in r.metrics and not math.isnan(r.metrics[k].value) for r in rows)]


def _rank_columns(rows: Sequence[Row]) -> list[tuple[str, list[str]]]:
    """Rank by CE (lower better), by Cov_{N/2} (lower better) and by Pass@N (higher better)."""
    def values(get) -> np.ndarray:
        return np.array([np.nan if (e := get(r)) is None else e.value for r in rows], dtype=float)

    out = []
    for header, vals, hib in (
        ("rCE", values(lambda r: r.metrics.get("ce")), False),
        (f"rCov{RANK_COV_N:g}", values(lambda r: r.metrics.get(metric_key("cov", RANK_COV_N))), False),
        (f"rP@{PASS_N:g}", values(_pass_measured), True),
    ):
        if np.isnan(vals).all():
            continue
        r = ranks(np.where(np.isnan(vals), np.inf if not hib else -np.inf, vals), higher_is_better=hib)
        out.append((header, ["—" if np.isnan(v) else f"{k:g}" for v, k in zip(vals, r)]))
    return out


def render_task(task: str, rows: Sequence[Row]) -> str:
    """One task's table as aligned text."""
    cols = _columns(rows)
    rank_cols = _rank_columns(rows)
    header = ["model"] + [h for h, _ in cols] + [h for h, _ in rank_cols]
    body = []
    for i, row in enumerate(rows):
        cells = [row.model] + [fmt_cell(row.metrics.get(k)) for _, k in cols]
        cells += [vals[i] for _, vals in rank_cols]
        body.append(cells)
    widths = [max(len(str(line[j])) for line in [header, *body]) for j in range(len(header))]
    fmt = lambda line: "  ".join(str(c).ljust(w) if j == 0 else str(c).rjust(w)  # noqa: E731
                                 for j, (c, w) in enumerate(zip(line, widths)))
    lines = [f"{task}", fmt(header), fmt(["-" * w for w in widths])] + [fmt(b) for b in body]
    return "\n".join(lines)


def render(records: Iterable[RunRecord], pairs: dict[str, str] | None = None) -> str:
    """Every task's table, separated by blank lines."""
    return "\n\n".join(render_task(t, rows) for t, rows in merge_rows(records, pairs or {}).items())
