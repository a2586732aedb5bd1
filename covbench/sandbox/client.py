"""The parent's side: hand each program to the launcher, collect and classify what comes back.

``run_program(source, limits)`` runs one program; ``run_many(sources, limits, workers)`` runs many, as
many at a time as there are cores (a thread per running sandbox; each one only waits on pipes). One
launcher process (``_zygote.py``) per covbench process forks every session, so a run costs a few forks
and system calls instead of an interpreter start-up (``docs/sandbox.md`` §"Process tree", §"Overhead").
"""

from __future__ import annotations

import marshal
import os
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from covbench.sandbox import cgroups, slots
from covbench.sandbox.fsplan import run_fs
from covbench.sandbox.isolation import MODES, NS_MODES, available_modes, warn, world_readable
from covbench.sandbox.launcher import SandboxError, launcher
from covbench.sandbox.limits import DEFAULT_LIMITS, Limits
from covbench.sandbox.verdict import Isolation, RunFacts, Verdict, classify

NONCE_BYTES = 16
REQUEST_MAX = 1 << 17      # a config up to this size travels with the request (as _zygote.REQUEST_MAX)
STARTUP_GRACE_S = 10.0    # the parent's backstop: wall_s + this, then SIGKILL to the session
KILL_GRACE_S = 10.0
_RESOLVED: dict[str, Isolation] = {}


def resolve_isolation(requested: str = "auto") -> Isolation:
    """The mode to use: the strongest that works here (``auto``, probed once with an empty program)."""
    if requested in _RESOLVED:
        return _RESOLVED[requested]
    if requested != "auto" and requested not in MODES:
        raise ValueError(f"isolation: expected 'auto' or one of {', '.join(MODES)}, got {requested!r}")
    modes = available_modes()
    if requested != "auto":
        if requested not in modes:
            raise SandboxError(f"isolation {requested!r} is not available here (available: {', '.join(modes)})")
        chosen: Isolation = requested  # type: ignore[assignment]
    else:
        chosen = _first_working(modes)
    if chosen in ("uid", "rlimits"):
        warn(chosen)
    if chosen == "uid" and not world_readable(os.path.dirname(os.__file__)):
        warn("private-stdlib")
    if chosen in ("namespaces", "uid") and cgroups.layout() is None:
        warn("no-cgroup")
    _RESOLVED[requested] = chosen
    return chosen


def _first_working(modes: list[Isolation]) -> Isolation:
    problems = []
    for mode in modes:
        try:
            verdict = _run("pass", Limits(wall_s=30.0), mode, guard=True)
        except (SandboxError, OSError) as exc:
            problems.append(f"{mode}: {exc}")
            continue
        if verdict.passed:
            return mode
        problems.append(f"{mode}: {verdict.status}: {verdict.reason}")
    raise SandboxError("no sandbox mode works here: " + "; ".join(problems))


# -------------------------------------------------------------------------------------------------- runs


def run_program(source: str, limits: Limits = DEFAULT_LIMITS, *, isolation: str = "auto", guard: bool = True,
                prefix: int | None = None) -> Verdict:
    """Run one untrusted Python program in the sandbox and return its verdict.

    ``source`` runs as a module in a fresh interpreter state; it passes only if it runs to its end
    (``docs/sandbox.md`` §"Evidence"). ``guard=False`` turns off the Python-level guard (the audit hook
    still carries the evidence): for testing the operating-system layer on its own. ``prefix``: the
    first ``prefix`` characters must also compile on their own (``check_humaneval`` sets it).
    """
    _check_source(source, prefix)
    return _run(source, limits, resolve_isolation(isolation), guard, prefix)


