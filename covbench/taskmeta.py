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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from covbench.records import RankNs, TaskDescriptor

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
_BLOCK_KEYS = {"reference", "kind", "adapter", "pairs_with", "rank", "classes", "title", "data"}


class TaskMetaError(Exception):
    """A task YAML or its ``metadata.covbench`` block is malformed; one line naming the file and field."""


@dataclass(frozen=True)
class TaskMeta:
    """A covbench task found in a task folder: its YAML file, descriptor and adapter reference."""

    path: Path
    descriptor: TaskDescriptor
    adapter: str  # "module:function"


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads lm-eval's ``!function`` tags as plain strings (their targets are not needed)."""


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def read_yaml(path: Path) -> dict[str, Any]:
    """A task YAML with its ``include:`` merged in (shallowly, as lm-eval does: the file's keys win)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (SafeLoader subclass)
    except OSError as e:
        raise TaskMetaError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise TaskMetaError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise TaskMetaError(" ".join(f"{path}: {where}YAML syntax error: {getattr(e, 'problem', e)}".split())) from None
    except RecursionError:
        raise TaskMetaError(f"{path}: YAML nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TaskMetaError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    include = data.get("include")
    if isinstance(include, str):
        base = read_yaml((path.parent / include).resolve())
        base.update({k: v for k, v in data.items() if k != "include"})
        return base
    return data


def descriptor(name: str, block: Any, source: str) -> TaskDescriptor:
    """The typed descriptor of task ``name`` from its ``metadata.covbench`` block (read from ``source``)."""
    if not isinstance(block, dict):
        raise TaskMetaError(f"{source}: field 'metadata.covbench' is missing or not a mapping")
    unknown = sorted(str(k) for k in block if k not in _BLOCK_KEYS)
    if unknown:
        raise TaskMetaError(f"{source}: field 'metadata.covbench.{unknown[0]}': unknown key "
                            f"(allowed: {', '.join(sorted(_BLOCK_KEYS))})")
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


def task_meta(path: Path, data: dict[str, Any]) -> TaskMeta | None:
    """The covbench task defined by one YAML file, or None when it is not a covbench task."""
    name = data.get("task")
    metadata = data.get("metadata")
    if not isinstance(name, str) or not isinstance(metadata, dict) or "covbench" not in metadata:
        return None
    block = metadata["covbench"]
    desc = descriptor(name, block, str(path))
    adapter = block.get("adapter")
    if not isinstance(adapter, str) or ":" not in adapter:
        raise TaskMetaError(f"{path}: field 'metadata.covbench.adapter': must be 'module:function', got {adapter!r}")
    return TaskMeta(path=path, descriptor=desc, adapter=adapter)


def scan_tasks(tasks_dir: Path = TASKS_DIR) -> dict[str, TaskMeta]:
    """Every covbench task in ``tasks_dir`` (recursively), by name; a malformed one raises one line."""
    tasks_dir = Path(tasks_dir)
    if not tasks_dir.is_dir():
        raise TaskMetaError(f"{tasks_dir}: task folder does not exist")
    found: dict[str, TaskMeta] = {}
    for path in sorted(tasks_dir.rglob("*.yaml")):
        meta = task_meta(path, read_yaml(path))
        if meta is None:
            continue
        if meta.descriptor.name in found:
            raise TaskMetaError(f"{path}: field 'task': '{meta.descriptor.name}' is also defined in "
                                f"{found[meta.descriptor.name].path}")
        found[meta.descriptor.name] = meta
    return found


def descriptor_for(name: str, tasks_dir: Path = TASKS_DIR) -> TaskDescriptor | None:
    """The descriptor of a task of ``tasks_dir`` by name, or None (unknown task or unreadable folder)."""
    try:
        meta = scan_tasks(tasks_dir).get(name)
    except TaskMetaError:
        return None
    return None if meta is None else meta.descriptor


__all__ = ["TASKS_DIR", "RankNs", "TaskMeta", "TaskMetaError", "descriptor", "descriptor_for", "read_yaml",
           "scan_tasks", "task_meta"]
