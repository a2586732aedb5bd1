"""Fixtures of the sandbox tests (the helpers live in ``sandbox_guard.py``)."""

from __future__ import annotations

import pytest
from sandbox_guard import guarded, host_processes_of_free_slots


@pytest.fixture
def run_guarded():
    """``guarded(...)``, then check that no process of a free sandbox slot's uid is left on the machine."""
    yield guarded
    assert host_processes_of_free_slots() == []
