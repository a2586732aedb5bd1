"""A task folder sent to workers that do not share the driver's filesystem (docs/executors.md).

The tasks shipped with covbench need nothing: every worker has them in its own installed package. A
user's ``--tasks-dir`` is packed once by the driver into a :class:`TaskBundle` (a gzip'd tar of the
folder's files, at most :data:`MAX_BYTES` of them), and each worker unpacks it once into a folder named by the
bundle's hash. Tasks are then built from the same YAML, ``utils.py`` and data files as on the driver,
so the task hash each worker computes matches the driver's (the worker checks it).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "t.yaml").write_text("task: t\\n")
>>> b = pack(d)
>>> (b.unpack() / "t.yaml").read_text()
'task: t\\n'
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 64 << 20  # a task folder is YAML, a little Python and small data files
_SKIP_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints"}


class TaskShipError(Exception):
    """A task folder that cannot be sent to workers (too large, unreadable); one line naming it."""


@dataclass(frozen=True)
class TaskBundle:
    """A task folder's files as one compressed archive, named by its content's hash."""

    source: str  # the folder on the driver (for messages)
    digest: str
    data: bytes

    def unpack(self, root: Path | None = None) -> Path:
        """The folder on this machine holding the bundle's files (unpacked once per bundle and machine)."""
        root = Path(root or tempfile.gettempdir()) / "covbench-tasks"
        target = root / self.digest[:16]
        if target.is_dir():
            return target
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".unpack-"))
        with tarfile.open(fileobj=io.BytesIO(self.data), mode="r:gz") as tar:
            tar.extractall(staging, filter="data")  # no absolute paths, links out of the folder, devices
        try:
            os.replace(staging, target)  # atomic: concurrent workers on one machine see all or nothing
        except OSError:  # another worker got there first
            pass
        return target


def pack(folder: Path) -> TaskBundle:
    """Pack ``folder`` (its regular files, recursively; caches skipped) into a :class:`TaskBundle`."""
    folder = Path(folder)
    buffer = io.BytesIO()
    h, total = hashlib.sha256(), 0
    try:
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
            for path in sorted(_files(folder)):
                rel = path.relative_to(folder).as_posix()
                data = path.read_bytes()
                total += len(data)
                if total > MAX_BYTES:
                    raise TaskShipError(f"{folder}: task folder too large to send to workers "
                                        f"(over {MAX_BYTES >> 20} MiB of files)")
                h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
                info = tarfile.TarInfo(rel)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    except OSError as e:
        raise TaskShipError(f"{folder}: cannot pack the task folder for workers: {e.strerror or e}") from None
    return TaskBundle(str(folder), h.hexdigest(), buffer.getvalue())


def _files(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        out += [Path(dirpath) / f for f in filenames if not f.endswith(".pyc") and (Path(dirpath) / f).is_file()]
    return out
