"""Hostile programs: each gets the right verdict, and the machine is unharmed.

Every sandbox call here runs inside ``sandbox_guard.guarded`` (a throwaway PID namespace and cgroup under
a watchdog). After each one the guard's child checks that its two canary processes (root and another
uid) are alive and that no other process is left in the throwaway namespace, and the ``run_guarded``
fixture checks that no process of a sandbox slot uid exists anywhere on the machine.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
from hostile_programs import HOSTILE
from sandbox_guard import needs_root_namespaces

from covbench.sandbox import Limits

pytestmark = [needs_root_namespaces, pytest.mark.slow]
QUICK = Limits(wall_s=3.0, cpu_s=3.0)


def unharmed(report) -> None:
    assert all(report.canaries_alive) and len(report.canaries_alive) == 2
    assert report.leftover == []


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program(name: str, run_guarded) -> None:
    hostile = HOSTILE[name]
    report = run_guarded(hostile.source, hostile.limits, guard=hostile.guard)
    assert report.verdict.status in hostile.allowed, report.verdict
    assert report.verdict.status != "passed" or hostile.allowed == {"passed"}
    unharmed(report)


def test_daemon_was_running_and_is_gone(run_guarded) -> None:
    report = run_guarded(HOSTILE["double_fork_daemon"].source, QUICK)
    assert report.verdict.passed and "daemon started" in report.verdict.output
    unharmed(report)


def test_unbounded_output_is_capped(run_guarded) -> None:
    report = run_guarded(HOSTILE["unbounded_output"].source, Limits(wall_s=2.0, output_kb=8))
    assert report.verdict.status == "timeout"
    assert len(report.verdict.output) == 8 << 10 and report.verdict.output_bytes > 8 << 10
    unharmed(report)


@pytest.fixture
def canaries(tmp_path: Path):
    """A world-writable canary in a temporary results store, one in $HOME, one readable only by root."""
    store = tmp_path / "results"
    store.mkdir()
    store.chmod(0o777)
    in_store = store / "run-canary.json"
    in_store.write_text("store canary")
    in_store.chmod(0o666)
    home = Path(os.path.expanduser("~")) / f".covbench-sandbox-canary-{os.getpid()}"
    home.write_text("home canary")
    home.chmod(0o666)
    secret = tmp_path / "root-only.txt"
    secret.write_text("root-only-secret-456")
    secret.chmod(0o600)
    yield {"store": in_store, "home": home, "secret": secret}
    home.unlink()


def test_cannot_write_outside_the_working_directory(canaries: dict, run_guarded) -> None:
    targets = [str(canaries["store"]), str(canaries["home"]), str(canaries["store"].parent / "new-run.json"),
               "/etc/passwd", "/usr/lib/x", "/root/x", "/x", "/dev/x"]
    source = (f"import os\nfor path in {targets!r}:\n"
              "    try:\n"
              "        with open(path, 'a') as out:\n"
              "            out.write('OVERWRITTEN')\n"
              "        print('WROTE', path)\n"
              "    except OSError as exc:\n"
              "        print('refused', path, type(exc).__name__)\n")
    for guard in (True, False):
        report = run_guarded(source, QUICK, guard=guard)
        assert report.verdict.passed and "WROTE" not in report.verdict.output, report.verdict.output
        unharmed(report)
    assert canaries["store"].read_text() == "store canary"
    assert canaries["home"].read_text() == "home canary"
    assert not (canaries["store"].parent / "new-run.json").exists()


def test_cannot_read_secrets(canaries: dict, run_guarded) -> None:
    source = (f"import os\n"
              f"print(dict(os.environ))\n"
              f"for path in [{str(canaries['secret'])!r}, '/proc/1/environ', '/proc/self/environ']:\n"
              "    try:\n"
              "        print(open(path).read())\n"
              "    except OSError as exc:\n"
              "        print('refused', type(exc).__name__)\n")
    report = run_guarded(source, QUICK, guard=False, env={"COVBENCH_TEST_SECRET": "env-secret-789"})
    assert report.verdict.passed, report.verdict
    assert "env-secret-789" not in report.verdict.output
    assert "root-only-secret-456" not in report.verdict.output
    assert report.verdict.output.count("refused") == 3
    unharmed(report)


class Listener:
    """A TCP and a UDP socket on 127.0.0.1, a Unix socket (file and abstract); records any contact."""

    def __init__(self, folder: Path) -> None:
        self.contacts: list[str] = []
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.unix_path = str(folder / "listener.sock")
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.unix_path)
        os.chmod(self.unix_path, 0o777)
        self.unix.listen()
        self.abstract_name = f"\0covbench-sandbox-test-{os.getpid()}"
        self.abstract = socket.socket(socket.AF_UNIX)
        self.abstract.bind(self.abstract_name)
        self.abstract.listen()
        for sock in (self.tcp, self.udp, self.unix, self.abstract):
            sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stop:
            for name, sock in (("tcp", self.tcp), ("unix", self.unix), ("abstract", self.abstract)):
                try:
                    sock.accept()[0].close()
                    self.contacts.append(name)
                except OSError:
                    pass
            try:
                self.udp.recvfrom(100)
                self.contacts.append("udp")
            except OSError:
                pass

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        for sock in (self.tcp, self.udp, self.unix, self.abstract):
            sock.close()


def test_cannot_reach_the_network_or_host_sockets(tmp_path: Path, run_guarded) -> None:
    listener = Listener(tmp_path)
    try:
        tcp_port, udp_port = listener.tcp.getsockname()[1], listener.udp.getsockname()[1]
        source = ("import socket\n"
                  "attempts = [\n"
                  f"    (socket.AF_INET, socket.SOCK_STREAM, ('127.0.0.1', {tcp_port})),\n"
                  f"    (socket.AF_UNIX, socket.SOCK_STREAM, {listener.unix_path!r}),\n"
                  f"    (socket.AF_UNIX, socket.SOCK_STREAM, {listener.abstract_name!r}),\n"
                  "    (socket.AF_INET, socket.SOCK_STREAM, ('1.1.1.1', 80)),\n"
                  "]\n"
                  "for family, kind, address in attempts:\n"
                  "    s = socket.socket(family, kind)\n"
                  "    s.settimeout(1)\n"
                  "    try:\n"
                  "        s.connect(address)\n"
                  "        print('CONNECTED', address)\n"
                  "    except OSError as exc:\n"
                  "        print('refused', type(exc).__name__)\n"
                  "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                  "try:\n"
                  f"    u.sendto(b'x', ('127.0.0.1', {udp_port}))\n"
                  "except OSError as exc:\n"
                  "    print('refused', type(exc).__name__)\n")
        for guard in (True, False):
            report = run_guarded(source, QUICK, guard=guard)
            assert report.verdict.passed, report.verdict
            assert "CONNECTED" not in report.verdict.output and report.verdict.output.count("refused") == 5
            assert report.verdict.network_isolated
            unharmed(report)
    finally:
        listener.close()
    assert listener.contacts == []
