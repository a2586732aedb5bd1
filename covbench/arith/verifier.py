"""Number-extracting verifier: the final number of a model's answer, compared with the gold integer.

Rules, in order (the first that applies decides):

1. A gsm8k-style ``#### <number>`` marker: the number after the last ``####``.
2. An ``answer is <number>`` / ``answer: <number>`` phrase: the number after the last such phrase.
3. Otherwise the last number in the text.

A number may carry a sign (``-``, or the Unicode minus ``−``), thousands separators (``1,234``; a
comma not followed by exactly three digits separates numbers instead: ``3,4``), a decimal part
(``12.0`` equals 12, ``12.5`` does not) and a leading ``$``. A trailing full stop is a sentence
end, not a decimal point. Text with no number extracts to ``None`` and is never correct.

>>> extract_number("The answer is 1,234.")
Fraction(1234, 1)
>>> extract_number("-7 apples"), extract_number("no idea")
(Fraction(-7, 1), None)
>>> is_correct(" 68\\n", 68), is_correct("68.0", 68), is_correct("6 8", 68)
(True, True, False)
"""

from __future__ import annotations

import re
from fractions import Fraction

# Sign, then either a comma-grouped integer (1,234,567) or plain digits, then an optional
# decimal part. The lookbehind stops "a1" or "1.2.3" style fragments from starting mid-token;
# the lookahead refuses a grouped number that runs on into more digits ("1,2345").
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-\u2212]?)\$?"
    r"(?P<int>\d{1,3}(?:,\d{3})+(?![\d])|\d+)"
    r"(?P<frac>\.\d+)?"
)
_MARKER = re.compile(r"####")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:|=)\s*", re.IGNORECASE)


def _numbers(text: str) -> list[Fraction]:
    out = []
    for m in _NUMBER.finditer(text):
        value = Fraction(m["int"].replace(",", "") + (m["frac"] or ""))
        out.append(-value if m["sign"] else value)
    return out


def _after_last(pattern: re.Pattern[str], text: str) -> str | None:
    matches = list(pattern.finditer(text))
    return text[matches[-1].end():] if matches else None


def extract_number(text: str) -> Fraction | None:
    """The answer number of ``text`` (rules in the module docstring), exact, or None.

    >>> extract_number("#### 42"), extract_number("3 + 4 = 7"), extract_number("answer: $5")
    (Fraction(42, 1), Fraction(7, 1), Fraction(5, 1))
    """
    if not isinstance(text, str):
        return None
    for pattern in (_MARKER, _ANSWER_IS):
        tail = _after_last(pattern, text)
        if tail is not None:
            found = _numbers(tail)
            if found:
                return found[0]
    found = _numbers(text)
    return found[-1] if found else None


def is_correct(text: str, gold: int | str | Fraction) -> bool:
    """True iff the extracted number equals ``gold`` exactly (``gold`` may be a gsm8k "#### 42" string).

    >>> is_correct("It is 1,000", "1000"), is_correct("12", 13), is_correct("", 0)
    (True, False, False)
    """
    target = gold if isinstance(gold, (int, Fraction)) else extract_number(str(gold))
    if target is None:
        raise ValueError(f"gold answer {gold!r} contains no number")
    got = extract_number(text)
    return got is not None and got == Fraction(target)
