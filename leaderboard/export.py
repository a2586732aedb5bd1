"""Downloadable data behind the site: CSV and JSON, byte-for-byte deterministic.

JSON follows the store's own convention (covbench/records.py): missing is ``NaN`` and infinities
are ``Infinity``, so a model's JSON download is a list of store records that
``RunRecord.model_validate`` reads back. CSV writes missing as an empty cell and floats by ``repr``
(exact round trip).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence

from covbench.records import RunRecord

from .board import TaskBoard

_METRIC_COLUMNS = ["task", "model", "family", "step", "reference", "metric", "value", "lo", "hi", "stderr"]


def _f(value: float | None) -> str:
    if value is None or math.isnan(value):
        return ""
    return repr(float(value))


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def _cell(text: str) -> str:
    # csv.writer's minimal quoting, for the few free-text fields (names may hold commas or quotes),
    # plus a lone \r, which csv.writer leaves bare and csv.reader then rejects.
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def metrics_rows(record: RunRecord) -> str:
    """The CSV lines of one record's metrics (no header): one per metric key, sorted.

    Written by hand rather than by ``csv.writer`` (400,000 lines for 1,000 models × 10 tasks):
    the free-text fields are quoted as csv.writer quotes them; floats are ``repr``, missing empty
    (an :class:`~covbench.records.Estimate` holds floats only, NaN for missing).
    """
    prefix = ",".join([_cell(record.task), _cell(record.model), _cell(record.family or ""),
                       "" if record.step is None else str(record.step), record.reference]) + ","
    lines = []
    for key, e in sorted(record.metrics.items()):  # x != x: NaN, inlined (330,000 rows per 1,000 models)
        v, lo, hi, se = e.value, e.lo, e.hi, e.stderr
        lines.append(f"{prefix}{_cell(key)},{'' if v != v else repr(v)},{'' if lo != lo else repr(lo)},"  # noqa: PLR0124
                     f"{'' if hi != hi else repr(hi)},{'' if se != se else repr(se)}\n")  # noqa: PLR0124
    return "".join(lines)


def metrics_csv(records: Sequence[RunRecord], rows: dict[int, str] | None = None) -> str:
    """Every stored metric of ``records``, one line per (task, model, metric key).

    ``rows``: :func:`metrics_rows` already computed, by ``id(record)`` (the site writes each
    record's lines twice: in its model's CSV and in results.csv).
    """
    header = ",".join(_METRIC_COLUMNS) + "\n"
    rows = rows or {}
    return header + "".join(rows.get(id(r)) or metrics_rows(r) for r in records)


def records_json(records: Sequence[RunRecord]) -> str:
    """A JSON list of store records without their per-prompt arrays: metrics and provenance only.
    (With arrays, the site republishes the store's own files: :func:`stored_json`.)"""
    return stored_json([r.model_dump_json(exclude={"docs", "samples"}) for r in records])


def stored_json(texts: Sequence[str]) -> str:
    """A JSON list of store records given as JSON texts (a model's files, verbatim from the store)."""
    return "[\n" + ",\n".join(t.strip() for t in texts) + "\n]\n"


def board_csv(board: TaskBoard) -> str:
    """The task's table as shown on the index page, with ranks and the Pass@N column used."""
    n, c = f"{board.ns.pass_n:g}", f"{board.ns.cov_n:g}"
    header = ["model", "family", "step", "ce", "kl", f"cov@{c}", f"pass_sampled@{n}", f"pass_exact@{n}",
              f"pass_pred@{n}", f"pass_pred_lo@{n}", f"pass_pred_hi@{n}", "pass_used", "rank_ce",
              "rank_cov", "rank_pass", "flip_ce", "flip_cov"]
    rows = [[r.model, r.family or "", "" if r.step is None else r.step, _f(r.ce.value), _f(r.kl.value),
             _f(r.cov.value), _f(r.pass_measured.value), _f(r.pass_exact.value), _f(r.pass_pred.value),
             _f(r.pass_pred_lo), _f(r.pass_pred_hi), r.pass_source, _f(r.rank_ce), _f(r.rank_cov),
             _f(r.rank_pass), int(r.flip_ce), int(r.flip_cov)] for r in board.rows]
    return _csv(header, rows)
