"""Fixtures of the sandbox tests: what this machine allows, and the guarded runner."""

from __future__ import annotations

import os

import pytest
from sandbox_guard import guarded, host_processes_of_free_slots, tools_available


def _root_namespaces() -> bool:
    if os.geteuid() != 0 or not tools_available():
        return False
    from covbench.sandbox import available_modes

    return "namespaces" in available_modes()


ROOT_NS = _root_namespaces()
needs_root_namespaces = pytest.mark.skipif(
    not ROOT_NS, reason="needs root with namespaces, util-linux unshare/setpriv (the project's CI has them)")


@pytest.fixture
def run_guarded():
    """``guarded(...)``, then check that no process of a free sandbox slot's uid is left on the machine."""
    yield guarded
    assert host_processes_of_free_slots() == []
