"""The verdict rules (``covbench.sandbox.verdict.classify``) and the limits, without running anything."""

from __future__ import annotations

import dataclasses
import signal

import pytest

from covbench.sandbox import STATUSES, Limits
from covbench.sandbox.verdict import RunFacts, _parse_failure, classify

NONCE = bytes(range(16))


def facts(**changes: object) -> RunFacts:
    base = RunFacts(timed_out=False, wait_status=0, wall_s=0.1, cpu_s=0.05, max_rss_kb=10_000, evidence=NONCE,
                    nonce=NONCE, cpu_limit_s=10, oom_kills=0, output=b"hi", output_bytes=2,
                    isolation="namespaces", network_isolated=True, cgroup=True, seccomp=True)
    return dataclasses.replace(base, **changes)


def exited(code: int) -> int:
    return code << 8


def killed(sig: int) -> int:
    return sig


@pytest.mark.parametrize(("change", "status", "reason_has"), [
    ({}, "passed", "evidence"),
    ({"evidence": NONCE[:-1] + b"x"}, "no_evidence", "unexpected"),
    ({"evidence": b""}, "no_evidence", "without evidence"),
    ({"evidence": NONCE + b"x"}, "no_evidence", "unexpected"),
    ({"evidence": NONCE, "wait_status": exited(3)}, "crashed", "exit status 3"),
    ({"evidence": b"", "wait_status": exited(1)}, "crashed", "exit status 1"),
    ({"timed_out": True, "wait_status": None, "evidence": b""}, "timeout", "wall-clock"),
    ({"timed_out": True, "wait_status": None}, "timeout", "wall-clock"),            # a nonce cannot beat a timeout
    ({"wait_status": killed(signal.SIGXCPU), "evidence": b""}, "timeout", "CPU"),
    ({"wait_status": killed(signal.SIGKILL), "evidence": b"", "cpu_s": 10.2}, "timeout", "CPU"),
    ({"wait_status": killed(signal.SIGKILL), "evidence": b"", "cpu_s": 0.1}, "crashed", "SIGKILL"),
    ({"wait_status": killed(signal.SIGKILL), "evidence": b"", "oom_kills": 1, "cpu_s": 11}, "memory", "OOM"),
    ({"wait_status": killed(signal.SIGSEGV), "evidence": b""}, "crashed", "SIGSEGV"),
    ({"wait_status": exited(1), "evidence": b"FMemoryError\n1\n"}, "memory", "MemoryError"),
    ({"wait_status": exited(1), "evidence": b"FAssertionError\n1\nTest 1"}, "failed", "AssertionError: Test 1"),
    ({"wait_status": exited(1), "evidence": b"FAssertionError\n1\n"}, "failed", "AssertionError"),
    ({"wait_status": exited(1), "evidence": b"FSystemExit\n0\n0"}, "no_evidence", "SystemExit(0)"),
    ({"wait_status": exited(1), "evidence": b"FSystemExit\n0\n"}, "no_evidence", "SystemExit(None)"),
    ({"wait_status": exited(1), "evidence": b"FSystemExit\n2\n2"}, "crashed", "status 2"),
    ({"wait_status": exited(1), "evidence": b"Fgarbage"}, "crashed", "exit status 1"),
    ({"wait_status": None, "evidence": b""}, "crashed", "did not start"),
])
def test_classify_rules(change: dict, status: str, reason_has: str) -> None:
    verdict = classify(facts(**change))
    assert verdict.status == status
    assert reason_has in verdict.reason
    assert "\n" not in verdict.reason
    assert verdict.passed == (status == "passed")


def test_classify_carries_the_facts() -> None:
    verdict = classify(facts(wait_status=exited(1), evidence=b"FValueError\n1\nbad \xff value", output=b"a\xffb",
                             output_bytes=123_456, max_rss_kb=2048))
    assert (verdict.error_type, verdict.error_message) == ("ValueError", "bad \ufffd value")
    assert (verdict.exit_code, verdict.signal) == (1, None)
    assert verdict.output == "a\ufffdb" and verdict.output_bytes == 123_456
    assert verdict.max_rss_mb == 2.0
    killed_verdict = classify(facts(wait_status=killed(signal.SIGSEGV), evidence=b""))
    assert (killed_verdict.exit_code, killed_verdict.signal) == (None, signal.SIGSEGV)


