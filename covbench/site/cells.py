"""Table cells of the leaderboard as HTML, built in Python: the index has a row per (task, model)
(10,000 rows for 1,000 models × 10 tasks) and each model page repeats its rows, so these run
tens of thousands of times per build, where a Jinja macro call costs ~30 µs.

The cells hold numbers only, in the text forms of :mod:`covbench.site.fmt`, which never contain an
HTML-special character (digits, signs, ``.``, ``e``, ``∞``, ``—``, ``Infinity``, brackets;
tests/test_site_fmt.py checks this over arbitrary floats), so they are assembled as plain
strings and marked safe once per cell group (:class:`markupsafe.Markup`: the autoescaping templates
insert it as is). The one free-text part, a flip's ``title``, is escaped. ``data-v`` carries the
exact value for sorting (:func:`covbench.site.fmt.sort_key`); missing values print as an em dash,
never 0.

>>> from covbench.records import Estimate
>>> str(est(Estimate(value=0.5, lo=0.25, hi=0.75)))
'<td class="num" data-v="0.5">0.500<span class="ci">[0.250, 0.750]</span></td>'
>>> str(rank(2.0, True, "CE"))
'<td class="num rank flip" data-v="2.0" title="CE rank differs from the Pass@N rank">2<span class="flipmark" aria-label="rank flip"> ⇅</span></td>'
"""

from __future__ import annotations

import weakref

import numpy as np
from markupsafe import Markup, escape

from covbench.records import Estimate

from . import fmt


def _td(cls: str, value: float, text: str, extra: str = "") -> str:
    return f'<td class="{cls}" data-v="{fmt.sort_key(value)}"{extra}>{text}'


def _ci(interval: str, title: str = "") -> str:
    return f'<span class="ci"{title}>{interval}</span>' if interval else ""


def _est(e: Estimate, ci: bool = True) -> str:
    return f"{_td('num', e.value, fmt.num(e.value))}{_ci(fmt.interval(e.lo, e.hi)) if ci else ''}</td>"


def _rank(value: float, flip: bool = False, what: str = "") -> str:
    if not flip:
        return f"{_td('num rank', value, fmt.rank(value))}</td>"
    title = f' title="{escape(what)} rank differs from the Pass@N rank"'
    return (f"{_td('num rank flip', value, fmt.rank(value), title)}"
            '<span class="flipmark" aria-label="rank flip"> ⇅</span></td>')


def _pass(row) -> str:  # row: covbench.views.Row
    m, x, p = row.pass_measured, row.pass_exact, row.pass_pred
    used_m, used_x = {"measured": (" used", ""), "exact": ("", " used")}.get(row.pass_source, ("", ""))
    bracket = _ci(fmt.interval(row.pass_pred_lo, row.pass_pred_hi), ' title="coverage bracket"')
    return (f"{_td('num' + used_m, m.value, fmt.num(m.value))}{_ci(fmt.interval(m.lo, m.hi))}</td>\n"
            f"{_td('num' + used_x, x.value, fmt.num(x.value))}</td>\n"
            f"{_td('num', p.value, fmt.num(p.value))}{bracket}</td>")


def est(e: Estimate, ci: bool = True) -> Markup:
    """A value with its stored interval (if both ends are stored)."""
    return Markup(_est(e, ci))


def rank(value: float, flip: bool = False, what: str = "") -> Markup:
    """A rank; a flip (this proxy's rank differs from the Pass@N rank) is marked ⇅."""
    return Markup(_rank(value, flip, what))


def pass_cells(row) -> Markup:  # row: covbench.views.Row
    """Pass@N measured (with its interval), exact, and predicted (with the coverage bracket)."""
    return Markup(_pass(row))


def row_cells(row) -> Markup:  # row: covbench.views.Row
    """CE, KL, Cov, the three Pass@N cells and the three ranks of a row, as on the index page."""
    return Markup("".join((_est(row.ce), _est(row.kl), _est(row.cov), _pass(row),
                           _rank(row.rank_ce, row.flip_ce, "CE"), _rank(row.rank_cov, row.flip_cov, "Coverage"),
                           _rank(row.rank_pass))))


