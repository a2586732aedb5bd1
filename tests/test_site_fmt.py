"""The number forms of covbench.site.fmt never need HTML escaping (covbench/site/cells.py relies on it)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from covbench.records import Estimate
from covbench.site import cells, fmt

SPECIAL = set("<>&\"'")
any_float = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=500, deadline=None)
@given(any_float, any_float)
def test_number_forms_hold_no_html_special_character(a, b):
    for text in (fmt.num(a), fmt.num(a, 1), fmt.sort_key(a), fmt.rank(a), fmt.interval(a, b)):
        assert not SPECIAL & set(text), text
        assert str(escape(text)) == text


@settings(max_examples=200, deadline=None)
@given(any_float, any_float, any_float)
def test_cells_equal_their_escaped_form(v, lo, hi):
    html = str(cells.est(Estimate(value=v, lo=lo, hi=hi)))
    # Only the markup itself carries quotes and angle brackets: strip the known tags, nothing special is left.
    text = html.replace('<td class="num" data-v="', "").replace('">', "").replace('<span class="ci', "")
    text = text.replace("</span>", "").replace("</td>", "")
    assert not SPECIAL & set(text), html
    assert "data-v=\"\"" in html if math.isnan(v) else f'data-v="{fmt.sort_key(v)}"' in html
