"""Downloadable data behind the site: CSV and JSON, byte-for-byte deterministic (docs/site.md#downloads).

CSV writes missing as an empty cell and floats by ``repr`` (exact round trip). JSON follows the store's
convention: missing is ``NaN`` and infinities are ``Infinity``, so a model's JSON download is a list of the
store's small parts that :class:`covbench.records.RunRecord` reads back.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence

import numpy as np

from covbench.store import Catalog
from covbench.views import Board, FamilyTask

METRIC_COLUMNS = ["task", "model", "family", "step", "reference", "metric", "value", "lo", "hi", "stderr"]
METRICS_HEADER = ",".join(METRIC_COLUMNS) + "\n"


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


def metrics_rows(cat: Catalog, i: int) -> str:
    """The CSV lines of catalog entry ``i``'s metrics (no header): one per metric key, in key order."""
    s = cat.smalls[i]
    prefix = ",".join([_cell(s["task"]), _cell(s["model"]), _cell(s.get("family") or ""),
                       "" if s.get("step") is None else str(s["step"]), cat.descriptors[i].reference]) + ","
    ks = np.flatnonzero(cat.present[i])
    # repr of every float (exact round trip), "" for NaN; x != x is NaN (inlined: 450,000 lines per 1,000 models)
    text = [["" if x != x else repr(x) for x in row] for row in cat.values[i, ks].tolist()]  # noqa: PLR0124
    keys = [_KEY_CELLS.get(cat.keys[k]) or _key_cell(cat.keys[k]) for k in ks.tolist()]
    return "".join(f"{prefix}{key},{t[0]},{t[1]},{t[2]},{t[3]}\n" for key, t in zip(keys, text))


_KEY_CELLS: dict[str, str] = {}


def _key_cell(key: str) -> str:
    _KEY_CELLS[key] = _cell(key)
    return _KEY_CELLS[key]


def model_csv(cat: Catalog, entries: Sequence[int]) -> str:
    """Every stored metric of one model's runs (header included)."""
    return METRICS_HEADER + "".join(metrics_rows(cat, i) for i in entries)


def board_csv(board: Board) -> str:
    """The task's table as the task page shows it, with ranks and the Pass@N column used."""
    ns = board.descriptor.rank
    n, c = f"{ns.pass_n:g}", f"{ns.cov_n:g}"
    header = ["model", "family", "step", "ce", "kl", f"cov@{c}", f"pass_sampled@{n}", f"pass_exact@{n}",
              f"pass_pred@{n}", f"pass_pred_lo@{n}", f"pass_pred_hi@{n}", "pass_used", "rank_ce",
              "rank_cov", "rank_pass", "flip_ce", "flip_cov"]
    rows = [[r.model, r.family or "", "" if r.step is None else r.step, _f(r.ce.value), _f(r.kl.value),
             _f(r.cov.value), _f(r.pass_measured.value), _f(r.pass_exact.value), _f(r.pass_pred.value),
             _f(r.pass_pred_lo), _f(r.pass_pred_hi), r.pass_source, _f(r.rank_ce), _f(r.rank_cov),
             _f(r.rank_pass), int(r.flip_ce), int(r.flip_cov)] for r in board.rows]
    return _csv(header, rows)


def family_csv(tasks: Sequence[FamilyTask]) -> str:
    rows = [[t.task, r.model, "" if r.step is None else r.step, _f(r.ce.value), _f(r.cov.value),
             _f(r.pass_used.value), _f(t.scores[i]), int(r.model == t.min_ce), int(r.model == t.tournament)]
            for t in tasks for i, r in enumerate(t.rows)]
    return _csv(["task", "model", "step", "ce", "cov_at_n_over_2", "pass_at_n", "tournament_worst_case",
                 "min_ce_pick", "tournament_pick"], rows)
