"""Table cells of the leaderboard as HTML, built in Python: the index has a row per (task, model)
(10,000 rows for 1,000 models × 10 tasks) and each model page repeats its rows, so these run
tens of thousands of times per build, where a Jinja macro call costs ~30 µs.

Every value goes through :func:`markupsafe.escape` (the numbers are our own text, but escaping is
the rule for anything put into a page); the result is :class:`markupsafe.Markup`, so the
autoescaping templates insert it as is. ``data-v`` carries the exact value for sorting
(:func:`leaderboard.fmt.sort_key`); missing values print as an em dash, never 0.

>>> from covbench.records import Estimate
>>> str(est(Estimate(value=0.5, lo=0.25, hi=0.75)))
'<td class="num" data-v="0.5">0.500<span class="ci">[0.250, 0.750]</span></td>'
>>> str(rank(2.0, True, "CE"))
'<td class="num rank flip" data-v="2.0" title="CE rank differs from the Pass@N rank">2<span class="flipmark" aria-label="rank flip"> ⇅</span></td>'
"""

from __future__ import annotations

from markupsafe import Markup, escape

from covbench.records import Estimate

from . import fmt


def _td(cls: str, value: float, text: str, extra: str = "") -> str:
    return f'<td class="{cls}" data-v="{escape(fmt.sort_key(value))}"{extra}>{escape(text)}'


def est(e: Estimate, ci: bool = True) -> Markup:
    """A value with its stored interval (if both ends are stored)."""
    interval = fmt.interval(e.lo, e.hi) if ci else ""
    span = f'<span class="ci">{escape(interval)}</span>' if interval else ""
    return Markup(f"{_td('num', e.value, fmt.num(e.value))}{span}</td>")


def rank(value: float, flip: bool = False, what: str = "") -> Markup:
    """A rank; a flip (this proxy's rank differs from the Pass@N rank) is marked ⇅."""
    if not flip:
        return Markup(f"{_td('num rank', value, fmt.rank(value))}</td>")
    title = f' title="{escape(what)} rank differs from the Pass@N rank"'
    return Markup(f"{_td('num rank flip', value, fmt.rank(value), title)}"
                  '<span class="flipmark" aria-label="rank flip"> ⇅</span></td>')


def pass_cells(row) -> Markup:  # row: leaderboard.board.Row
    """Pass@N measured (with its interval), exact, and predicted (with the coverage bracket)."""
    m, x, p = row.pass_measured, row.pass_exact, row.pass_pred
    m_ci, bracket = fmt.interval(m.lo, m.hi), fmt.interval(row.pass_pred_lo, row.pass_pred_hi)
    used = {"measured": (" used", ""), "exact": ("", " used")}.get(row.pass_source, ("", ""))
    return Markup(
        f"{_td('num' + used[0], m.value, fmt.num(m.value))}"
        f"{f'<span class={chr(34)}ci{chr(34)}>{escape(m_ci)}</span>' if m_ci else ''}</td>\n"
        f"{_td('num' + used[1], x.value, fmt.num(x.value))}</td>\n"
        f"{_td('num', p.value, fmt.num(p.value))}"
        f"{f'<span class={chr(34)}ci{chr(34)} title={chr(34)}coverage bracket{chr(34)}>{escape(bracket)}</span>' if bracket else ''}</td>")


def row_cells(row) -> Markup:  # row: leaderboard.board.Row
    """CE, KL, Cov, the three Pass@N cells and the three ranks of a row, as on the index page."""
    return Markup("".join((est(row.ce), est(row.kl), est(row.cov), pass_cells(row),
                           rank(row.rank_ce, row.flip_ce, "CE"), rank(row.rank_cov, row.flip_cov, "Coverage"),
                           rank(row.rank_pass))))
