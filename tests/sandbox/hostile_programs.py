"""Hostile programs: each tries to cheat the verdict or escape, and names the verdicts it may get.

Each entry: ``(source, allowed statuses, limits, guard)``. ``guard=False`` runs the program without the
Python-level guard, so the operating-system layer alone must hold (``docs/sandbox.md`` §"Modes"). The
programs that need fixtures (canary files, a listening socket, an environment secret) are written in
``test_sandbox_hostile.py`` itself. Every one of these was first run bare, as an unprivileged uid inside
``unshare --pid --fork --mount-proc`` + ``prlimit`` + ``timeout`` (``scripts`` in the report), and only
then through the sandbox, inside ``sandbox_guard.guarded``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from covbench.sandbox import Limits

SHORT = Limits(wall_s=3.0, cpu_s=3.0)
ENDLESS = Limits(wall_s=1.5, cpu_s=3.0)     # programs that can only end by the wall clock


@dataclass(frozen=True)
class Hostile:
    source: str
    allowed: frozenset[str]
    limits: Limits = field(default=SHORT)
    guard: bool = True


def _h(source: str, *allowed: str, limits: Limits = SHORT, guard: bool = True) -> Hostile:
    return Hostile(source.strip() + "\n", frozenset(allowed), limits, guard)


HOSTILE: dict[str, Hostile] = {
    # ---------------------------------------------------------------- resources
    "fork_bomb": _h("""
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
""", "timeout", limits=ENDLESS),
    "fork_bomb_exec": _h("""
import subprocess, sys
procs = []
while True:
    try:
        procs.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
    except OSError:
        pass
""", "timeout", limits=ENDLESS, guard=False),
    "memory_bomb_one_block": _h("x = bytearray(1 << 40)", "memory"),
    "memory_bomb_gradual": _h("""
blocks = []
while True:
    blocks.append(bytearray(1 << 24))
""", "memory"),
    "memory_bomb_children": _h("""
import os, time
for _ in range(6):
    if os.fork() == 0:
        block = bytearray(300 << 20)
        time.sleep(30)
        os._exit(0)
block = bytearray(900 << 20)
time.sleep(30)
""", "memory", limits=Limits(wall_s=6.0, cpu_s=6.0, memory_mb=1000)),
    "infinite_loop": _h("while True:\n    pass", "timeout", limits=ENDLESS),
    "busy_threads": _h("""
import threading
def spin():
    while True:
        pass
for _ in range(4):
    threading.Thread(target=spin, daemon=True).start()
spin()
""", "timeout", limits=Limits(wall_s=20.0, cpu_s=1.0)),
    "sleep_forever": _h("import time\ntime.sleep(10_000)", "timeout", limits=ENDLESS),
    "deep_recursion": _h("""
def f(n):
    return f(n + 1)
f(0)
""", "failed"),
    "deep_recursion_no_limit": _h("""
import sys
sys.setrecursionlimit(10 ** 9)
class Loop:
    def __repr__(self):
        return repr(self)
repr(Loop())
""", "crashed"),
    "fill_the_disk": _h("""
import os
with open("fill", "wb") as out:
    while True:
        out.write(b"x" * (1 << 20))
""", "failed"),
    "fill_the_tmpfs_many_files": _h("""
i = 0
while True:
    with open(f"f{i}", "wb") as out:
        out.write(b"x" * (8 << 20))
    i += 1
""", "failed"),
    "fd_exhaustion": _h("""
files = []
while True:
    files.append(open("/dev/null"))
""", "failed"),
    "unbounded_output": _h("""
while True:
    print("x" * 1000)
""", "timeout", limits=ENDLESS),
    # ---------------------------------------------------------------- early exits and the harness
    "sys_exit_0": _h("import sys\nsys.exit(0)\nassert False", "no_evidence"),
    "os_exit_0": _h("import os\nos._exit(0)\nassert False", "no_evidence"),
    "system_exit_in_finally": _h("""
