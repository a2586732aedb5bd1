"""Seeded arithmetic problems (addition, multiplication; plain and word-problem form) with gold answers.

A problem is one prompt x with a single gold answer y*. The task policy π_T puts all its mass on
y*, so the coverage of a model π̂ is measured against that gold answer (docs/coverage-principle.md#gold-reference): X = −log π̂(y*|x).

The same seed always gives the same problems, in the same order, on every machine: every draw
comes from one ``random.Random(seed)`` stream, and Python's Mersenne Twister and ``randint`` are
stable across versions.

>>> probs = generate(4, seed=0)
>>> [p.kind for p in probs]
['add', 'mul', 'add_word', 'mul_word']
>>> probs == generate(4, seed=0)
True
>>> all(p.answer == (p.a + p.b if p.op == "+" else p.a * p.b) for p in generate(200, seed=3))
True
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Literal

Kind = Literal["add", "mul", "add_word", "mul_word"]
KINDS: tuple[Kind, ...] = ("add", "mul", "add_word", "mul_word")

# Operand ranges per kind, inclusive. Chosen so a 135M model is right sometimes but not always
# (2-3 digit sums, 2-digit x 1-digit products): coverage curves then have a real spread.
RANGES: dict[Kind, tuple[tuple[int, int], tuple[int, int]]] = {
    "add": ((10, 999), (10, 999)),
    "mul": ((2, 99), (2, 9)),
    "add_word": ((10, 99), (10, 99)),
    "mul_word": ((2, 12), (2, 9)),
}

# Word templates: (template, unit). {a} and {b} are the operands.
_ADD_WORDS = (
    "{name} has {a} {item}s and buys {b} more. How many {item}s does {name} have now?",
    "A shelf holds {a} {item}s and another shelf holds {b}. How many {item}s are there in total?",
)
_MUL_WORDS = (
    "There are {a} boxes with {b} {item}s in each box. How many {item}s are there in total?",
    "{name} buys {a} bags of {item}s. Each bag has {b} {item}s. How many {item}s does {name} buy?",
)
_NAMES = ("Tom", "Ana", "Li", "Sara", "Omar", "Mia")
_ITEMS = ("apple", "pencil", "marble", "book", "card", "coin")


@dataclass(frozen=True)
class Problem:
    """One arithmetic problem; ``question`` is the text shown to the model, ``answer`` the gold integer."""

    doc_id: int
    kind: Kind
    op: Literal["+", "*"]
    a: int
    b: int
    question: str
    answer: int

    def to_doc(self) -> dict[str, object]:
        """The lm-eval doc (a flat JSON-able dict)."""
        return asdict(self)


def _question(kind: Kind, a: int, b: int, rng: random.Random) -> str:
    if kind == "add":
        return f"What is {a} + {b}?"
    if kind == "mul":
        return f"What is {a} * {b}?"
    templates = _ADD_WORDS if kind == "add_word" else _MUL_WORDS
    template = templates[rng.randrange(len(templates))]
    return template.format(a=a, b=b, name=rng.choice(_NAMES), item=rng.choice(_ITEMS))


def make_problem(doc_id: int, kind: Kind, rng: random.Random) -> Problem:
    """Draw one problem of ``kind`` from ``rng`` (advances the stream by a fixed number of draws per kind)."""
    (alo, ahi), (blo, bhi) = RANGES[kind]
    a, b = rng.randint(alo, ahi), rng.randint(blo, bhi)
    op = "+" if kind in ("add", "add_word") else "*"
    answer = a + b if op == "+" else a * b
    return Problem(doc_id, kind, op, a, b, _question(kind, a, b, rng), answer)


def generate(n: int, seed: int | str, kinds: tuple[Kind, ...] = KINDS) -> list[Problem]:
    """``n`` distinct problems, kinds cycling in the order given (so every kind is equally represented).

    A question already drawn is drawn again, so no prompt repeats (lm-eval's loglikelihood cache and the
    sampler would otherwise merge two docs into one). The first k problems never depend on ``n``.

    >>> generate(0, seed=1)
    []
    >>> generate(2, seed=1, kinds=("mul",))[0].op
    '*'
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    unknown = [k for k in kinds if k not in RANGES]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {kinds}")
    rng = random.Random(seed)
    problems: list[Problem] = []
    seen: set[str] = set()
    while len(problems) < n:
        p = make_problem(len(problems), kinds[len(problems) % len(kinds)], rng)
        if p.question not in seen:
            seen.add(p.question)
            problems.append(p)
    return problems
