"""Isolation modes: which ones this machine allows, and the loud warnings of the weaker ones.

``namespaces`` (root), ``userns`` (not root, user namespaces allowed), ``uid`` (root without
namespaces), ``rlimits`` (neither). What each guarantees: ``docs/sandbox.md`` §"Modes".
"""

from __future__ import annotations

import os
import warnings

from covbench.sandbox.launcher import launcher
from covbench.sandbox.verdict import Isolation

NS_MODES: tuple[Isolation, ...] = ("namespaces", "userns")
MODES: tuple[Isolation, ...] = ("namespaces", "userns", "uid", "rlimits")


class SandboxWarning(UserWarning):
    """The sandbox runs with less isolation than the namespace modes (``docs/sandbox.md`` §"Modes")."""


_WARNED: set[str] = set()
_WARNINGS = {
    "uid": "no namespaces available: programs run as a dedicated unprivileged uid with resource limits, "
           "but they share the network and see the host's world-readable files",
    "rlimits": "no namespaces and not root: programs run as YOUR user with resource limits only; they "
               "share the network, see your files and could signal your processes (a Python-level guard "
               "only raises the bar). Run as root or enable user namespaces",
    "no-cgroup": "no writable cgroup: memory and process limits apply per process, not per run",
    "private-stdlib": "the interpreter's standard library is not readable by other users, so programs in "
                      "the 'uid' mode can import only the modules the launcher preloaded",
}


def warn(key: str) -> None:
    """Emit the ``SandboxWarning`` named ``key``, once per process."""
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(SandboxWarning(f"covbench sandbox: {_WARNINGS[key]} (docs/sandbox.md)"), stacklevel=3)


def available_modes() -> list[Isolation]:
    """The modes this machine and user allow, strongest first."""
    hello = launcher().hello
    root = hello["euid"] == 0
    modes: list[Isolation] = []
    if root and hello["ns"] and launcher().template == "ok":
        modes.append("namespaces")
    if hello["userns"] and not root:
        modes.append("userns")
    if root:
        modes.append("uid")       # root never runs a program as root: no "rlimits" for root
    else:
        modes.append("rlimits")
    return modes


def world_readable(folder: str) -> bool:
    """Whether any user can read ``folder`` (every ancestor searchable, the folder readable)."""
    path = os.path.realpath(folder)
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        mode = os.stat("/".join(parts[:depth]) or "/").st_mode
        if mode & 0o001 == 0 or (depth == len(parts) and mode & 0o004 == 0):
            return False
    return True
