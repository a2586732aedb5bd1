"""Jinja2 rendering with autoescaping on for every template: every string from the store is text.

Templates live in ``covbench/site/templates``; pages link to ``static/`` and ``plots/`` by relative
URLs (``root`` is ``""`` on top-level pages and ``"../"`` one folder down), so the site works from
any path and from ``file://``. Nothing is inlined: no ``<script>`` body, no ``style=`` attribute,
no JSON in the page, which is what lets the Content-Security-Policy forbid inline code.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from covbench.views.families import difference_text

from . import cells, fmt

# The policy the pages carry in a <meta> tag: only files of the site itself; plots are <img>s.
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("covbench.site", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(num=fmt.num, interval=fmt.interval, rank=fmt.rank, sortv=fmt.sort_key,
                       n=fmt.threshold, axisv=fmt.axis_value, est_cell=cells.est, rank_cell=cells.rank,
                       pass_cells=cells.pass_cells, row_cells=cells.row_cells)
    env.globals.update(curve_rows=cells.curve_rows, model_task=cells.model_task, class_board=cells.class_board,
                       class_heads=cells.class_heads, class_summary=cells.class_summary,
                       difference_text=difference_text)
    env.globals.update(CSP=CSP, MISSING=fmt.MISSING)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context``."""
    return environment().get_template(template).render(**context)