try:
    assert False, "the test fails"
finally:
    raise SystemExit(0)
""", "no_evidence"),
    "atexit_exit_0": _h("""
import atexit, os
atexit.register(lambda: os._exit(0))
assert False, "the test fails"
""", "failed"),
    "keyboard_interrupt": _h("raise KeyboardInterrupt", "failed"),
    "exception_str_exits": _h("""
import os
class Sneaky(Exception):
    def __str__(self):
        os._exit(0)
raise Sneaky()
""", "no_evidence"),
    "exception_str_raises": _h("""
class Sneaky(Exception):
    def __str__(self):
        raise RuntimeError("no")
raise Sneaky()
""", "failed"),
    "redefine_assertion_error": _h("""
import builtins
builtins.AssertionError = type("AssertionError", (Exception,), {})
assert False, "still raised"
""", "failed"),
    "replace_exec_and_exit": _h("""
import builtins, os, sys
builtins.exec = lambda *a, **k: None
builtins.compile = lambda *a, **k: None
sys.exit = lambda *a: None
os._exit = lambda *a: None
assert False, "the test fails"
""", "failed"),
    "monkeypatch_evidence_write": _h("""
import os
os.write = lambda fd, data: len(data)
os.read = lambda fd, n: b"x" * n
assert False, "the test fails"
""", "failed"),
    "monkeypatch_evidence_write_honest": _h("""
import os
os.write = lambda fd, data: len(data)
assert 1 + 1 == 2
""", "passed"),
    "trace_jumps_over_assert": _h("""
import sys
def tracer(frame, event, arg):
    return tracer
sys.settrace(tracer)
sys._getframe().f_trace = tracer
assert False, "the test fails"
""", "failed"),
    "forge_evidence_event": _h("""
import os, sys
sys.audit("covbench.sandbox.evidence")
os._exit(0)
""", "no_evidence"),
    "echo_every_descriptor": _h("""
import os
got = []
for fd in range(64):
    try:
        got.append(os.read(fd, 4096))
    except OSError:
        pass
for fd in range(3, 64):
    for data in got:
        try:
            os.write(fd, data)
        except OSError:
            pass
os._exit(0)
""", "no_evidence"),
    "call_the_harness_again": _h("""
import os, sys
fd = os.open("/dev/zero", os.O_RDONLY)
for name, module in list(sys.modules.items()):
    if hasattr(module, "execute"):
        try:
            module.execute("pass", (), True, False, "/tmp")
        except BaseException:
            pass
os._exit(0)
""", "no_evidence"),
    "walk_frames_for_the_nonce": _h("""
import os, sys
frame, found = sys._getframe(), []
while frame is not None:
    found += [v for v in frame.f_locals.values() if isinstance(v, bytes) and len(v) == 16]
    frame = frame.f_back
for data in found:
    for fd in range(3, 16):
        try:
            os.write(fd, data)
        except OSError:
            pass
os._exit(0)
""", "no_evidence"),
    "gc_search_for_the_hook": _h("import gc\ngc.get_objects()", "failed"),
    "ctypes_guarded": _h("import ctypes\nctypes.CDLL(None).kill(-1, 9)", "failed"),
    "marshal_crafted_code": _h("import marshal\nmarshal.loads(b'\\xe3' + b'\\x00' * 64)", "failed"),
    "planted_bytecode": _h("""
import importlib.machinery, importlib.util, marshal, os, sys
code = compile("raise SystemExit(0)", "evil", "exec")       # would end the run with status 0
with open("evil.bin", "wb") as out:
    out.write(importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code))
os.rename("evil.bin", "evil.pyc")
sneaky = os.path.dirname(os.__file__) + "/../../../../../../../tmp/evil.pyc"   # looks trusted
sys.path.insert(0, "/tmp")
denials = 0
for attempt in (lambda: __import__("evil"),
                lambda: importlib.machinery.SourcelessFileLoader("evil2", sneaky).load_module()):
    try:
        attempt()
    except RuntimeError:
        denials += 1
