"""Resource limits of one sandboxed program (``docs/sandbox.md`` §"Limits").

>>> Limits().wall_s, Limits(wall_s=3).wall_s
(10.0, 3.0)
>>> Limits(memory_mb=0)
Traceback (most recent call last):
    ...
ValueError: Limits: field 'memory_mb' must be a positive integer, got 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

_MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Per-program limits; every one is enforced by the kernel, not by the program's interpreter.

    wall_s: wall clock of the program's process, measured by the sandbox's init (then everything dies).
    cpu_s: CPU time per process (``RLIMIT_CPU``, rounded up to whole seconds; SIGXCPU, then SIGKILL).
    memory_mb: address space per process (``RLIMIT_AS``); with a cgroup also the run's total memory
        (``memory_mb + tmpfs_mb``, since the working directory's tmpfs is memory too).
    nproc: processes and threads of the run (``RLIMIT_NPROC`` of the slot's own uid or user namespace;
        with a cgroup also ``pids.max``).
    fsize_mb: largest file the program may write (``RLIMIT_FSIZE``).
    nofile: open file descriptors (``RLIMIT_NOFILE``).
    output_kb: stdout + stderr kept in the verdict; the rest is read and counted, then dropped.
    tmpfs_mb: size of the private working directory (a tmpfs) in the namespace modes.
    """

    wall_s: float = 10.0
    cpu_s: float = 10.0
    memory_mb: int = 1024
    nproc: int = 32
    fsize_mb: int = 16
    nofile: int = 64
    output_kb: int = 64
    tmpfs_mb: int = 64

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "float":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                if not ok or value <= 0:
                    raise ValueError(f"Limits: field {field.name!r} must be a positive number of seconds, "
                                     f"got {value!r}")
                object.__setattr__(self, field.name, float(value))
            elif not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits: field {field.name!r} must be a positive integer, got {value!r}")

    def rlimits(self, nproc_base: int = 0) -> list[tuple[str, int, int]]:
        """``(resource name, soft, hard)`` for ``setrlimit``; ``nproc_base`` processes already counted.

        >>> dict((n, s) for n, s, _ in Limits(cpu_s=2.5).rlimits())["RLIMIT_CPU"]
        3
        """
        cpu = math.ceil(self.cpu_s)
        return [
            ("RLIMIT_CPU", cpu, cpu + 1),
            ("RLIMIT_AS", self.memory_mb * _MIB, self.memory_mb * _MIB),
            ("RLIMIT_NPROC", nproc_base + self.nproc, nproc_base + self.nproc),
            ("RLIMIT_FSIZE", self.fsize_mb * _MIB, self.fsize_mb * _MIB),
            ("RLIMIT_NOFILE", self.nofile, self.nofile),
            ("RLIMIT_CORE", 0, 0),
            ("RLIMIT_MSGQUEUE", 0, 0),
        ]

    def tmpfs_options(self) -> str:
        """Mount options of the working directory's tmpfs (inodes bound too: 64 per MiB, at least 1024).

        >>> Limits(tmpfs_mb=8).tmpfs_options()
        'size=8m,nr_inodes=1024,mode=0700'
        """
        return f"size={self.tmpfs_mb}m,nr_inodes={max(1024, 64 * self.tmpfs_mb)},mode=0700"


DEFAULT_LIMITS = Limits()