def curve_rows(ns, curves) -> Markup:  # ns: tuple[float, ...]; curves: np.ndarray [N, 7, 4] (views.models.CURVES)
    """A model page's curve table body: per N, Cov_N and Pass@N measured, exact and predicted (with the
    coverage bracket), then the coverage of the correct set Cov_M with its finite-sample interval (from
    sampled verdicts, docs/verifier-coverage.md); other intervals are in the CSV download."""
    text = fmt.nums(curves[:, :, 0])
    out = []
    for i, (n, (cov, meas, exact, pred, lo, hi, cov_set)) in enumerate(zip(ns, text)):
        bracket = f' <span class="ci">[{lo}, {hi}]</span>' if lo != fmt.MISSING else ""
        set_ci = fmt.interval(curves[i, 6, 1], curves[i, 6, 2])
        set_ci = f' <span class="ci" title="95% finite-sample interval">{set_ci}</span>' if set_ci else ""
        out.append(f'<tr><td class="num">{fmt.threshold(n)}</td><td class="num">{cov}</td><td class="num">{meas}</td>'
                   f'<td class="num">{exact}</td><td class="num">{pred}{bracket}</td>'
                   f'<td class="num">{cov_set}{set_ci}</td></tr>')
    return Markup("\n".join(out))


def _plain(e: Estimate) -> str:
    return fmt.num(e.value)


def model_task(t, model_slug: str) -> Markup:  # t: covbench.views.ModelTask
    """One task's section of a model page, built in Python (1,000 model pages × 10 tasks per build).
    Every free-text field (task name, provenance) is escaped."""
    rank = t.descriptor.rank
    slug = escape(t.task_slug)
    head = (f'<section id="task-{slug}">\n<h2><a class="anchor" href="#task-{slug}">#</a> '
            f'<a href="../tasks/{slug}.html#{escape(model_slug)}">{escape(t.task)}</a></h2>\n'
            f'<p class="note">CE {_plain(t.ce)} · KL {_plain(t.kl)} · Cov<sub>{fmt.threshold(rank.cov_n)}</sub> '
            f'{_plain(t.cov)} · Pass@{fmt.threshold(rank.pass_n)} {_plain(t.pass_used)}'
            f'{f" ({t.pass_source})" if t.pass_source else ""}</p>\n')
    table = ('<div class="scroll">\n<table class="board">\n<thead><tr><th scope="col">N</th><th scope="col">Cov_N</th>'
             '<th scope="col">Pass@N measured</th><th scope="col">exact</th>'
             '<th scope="col">predicted [coverage bracket]</th>'
             '<th scope="col" title="P_x[π̂(correct set|x) ≤ 1/N] from sampled verdicts (lower is better)">'
             'Cov_N of the correct set [interval]</th></tr></thead>\n<tbody>\n'
             f"{curve_rows(t.ns, t.curves)}\n</tbody>\n</table>\n</div>\n")
    if t.classes is not None:
        table += ('<p class="note">Per class: the mean over each class\'s prompts with its 95% t interval '
                  "(docs/selection.md#per-class).</p>\n" + _model_classes(t.classes))
    runs = "".join(
        f"<tr><td>{escape(task)}</td><td><code>{escape(file)}</code></td>"
        f"<td>{escape(p.get('time', ''))}</td><td>{escape(p.get('covbench_version', ''))}</td>"
        f"<td>{escape(p.get('lm_eval_version', ''))}</td><td><code>{escape(str(p.get('git_commit', ''))[:12])}</code></td>"
        f"<td>{escape(str(p.get('seed', '')))}</td><td>{escape(p.get('machine', ''))}</td></tr>\n"
        for task, p, file, i in t.runs)
    prov = ('<table class="plain">\n<thead><tr><th>Task</th><th>Run file</th><th>Time (UTC)</th><th>covbench</th>'
            '<th>lm-eval</th><th>commit</th><th>seed</th><th>machine</th></tr></thead>\n'
            f"<tbody>\n{runs}</tbody>\n</table>\n</section>\n")
    return Markup(head + table + prov)


# ---- per-class tables (covbench.views.classes) -----------------------------------------------------------


