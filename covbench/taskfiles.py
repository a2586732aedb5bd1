"""The YAML files of a task folder as covbench reads them, and one-line reasons for the broken ones.

When lm-eval's ``TaskManager`` cannot read a task file (a YAML syntax error, a missing ``include``,
bad UTF-8), it skips the file and logs at DEBUG level. The task then looked simply absent ("task 'x'
is not in DIR"). Here every ``*.yaml`` under the folder is read with :func:`covbench.yamlio.read_yaml`
(lm-eval's ``!function`` tag allowed), within the same limits as the registry. The runner asks this
module why a task cannot be loaded, and each answer is one line naming the file and, where known, the
line or the field (docs/errors.md)::

    tasks/t.yaml: line 6: YAML syntax error: expected ',' or ']', but got ':'
    tasks/t.yaml: field 'metadata.covbench.kind': must be one of ('loglikelihood', 'sample'), got 'generate'

A file covbench cannot read still counts as a suite task when its text has a plain ``task: NAME`` line
and mentions ``covbench``. Its job then fails with the file's error instead of silently disappearing.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from covbench.yamlio import DEFAULT_LIMITS, YamlError, one_line, read_yaml

#: keys of a task's ``metadata.covbench`` block (covbench.taskmeta: the descriptor they make).
COVBENCH_KEYS = ("reference", "kind", "adapter", "pairs_with", "rank", "classes", "title", "data")
_CHOICES = {"reference": ("known", "gold"), "kind": ("loglikelihood", "sample")}
_TASK_LINE = re.compile(r"""^task:[ \t]*(["']?)([A-Za-z0-9_.-]+)\1[ \t]*(?:#.*)?$""", re.MULTILINE)
_PEEK_BYTES = 64 * 1024
_SKIPPED_FOLDERS = {"__pycache__", ".ipynb_checkpoints"}  # lm-eval's indexer skips these too


@dataclass(frozen=True)
class TaskFile:
    """One ``*.yaml`` file of a task folder.

    ``task`` is the file's ``task:`` name (None for include-only files and groups). For a file that
    cannot be read, it is the name a plain ``task: NAME`` line in its text gives, if any. ``suite`` means
    the file carries a ``metadata.covbench`` block; for an unreadable file, that its text mentions
    covbench. ``error`` is the one-line reason covbench cannot read it, or None.
    """

    path: Path
    task: str | None
    suite: bool
    error: str | None = None


def scan(tasks_dir: str | Path) -> tuple[TaskFile, ...]:
    """Every ``*.yaml`` file under ``tasks_dir`` in path order (each file re-read only when it changes)."""
    files = []
    for path in _yaml_files(tasks_dir):
        try:
            info = os.stat(path)
        except (OSError, ValueError):  # a dangling symlink, a symlink loop: read_yaml says which
            files.append(_read.__wrapped__(str(path), 0, 0))
            continue
        files.append(_read(str(path), info.st_mtime_ns, info.st_size))
    return tuple(files)


def _yaml_files(tasks_dir: str | Path) -> list[Path]:
    return sorted(p for p in Path(tasks_dir).rglob("*.yaml") if not _SKIPPED_FOLDERS & set(p.parts))


def suite_names(tasks_dir: str | Path) -> list[str]:
    """Sorted names of the suite tasks of ``tasks_dir`` (files with a ``metadata.covbench`` block)."""
    return sorted({f.task for f in scan(tasks_dir) if f.suite and f.task is not None})


@lru_cache(maxsize=1024)
def _read(path_text: str, mtime_ns: int, size: int) -> TaskFile:
    path = Path(path_text)
    try:
        cfg = read_yaml(path, function_tag=True)
    except YamlError as e:
        text = _peek(path)
        match = _TASK_LINE.search(text)
        return TaskFile(path, match.group(2) if match else None, "covbench" in text, str(e))
    if not isinstance(cfg, dict):
        return TaskFile(path, None, False)
    task = cfg.get("task") if isinstance(cfg.get("task"), str) else None
    meta = cfg.get("metadata")
    return TaskFile(path, task, isinstance(meta, dict) and "covbench" in meta)


def _peek(path: Path) -> str:
    """The start of a regular file's text (undecodable bytes replaced), or "" for anything else."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return ""
        with open(path, "rb") as f:
            return f.read(_PEEK_BYTES).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def index_hazard(tasks_dir: str | Path) -> str | None:
    """A ``*.yaml`` file that lm-eval's indexer would block on or read without bound, or None.

    lm-eval opens every ``*.yaml`` under its include path: a FIFO blocks it forever, ``/dev/zero``
    (through a symlink) fills memory, and a huge file takes as long as it is long. Checked with
    ``stat`` only, before the index is built."""
    for path in _yaml_files(tasks_dir):
        try:
            info = os.stat(path)
        except (OSError, ValueError):  # lm-eval cannot open it either, and skips it
            continue
        special = not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode))
        if special or info.st_size > DEFAULT_LIMITS.max_bytes:
            return _read.__wrapped__(str(path), 0, 0).error
    return None


def file_problem(name: str, tasks_dir: str | Path) -> str | None:
    """Why the file(s) defining task ``name`` cannot be used (unreadable, or two of them), or None."""
    files = [f for f in scan(tasks_dir) if f.task == name]
    broken = [f for f in files if f.error is not None]
    if broken:
        return broken[0].error
    if len(files) > 1:
        return one_line(f"{files[1].path}: field 'task': task '{name}' is also defined in {files[0].path}")
    return None


def not_indexed(name: str, tasks_dir: str | Path, known: list[str]) -> str:
    """Why lm-eval's index of ``tasks_dir`` has no task ``name``, in one line."""
    if not Path(tasks_dir).is_dir():
        return one_line(f"{tasks_dir}: not a folder (looking for task '{name}')")
    files = scan(tasks_dir)
    mine = [f for f in files if f.task == name]
    if mine:
        return one_line(f"{mine[0].path}: lm-eval cannot index task '{name}': {_index_reason(mine[0].path)}")
    hint = difflib.get_close_matches(name, known, n=1)
    did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
    broken = [f.error for f in files if f.error is not None]
    unreadable = f"; {len(broken)} file(s) there cannot be read, first: {broken[0]}" if broken else ""
    return one_line(f"task '{name}' is not in {tasks_dir}{did_you_mean} (known: {', '.join(known)}){unreadable}")


def _index_reason(path: Path) -> str:
    """What stops lm-eval from indexing a file covbench can read: usually its ``include``."""
    try:
        cfg = read_yaml(path, function_tag=True)
    except YamlError as e:
        return str(e)
    includes = cfg.get("include") if isinstance(cfg, dict) else None
    for inc in includes if isinstance(includes, list) else [includes] if includes is not None else []:
        if not isinstance(inc, str):
            return f"field 'include': must name YAML files, got {inc!r}"
        target = path.parent / inc
        try:
            read_yaml(target, function_tag=True)
        except YamlError as e:
            return f"field 'include': {e}"
    try:  # lm-eval's own reader says what else is wrong (a private module of lm-eval 0.4.13)
        from lm_eval.tasks._yaml_loader import load_yaml

        load_yaml(path, resolve_func=False)
    except Exception as e:  # noqa: BLE001 - whatever lm-eval raises, reported in one line
        return f"{type(e).__name__}: {e}"
    return "lm-eval skipped the file without saying why"


def build_problem(path: str | Path, name: str, error: BaseException) -> str:
    """One line for an exception lm-eval raised while building task ``name`` from ``path``."""
    unknown = re.search(r"unexpected keyword argument '([^']+)'", str(error))
    if isinstance(error, TypeError) and unknown:
        return one_line(f"{path}: field '{unknown.group(1)}': not a setting lm-eval's task config knows")
    return one_line(f"{path}: lm-eval cannot build task '{name}': {type(error).__name__}: {error}")[:600]


def covbench_block_problem(path: str | Path, meta: Any, known: list[str]) -> str | None:
    """What is wrong with a task's ``metadata.covbench`` block (``known``: the folder's task names)."""
    where = "field 'metadata.covbench"
    if meta is None:
        return f"{path}: {where}': missing"
    if not isinstance(meta, dict):
        return f"{path}: {where}': must be a mapping, got {type(meta).__name__}"
    for key in meta:
        if key not in COVBENCH_KEYS:
            hint = difflib.get_close_matches(str(key), COVBENCH_KEYS, n=1)
            did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
            return one_line(f"{path}: {where}.{key}': unknown key{did_you_mean} (allowed: {', '.join(COVBENCH_KEYS)})")
    for key, allowed in _CHOICES.items():
        if meta.get(key) not in allowed:
            return one_line(f"{path}: {where}.{key}': must be one of {allowed}, got {meta.get(key)!r}")
    adapter = meta.get("adapter")
    if not isinstance(adapter, str) or not re.fullmatch(r"[\w.]+:\w+", adapter):
        return one_line(f"{path}: {where}.adapter': must be 'package.module:function', got {adapter!r}")
    pairs_with = meta.get("pairs_with")
    if pairs_with is not None and not isinstance(pairs_with, str):
        return one_line(f"{path}: {where}.pairs_with': must be a task name, got {pairs_with!r}")
    if pairs_with is not None and pairs_with not in known:
        return one_line(f"{path}: {where}.pairs_with': task {pairs_with!r} is not a task of this folder")
    return None
