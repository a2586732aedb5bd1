"""A sandbox for untrusted, model-written Python programs (``docs/sandbox.md``).

>>> from covbench.sandbox import Limits, run_program
>>> run_program("assert 1 + 1 == 2").status        # doctest: +SKIP
'passed'
"""

from covbench.sandbox.client import resolve_isolation, run_many, run_program
from covbench.sandbox.humaneval import check_humaneval, check_humaneval_many, humaneval_program
from covbench.sandbox.isolation import SandboxWarning, available_modes
from covbench.sandbox.launcher import SandboxError, shutdown
from covbench.sandbox.limits import Limits
from covbench.sandbox.verdict import STATUSES, Isolation, Status, Verdict

__all__ = [
    "STATUSES", "Isolation", "Limits", "SandboxError", "SandboxWarning", "Status", "Verdict",
    "available_modes", "check_humaneval", "check_humaneval_many", "humaneval_program", "resolve_isolation",
    "run_many", "run_program", "shutdown",
]
