"""Writing the site: a child process creates the files while the build goes on, then the new
folder replaces ``--out`` in one rename.

Creating files is slow and erratic on the disks we run on (0.05–0.5 ms per file, and a site for
1,000 models has 4,000 files), and it is the kernel's work, not Python's. So the build sends each
file through a pipe to a child process, which writes it, and goes on computing the next one.
The files go into a fresh sibling folder; only when every file is written does it take
``--out``'s place (rename the old site away, rename the new one in, delete the old one), so a
failed build leaves the previous site as it was. A folder that is not empty and that we did not
build (no :data:`MARKER` file) is never replaced.

The child is this file run as a script (``python sitewriter.py ROOT``): standard library only, no
covbench import, no re-import of the caller's ``__main__`` (which ``multiprocessing``'s spawn
would do), so it starts in tens of milliseconds from any script, notebook or test. Frames on its
stdin: two little-endian uint32 lengths, the relative path, the bytes; a zero-length path ends the
stream, and the child answers one line on stdout: ``ok`` or the first error.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

MARKER = ".covbench-site"  # a folder holding this file was built by us and may be replaced
_HEADER = struct.Struct("<II")


class SiteWriteError(Exception):
    """The output folder cannot be used or a file could not be written; one line."""


def check_out_dir(out_dir: Path) -> None:
    """Refuse an ``--out`` that is a file, or a non-empty folder that we did not build."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise SiteWriteError(f"{out_dir}: --out exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
            raise SiteWriteError(f"{out_dir}: --out is a non-empty folder not built by covbench; "
                                 "refusing to replace it")


def _read(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n) if n else b""
    if len(data) != n:
        raise EOFError
    return data


def _frames(stream: BinaryIO, into: queue.SimpleQueue) -> None:
    """Read frames into a queue as fast as the pipe gives them; None ends (EOFError: cut short)."""
    try:
        while True:
            n_path, n_data = _HEADER.unpack(_read(stream, _HEADER.size))
            if n_path == 0:
                into.put(None)
                return
            into.put((_read(stream, n_path).decode("utf-8"), _read(stream, n_data)))
    except EOFError as e:
        into.put(e)


def serve(root: str, stream: BinaryIO) -> str:
    """The child: write every framed file under ``root`` until the end frame; "" or the first error.

    A reader thread drains the pipe into memory while this thread creates the files, so the build
    never waits on the disk (a pipe holds 64 KiB). After an error nothing more is written, but the
    stream is still read to its end. A stream cut short (the build died) raises EOFError.
    """
    frames: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_frames, args=(stream, frames), daemon=True).start()
    made: set[str] = set()
    error = ""
    while (frame := frames.get()) is not None:
        if isinstance(frame, EOFError):
            raise frame
        if error:
            continue
        path = os.path.join(root, frame[0])
        try:
            parent = os.path.dirname(path)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            with open(path, "wb") as f:
                f.write(frame[1])
        except OSError as e:
            error = f"{path}: cannot write: {e.strerror}"
    return error


class SiteWriter:
    """``put(relative path, text)`` files of a site; ``close()`` waits for them and swaps the folder in.

    Use as a context manager: leaving with an exception discards the new folder.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        check_out_dir(self.out_dir)
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self._sibling("building")
        self.tmp.mkdir()  # mode 0777 less the umask, like any folder (mkdtemp's 0700 would hide the site)
        self._proc = subprocess.Popen([sys.executable, "-I", __file__, str(self.tmp)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, bufsize=1 << 20)
        assert self._proc.stdin is not None and self._proc.stdout is not None

    def put(self, rel: str, text: str) -> None:
        path = rel.encode("utf-8")
        if not path:
            raise ValueError("SiteWriter.put: empty path")
        data = text.encode("utf-8")
        try:
            self._proc.stdin.write(_HEADER.pack(len(path), len(data)) + path)  # type: ignore[union-attr]
            self._proc.stdin.write(data)  # type: ignore[union-attr]
        except BrokenPipeError:
            raise SiteWriteError(f"{self.out_dir}: the site writer process died "
                                 f"(exit status {self._proc.wait()})") from None

    def write_direct(self, rel: str, text: str) -> None:
        """Write one file now, in the calling process (a forked helper's output, say), not through
        the writer process. The paths must differ from those given to :meth:`put`."""
        path = self.tmp / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
        except OSError as e:
            raise SiteWriteError(f"{path}: cannot write: {e.strerror}") from None

    def close(self) -> None:
        """Wait for every file, then replace ``out_dir`` with the new folder."""
        try:
            self._proc.stdin.write(_HEADER.pack(0, 0))  # type: ignore[union-attr]
            self._proc.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass  # reported below from the exit status
        answer = self._proc.stdout.read().decode("utf-8", "replace").strip()  # type: ignore[union-attr]
        status = self._proc.wait()
        if answer != "ok":
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise SiteWriteError(answer or f"{self.out_dir}: the site writer process died (exit status {status})")
        check_out_dir(self.out_dir)  # still ours (or gone) after the build
        old = None
        if self.out_dir.exists():
            old = self._sibling("old")
            os.replace(self.out_dir, old)
        os.replace(self.tmp, self.out_dir)
        if old is not None:
            shutil.rmtree(old)

    def _sibling(self, what: str) -> Path:
        return self.out_dir.parent / f".{self.out_dir.name}.{what}-{secrets.token_hex(4)}"

    def abort(self) -> None:
        """Stop the child and delete the new folder; ``out_dir`` is untouched."""
        self._proc.kill()
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


if __name__ == "__main__":  # the child: python sitewriter.py ROOT, frames on stdin
    try:
        failure = serve(sys.argv[1], sys.stdin.buffer)
    except EOFError:  # the build died mid-stream: its caller removes the folder
        sys.exit(1)
    sys.stdout.write((failure or "ok") + "\n")
