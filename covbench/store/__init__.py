"""The results store: one append-only, atomically written file per scored (model, task) run (docs/store.md).

Layout: ``<root>/<task-slug>/<model-slug>/run-<UTC time>-<host>-<pid>-<random>.safetensors``. A slug is
the name made path-safe plus a short hash of the exact name, so any model name (even ``<script>``) maps
to one folder and two names never share one. A run file is written to a temporary file in its folder
and renamed into place (atomic on POSIX), so a reader never sees half a run and concurrent writers never
lose each other's results. Nothing is overwritten or deleted: the newest readable file of a
(model, task) is its current result. Format-1 files (``run-*.json``, covbench ≤ 0.1) are still read;
``covbench store migrate`` rewrites them in format 2.

Reading: :func:`catalog` gives the latest run of every (model, task) through the index
(:mod:`covbench.store.index`), :func:`to_dataframe` one pandas row per (model, task), :func:`read_run`
one run with its arrays.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from covbench.records import Run, RunRecord

from . import runfile
from .index import Catalog, error_line, is_run_file, read_small, read_whole, refresh
from .runfile import RunFileError

T = TypeVar("T")

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Catalog", "StoreError", "catalog", "latest_run", "read_record", "read_run", "run_dir", "run_files",
           "slug", "to_dataframe", "write_run"]


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


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def write_run(root: Path, run: Run) -> Path:
    """Append ``run`` to the store atomically and return the new file's path."""
    record = run.record
    folder = run_dir(root, record.model, record.task)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = folder / f"run-{stamp}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}{runfile.SUFFIX}"
    runfile.write_atomic(final, runfile.encode(run))
    return final


def read_run(path: Path) -> Run:
    """One run file (either format) with its arrays; a corrupt one raises :class:`StoreError`."""
    return _read(read_whole, Path(path))


def read_record(path: Path) -> RunRecord:
    """Only the small part of one run file (format 2 reads just the file's head)."""
    return _read(read_small, Path(path))


def _read(reader: Callable[[Path], T], path: Path) -> T:
    """``reader(path)``, its failures turned into one :class:`StoreError` line naming the file and the field."""
    try:
        return reader(path)
    except (RunFileError, OSError, ValueError) as e:
        raise StoreError(error_line(path, e)) from None


def run_files(root: Path, model: str, task: str) -> list[Path]:
    """All run files of one (model, task), oldest first (file names sort by time)."""
    folder = run_dir(root, model, task)
    return sorted(p for p in folder.iterdir() if is_run_file(p.name)) if folder.is_dir() else []


def latest_run(root: Path, model: str, task: str) -> tuple[Run, Path] | None:
    """The newest readable run of one (model, task) and its file, or None when nothing readable is stored."""
    for path in reversed(run_files(root, model, task)):
        try:
            return read_whole(path), path
        except (RunFileError, OSError, ValueError):
            continue
    return None


def catalog(root: Path) -> Catalog:
    """The latest readable run of every (model, task) under ``root`` (refreshing the index)."""
    return refresh(Path(root))


def to_dataframe(root: Path) -> pd.DataFrame:
    """One row per (model, task): identity, task descriptor, provenance and every metric.

    Columns: ``model, task, family, step, description, reference, kind, pairs_with, rank_pass_n,
    rank_cov_n, path``, the provenance fields (``sampling`` as its own columns ``sampling.<key>``), then per
    metric key ``K`` the columns ``K`` (value), ``K.lo``, ``K.hi`` and ``K.stderr``; NaN where missing.
    """
    from .frame import dataframe

    return dataframe(catalog(root))
