"""The launcher: a zygote that forks one session per program, and the session's init.

Run as ``python -I -S -B _zygote.py FD`` by the parent (``client.py``), with a Unix seqpacket socket on FD.
Process tree per program (``docs/sandbox.md`` §"Process tree")::

    zygote (parent's uid; long-lived; stdlib + preloaded modules; never runs untrusted code)
     └─ session   fork per request: joins the slot's cgroup and the namespaces, waits for init
         └─ init  PID 1 of the run's own PID namespace: mounts the work tmpfs, starts the wall clock,
             │     waits for the program; when init exits the kernel kills every process left in it
             └─ program  drops privileges, sets the limits, runs ``_harness.execute`` (untrusted from here)

Init also sets ``no_new_privs``, empties the capability bounding set and installs the seccomp filter
(``_linux.install_seccomp``) on itself before it forks the program, which inherits all three.

Root mode keeps, for the zygote's lifetime, what can safely outlive a run (``docs/sandbox.md``
§"Namespaces"): one read-only *sandbox mount namespace* whose root is the sandbox's file system, and per
slot a network + UTS namespace (no interfaces up, hostname ``sandbox``; a slot runs one program at a
time, and nothing in them outlives the run's processes without capabilities). Every run gets its own
PID, IPC and mount namespace (a copy of the small sandbox tree plus a fresh tmpfs as ``/tmp``). A user
namespace (non-root) builds all of them per run.

The parent passes four descriptors with each request: the control pipe (nonce; a large config first),
the output pipe (the program's stdout and stderr), the evidence pipe and the status pipe. The session
and init write their records (``marshal``, length-prefixed) to the status pipe.

Stdlib only; runs by plain name (the parent never imports this module, except for tests).
"""

from __future__ import annotations

import _signal
import marshal
import os
import select
import socket
import sys
import time

if __name__ == "__main__":        # python -I leaves the script's folder off sys.path
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _harness
    import _linux as L
    import _rootfs
else:                              # imported for its docstrings and tests
    from covbench.sandbox import _harness, _rootfs
    from covbench.sandbox import _linux as L

FD_CONTROL, FD_EVIDENCE, FD_STATUS = _harness.FD_CONTROL, _harness.FD_EVIDENCE, _harness.FD_STATUS
NS_MODES = ("namespaces", "userns")
REQUEST_MAX = 1 << 17               # a config larger than this comes through the control pipe
PRELOAD = ("fcntl", "resource", "encodings.idna", "typing", "math", "random", "copy", "string", "collections", "re",
           "hashlib", "itertools", "functools", "heapq", "bisect", "fractions", "operator", "datetime",
           "decimal", "statistics")
_NS_ALL = L.CLONE_NEWNS | L.CLONE_NEWPID | L.CLONE_NEWNET | L.CLONE_NEWIPC | L.CLONE_NEWUTS


def _record(fd: int, record: dict) -> None:
    data = marshal.dumps(record)
    try:
        os.write(fd, len(data).to_bytes(4, "little") + data)
    except OSError:
        pass


def _error(where: str, exc: BaseException) -> dict:
    return {"kind": "error", "where": where, "text": f"{type(exc).__name__}: {exc}"}


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("control pipe closed early")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _place(fds: list[int]) -> None:
    """Put the four received descriptors at 3 (control), 1 and 2 (output), 4 (evidence), 5 (status);
    close every other descriptor (the zygote's socket, namespace files)."""
    import fcntl

    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
    for fd in fds:
        os.close(fd)
    control, output, evidence, status = high
    for src, dst in ((output, 1), (output, 2), (control, FD_CONTROL), (evidence, FD_EVIDENCE),
                     (status, FD_STATUS)):
        os.dup2(src, dst)
    os.closerange(FD_STATUS + 1, 1 << 16)


