"""What covbench reads from a task YAML without building the lm-eval task: its ``metadata.covbench`` block.

Every covbench task is an lm-eval task YAML with a block (docs/tasks.md)::

    metadata:
      covbench:
        reference: known | gold          # π_D known (synthetic) or a gold answer
        kind: loglikelihood | sample     # scoring task, or n samples per prompt + a verifier
        adapter: module:function         # lm-eval samples -> covbench arrays (told the kind)
        pairs_with: TASK                 # sampling tasks: the scoring task on the same prompts
        rank: {pass_n: 8, cov_n: 4}      # the N the leaderboard ranks the task at (default 8 and 4)
        classes: [G1, G2]                # per-doc class labels, in display order (optional)
        title: one line                  # optional

:func:`descriptor` turns the block into the typed :class:`~covbench.records.TaskDescriptor` that the runner
writes into every stored run, so the leaderboard and the terminal report read these facts from the store
and never restate them. The project's tasks ship inside the package (:data:`TASKS_DIR`), so an installed
covbench finds them from any working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from covbench import taskfiles
from covbench.records import RankNs, TaskDescriptor
from covbench.yamlio import YamlError, read_yaml

TASKS_DIR = Path(__file__).resolve().parent / "tasks"


class TaskMetaError(Exception):
    """A task YAML or its ``metadata.covbench`` block is malformed; one line naming the file and field."""


def descriptor(name: str, block: Any, source: str) -> TaskDescriptor:
    """The typed descriptor of task ``name`` from its ``metadata.covbench`` block (read from ``source``);
    the block's keys and choices are checked first by :func:`covbench.taskfiles.covbench_block_problem`."""
    if not isinstance(block, dict):
        raise TaskMetaError(f"{source}: field 'metadata.covbench' is missing or not a mapping")
    fields = {k: block[k] for k in ("reference", "kind", "pairs_with", "title") if k in block}
    if "rank" in block:
        fields["rank"] = block["rank"]
    if "classes" in block:
        fields["classes"] = block["classes"]
    try:
        return TaskDescriptor(name=name, **fields)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        got = repr(err.get("input"))[:60]
        raise TaskMetaError(f"{source}: field 'metadata.covbench.{where}': {err['msg']} (got {got})") from None


def descriptor_for(name: str, tasks_dir: Path = TASKS_DIR) -> TaskDescriptor | None:
    """The descriptor of the task called ``name`` in ``tasks_dir`` from its YAML alone (no lm-eval), or
    None when there is no such readable covbench task (used to describe format-1 runs)."""
    for f in taskfiles.scan(tasks_dir):
        if f.task != name or not f.suite or f.error:
            continue
        try:
            data = read_yaml(f.path, function_tag=True)
            return descriptor(name, (data.get("metadata") or {}).get("covbench"), str(f.path))
        except (YamlError, TaskMetaError, AttributeError):
            return None
    return None


__all__ = ["TASKS_DIR", "RankNs", "TaskMetaError", "descriptor", "descriptor_for"]
