"""Publishing a site: build it beside ``--out``, then swap it in by one atomic rename (docs/site.md#publish).

- The new site is written into a sibling folder ``.<out>.new-<random>``; files that did not change since
  the published site are hard links to its files (a published file is never modified in place, so
  sharing it is safe; where links are impossible, e.g. across filesystems, the file is copied).
- :meth:`Publisher.commit` exchanges the two folders with ``renameat2(RENAME_EXCHANGE)`` (Linux ≥ 3.15 on
  ext4, xfs, btrfs, tmpfs, overlayfs): at every instant ``--out`` is either the complete old site or the
  complete new one, even if the process is killed. Where the kernel or filesystem cannot exchange (macOS,
  NFS), it falls back to two renames, and a kill between them leaves ``--out`` missing for that moment
  (the old site then sits in ``.<out>.old-*``; the next build cleans it up); docs/site.md says so.
- A folder that is not empty and was not built by covbench (no :data:`MARKER` file) is never replaced.
- One build at a time per ``--out``: a lock file beside it (``flock``, released by the kernel when the
  process dies) serialises builds, and the next build removes what a killed one left behind.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import secrets
import shutil
from pathlib import Path
from types import TracebackType

MARKER = ".covbench-site"  # a folder holding this file was built by covbench and may be replaced
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class PublishError(Exception):
    """The output folder cannot be used or a file cannot be written; one line."""


def check_out_dir(out_dir: Path) -> None:
    """Refuse an ``--out`` that is a file, or a non-empty folder that covbench did not build."""
    if out_dir.is_symlink() or out_dir.exists():
        if not out_dir.is_dir() or out_dir.is_symlink():
            raise PublishError(f"{out_dir}: --out exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
            raise PublishError(f"{out_dir}: --out is a non-empty folder not built by covbench; refusing to replace it")


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise PublishError(f"{b}: cannot swap in the new site: {os.strerror(err)}")


class Publisher:
    """Write a new site beside ``out_dir`` and swap it in on :meth:`commit`.

    Use as a context manager: leaving with an exception removes the new folder and keeps the old site.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out = Path(out_dir)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.out.parent / f".{self.out.name}.lock", "a+b")  # noqa: SIM115 (held for the build)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        check_out_dir(self.out)
        self._clean_leftovers()
        self.tmp = self.out.parent / f".{self.out.name}.new-{secrets.token_hex(4)}"
        self.tmp.mkdir()
        self._dirs: set[str] = {""}

    def _clean_leftovers(self) -> None:
        for stale in self.out.parent.glob(f".{self.out.name}.new-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in self.out.parent.glob(f".{self.out.name}.old-*"):
            if (stale / MARKER).is_file() and not self.out.exists():
                os.rename(stale, self.out)  # a killed fallback swap: put the old site back
            else:
                shutil.rmtree(stale, ignore_errors=True)

    def _parent(self, rel: str) -> str:
        path = os.path.join(self.tmp, rel)
        folder = os.path.dirname(rel)
        if folder not in self._dirs:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._dirs.add(folder)
        return path

    def write(self, rel: str, data: bytes) -> None:
        path = self._parent(rel)
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError as e:
            raise PublishError(f"{path}: cannot write: {e.strerror}") from None

    def has(self, rel: str) -> bool:
        """Whether the published site has the file ``rel``."""
        return os.path.isfile(os.path.join(self.out, rel))

    def read_published(self, rel: str) -> bytes:
        with open(os.path.join(self.out, rel), "rb") as f:
            return f.read()

    def keep(self, rel: str) -> bool:
        """Reuse the published site's file ``rel`` unchanged (a hard link, else a copy); False if it has none."""
        old = os.path.join(self.out, rel)
        if not os.path.isfile(old):
            return False
        path = self._parent(rel)
        try:
            os.link(old, path)
        except OSError:
            try:
                shutil.copyfile(old, path)
            except OSError as e:
                raise PublishError(f"{path}: cannot write: {e.strerror}") from None
        return True

    def commit(self) -> None:
        """Swap the new site in; the old one is deleted afterwards."""
        self.write(MARKER, b"covbench leaderboard site; `covbench leaderboard build` replaces this folder\n")
        check_out_dir(self.out)
        if not self.out.exists():
            os.rename(self.tmp, self.out)
            return
        if _exchange(self.tmp, self.out):
            shutil.rmtree(self.tmp)  # now the old site
            return
        old = self.out.parent / f".{self.out.name}.old-{secrets.token_hex(4)}"
        os.rename(self.out, old)
        os.rename(self.tmp, self.out)
        shutil.rmtree(old)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def close(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if kind is None:
                self.commit()
            else:
                self.abort()
        finally:
            self.close()