def _quiet() -> None:
    """Detach from the output and the program's pipes (a launcher process keeps only the status pipe)."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (1, 2):
        os.dup2(null, fd)
    os.close(null)
    for fd in (FD_CONTROL, FD_EVIDENCE):
        try:
            os.close(fd)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------- session


def session(request: dict, fds: list[int], cell: tuple[int, ...] | None) -> None:
    """The forked session: join the cgroup and the namespaces, run init, report its end.

    ``cell``: root mode's kept namespaces (sandbox mount ns, the slot's network and UTS ns), as
    descriptors inherited from the zygote; None in the other modes.
    """
    code, status_fd = 0, fds[3]
    try:
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        cfg = request["cfg"]
        if cfg is None:               # a large program: its config came first on the control pipe
            control = fds[0]
            cfg = marshal.loads(_read_exact(control, int.from_bytes(_read_exact(control, 8), "little")))
        for path in cfg["cgroup_join"]:
            with open(path, "w") as handle:
                handle.write("0")
        if cell is not None:
            mnt, net, uts = cell
            L.setns(net, L.CLONE_NEWNET)
            L.setns(uts, L.CLONE_NEWUTS)
            L.setns(mnt, L.CLONE_NEWNS)
            L.unshare(L.CLONE_NEWNS | L.CLONE_NEWPID | L.CLONE_NEWIPC)
        elif cfg["mode"] == "userns":
            _unshare_user()
        _place(fds)
        status_fd = FD_STATUS
        pid = os.fork()
        if pid == 0:
            init(cfg)
        _quiet()
        _, status, usage = os.wait4(pid, 0)
        _record(FD_STATUS, {"kind": "session", "status": status,
                            "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, never raised into the zygote
        _record(status_fd, _error("session", exc))
        code = 70
    finally:
        os._exit(code)


def _unshare_user() -> None:
    """Non-root: a user namespace (our uid and gid mapped to 0) with every other namespace."""
    uid, gid = os.getuid(), os.getgid()
    L.unshare(_NS_ALL | L.CLONE_NEWUSER)
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)


# ------------------------------------------------------------------------------------------------- init


def init(cfg: dict) -> None:
    """PID 1 of the sandbox (or a subreaper without namespaces): set up, run the program, time it."""
    try:
        L.prctl(L.PR_SET_PDEATHSIG, _signal.SIGKILL)
        mode = cfg["mode"]
        if mode in NS_MODES:
            _rootfs.enter_root(cfg["fs"])
        else:
            L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)
        L.prctl(L.PR_SET_DUMPABLE, 0)
        L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
        if mode != "rlimits":
            L.drop_bounding_set()
        if mode == "userns":
            L.clear_capabilities()
        seccomp = L.install_seccomp()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            program(cfg)
        _quiet()
        namespaced = mode in NS_MODES
        record = _wait_program(pid, cfg["wall_s"], start, kill_group=not namespaced)
        if not namespaced:
            _kill_descendants(cfg["uid"])
        _record(FD_STATUS, {**record, "seccomp": seccomp})
    except BaseException as exc:  # noqa: BLE001
        _record(FD_STATUS, _error("init", exc))
    finally:
        os._exit(0)    # in a PID namespace: the kernel now kills every process left in it


def _wait_program(pid: int, wall_s: float, start: float, kill_group: bool) -> dict:
    """Wait for the program's exit or the wall clock. ``kill_group`` (no PID namespace): SIGKILL the
    program's process group while its leader is still unreaped, so the group id cannot be reused."""
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    ready = poller.poll(max(1, int(wall_s * 1000)))
    wall = time.monotonic() - start
    if kill_group:
        try:
            os.killpg(pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
    if not ready:
        if kill_group:
            os.wait4(pid, 0)
        return {"kind": "init", "timed_out": True, "wall_s": wall}
    _, status, usage = os.wait4(pid, 0)
    return {"kind": "init", "timed_out": False, "status": status, "wall_s": wall,
            "maxrss_kb": usage.ru_maxrss}


def _kill_descendants(uid: int | None) -> None:
    """Without a PID namespace: kill what the program left behind (orphans re-parent to this subreaper).

    A dedicated uid (root's ``uid`` mode): ``kill(-1)`` with that uid as real and effective uid (the saved
    uid stays 0, to switch back) reaches exactly the run's processes, without forking (a fork bomb may have
    used up the run's pids cgroup). Otherwise SIGKILL this process's children until none is left.
    """
    for _ in range(1000):
        if uid is not None:
            os.setresuid(uid, uid, 0)
            try:
                os.kill(-1, _signal.SIGKILL)
            except ProcessLookupError:
                pass
            finally:
                os.setresuid(0, 0, 0)
        children = _children()
        for child in children:
            try:
                os.kill(child, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not _reap_children() and not children:
            return
        time.sleep(0.001)


def _children() -> list[int]:
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def _reap_children() -> bool:
    """Reap every child that has exited; True while some child is still alive."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


# ---------------------------------------------------------------------------------------------- program


def program(cfg: dict) -> None:
    """The program's process: hand over to the harness (which never returns)."""
    try:
        _harness.become_program(cfg)
    except BaseException as exc:  # noqa: BLE001 - setup failed before the program ran
        _record(FD_STATUS, _error("program setup", exc))
    os._exit(71)


# ----------------------------------------------------------------------------------------------- zygote


def probe() -> dict:
    """What this machine allows: namespaces as root, or a user namespace first."""
    return {"euid": os.geteuid(), "ns": _try_in_child(lambda: L.unshare(_NS_ALL)),
            "userns": _try_in_child(_unshare_user)}


def _try_in_child(action) -> bool:
    pid = os.fork()
    if pid == 0:
        try:
            action()
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _hold_namespaces(setup, kinds: tuple[str, ...]) -> tuple[int, ...]:
    """Run ``setup`` in a child, then open its namespaces (``/proc/PID/ns/KIND``) so they outlive it."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            setup()
            os.write(ready_w, b"1")
            os.read(done_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(f"namespace setup failed for {kinds}")
        return tuple(os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC) for kind in kinds)
    finally:
        os.close(done_w)
        os.close(ready_r)
        os.waitpid(pid, 0)


class Cells:
    """Root mode's kept namespaces: the sandbox mount namespace, and a network + UTS pair per slot."""

    def __init__(self, fs: dict) -> None:
        L.unshare(L.CLONE_NEWNS)                      # the zygote's own mount namespace
        L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
        root = fs["template"]
        os.makedirs(root, 0o700, exist_ok=True)
        _rootfs.root_tmpfs(root, fs, mknod=True)
        self.mnt = _hold_namespaces(lambda: (L.unshare(L.CLONE_NEWNS), _rootfs.pivot(root)), ("mnt",))[0]
        self.slots: dict[int, tuple[int, int]] = {}

    def for_slot(self, slot: int) -> tuple[int, int, int]:
        if slot not in self.slots:
            def setup() -> None:
                L.unshare(L.CLONE_NEWNET | L.CLONE_NEWUTS)
                L.sethostname("sandbox")
            self.slots[slot] = _hold_namespaces(setup, ("net", "uts"))   # type: ignore[assignment]
        return (self.mnt, *self.slots[slot])


def serve(sock_fd: int) -> None:
    """Say what this machine allows, set up root mode's kept namespaces, then answer each request (a
    config and four descriptors) with a pidfd of the forked session, until end of file."""
    for name in PRELOAD:
        __import__(name)
    del sys.path[0]                   # the launcher's folder: programs import the standard library only
    sock = socket.socket(fileno=sock_fd)
    hello = probe()
    sock.send(marshal.dumps(hello))
    plan = marshal.loads(sock.recv(REQUEST_MAX))
    cells, status = None, "not root"
    if hello["euid"] == 0 and hello["ns"]:
        try:
            cells, status = Cells(plan), "ok"
        except OSError as exc:
            status = f"{type(exc).__name__}: {exc}"
    sock.send(status.encode())
    import gc

    gc.freeze()                       # programs' collections skip the zygote's objects (and their pages)
    while True:
        _reap_children()              # sessions stay zombies until here, so their pidfds stay valid
        try:
            msg, fds, _, _ = socket.recv_fds(sock, REQUEST_MAX, 4)
        except OSError:
            msg, fds = b"", []
        if not msg:                   # the parent is gone: reap the last sessions, then end
            while _reap_children():
                time.sleep(0.01)
            return
        try:
            request = marshal.loads(msg)
            cell = cells.for_slot(request["slot"]) if request["mode"] == "namespaces" and cells else None
            if request["mode"] == "namespaces" and cell is None:
                raise OSError(f"root namespaces are not available ({status})")
            if len(fds) != 4:
                raise OSError("expected four descriptors")
        except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
            for fd in fds:
                os.close(fd)
            sock.send(f"error: {exc}".encode())
            continue
        pid = os.fork()
        if pid == 0:
            sock.close()
            session(request, fds, cell)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        socket.send_fds(sock, [b"ok"], [pidfd])
        os.close(pidfd)


if __name__ == "__main__":
    serve(int(sys.argv[1]))     # ends when the parent's socket closes (no PDEATHSIG: it follows a thread)
