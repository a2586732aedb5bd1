"""The results store: append-only, atomically written JSON files, one per scored (model, task) run.

Layout: ``<root>/<task-slug>/<model-slug>/run-<UTC time>-<pid>-<random>.json``. A slug is the name
made path-safe plus a short hash of the exact name, so any model name (even ``<script>``) maps to one
folder and two names never share one. Every write goes to a temporary file in the same folder and is
renamed into place (``os.replace`` is atomic on POSIX), so a reader never sees half a file and
concurrent writers (pytest-xdist workers) never lose each other's results. Nothing is overwritten:
the latest file of a (model, task) is its current result.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from covbench.gcpause import gc_paused
from covbench.records import RunRecord


class StoreError(Exception):
    """A corrupt or unreadable result file; the message is one line naming the file and the field."""


def slug(name: str) -> str:
    """Path-safe folder name for a model or task name.

    >>> slug("graph-ft/step 10")
    'graph-ft_step_10-9cecb858'
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "x"
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def run_dir(root: Path, model: str, task: str) -> Path:
    return Path(root) / slug(task) / slug(model)


def write_run(root: Path, record: RunRecord) -> Path:
    """Append ``record`` to the store atomically and return the new file's path."""
    folder = run_dir(root, record.model, record.task)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    final = folder / f"run-{stamp}-{os.getpid()}-{secrets.token_hex(4)}.json"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(record.model_dump_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def read_run(path: Path) -> RunRecord:
    """Read one result file; a corrupt one raises :class:`StoreError` naming the file and field."""
    return read_run_text(path)[0]


def read_run_text(path: Path) -> tuple[RunRecord, str]:
    """:func:`read_run`, also returning the file's text verbatim (the leaderboard republishes it)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise StoreError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return RunRecord.model_validate_json(text), text
    except ValidationError as e:
        err = e.errors()[0]
        field_name = ".".join(str(p) for p in err["loc"]) or "(file)"
        raise StoreError(f"{path}: field '{field_name}': {err['msg']}") from None


def run_files(root: Path, model: str, task: str) -> list[Path]:
    """All result files of one (model, task), oldest first (file names sort by time)."""
    folder = run_dir(root, model, task)
    return sorted(folder.glob("run-*.json")) if folder.is_dir() else []


def latest_run(root: Path, model: str, task: str) -> RunRecord | None:
    """The current result of one (model, task), or None when nothing is stored."""
    files = run_files(root, model, task)
    return read_run(files[-1]) if files else None


@dataclass(frozen=True)
class StoreScan:
    """The latest record of every (model, task) in a store, plus the files that could not be read.

    ``texts[i]`` is the file ``records[i]`` was read from, verbatim; empty for a scan assembled in
    memory (then :meth:`text` serialises the record, which is what :func:`write_run` wrote).
    """

    records: list[RunRecord]
    errors: list[str]
    texts: list[str] = field(default_factory=list)

    def text(self, i: int) -> str:
        return self.texts[i] if self.texts else self.records[i].model_dump_json()


def scan(root: Path) -> StoreScan:
    """Latest record per (model, task) under ``root``, sorted by (task, model).

    A corrupt latest file is reported in ``errors`` (one line each) and the newest readable
    older file of that (model, task) is used instead, so a bad write never hides a stored result.
    """
    root = Path(root)
    found: list[tuple[RunRecord, str]] = []
    errors: list[str] = []
    with gc_paused():  # millions of long-lived objects: collections would dominate (covbench.gcpause)
        for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
            for path in sorted(folder.glob("run-*.json"), reverse=True):
                try:
                    found.append(read_run_text(path))
                    break
                except StoreError as e:
                    errors.append(str(e))
    found.sort(key=lambda rt: (rt[0].task, rt[0].model))
    return StoreScan(records=[r for r, _ in found], errors=errors, texts=[t for _, t in found])
