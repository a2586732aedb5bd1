"""The launcher process (``_zygote.py``): start it once per covbench process, hand it each run.

The zygote says what the machine allows (root, namespaces, user namespaces), builds root mode's sandbox
file system from ``fsplan.plan()``, then answers each request (a config and four descriptors) with a
pidfd of the session it forked (``docs/sandbox.md`` §"Process tree").
"""

from __future__ import annotations

import marshal
import os
import socket
import subprocess
import sys
import threading

from covbench.sandbox.fsplan import plan

_LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_zygote.py")
_PYTHON = os.path.realpath(sys.executable)     # the base interpreter (a venv's python links to it)
_LAUNCHER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the program): a launcher that will not start, a refused mode."""


class Launcher:
    """The zygote process and the socket to it (one request at a time)."""

    def __init__(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [_PYTHON, "-I", "-S", "-B", _LAUNCHER, str(child.fileno())], pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=_LAUNCHER_ENV, cwd="/",
                start_new_session=True)
        finally:
            child.close()
        parent.settimeout(60)
        try:
            hello = parent.recv(4096)
        except OSError as exc:
            raise SandboxError(f"{_LAUNCHER}: the launcher did not answer ({exc})") from None
        if not hello:
            raise SandboxError(f"{_LAUNCHER}: the launcher exited at start (status {self.proc.wait()})")
        self.hello: dict = marshal.loads(hello)
        try:
            parent.send(marshal.dumps(plan()))
            self.template = parent.recv(4096).decode(errors="replace")
        except OSError as exc:
            raise SandboxError(f"{_LAUNCHER}: the launcher did not answer ({exc})") from None
        parent.settimeout(None)
        self.sock = parent
        self.owner = os.getpid()
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def launch(self, request: bytes, fds: list[int]) -> int:
        """Fork a session with this request and these four descriptors; return a pidfd of it."""
        with self.lock:
            try:
                socket.send_fds(self.sock, [request], fds)
                msg, got, _, _ = socket.recv_fds(self.sock, 256, 1)
            except OSError as exc:
                raise SandboxError(f"{_LAUNCHER}: the launcher is gone ({exc})") from None
        if msg != b"ok" or len(got) != 1:
            for fd in got:
                os.close(fd)
            raise SandboxError(f"{_LAUNCHER}: {msg.decode(errors='replace') or 'no answer'}")
        return got[0]

    def close(self) -> None:
        self.sock.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_LOCK = threading.Lock()
_LAUNCHERS: list[Launcher] = []


def launcher() -> Launcher:
    """This process's launcher (started on first use, restarted if it died or the process forked)."""
    with _LOCK:
        if not _LAUNCHERS or not _LAUNCHERS[-1].alive():
            _LAUNCHERS[:] = [Launcher()]
        return _LAUNCHERS[-1]


def shutdown() -> None:
    """Stop this process's launcher (it also stops by itself when this process exits)."""
    with _LOCK:
        for started in _LAUNCHERS:
            if started.owner == os.getpid():
                started.close()
        _LAUNCHERS.clear()
