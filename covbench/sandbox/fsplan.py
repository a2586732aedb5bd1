"""The sandbox's file system, as a plan for the launcher (``docs/sandbox.md`` §"Process tree").

Read-only binds of ``/usr``, the interpreter's prefix and ``/etc/ld.so.cache``; the top-level symlinks
(``/bin -> usr/bin`` ...); the device nodes null, zero, full, random and urandom; a minimal ``/etc``
(``passwd`` and ``group`` with root and the slot users, ``hostname``). No ``/proc``, ``/sys`` or home.
"""

from __future__ import annotations

import functools
import os
import sys

from covbench.sandbox import slots
from covbench.sandbox.limits import Limits
from covbench.sandbox.verdict import Isolation

_PYTHON = os.path.realpath(sys.executable)
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


@functools.cache
def _static_fs() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Read-only binds (system libraries, the interpreter's prefix) and top-level symlinks to recreate."""
    binds: list[str] = []
    links: list[tuple[str, str]] = []
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            links.append((top, os.readlink(top)))
        elif os.path.isdir(top):
            binds.append(top)
    prefix = os.path.dirname(os.path.dirname(_PYTHON))
    for folder in sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix), prefix}):
        if not any(folder == b or folder.startswith(b + "/") for b in binds):
            binds.append(folder)
    if os.path.isfile("/etc/ld.so.cache"):
        binds.append("/etc/ld.so.cache")     # the dynamic loader's index of /usr/lib/<arch>
    if os.path.islink("/etc/localtime"):
        links.append(("/etc/localtime", os.readlink("/etc/localtime")))
    return tuple(binds), tuple(links)


@functools.cache
def plan() -> dict:
    """The sandbox's root file system (``docs/sandbox.md`` §"File system"); root mode builds it once."""
    binds, links = _static_fs()
    users = "".join(f"sandbox{i}:x:{slots.UID_BASE + i}:{slots.UID_BASE + i}:sandbox:/tmp:/usr/sbin/nologin\n"
                    for i in range(slots.SLOT_COUNT))
    groups = "".join(f"sandbox{i}:x:{slots.UID_BASE + i}:\n" for i in range(slots.SLOT_COUNT))
    return {"template": f"{slots.LOCK_DIR}/root", "ro_binds": list(binds), "symlinks": list(links),
            "devices": [(d, os.stat(d).st_rdev) for d in _DEVICES if os.path.exists(d)],
            "files": [("/etc/passwd", "root:x:0:0:root:/root:/usr/sbin/nologin\n" + users),
                      ("/etc/group", "root:x:0:\n" + groups), ("/etc/hostname", "sandbox\n")]}


def run_fs(mode: Isolation, slot: slots.Slot, limits: Limits) -> dict | None:
    """Per-run file-system settings: the zygote's template (root) or a root built in the run (userns)."""
    if mode == "namespaces":
        return {"template": True, "tmpfs": f"{limits.tmpfs_options()},uid={slot.uid},gid={slot.gid}"}
    if mode == "userns":
        return {**plan(), "template": False, "root": "/tmp", "tmpfs": limits.tmpfs_options()}
    return None
