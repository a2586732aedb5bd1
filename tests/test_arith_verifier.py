"""The number-extracting verifier on tricky model outputs, and the seeded generator."""

from fractions import Fraction

import pytest

from covbench.arith.generator import KINDS, RANGES, generate
from covbench.arith.verifier import extract_number, is_correct

# (model output, gold, verdict): extra text, commas, negatives, decimals, currency, no number.
CASES = [
    (" 68", 68, True),
    ("68", 68, True),
    (" 68.", 68, True),                       # sentence full stop, not a decimal point
    (" 68.0", 68, True),                      # equal as numbers
    (" 68.5", 68, False),
    (" 68 apples", 68, True),
    ("The answer is 68.", 68, True),
    ("the answer is: 68", 68, True),
    ("Answer = 68", 68, True),
    ("The answer is 68, not 67.", 68, True),  # "answer is" beats "last number"
    ("23 + 45 = 68", 68, True),               # last number
    ("23 + 45 = 69", 68, False),
    ("68 or maybe 69", 68, False),            # final number decides
    (" 1,234", 1234, True),                   # thousands separator
    ("$1,234.00", 1234, True),
    ("1,234,567", 1234567, True),
    ("12,34", 1234, False),                   # not a thousands group: two numbers, 12 and 34
    ("1,2345", 12345, False),
    (" -5", -5, True),
    ("\u22125", -5, True),                    # Unicode minus
    ("-$5", -5, True),
    ("It fell to -12 degrees", -12, True),
    ("5", -5, False),                         # sign matters
    ("3-4", 4, True),                         # a hyphen after a digit is not a sign
    ("#### 42", 42, True),
    ("so 6 * 7 = 42\n#### 42", 42, True),
    ("#### 41\nbut really 42", 41, True),     # the marker wins over later numbers
    ("", 0, False),                           # empty output
    ("I don't know", 0, False),               # no number
    ("forty-two", 42, False),                 # words are not numbers
    ("6 8", 68, False),
    ("A:68", 68, True),
    ("x68", 68, False),                       # digits glued to a word are not a number
    ("0", 0, True),
    (" 007", 7, True),
    ("1e3", 1000, False),                     # no scientific notation: last number is 3
    ("68\n\nQ: What is 2 + 2?", 68, False),   # run-on text: the final number is 2
]


@pytest.mark.parametrize(("text", "gold", "verdict"), CASES)
def test_verifier_tricky_outputs(text: str, gold: int, verdict: bool) -> None:
    assert is_correct(text, gold) is verdict


def test_at_least_30_cases() -> None:
    assert len(CASES) >= 30


def test_extract_is_exact_and_none_when_absent() -> None:
    assert extract_number("costs $2.50") == Fraction(5, 2)
    assert extract_number("nothing here") is None
    assert extract_number(None) is None  # type: ignore[arg-type]


def test_gold_as_gsm8k_solution_string() -> None:
    assert is_correct("The answer is 750", "1200 - 450 = <<1200-450=750>>750\n#### 750")
    assert not is_correct("749", "#### 750")


def test_gold_without_number_raises_one_line() -> None:
    with pytest.raises(ValueError, match="contains no number"):
        is_correct("5", "no gold here")


def test_generator_is_seeded_and_correct() -> None:
    a, b = generate(50, seed=7), generate(50, seed=7)
    assert a == b
    assert a != generate(50, seed=8)
    assert generate(20, seed=7) == a[:20]  # prefix property: n never changes earlier docs
    for p in a:
        (alo, ahi), (blo, bhi) = RANGES[p.kind]
        assert alo <= p.a <= ahi and blo <= p.b <= bhi
        assert p.answer == (p.a + p.b if p.op == "+" else p.a * p.b)
        assert str(p.a) in p.question and str(p.b) in p.question
    assert [p.kind for p in a[:4]] == list(KINDS)
    many = generate(400, seed=1234)
    assert len({p.question for p in many}) == 400  # no prompt repeats


def test_generator_rejects_bad_input() -> None:
    assert generate(0, seed=1) == []
    with pytest.raises(ValueError, match="n must be"):
        generate(-1, seed=1)
    with pytest.raises(ValueError, match="kinds"):
        generate(3, seed=1, kinds=("div",))  # type: ignore[arg-type]