def class_heads(table) -> list[str]:  # table: covbench.views.ClassTable
    """Column titles of a per-class table: ``G2 CE``, ``G2 Cov_4``, ``G2 Pass@8`` for each class."""
    c, n = fmt.threshold(table.rank.cov_n), fmt.threshold(table.rank.pass_n)
    return [f"{label} {head}" for label in table.labels for head in ("CE", f"Cov_{c}", f"Pass@{n}")]


_ROW_CELLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # ClassRow -> its cells, formatted once


def _class_rows(table) -> list[list[str]]:  # table: covbench.views.ClassTable
    """Per row, one ``<td>`` per (class, metric), class-major: the value, its interval, and the prompts behind
    it in the cell's title. A row's cells are made once per build: the task page formats its whole table
    (one vectorised call per column kind) and each model page reuses its row's cells."""
    todo = [r for r in table.rows if r not in _ROW_CELLS]
    if todo:
        flat = [r.values.transpose(1, 0, 2).reshape(-1, 4) for r in todo]  # [C·3, 4] each, class-major
        if len(flat) == 1:
            text, lo, hi = ([[fmt.num(x) for x in flat[0][:, k].tolist()]] for k in range(3))
        else:
            stacked = np.stack(flat)
            text, lo, hi = (fmt.nums(stacked[..., k]) for k in range(3))
        for j, r in enumerate(todo):
            counts = r.n.T.reshape(-1).tolist()
            what = ("CE", "Cov", f"{r.pass_source} Pass@N" if r.pass_source else "Pass@N")
            cells = []
            for k, value in enumerate(flat[j][:, 0].tolist()):
                a, b = lo[j][k], hi[j][k]
                ci = _ci(f"[{a}, {b}]") if a != fmt.MISSING and b != fmt.MISSING else ""
                title = f' title="{what[k % 3]} over {counts[k]} prompts"'
                cells.append(f"{_td('num', value, text[j][k], title)}{ci}</td>")
            _ROW_CELLS[r] = cells
    return [_ROW_CELLS[r] for r in table.rows]


def class_board(table) -> Markup:  # table: covbench.views.ClassTable
    """A task page's per-class table body: one row per model (id ``cls-<slug>``), linked to its page."""
    lines = []
    for r, cells in zip(table.rows, _class_rows(table)):
        name, rslug = escape(r.model), escape(r.slug)
        lines.append(f'<tr id="cls-{rslug}"><td data-v="{name}"><a href="../models/{rslug}.html">{name}</a></td>'
                     f'{"".join(cells)}</tr>')
    return Markup("\n".join(lines))


def class_summary(table) -> str:  # table: covbench.views.ClassTable
    """``G1: 461 prompts, weight 0.900; G2: 51 prompts, weight 0.100`` (plain text, escaped by the template)."""
    return "; ".join(f"{label}: {n} prompts, weight {fmt.num(share)}"
                     for label, n, share in zip(table.labels, table.n_prompts, table.share))


def _model_classes(table) -> str:  # table: covbench.views.ClassTable holding one row
    """A model page's per-class table: one row per class (prompts, weight, CE, Cov, Pass@N with intervals)."""
    row = table.rows[0]
    cells = _class_rows(table)[0]
    c, n = fmt.threshold(table.rank.cov_n), fmt.threshold(table.rank.pass_n)
    source = f" ({escape(row.pass_source)})" if row.pass_source else ""
    body = "".join(f'<tr><td>{escape(label)}</td><td class="num">{count}</td><td class="num">{fmt.num(share)}</td>'
                   f"{''.join(cells[3 * k:3 * k + 3])}</tr>\n"
                   for k, (label, count, share) in enumerate(zip(table.labels, table.n_prompts, table.share)))
    return ('<div class="scroll">\n<table class="board classes">\n<thead><tr><th scope="col">class</th>'
            '<th scope="col">prompts</th><th scope="col">weight</th><th scope="col">CE</th>'
            f'<th scope="col">Cov_{c}</th><th scope="col">Pass@{n}{source}</th></tr></thead>\n<tbody>\n{body}'
            "</tbody>\n</table>\n</div>\n")
