"""``covbench wrap``: covbench tasks derived from any lm-eval task, without copying it (docs/wrap.md).

>>> from covbench.wrap import WrapRequest, plan, read_origin
>>> p = plan(WrapRequest("gsm8k", n=8), read_origin("gsm8k"))   # write(p, out) writes the folder
>>> list(p.tasks), p.tasks["gsm8k_wrap"]["repeats"], p.tasks["gsm8k_wrap"]["metadata"]["covbench"]["pairs_with"]
(['gsm8k_wrap', 'gsm8k_wrap_ll'], 8, 'gsm8k_wrap_ll')

Modules: :mod:`~covbench.wrap.origin` (find and read the lm-eval task), :mod:`~covbench.wrap.plan` (the
wrapped task configs), :mod:`~covbench.wrap.write` (the folder), :mod:`~covbench.wrap.glue` (what runs
inside lm-eval: the gold target, and verdicts from the task's own filters and metric),
:mod:`~covbench.wrap.cli` (the command).
"""

from covbench.wrap.glue import Binding, WrapError
from covbench.wrap.origin import Origin, find_origin, read_origin
from covbench.wrap.plan import Plan, WrapRequest, plan
from covbench.wrap.write import write

__all__ = ["Binding", "Origin", "Plan", "WrapError", "WrapRequest", "find_origin", "plan", "read_origin", "write"]
