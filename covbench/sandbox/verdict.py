"""Verdicts: what one sandboxed run established, and the rules that decide it (``docs/sandbox.md``).

``classify(facts)`` is a pure function of what the launcher reported (``RunFacts``), so its rules are
tested without running anything. In order:

1. ``timeout``: the sandbox's init saw the wall clock run out.
2. ``passed``: the evidence pipe holds exactly this run's nonce and the program exited with status 0.
3. ``memory``: the run's cgroup OOM-killed the program (SIGKILL with an OOM kill counted).
4. ``timeout``: the kernel's CPU limit ended the program (SIGXCPU, or SIGKILL once the CPU time of the
   run reached the limit).
5. ``memory``: the program raised ``MemoryError`` (the address-space limit).
6. ``failed``: the program raised an exception (an assertion, an error, ``SyntaxError``); the reason is
   ``Type: message`` on one line.
7. ``crashed``: a signal ended it, or it exited with a nonzero status (``SystemExit(1)`` included).
8. ``no_evidence``: it exited with status 0 (``sys.exit(0)``, ``os._exit(0)``) without the nonce, or the
   evidence pipe held anything else.
"""

from __future__ import annotations

import signal as _signal
from dataclasses import dataclass
from typing import Literal

Status = Literal["passed", "failed", "timeout", "memory", "crashed", "no_evidence"]
Isolation = Literal["namespaces", "userns", "uid", "rlimits"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "timeout", "memory", "crashed", "no_evidence")


@dataclass(frozen=True)
class Verdict:
    """One program's verdict.

    status: one of ``STATUSES``; reason: one line saying why.
    wall_s: the program's wall-clock time (the sandbox init's clock); cpu_s: user + system CPU seconds of
    every process of the run that was reaped; max_rss_mb: the largest resident set among them.
    exit_code: the program process's exit status (None when a signal ended it or it timed out);
    signal: the signal that ended it. error_type / error_message: the exception the program raised.
    output: the first ``Limits.output_kb`` of stdout + stderr (UTF-8, undecodable bytes replaced);
    output_bytes: how many bytes it wrote in all.
    isolation: the mode it ran in (``docs/sandbox.md`` §"Modes"); network_isolated: it had its own
    network namespace; cgroup: its run had a memory + pids cgroup; seccomp: the system-call filter was on.
    """

    status: Status
    reason: str
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    exit_code: int | None
    signal: int | None
    error_type: str | None
    error_message: str | None
    output: str
    output_bytes: int
    isolation: Isolation
    network_isolated: bool
    cgroup: bool
    seccomp: bool

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class RunFacts:
    """What the launcher reported about one run (the input of ``classify``).

    timed_out: init's wall clock ran out; wait_status: the program process's raw wait status (None if it
    timed out or never started); evidence: the bytes on the evidence pipe; nonce: this run's nonce;
    cpu_limit_s: the CPU limit in whole seconds; oom_kills: the cgroup's OOM kills (None: no cgroup).
    """

    timed_out: bool
    wait_status: int | None
    wall_s: float
    cpu_s: float
    max_rss_kb: int
    evidence: bytes
    nonce: bytes
    cpu_limit_s: int
    oom_kills: int | None
    output: bytes
    output_bytes: int
    isolation: Isolation
    network_isolated: bool
    cgroup: bool
    seccomp: bool


def _signal_name(number: int) -> str:
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _parse_failure(evidence: bytes) -> tuple[str, int, str] | None:
    """``F<type>\\n<status>\\n<message>`` → (type, status, message), or None if it is not one.

    >>> _parse_failure(b"FAssertionError\\n1\\nboom")
    ('AssertionError', 1, 'boom')
    >>> _parse_failure(b"junk") is None
    True
    """
    if not evidence.startswith(b"F"):
        return None
    parts = evidence[1:].split(b"\n", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0].decode("utf-8", "replace"), int(parts[1]), parts[2].decode("utf-8", "replace")


def classify(facts: RunFacts) -> Verdict:
    """Apply the rules of the module docstring, in order."""
    exit_code = sig = None
    if facts.wait_status is not None:
        import os

        if os.WIFSIGNALED(facts.wait_status):
            sig = os.WTERMSIG(facts.wait_status)
        else:
            exit_code = os.WEXITSTATUS(facts.wait_status)
    failure = _parse_failure(facts.evidence)
    error_type, _, error_message = failure if failure else (None, None, None)
    status, reason = _decide(facts, exit_code, sig, failure)
    return Verdict(
        status=status, reason=reason, wall_s=facts.wall_s, cpu_s=facts.cpu_s,
        max_rss_mb=facts.max_rss_kb / 1024, exit_code=exit_code, signal=sig, error_type=error_type,
        error_message=error_message, output=facts.output.decode("utf-8", "replace"),
        output_bytes=facts.output_bytes, isolation=facts.isolation,
        network_isolated=facts.network_isolated, cgroup=facts.cgroup, seccomp=facts.seccomp)


def _decide(facts: RunFacts, exit_code: int | None, sig: int | None,
            failure: tuple[str, int, str] | None) -> tuple[Status, str]:
    if facts.timed_out:
        return "timeout", f"wall-clock limit reached ({facts.wall_s:.1f} s)"
    if facts.evidence == facts.nonce and exit_code == 0:
        return "passed", "the program ran to its end (evidence received)"
    if facts.oom_kills and sig == _signal.SIGKILL:
        return "memory", "the run's cgroup memory limit was reached (OOM kill)"
    if sig == _signal.SIGXCPU or (sig == _signal.SIGKILL and facts.cpu_s >= facts.cpu_limit_s):
        return "timeout", f"CPU-time limit reached ({facts.cpu_limit_s} s)"
    if failure is not None and failure[0] == "MemoryError":
        return "memory", "MemoryError: the address-space limit was reached"
    if failure is not None:
        kind, status, message = failure
        if kind == "SystemExit":
            if status == 0:
                return "no_evidence", f"SystemExit({message or 'None'}) before the program's end"
            return "crashed", f"SystemExit with status {status}: {message}"
        return "failed", f"{kind}: {message}" if message else kind
    if sig is not None:
        return "crashed", f"killed by {_signal_name(sig)}"
    if exit_code is None:
        return "crashed", "the program did not start"
    if exit_code != 0:
        return "crashed", f"exit status {exit_code} without a report"
    if facts.evidence:
        return "no_evidence", "exit status 0, but the evidence pipe held unexpected bytes"
    return "no_evidence", "exit status 0 without evidence that the program ran to its end"