def run_many(sources: Sequence[str], limits: Limits = DEFAULT_LIMITS, workers: int | None = None, *,
             isolation: str = "auto", guard: bool = True,
             prefixes: Sequence[int | None] | None = None) -> list[Verdict]:
    """Run many programs, ``workers`` at a time (default: the cores this process may use)."""
    heads = list(prefixes) if prefixes is not None else [None] * len(sources)
    if len(heads) != len(sources):
        raise ValueError(f"run_many: {len(sources)} sources but {len(heads)} prefixes")
    for source, head in zip(sources, heads):
        _check_source(source, head)
    count = len(os.sched_getaffinity(0)) if workers is None else workers
    if not isinstance(count, int) or not 1 <= count <= slots.SLOT_COUNT:
        raise ValueError(f"run_many: workers must be an integer in [1, {slots.SLOT_COUNT}], got {count!r}")
    mode = resolve_isolation(isolation)
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="covbench-sandbox") as pool:
        return list(pool.map(lambda job: _run(job[0], limits, mode, guard, job[1]), zip(sources, heads)))


def _check_source(source: object, prefix: object) -> None:
    if not isinstance(source, str):
        raise TypeError(f"sandbox: a program's source must be str, got {type(source).__name__}")
    if prefix is not None and not (isinstance(prefix, int) and 0 <= prefix <= len(source)):
        raise ValueError(f"sandbox: prefix must be an int in [0, {len(source)}], got {prefix!r}")


@dataclass(frozen=True)
class _Collected:
    records: list[dict]
    evidence: bytes
    output: bytes
    output_bytes: int
    killed: bool


def _run(source: str, limits: Limits, mode: Isolation, guard: bool, prefix: int | None = None) -> Verdict:
    root_mode = mode in ("namespaces", "uid")
    with slots.acquire(dedicated_uid=root_mode) as slot:
        cgroup = _cgroup(slot, limits) if root_mode else None
        workdir = None if mode in NS_MODES else tempfile.mkdtemp(prefix="covbench-sandbox-")
        try:
            if workdir is not None and slot.uid is not None:
                os.chown(workdir, slot.uid, slot.gid)
            oom_before = cgroup.oom_kills() if cgroup else None
            nonce = os.urandom(NONCE_BYTES)
            cfg = _config(source, limits, mode, guard, slot, cgroup, workdir)
            cfg["prefix"] = prefix
            got = _launch(cfg, slot.index, nonce, limits)
            oom_after = cgroup.oom_kills() if cgroup else None
        finally:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
    oom_kills = None if oom_after is None or oom_before is None else oom_after - oom_before
    return classify(_facts(got, nonce, limits, mode, oom_kills, cgroup is not None))


def _cgroup(slot: slots.Slot, limits: Limits) -> cgroups.RunCgroup | None:
    try:
        return cgroups.for_slot(slot.index, (limits.memory_mb + limits.tmpfs_mb) << 20, limits.nproc + 2)
    except OSError:
        warn("no-cgroup")
        return None


def _facts(got: _Collected, nonce: bytes, limits: Limits, mode: Isolation, oom_kills: int | None,
           has_cgroup: bool) -> RunFacts:
    errors = [r for r in got.records if r["kind"] == "error"]
    if errors:
        raise SandboxError("; ".join(f"sandbox {r['where']}: {r['text']}" for r in errors))
    init = next((r for r in got.records if r["kind"] == "init"), None)
    session = next((r for r in got.records if r["kind"] == "session"), {})
    if init is None and not got.killed and not oom_kills:
        raise SandboxError(f"sandbox: the launcher ended without a report ({got.records!r})")
    init = init or {"timed_out": got.killed, "wall_s": limits.wall_s}
    return RunFacts(
        timed_out=init["timed_out"], wait_status=init.get("status"), wall_s=init["wall_s"],
        cpu_s=session.get("cpu_s", 0.0), max_rss_kb=max(init.get("maxrss_kb", 0), session.get("maxrss_kb", 0)),
        evidence=got.evidence, nonce=nonce, cpu_limit_s=limits.rlimits()[0][1], oom_kills=oom_kills,
        output=got.output, output_bytes=got.output_bytes, isolation=mode,
        network_isolated=mode in NS_MODES, cgroup=has_cgroup, seccomp=init.get("seccomp", False))


