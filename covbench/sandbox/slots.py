"""Concurrency slots: a dedicated unprivileged uid per sandbox running at the same time (root modes).

``RLIMIT_NPROC`` counts the processes of a *user*, so a fork bomb is stopped by it only if no other
sandbox runs under the same uid. Slot ``i`` runs as uid and gid ``UID_BASE + i``; a slot is held through
an exclusive ``flock`` on ``LOCK_DIR/slot-<i>.lock``, which the kernel releases when the holder exits, so
concurrent covbench processes (pytest-xdist workers, two users' runs) never share a uid
(``docs/sandbox.md`` §"Slots").
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

UID_BASE = 1_640_000
SLOT_COUNT = 64
LOCK_DIR = "/run/covbench-sandbox"


@dataclass(frozen=True)
class Slot:
    """index: the slot number (-1 when the mode runs as the caller's own uid); uid, gid: its ids."""

    index: int
    uid: int | None
    gid: int | None


NO_SLOT = Slot(-1, None, None)


def _lock_dir() -> str:
    os.makedirs(LOCK_DIR, 0o700, exist_ok=True)
    info = os.lstat(LOCK_DIR)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise PermissionError(f"{LOCK_DIR}: not a private directory of uid {os.geteuid()}")
    return LOCK_DIR


@contextmanager
def acquire(dedicated_uid: bool, wait_s: float = 60.0) -> Iterator[Slot]:
    """Hold a free slot for the duration of the block (waits up to ``wait_s`` if all are taken)."""
    if not dedicated_uid:
        yield NO_SLOT
        return
    folder = _lock_dir()
    deadline = time.monotonic() + wait_s
    while True:
        for index in range(SLOT_COUNT):
            fd = os.open(f"{folder}/slot-{index}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield Slot(index, UID_BASE + index, UID_BASE + index)
            finally:
                os.close(fd)
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{folder}: all {SLOT_COUNT} sandbox slots stayed busy for {wait_s:.0f} s")
        time.sleep(0.01)
