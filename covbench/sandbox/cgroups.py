"""A memory + pids cgroup per sandbox slot, nested in the caller's own cgroup (root modes, if writable).

The resource limits are per process; a cgroup bounds the whole run: its total memory (the tmpfs work
directory included) and its number of tasks, and it counts OOM kills so that a kill by the memory limit
reads as ``memory``. cgroup v1 (``memory`` and ``pids`` hierarchies) and v2 (``memory.max``,
``pids.max`` where the parent delegates both controllers) are supported; anything else runs without
one, and the verdict says so (``Verdict.cgroup``; ``docs/sandbox.md`` §"Limits").
"""

from __future__ import annotations

import atexit
import errno
import functools
import os
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """Where this process's cgroups live: version 1 (memory dir, pids dir) or 2 (one dir)."""

    version: int
    memory: str
    pids: str


@dataclass(frozen=True)
class RunCgroup:
    """The cgroup directories of one run."""

    layout: Layout
    dirs: tuple[str, ...]

    @property
    def join_files(self) -> list[str]:
        """Where a process writes ``0`` to move itself in: v1's per-thread ``tasks`` file skips the
        global threadgroup lock (an RCU grace period, ~10 ms) that ``cgroup.procs`` takes; the
        sandbox's session is single-threaded, so moving its one thread moves the process."""
        return [f"{d}/tasks" if self.layout.version == 1 else f"{d}/cgroup.procs" for d in self.dirs]

    def oom_kills(self) -> int | None:
        """OOM kills in this run (``oom_kill`` of memory.oom_control / memory.events), None if unknown."""
        name = "memory.oom_control" if self.layout.version == 1 else "memory.events"
        try:
            with open(f"{self.dirs[0]}/{name}") as handle:
                for line in handle:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except OSError:
            return None
        return None

    def remove(self, wait_s: float = 2.0) -> None:
        """Remove the directories (their processes are gone; wait briefly for the kernel to agree)."""
        deadline = time.monotonic() + wait_s
        for folder in self.dirs:
            while True:
                try:
                    os.rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, file system type, super options) of every cgroup mount."""
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fstype, _, options = right.split(" ", 2)
            if fstype in ("cgroup", "cgroup2"):
                found.append((left.split(" ")[4], fstype, options.strip()))
    return found


@functools.cache
def layout() -> Layout | None:
    """This process's writable cgroup layout, or None (not root, no controllers, read-only)."""
    try:
        with open("/proc/self/cgroup") as handle:
            lines = [line.rstrip("\n").split(":", 2) for line in handle]
        mounts = _mounts()
    except OSError:
        return None
    v1 = {}
    for _, controllers, path in lines:
        for name in controllers.split(","):
            if name in ("memory", "pids"):
                for point, fstype, options in mounts:
                    if fstype == "cgroup" and name in options.split(","):
                        v1[name] = point + path.rstrip("/")
    if len(v1) == 2 and all(os.access(d, os.W_OK) for d in v1.values()):
        return Layout(1, v1["memory"], v1["pids"])
    unified = [path for hid, controllers, path in lines if hid == "0" and controllers == ""]
    points = [point for point, fstype, _ in mounts if fstype == "cgroup2"]
    if unified and points:
        base = points[0] + unified[0].rstrip("/")
        if _delegates(base):
            return Layout(2, base, base)
    return None


def _delegates(base: str) -> bool:
    try:
        with open(f"{base}/cgroup.subtree_control") as handle:
            enabled = set(handle.read().split())
        if not {"memory", "pids"} <= enabled:
            with open(f"{base}/cgroup.subtree_control", "w") as handle:
                handle.write("+memory +pids")
        return os.access(base, os.W_OK)
    except OSError:
        return False


def _write(path: str, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


_CACHE: dict[int, RunCgroup] = {}
_SETTINGS: dict[int, tuple[int, int]] = {}
_CACHE_LOCK = threading.Lock()


def for_slot(slot: int, memory_bytes: int, pids_max: int) -> RunCgroup | None:
    """The slot's cgroup (made once per covbench process and slot; its limits set to these), or None.

    A slot runs one sandbox at a time, so its cgroup is reused; ``oom_kills`` is read before and after.
    """
    found = layout()
    if found is None:
        return None
    with _CACHE_LOCK:
        if not _CACHE:
            _remove_stale(found)
            atexit.register(remove_all)
        run = _CACHE.get(slot)
        if run is None:
            run = _CACHE[slot] = _make(found, f"covbench-sandbox-{os.getpid()}-{slot}")
    if _SETTINGS.get(slot) != (memory_bytes, pids_max):
        _set_limits(run, memory_bytes, pids_max)
        _SETTINGS[slot] = (memory_bytes, pids_max)
    return run


def _make(found: Layout, name: str) -> RunCgroup:
    dirs = (f"{found.memory}/{name}", f"{found.pids}/{name}") if found.version == 1 else (f"{found.memory}/{name}",)
    run = RunCgroup(found, dirs)
    for folder in dirs:
        os.makedirs(folder, 0o755, exist_ok=True)
    return run


def _set_limits(run: RunCgroup, memory_bytes: int, pids_max: int) -> None:
    if run.layout.version == 1:
        _write(f"{run.dirs[0]}/memory.limit_in_bytes", str(memory_bytes))
        try:
            _write(f"{run.dirs[0]}/memory.memsw.limit_in_bytes", str(memory_bytes))
        except OSError:
            pass     # no swap accounting on this kernel
        _write(f"{run.dirs[1]}/pids.max", str(pids_max))
        return
    _write(f"{run.dirs[0]}/memory.max", str(memory_bytes))
    try:
        _write(f"{run.dirs[0]}/memory.swap.max", "0")
    except OSError:
        pass
    _write(f"{run.dirs[0]}/pids.max", str(pids_max))


def remove_all() -> None:
    """Remove this process's slot cgroups (at exit; a sandbox's processes are gone by then)."""
    with _CACHE_LOCK:
        for run in _CACHE.values():
            try:
                run.remove()
            except OSError:
                pass
        _CACHE.clear()
        _SETTINGS.clear()


def _remove_stale(found: Layout) -> None:
    """Remove empty slot cgroups left by covbench processes that no longer exist."""
    for base in {found.memory, found.pids}:
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            parts = name.split("-")
            ours = len(parts) == 4 and parts[:2] == ["covbench", "sandbox"] and parts[2].isdigit()
            if ours and not os.path.exists(f"/proc/{parts[2]}"):
                try:
                    os.rmdir(f"{base}/{name}")
                except OSError:
                    pass
