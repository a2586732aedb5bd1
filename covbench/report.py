"""Plain-text tables of stored runs: the suite's terminal summary, one table per task board.

It prints the boards of :mod:`covbench.views` (the same rows, ranks and τ the site shows): CE, KL (known
π_D only), Cov at the task's N/2, Pass@N measured / exact / predicted at the task's N, the rank by CE, by
coverage and by the used Pass@N (measured where stored, else exact), and τ of each proxy against Pass@N
with its interval. A column that is missing for every model is left out; a missing cell prints as "—"
(never 0). A task that declares classes gets a second table: CE, Cov and Pass@N of every model within
each class (:mod:`covbench.views.classes`, docs/selection.md#per-class), where the mixture-weighted
numbers above hide what happens to a small class.

>>> from covbench.records import Estimate
>>> fmt_cell(Estimate(value=0.5, lo=0.4, hi=0.6)), fmt_cell(None), fmt_cell(Estimate(value=float("nan")))
('0.500', '—', '—')
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from covbench.records import Estimate, format_n
from covbench.store import Catalog
from covbench.views import Agreement, Board, ClassTable, build

MISSING = "—"


def fmt_cell(est: Estimate | None, digits: int = 3) -> str:
    if est is None or math.isnan(est.value):
        return MISSING
    return f"{est.value:.{digits}f}"


def _rank(value: float) -> str:
    return MISSING if math.isnan(value) else f"{value:g}"


def _tau(label: str, a: Agreement) -> str:
    ci = a.ci
    if math.isnan(ci.tau):
        return f"{label} = —"
    if a.source == "stored" or math.isnan(ci.lo):
        return f"{label} = {ci.tau:.2f} (from stored metrics, no interval)"
    return (f"{label} = {ci.tau:.2f} [{ci.lo:.2f}, {ci.hi:.2f}] ({ci.resolved} of {ci.pairs} pairs resolved, "
            f"{ci.n_models} models, {ci.n_prompts} prompts)")


def render_board(b: Board) -> str:
    """One board as aligned text."""
    n, c = format_n(b.descriptor.rank.pass_n), format_n(b.descriptor.rank.cov_n)
    columns = [("CE", lambda r: r.ce), ("KL", lambda r: r.kl), (f"Cov{c}", lambda r: r.cov),
               (f"P@{n} meas", lambda r: r.pass_measured), (f"P@{n} exact", lambda r: r.pass_exact),
               (f"P@{n} pred", lambda r: r.pass_pred)]
    columns = [(h, get) for h, get in columns if any(not math.isnan(get(r).value) for r in b.rows)]
    header = ["model"] + [h for h, _ in columns] + ["rCE", f"rCov{c}", f"rP@{n}"]
    body = [[r.model] + [fmt_cell(get(r)) for _, get in columns]
            + [_rank(r.rank_ce), _rank(r.rank_cov), _rank(r.rank_pass)] for r in b.rows]
    widths = [max(len(line[j]) for line in [header, *body]) for j in range(len(header))]

    def fmt(line: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(line, widths)))

    title = b.task + (f" (+ {b.sampler_task})" if b.sampler_task else "")
    lines = [title, fmt(header), fmt(["-" * w for w in widths]), *(fmt(line) for line in body), b.headline,
             _tau(f"τ(CE, Pass@{n})", b.tau_ce), _tau(f"τ(Cov{c}, Pass@{n})", b.tau_cov)]
    return "\n".join(lines)


def render_classes(table: ClassTable) -> str:
    """A task's per-class table as aligned text: per class, CE, Cov at N/2 and Pass@N of every model (the
    intervals are on the site); the header line gives each class's prompts and weight share."""
    c, n = format_n(table.rank.cov_n), format_n(table.rank.pass_n)
    header = ["model"] + [f"{label}:{h}" for label in table.labels for h in ("CE", f"Cov{c}", f"P@{n}")]
    body = []
    for r in table.rows:
        cells = [r.values[k, j, 0] for j in range(len(table.labels)) for k in range(3)]
        body.append([r.model] + [MISSING if math.isnan(v) else f"{v:.3f}" for v in cells])
    widths = [max(len(line[j]) for line in [header, *body]) for j in range(len(header))]
    fmt = lambda line: "  ".join(x.ljust(w) if j == 0 else x.rjust(w)  # noqa: E731
                                 for j, (x, w) in enumerate(zip(line, widths)))
    sources = sorted({r.pass_source for r in table.rows if r.pass_source})
    counts = ", ".join(f"{label} {k} prompts ({share:.0%})" for label, k, share
                       in zip(table.labels, table.n_prompts, table.share) if not math.isnan(share))
    title = f"per class ({counts}; P@{n} {'/'.join(sources) or 'missing'})"
    return "\n".join([title, fmt(header), fmt(["-" * w for w in widths]), *(fmt(line) for line in body)])


def render(cat: Catalog) -> str:
    """Every board of ``cat``, separated by blank lines."""
    parts = []
    for b in build(cat).boards:
        parts.append(render_board(b))
        if b.classes is not None and any(r.pass_source or not np.isnan(r.values).all() for r in b.classes.rows):
            parts[-1] += "\n" + render_classes(b.classes)
    return "\n\n".join(parts)
