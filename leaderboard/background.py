"""Use the second core: a forked child that computes while the build goes on, and a queue of
work both processes take from.

The τ bootstrap (:meth:`leaderboard.board.BoardPlan.agreements`) is a large part of a big build
and only the index page needs it, so :func:`start` forks a child that computes it, and
:meth:`Pending.result` collects it (pickled through a pipe) when the index is rendered. The child
shares the parent's memory copy-on-write, so nothing is serialised on the way in; the fork takes
~20 ms for a 1,000-model store. The per-model files are cut into chunks that both processes claim
from a :class:`Claims` queue until none is left, so neither waits for the other however the
machine's load shifts.

Fork only where it is useful: a POSIX ``os.fork`` and more than one usable CPU. Otherwise, or if
the child dies without an answer, the work runs here: same function, same inputs, same result, so
the site is byte-for-byte the same either way. An exception raised by the work itself is raised
again here. Other threads of this process (a progress bar's monitor under pytest, say) do not stop
the fork: the child runs only the build's own code (numpy, matplotlib transforms, Jinja templates
already loaded, file writes), which takes no lock that another thread could hold at the fork, and
it leaves with ``os._exit``.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import warnings
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def can_fork() -> bool:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return hasattr(os, "fork") and cpus > 1


class Pending(Generic[T]):
    """A computation running in a forked child (or already done here)."""

    def __init__(self, work: Callable[[], T], fork: bool) -> None:
        self._work = work
        self._pid = 0
        self._done: tuple[T] | None = None
        if not fork:
            self._done = (work(),)
            return
        read, write = os.pipe()
        with warnings.catch_warnings():  # Python 3.12+ warns on any fork of a threaded process; see above
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: compute, send, leave without running any of the parent's exit code
            status = 0
            try:
                os.close(read)
                try:
                    payload = pickle.dumps((True, work()), protocol=pickle.HIGHEST_PROTOCOL)
                except BaseException as e:  # noqa: BLE001 - the work's own error goes back to the parent
                    try:
                        payload = pickle.dumps((False, e))
                    except Exception:  # noqa: BLE001 - an unpicklable error goes back as text
                        payload = pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}")))
                with os.fdopen(write, "wb") as f:
                    f.write(payload)
            except BaseException:  # noqa: BLE001 - the child must reach os._exit, whatever happens
                status = 1
            finally:
                os._exit(status)
        os.close(write)
        self._pid, self._read = pid, read

    def result(self) -> T:
        if self._done is None:
            with os.fdopen(self._read, "rb") as f:
                payload = f.read()
            os.waitpid(self._pid, 0)
            if not payload:  # the child died (killed, out of memory): do the work here
                self._done = (self._work(),)
            else:
                ok, value = pickle.loads(payload)
                if not ok:
                    raise value
                self._done = (value,)
        return self._done[0]


    def cancel(self) -> None:
        """Stop the child (the build failed elsewhere); nothing it wrote is waited for."""
        if self._done is None and self._pid:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self._pid, 0)
            os.close(self._read)
            self._pid = 0


def start(work: Callable[[], T], parallel: bool = True) -> Pending[T]:
    """Start ``work()`` in a forked child if ``parallel`` and :func:`can_fork`, else run it now."""
    return Pending(work, fork=parallel and can_fork())


class Claims:
    """Chunk numbers ``0 … n−1``, each claimed by exactly one of the processes forked after this
    was made: the numbers sit in a pipe whose writing end is closed, and a read of 2 bytes from a
    pipe is atomic, so two readers never get the same number. At most 32,768 chunks (a pipe
    holds 64 KiB)."""

    _TOKEN = struct.Struct("<H")

    def __init__(self, n: int) -> None:
        if not 0 <= n <= 32768:
            raise ValueError(f"Claims: {n} chunks; at most 32,768")
        self._read, write = os.pipe()
        os.write(write, b"".join(self._TOKEN.pack(i) for i in range(n)))
        os.close(write)

    def __iter__(self):
        """The chunks this process claims, until none is left."""
        while token := os.read(self._read, self._TOKEN.size):
            yield self._TOKEN.unpack(token)[0]

    def close(self) -> None:
        os.close(self._read)
