"""Fixed text forms of numbers on the site: the same float always prints the same way.

Missing (NaN) prints as an em dash, never as 0; infinities (a response the model gives zero
probability has CE = +inf) print as ∞. Tables show 3 decimals, ranks show halves (average ranks
of ties), and the ``data-v`` sort keys carry the exact float (``repr``) so sorting is exact.
"""

from __future__ import annotations

import math

from covbench.records import format_n as threshold  # noqa: F401  (re-exported for templates)

MISSING = "—"


def num(value: float, digits: int = 3) -> str:
    """Table form of a float.

    >>> num(0.12345), num(float("nan")), num(float("inf")), num(-float("inf")), num(2.0, 1)
    ('0.123', '—', '∞', '−∞', '2.0')
    """
    if value is None or math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    text = f"{value:.{digits}f}"
    return "0." + "0" * digits if text == "-0." + "0" * digits else text


def nums(values, digits: int = 3) -> list[list[str]]:
    """:func:`num` of every element of a 2-D array, formatted in one vectorised call.

    >>> import numpy as np
    >>> nums(np.array([[0.12345, np.nan], [np.inf, -0.0001]]))
    [['0.123', '—'], ['∞', '0.000']]
    """
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    text = np.char.mod(f"%.{digits}f", np.where(np.isfinite(v), v, 0.0))
    text = np.where(text == "-0." + "0" * digits, "0." + "0" * digits, text)
    text = np.where(np.isnan(v), MISSING, np.where(np.isposinf(v), "∞", np.where(np.isneginf(v), "−∞", text)))
    return text.tolist()


def interval(lo: float, hi: float, digits: int = 3) -> str:
    """A confidence interval, or nothing when either end is missing.

    >>> interval(0.1, 0.25), interval(float("nan"), 0.3)
    ('[0.100, 0.250]', '')
    """
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return ""
    return f"[{num(lo, digits)}, {num(hi, digits)}]"


def rank(value: float) -> str:
    """A rank: integers plain, ties (average ranks) with one decimal, missing as a dash.

    >>> rank(1.0), rank(2.5), rank(float("nan"))
    ('1', '2.5', '—')
    """
    if value is None or math.isnan(value):
        return MISSING
    if math.isinf(value):  # never a rank; printed rather than crashing the page
        return num(value)
    return str(int(value)) if value == int(value) else f"{value:.1f}"


def sort_key(value: float) -> str:
    """The ``data-v`` attribute the sorting script reads: exact, empty for missing.

    >>> sort_key(0.1), sort_key(float("nan")), sort_key(float("inf"))
    ('0.1', '', 'Infinity')
    """
    if value is None or math.isnan(value):
        return ""
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def axis_value(value: float | None) -> str:
    """A position on a family's axis (a step, a temperature, a bit width): shortest exact form.

    >>> axis_value(0.7), axis_value(1500.0), axis_value(None)
    ('0.7', '1500', '—')
    """
    if value is None or math.isnan(value):
        return MISSING
    return f"{value:g}" if float(f"{value:g}") == value else repr(float(value))
