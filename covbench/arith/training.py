"""Training problems for fine-tuning on the arithmetic tasks, disjoint from their evaluation docs.

The evaluation docs of ``arith_ll``/``arith_sample`` come from ``generate(n, seed=1234)``. Training
problems come from a different seed stream (``"arith-train-<seed>"``) and are drawn *online*: the kinds
cycle as in :func:`covbench.arith.generator.generate`, each problem is drawn by the same
:func:`~covbench.arith.generator.make_problem`, and a problem whose **fact** is held out is skipped.
A fact is the operation and its unordered operands, ``("*", 5, 7)`` for both "5 * 7" and "7 boxes with 5
cards", so no held-out answer is ever a training target, whatever the wording (docs/finetune.md "Data").

Repeats are allowed (the ``mul`` kind has only 784 distinct questions): the stream samples the task's own
distribution minus the held-out facts, like the zoo's online fine-tuning data.

>>> held = {fact(p) for p in generate(64, seed=1234)}
>>> train = training_problems(200, seed=0, exclude=held)
>>> [p.kind for p in train[:4]]
['add', 'mul', 'add_word', 'mul_word']
>>> any(fact(p) in held for p in train), train == training_problems(200, seed=0, exclude=held)
(False, True)
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterator

from covbench.arith.generator import KINDS, Kind, Problem, generate, make_problem

__all__ = ["Fact", "fact", "generate", "problem_stream", "training_problems", "training_seed"]

Fact = tuple[str, int, int]


def fact(p: Problem) -> Fact:
    """The arithmetic fact a problem asks for: ``(op, smaller operand, larger operand)``.

    >>> fact(make_problem(0, "mul", random.Random(0)))
    ('*', 8, 51)
    """
    return (p.op, min(p.a, p.b), max(p.a, p.b))


def training_seed(seed: int) -> str:
    """The training stream's seed: a string, so it can never coincide with an integer evaluation seed."""
    return f"arith-train-{seed}"


def problem_stream(seed: int, exclude: Collection[Fact] = (),
                   kinds: tuple[Kind, ...] = KINDS) -> Iterator[Problem]:
    """An endless deterministic stream of training problems whose facts are not in ``exclude``.

    Kinds cycle in the order given. A rejected draw is redrawn for the same kind, so every kind stays
    equally represented. A kind whose every fact is excluded would loop forever, so that raises
    after 10,000 rejections in a row.
    """
    rng = random.Random(training_seed(seed))
    held = frozenset(exclude)
    i = 0
    while True:
        kind = kinds[i % len(kinds)]
        for _ in range(10_000):
            p = make_problem(i, kind, rng)
            if fact(p) not in held:
                break
        else:
            raise ValueError(f"problem_stream: every draw of kind {kind!r} is excluded")
        yield p
        i += 1


def training_problems(n: int, seed: int, exclude: Collection[Fact] = (),
                      kinds: tuple[Kind, ...] = KINDS) -> list[Problem]:
    """The first ``n`` problems of :func:`problem_stream` (a prefix of every longer list)."""
    stream = problem_stream(seed, exclude, kinds)
    return [next(stream) for _ in range(n)]
