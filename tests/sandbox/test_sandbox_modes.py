"""The weaker modes: ``uid`` (root without namespaces), and, as an unprivileged user, ``userns`` and
``rlimits`` (``docs/sandbox.md`` §"Modes"). Each test pins down one guarantee of its mode, and one
limit where the documentation says there is one."""

from __future__ import annotations

import warnings

import pytest
from hostile_programs import ENDLESS, HOSTILE
from sandbox_guard import TEST_UID, needs_root_namespaces

from covbench.sandbox import Limits, SandboxWarning, client, isolation

pytestmark = [needs_root_namespaces, pytest.mark.slow]
QUICK = Limits(wall_s=3.0, cpu_s=3.0)
WHO = ("import os, socket\n"
       "print(os.getuid(), os.getcwd(), socket.gethostname())\n"
       "print(sorted(os.listdir('/')))\n")


def no_leftovers(report) -> None:
    assert all(report.canaries_alive) and report.canaries_alive
    assert report.leftover == []


# ------------------------------------------------------------------------------------------------- uid


def test_uid_mode_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation, "_WARNED", set())
    monkeypatch.setattr(client, "_RESOLVED", {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert client.resolve_isolation("uid") == "uid"
        client.resolve_isolation("uid")
    messages = [str(w.message) for w in caught if isinstance(w.message, SandboxWarning)]
    assert len(messages) == len(set(messages)) >= 1 and "share the network" in messages[0]


def test_uid_mode_runs_as_a_slot_uid_on_the_host_file_system(run_guarded) -> None:
    report = run_guarded(WHO, QUICK, isolation="uid")
    assert report.verdict.passed and report.verdict.isolation == "uid"
    assert not report.verdict.network_isolated and report.verdict.cgroup
    ids, top = report.verdict.output.splitlines()
    uid, cwd, _ = ids.split()
    assert 1_640_000 <= int(uid) < 1_640_064 and cwd.startswith("/tmp/covbench-sandbox-")
    assert "proc" in top and "work" in top          # the host's tree: documented, not hidden
    no_leftovers(report)


@pytest.mark.parametrize("name", ["fork_bomb", "double_fork_daemon", "kill_every_process", "memory_bomb_children"])
def test_uid_mode_contains_processes(name: str, run_guarded) -> None:
    hostile = HOSTILE[name]
    report = run_guarded(hostile.source, hostile.limits, isolation="uid")
    assert report.verdict.status in hostile.allowed, report.verdict
    no_leftovers(report)


def test_uid_mode_guard_refuses_host_writes_and_sockets(run_guarded) -> None:
    source = ("import socket\n"
              "for action in (lambda: open('/tmp/covbench-sandbox-uid-canary', 'w'),\n"
              "               lambda: socket.socket().connect(('127.0.0.1', 9)),\n"
              "               lambda: __import__('os').system('true')):\n"
              "    try:\n"
              "        action()\n"
              "        print('ALLOWED')\n"
              "    except RuntimeError as exc:\n"
              "        print('denied')\n")
    report = run_guarded(source, QUICK, isolation="uid")
    assert report.verdict.passed and report.verdict.output.split() == ["denied"] * 3
    no_leftovers(report)


# ---------------------------------------------------------------------------------------------- userns


def test_userns_mode_for_an_unprivileged_user(run_guarded) -> None:
    report = run_guarded(WHO, QUICK, isolation="userns", as_uid=TEST_UID)
    assert report.verdict.passed and report.verdict.isolation == "userns"
    assert report.verdict.network_isolated and not report.verdict.cgroup
    ids, top = report.verdict.output.splitlines()
    assert ids == "0 /tmp sandbox"                 # root of its own user namespace, without capabilities
    assert "proc" not in top and "work" not in top and "home" not in top
    no_leftovers(report)


@pytest.mark.parametrize("name", ["fork_bomb", "double_fork_daemon", "kill_every_process", "memory_bomb_gradual",
                                  "sys_exit_0", "read_system_secrets"])
def test_userns_mode_hostile(name: str, run_guarded) -> None:
    hostile = HOSTILE[name]
    report = run_guarded(hostile.source, hostile.limits, guard=hostile.guard, isolation="userns", as_uid=TEST_UID)
    assert report.verdict.status in hostile.allowed, report.verdict
    no_leftovers(report)                           # the canary runs as the same uid: kill(-1) missed it


def test_userns_mode_program_has_no_capabilities(run_guarded) -> None:
    """uid 0 in its own user namespace, but with no capabilities and an empty bounding set."""
    source = ("import ctypes\n"
              "libc = ctypes.CDLL(None, use_errno=True)\n"
              "results = [libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), libc.ptrace(16, 1, None, None),\n"
              "           libc.chroot(b'/tmp'), libc.sethostname(b'x', 1), libc.unshare(0x00020000)]\n"
              "assert results == [-1] * 5, results\n"
              "import os\n"
              "print(os.getuid())\n")
    report = run_guarded(source, QUICK, guard=False, isolation="userns", as_uid=TEST_UID)
    assert report.verdict.passed and report.verdict.output == "0\n", report.verdict
    no_leftovers(report)


# --------------------------------------------------------------------------------------------- rlimits


def test_rlimits_mode_for_an_unprivileged_user(run_guarded) -> None:
    report = run_guarded(WHO, QUICK, isolation="rlimits", as_uid=TEST_UID)
    assert report.verdict.passed and report.verdict.isolation == "rlimits"
    assert not report.verdict.network_isolated
    ids, _ = report.verdict.output.splitlines()
    assert ids.split()[0] == str(TEST_UID)
    no_leftovers(report)


@pytest.mark.parametrize("name", ["fork_bomb", "double_fork_daemon", "kill_every_process", "infinite_loop",
                                  "memory_bomb_one_block", "os_exit_0"])
def test_rlimits_mode_hostile(name: str, run_guarded) -> None:
    hostile = HOSTILE[name]
    limits = ENDLESS if name == "fork_bomb" else hostile.limits
    report = run_guarded(hostile.source, limits, isolation="rlimits", as_uid=TEST_UID)
    assert report.verdict.status in hostile.allowed, report.verdict
    no_leftovers(report)


def test_rlimits_mode_guard_is_all_that_stops_kill_minus_one(run_guarded) -> None:
    """Documented: without namespaces or a separate uid, only the Python-level guard stops kill(-1)."""
    kill = "import os, signal\nos.kill(-1, signal.SIGKILL)\n"
    guarded_report = run_guarded(kill, QUICK, isolation="rlimits", as_uid=TEST_UID)
    assert guarded_report.verdict.status == "failed" and "not allowed" in guarded_report.verdict.reason
    no_leftovers(guarded_report)


FORK_COUNT = """
import os, time
n = 0
while True:
    try:
        pid = os.fork()
    except OSError as exc:
        print(n, exc.errno)
        break
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    n += 1
"""


@pytest.mark.parametrize(("isolation", "as_uid"), [("namespaces", None), ("uid", None), ("userns", TEST_UID),
                                                   ("rlimits", TEST_UID)])
def test_process_limit_holds_in_every_mode(isolation: str, as_uid: int | None, run_guarded) -> None:
    """RLIMIT_NPROC counts the run's own tasks: a slot uid, a user namespace, or (rlimits) all of the
    user's tasks with the limit raised by what the user had at launch."""
    report = run_guarded(FORK_COUNT, Limits(wall_s=5.0, nproc=10), isolation=isolation, as_uid=as_uid)
    assert report.verdict.passed, report.verdict
    children, error = map(int, report.verdict.output.split())
    assert 5 <= children < 10 and error == 11          # EAGAIN
    no_leftovers(report)