def test_every_status_is_reachable() -> None:
    cases = [{}, {"evidence": b"FValueError\n1\nx", "wait_status": exited(1)}, {"timed_out": True},
             {"evidence": b"FMemoryError\n1\n", "wait_status": exited(1)},
             {"evidence": b"", "wait_status": killed(signal.SIGSEGV)}, {"evidence": b""}]
    assert {classify(facts(**c)).status for c in cases} == set(STATUSES)


@pytest.mark.parametrize("raw", [b"", b"F", b"Fx", b"Fx\n", b"Fx\ny\nz", b"P" + NONCE])
def test_parse_failure_rejects_malformed_records(raw: bytes) -> None:
    assert _parse_failure(raw) is None


def test_parse_failure_keeps_newlines_in_the_message_part() -> None:
    assert _parse_failure(b"FE\n1\na\nb") == ("E", 1, "a\nb")


@pytest.mark.parametrize(("field", "value"), [
    ("wall_s", 0), ("wall_s", -1.0), ("wall_s", float("inf")), ("wall_s", float("nan")), ("cpu_s", True),
    ("memory_mb", 0), ("memory_mb", 1.5), ("nproc", -3), ("fsize_mb", "16"), ("nofile", None),
    ("output_kb", 0), ("tmpfs_mb", False),
])
def test_limits_reject_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"field '{field}'"):
        Limits(**{field: value})


def test_limits_rlimits_and_tmpfs() -> None:
    limits = Limits(wall_s=2, cpu_s=1.2, memory_mb=256, nproc=8, fsize_mb=4, nofile=32, tmpfs_mb=16)
    table = {name: (soft, hard) for name, soft, hard in limits.rlimits(nproc_base=100)}
    assert table["RLIMIT_CPU"] == (2, 3)
    assert table["RLIMIT_AS"] == (256 << 20, 256 << 20)
    assert table["RLIMIT_NPROC"] == (108, 108)
    assert table["RLIMIT_FSIZE"] == (4 << 20, 4 << 20)
    assert table["RLIMIT_NOFILE"] == (32, 32)
    assert table["RLIMIT_CORE"] == (0, 0)
    assert limits.wall_s == 2.0 and isinstance(limits.wall_s, float)
    assert limits.tmpfs_options() == "size=16m,nr_inodes=1024,mode=0700"
    assert Limits(tmpfs_mb=100).tmpfs_options() == "size=100m,nr_inodes=6400,mode=0700"


def run_bpf(program: list[tuple[int, int, int, int]], nr: int, arch: int, arg0: int = 0) -> int:
    """A classic-BPF interpreter for the few instructions the filter uses (an independent reference)."""
    data, pc, acc = {0: nr, 4: arch, 16: arg0}, 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == 0x20:
            acc, pc = data[k], pc + 1
        elif code in (0x15, 0x35, 0x45):
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)
        else:
            assert code == 0x06
            return k


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_seccomp_filter_semantics(machine: str) -> None:
    from covbench.sandbox import _linux

    program = _linux.seccomp_program(machine)
    arch, clone, clone3, denied = _linux._ARCH[machine]
    allow, eperm, enosys = 0x7FFF0000, 0x50001, 0x50026
    assert len(program) < 256 and all(jt < 256 and jf < 256 for _, jt, jf, _ in program)
    for number in denied.values():
        assert run_bpf(program, number, arch) == eperm
    assert run_bpf(program, clone3, arch) == enosys
    assert run_bpf(program, clone, arch, arg0=0x11) == allow                   # fork: SIGCHLD only
    assert run_bpf(program, clone, arch, arg0=0x3D0F00) == allow               # a thread
    for flag in (0x10000000, 0x20000000, 0x40000000, 0x00020000, 0x08000000, 0x04000000, 0x02000000):
        assert run_bpf(program, clone, arch, arg0=0x11 | flag) == eperm        # any new namespace
    allowed = set(range(460)) - set(denied.values()) - {clone, clone3}
    assert {run_bpf(program, nr, arch) for nr in allowed} == {allow}
    assert run_bpf(program, 0, 0x40000003) == eperm                            # i386 on x86_64
    assert (run_bpf(program, 0x40000000 + 1, arch) == eperm) == (machine == "x86_64")   # x32
    assert _linux.seccomp_program("mips") is None