assert denials == 2, denials
""", "passed"),
    "code_replace": _h("def f():\n    pass\nf.__code__ = f.__code__.replace(co_consts=(1,))", "failed"),
    # ---------------------------------------------------------------- other processes and privileges
    "kill_parent": _h("""
import os, signal
os.kill(os.getppid(), signal.SIGKILL)
assert False, "still running"
""", "failed"),
    "kill_every_process": _h("""
import os, signal, time
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
time.sleep(0.2)
assert False, "still running"
""", "failed"),
    "killpg_own_group": _h("""
import os, signal
os.killpg(os.getpgid(0), signal.SIGKILL)
""", "crashed"),
    "killpg_init_group": _h("""
import os, signal
for group in (1, 0):
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError as exc:
        print(group, exc)
assert False, "still running"
""", "failed", "crashed"),
    "double_fork_daemon": _h("""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open("daemon.pid", "w") as out:
            out.write(str(os.getpid()))
        for fd in range(0, 16):
            try:
                os.close(fd)
            except OSError:
                pass
        time.sleep(120)
    os._exit(0)
while not os.path.exists("daemon.pid"):
    time.sleep(0.01)
print("daemon started")
""", "passed"),
    "setuid_root": _h("import os\nos.setuid(0)", "failed"),
    "ctypes_kill_everything": _h("""
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
libc.kill(-1, 9)
libc.kill(1, 9)
time.sleep(0.2)
assert False, "still running"
""", "failed", guard=False),
    "ctypes_setuid_mount_ptrace": _h("""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
results = [libc.setuid(0), libc.setgid(0), libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
           libc.ptrace(16, 1, None, None), libc.unshare(0x00020000), libc.chroot(b"/tmp"),
           libc.sethostname(b"x", 1)]
print(results)
assert all(r == -1 for r in results), results
""", "passed", guard=False),
    "kernel_attack_surface": _h("""
import ctypes, errno, os, subprocess, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
def err(*call):
    result = libc.syscall(*call)
    return errno.errorcode.get(ctypes.get_errno()) if result == -1 else result
got = {"unshare(CLONE_NEWUSER)": err(272, 0x10000000), "io_uring_setup": err(425, 1, None),
       "bpf": err(321, 0, None, 0), "userfaultfd": err(323, 0), "keyctl": err(250, 0, 0, 0, 0, 0),
       "perf_event_open": err(298, None, 0, -1, -1, 0), "clone3": err(435, None, 0)}
print(got)
assert set(got.values()) <= {"EPERM", "ENOSYS"}, got
thread = threading.Thread(target=print, args=("threads still work",))
thread.start()
thread.join()
assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
""", "passed", guard=False),
    "ctypes_segfault": _h("import ctypes\nctypes.string_at(0)", "crashed", guard=False),
    "proc_of_other_processes": _h("""
import os
for path in ("/proc/1/environ", "/proc/self/environ", "/proc/1/cmdline", "/proc/self/mem"):
    try:
        with open(path, "rb") as handle:
            print(path, handle.read(64))
        raise SystemExit(1)
    except OSError as exc:
        print(path, type(exc).__name__)
""", "passed"),
    "read_system_secrets": _h("""
import os
for path in ("/etc/shadow", "/root/.bash_history", "/root/.ssh/id_rsa"):
    try:
        open(path, "rb").read(1)
        raise SystemExit(1)
    except OSError as exc:
        print(path, type(exc).__name__)
for path in ("/work", "/home", "/sys", "/run", "/var", "/root/.ssh", "/proc"):
    try:
        print(path, os.listdir(path))
        raise SystemExit(1)
    except OSError as exc:
        print(path, type(exc).__name__)
""", "passed"),
}