def _config(source: str, limits: Limits, mode: Isolation, guard: bool, slot: slots.Slot,
            cgroup: cgroups.RunCgroup | None, workdir: str | None) -> dict:
    home = "/tmp" if workdir is None else workdir
    return {
        "mode": mode, "uid": slot.uid, "gid": slot.gid,
        "cgroup_join": cgroup.join_files if cgroup else [],
        "wall_s": limits.wall_s,
        "rlimits": limits.rlimits(_user_tasks() if mode == "rlimits" else 0),
        "fs": run_fs(mode, slot, limits),
        "workdir": home,
        "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8"},
        "guard": guard, "host_visible": mode not in NS_MODES, "source": source,
    }


def _user_tasks() -> int:
    """Tasks (processes and threads) of this real uid now: RLIMIT_NPROC counts them all (rlimits mode)."""
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def _launch(cfg: dict, slot_index: int, nonce: bytes, limits: Limits) -> _Collected:
    ctl_r, ctl_w = os.pipe()
    out_r, out_w = os.pipe()
    ev_r, ev_w = os.pipe()
    st_r, st_w = os.pipe()
    pidfd = None
    payload = marshal.dumps(cfg)
    inline = len(payload) + 64 <= REQUEST_MAX
    request = marshal.dumps({"mode": cfg["mode"], "slot": slot_index, "cfg": cfg if inline else None})
    try:
        if inline:               # the nonce alone on the control pipe (16 bytes never block)
            _write_all(ctl_w, nonce)
            os.close(ctl_w)
            ctl_w = -1
        try:
            pidfd = launcher().launch(request, [ctl_r, out_w, ev_w, st_w])
        finally:
            for fd in (ctl_r, out_w, ev_w, st_w):
                os.close(fd)
        if not inline:
            try:
                _write_all(ctl_w, len(payload).to_bytes(8, "little") + payload + nonce)
            except BrokenPipeError:
                pass      # the session died before reading: its status record says why
            os.close(ctl_w)
            ctl_w = -1
        return _collect(pidfd, out_r, ev_r, st_r, limits)
    finally:
        for fd in (ctl_w, out_r, ev_r, st_r, pidfd):
            if fd is not None and fd >= 0:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _collect(pidfd: int, out_r: int, ev_r: int, st_r: int, limits: Limits) -> _Collected:
    """Wait for the session to exit (every process of the run is gone by then), reading the output as it
    comes; then read the evidence and status pipes. SIGKILL the session if it outlives the backstop."""
    caps = {out_r: limits.output_kb << 10, ev_r: 1 << 16, st_r: 1 << 20}
    bufs = {fd: bytearray() for fd in caps}
    counts = dict.fromkeys(caps, 0)
    for fd in caps:
        os.set_blocking(fd, False)
    killed = False
    deadline = time.monotonic() + limits.wall_s + STARTUP_GRACE_S
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(out_r, select.POLLIN)
    session_over = False
    while not session_over:
        left = deadline - time.monotonic()
        if left <= 0:
            if killed:
                raise SandboxError("sandbox: the session did not end after SIGKILL")
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + KILL_GRACE_S
            continue
        for fd, _ in poller.poll(left * 1000):
            if fd == pidfd:
                session_over = True
            elif not _drain(fd, caps, bufs, counts, once=True):
                poller.unregister(fd)
    grace = time.monotonic() + (KILL_GRACE_S if killed else 1.0)
    for fd in caps:       # all writers are gone: read to end of file
        while _drain(fd, caps, bufs, counts, once=False):
            if time.monotonic() > grace:
                break
            select.select([fd], [], [], max(0.0, grace - time.monotonic()))
    return _Collected(_records(bytes(bufs[st_r])), bytes(bufs[ev_r]), bytes(bufs[out_r]), counts[out_r],
                      killed)


def _drain(fd: int, caps: dict, bufs: dict, counts: dict, once: bool) -> bool:
    """Read what is there (keep up to the cap, count all); False at end of file."""
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        if not data:
            return False
        counts[fd] += len(data)
        room = caps[fd] - len(bufs[fd])
        if room > 0:
            bufs[fd] += data[:room]
        if once:
            return True


def _records(data: bytes) -> list[dict]:
    """The launcher's length-prefixed ``marshal`` records (trusted: only the launcher holds that pipe)."""
    records, pos = [], 0
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "little")
        records.append(marshal.loads(data[pos + 4:pos + 4 + size]))
        pos += 4 + size
    return records
