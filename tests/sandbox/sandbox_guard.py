"""The tests' outer layer: every hostile program's sandbox call runs in a throwaway child process.

``guarded(source, ...)`` starts ``python -c CHILD`` under ``timeout -s KILL``, in its own PID namespace
(``unshare --pid --fork --kill-child --mount-proc``) and in a memory + pids cgroup of its own, so a bug in
the sandbox cannot take the machine or the test run down with it: a program that escaped could only
signal processes of that throwaway namespace, could not fork past the cgroup's 1024 tasks or allocate
past its 4 GiB, and dies with the namespace when the watchdog fires.

The child runs the program through ``covbench.sandbox.run_program`` with two canary processes alive
(``sleep``, one as root and one as another uid), stops the sandbox's launcher, then reports the verdict,
whether the canaries survived, and every process still alive in the throwaway namespace besides itself
(there must be none: the sandbox ends every process of a run before it returns the verdict).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from covbench.sandbox import Limits, Verdict
from covbench.sandbox import slots as sandbox_slots

REPO = Path(__file__).resolve().parents[2]
CANARY_UID = 1_639_980            # owns the second canary process; not a sandbox slot
TEST_UID = 1_639_990              # the unprivileged user of the non-root tests; not a sandbox slot
GUARD_MEMORY = 4 << 30
GUARD_TASKS = 1024

_CHILD = textwrap.dedent('''
    import dataclasses, json, os, subprocess, sys, warnings
    warnings.simplefilter("ignore")
    job = json.loads(sys.stdin.read())
    from covbench.sandbox import Limits, run_program, shutdown
    canaries = [subprocess.Popen(["sleep", "60"])]
    if os.geteuid() == 0:
        canaries.append(subprocess.Popen(["setpriv", "--reuid", str(job["canary_uid"]), "--regid",
                                          str(job["canary_uid"]), "--clear-groups", "sleep", "60"]))
    verdict = run_program(job["source"], Limits(**job["limits"]), isolation=job["isolation"],
                          guard=job["guard"], prefix=job["prefix"])
    shutdown()
    alive = [c.poll() is None for c in canaries]
    for c in canaries:
        c.kill(); c.wait()
    me = os.getpid()
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    state = handle.read().rsplit(b")", 1)[1].split()[0].decode()
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    cmd = handle.read().replace(b"\\0", b" ").decode(errors="replace")[:200]
                left.append((int(entry), os.stat(f"/proc/{entry}").st_uid, state, cmd))
            except OSError:
                pass
    print(json.dumps({"verdict": dataclasses.asdict(verdict), "canaries_alive": alive, "leftover": left}))
''')


@dataclass(frozen=True)
class Guarded:
    """What the throwaway child reported."""

    verdict: Verdict
    canaries_alive: list[bool]
    leftover: list[list]


class GuardError(AssertionError):
    """The watchdog fired or the child failed: the sandbox call itself misbehaved."""


def _cgroup_dirs(name: str) -> list[str]:
    from covbench.sandbox import cgroups

    layout = cgroups.layout()
    if layout is None:
        return []
    bases = [layout.memory, layout.pids] if layout.version == 1 else [layout.memory]
    return [f"{base}/{name}" for base in bases]


def _make_guard_cgroup(name: str) -> list[str]:
    dirs = _cgroup_dirs(name)
    for folder in dirs:
        os.makedirs(folder, exist_ok=True)
    for folder in dirs:
        for file, value in (("memory.limit_in_bytes", GUARD_MEMORY), ("memory.max", GUARD_MEMORY),
                            ("pids.max", GUARD_TASKS)):
            if os.path.exists(f"{folder}/{file}"):
                Path(folder, file).write_text(str(value))
    return dirs


def _remove_tree(folder: str) -> None:
    for root, subdirs, _ in os.walk(folder, topdown=False):
        for sub in subdirs:
            try:
                os.rmdir(os.path.join(root, sub))
            except OSError:
                pass
    try:
        os.rmdir(folder)
    except OSError:
        pass


STASH = f"/tmp/covbench-sandbox-test-python-{os.getpid()}"    # an empty mount point, removed after use


def python_mount_script() -> str:
    """Shell lines that make the interpreter's prefix readable to another uid in a private mount
    namespace (the interpreter may live under a private home such as /root/.pyenv)."""
    prefix = os.path.realpath(sys.base_prefix)
    home = "/" + prefix.strip("/").split("/")[0]
    if os.stat(home).st_mode & 0o005 == 0o005:
        return ""
    os.makedirs(STASH, exist_ok=True)
    return (f"mount --bind {prefix} {STASH} && mount -t tmpfs -o mode=755 tmpfs {home} && "
            f"mkdir -p {prefix} && mount --bind {STASH} {prefix} && ")


def guarded(source: str, limits: Limits | None = None, *, isolation: str = "namespaces", guard: bool = True,
            prefix: int | None = None, env: dict[str, str] | None = None, as_uid: int | None = None,
            timeout_s: float | None = None) -> Guarded:
    """Run ``source`` through the sandbox inside the throwaway layer; raise ``GuardError`` if the
    watchdog fires or the child fails. ``as_uid``: run the child (the sandbox's caller) as that uid."""
    limits = limits or Limits(wall_s=5.0, cpu_s=5.0)
    timeout_s = timeout_s or limits.wall_s + 60.0
    job = {"source": source, "limits": dataclasses.asdict(limits), "isolation": isolation, "guard": guard,
           "prefix": prefix, "canary_uid": CANARY_UID}
    name = f"covbench-test-guard-{os.getpid()}-{os.urandom(4).hex()}"
    dirs = _make_guard_cgroup(name)
    join = "".join(f"echo 0 > {d}/tasks && " if os.path.exists(f"{d}/tasks") else
                   f"echo 0 > {d}/cgroup.procs && " for d in dirs)
    python = os.path.realpath(sys.executable) + " -S"     # covbench.sandbox needs the stdlib only
    if as_uid is None:
        inner = f'exec {python} -c "$CHILD"'
    else:
        inner = (python_mount_script() + f"exec setpriv --reuid={as_uid} --regid={as_uid} --clear-groups "
                 f'{python} -c "$CHILD"')
    command = ["timeout", "-s", "KILL", str(int(timeout_s)), "sh", "-c",
               join + "exec unshare --pid --fork --kill-child --mount-proc --mount --propagation private "
               f"sh -c '{inner}'"]
    child_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": os.environ.get("HOME", "/"),
                 "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "CHILD": _CHILD, **(env or {})}
    try:
        done = subprocess.run(command, input=json.dumps(job), capture_output=True, text=True, env=child_env,
                              cwd="/", timeout=timeout_s + 10, check=False)
    finally:
        for folder in dirs:
            _remove_tree(folder)
        if os.path.isdir(STASH):
            os.rmdir(STASH)
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise GuardError(f"guarded child failed (exit {done.returncode}): {' | '.join(tail)}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Guarded(Verdict(**report["verdict"]), report["canaries_alive"], report["leftover"])


def host_processes_of_free_slots() -> list[tuple[int, int]]:
    """(pid, uid) of every process on the machine owned by the uid of a slot nobody holds (there must be
    none: a slot's processes end before its lock is released). Slots held by concurrent runs, such as
    other pytest-xdist workers, are skipped."""
    import fcntl

    owners: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                owners[int(entry)] = os.stat(f"/proc/{entry}").st_uid
            except OSError:
                continue
    found = []
    for index in range(sandbox_slots.SLOT_COUNT):
        uid = sandbox_slots.UID_BASE + index
        pids = [pid for pid, owner in owners.items() if owner == uid]
        if not pids:
            continue
        fd = os.open(f"{sandbox_slots.LOCK_DIR}/slot-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue                      # in use right now by another run
        finally:
            os.close(fd)
        found += [(pid, uid) for pid in pids if os.path.exists(f"/proc/{pid}")]
    return found


def tools_available() -> bool:
    return all(shutil.which(tool) for tool in ("timeout", "unshare", "setpriv", "sleep"))


def _root_namespaces() -> bool:
    if os.geteuid() != 0 or not tools_available():
        return False
    from covbench.sandbox import available_modes

    return "namespaces" in available_modes()


needs_root_namespaces = pytest.mark.skipif(
    not _root_namespaces(),
    reason="needs root with namespaces and util-linux unshare/setpriv (the project's CI has them)")
