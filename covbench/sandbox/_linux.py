"""Linux system calls the sandbox needs and Python 3.11's ``os`` lacks, through ``ctypes``.

Runs only in the trusted launcher processes (the zygote, the session process and the namespace init;
see ``docs/sandbox.md`` §"Process tree"). The program runner forked from them deletes this module and
``ctypes`` from ``sys.modules`` before any untrusted code runs, and its audit hook denies every
``ctypes.*`` event, so the program cannot reach these functions.

Stdlib only: this file is imported by plain name inside ``python -I -S``, never as ``covbench.*``.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

# pivot_root has no glibc wrapper: its number per architecture (asm-generic is 41).
_SYS_PIVOT_ROOT = {"x86_64": 155, "i686": 217, "i386": 217, "aarch64": 41, "riscv64": 41,
                   "ppc64le": 203, "s390x": 217}

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def unshare(flags: int) -> None:
    """unshare(2): move this process into new namespaces (for CLONE_NEWPID: its next child)."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2)."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
           f"mount {target}")


def umount2(target: str, flags: int) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2): make ``new_root`` the root of this mount namespace."""
    number = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(f"pivot_root: unknown system call number on {os.uname().machine}")
    _check(_libc.syscall(ctypes.c_long(number), _b(new_root), _b(put_old)), "pivot_root")


def prctl(option: int, arg: int = 0) -> None:
    """prctl(2) with one argument (the others zero)."""
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), f"prctl {option}")


def drop_bounding_set() -> None:
    """Drop every capability from the bounding set: nothing can be gained back by execve."""
    cap = 0
    while True:
        if _libc.prctl(ctypes.c_int(PR_CAPBSET_DROP), ctypes.c_ulong(cap), ctypes.c_ulong(0),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
            err = ctypes.get_errno()
            if err == 22:       # EINVAL: past the last capability this kernel knows
                return
            raise OSError(err, f"prctl PR_CAPBSET_DROP {cap}: {os.strerror(err)}")
        cap += 1


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def clear_capabilities() -> None:
    """capset(2) to empty effective, permitted and inheritable sets (version 3, 64 capabilities)."""
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")


def sethostname(name: str) -> None:
    """sethostname(2) (in the sandbox's own UTS namespace)."""
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


def setns(fd: int, nstype: int) -> None:
    """setns(2): join the namespace that ``fd`` (an nsfs file) refers to."""
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


# ------------------------------------------------------------------------------------------------ seccomp
# A deny-list filter (defence in depth; ``docs/sandbox.md`` §"System calls"): new namespaces (which give an
# unprivileged process capabilities inside them: the usual first step of kernel exploits), io_uring, bpf,
# userfaultfd, perf events, keyrings, ptrace and cross-process memory access, module and kexec loading,
# the mount API. Everything else is allowed. Foreign system-call ABIs (i386 and x32 on x86_64) are denied.

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_EPERM, _ENOSYS = 1, 38
_NS_FLAGS = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | 0x02000000
_ARCH = {  # machine: (AUDIT_ARCH, clone, clone3, denied system calls)
    "x86_64": (0xC000003E, 56, 435, {
        "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249,
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kexec_load": 246,
        "kexec_file_load": 320, "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169,
        "swapon": 167, "swapoff": 168, "acct": 163, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442}),
    "aarch64": (0xC00000B7, 220, 435, {
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kexec_load": 104,
        "kexec_file_load": 294, "init_module": 105, "finit_module": 273, "delete_module": 106, "reboot": 142,
        "swapon": 224, "swapoff": 225, "acct": 89, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442}),
}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]] | None:
    """The classic-BPF filter for ``machine`` as (code, jt, jf, k) tuples; None for an unknown machine."""
    if machine not in _ARCH:
        return None
    arch, clone, clone3, denied = _ARCH[machine]
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06    # BPF_LD|W|ABS, JMP|JEQ|K, JGE, JSET, RET|K
    numbers = sorted(set(denied.values()))
    # Layout: 0 ld arch; 1 jeq arch; 2 ret EPERM; 3 ld nr; 4 jge x32; 5 jeq clone3; 6 jeq clone;
    # 7.. jeq denied; then ret ALLOW; EPERM; ENOSYS; clone check: ld arg0; jset ns; ret ALLOW; ret EPERM.
    body = len(numbers)
    allow, eperm, enosys, clone_check = 7 + body, 8 + body, 9 + body, 10 + body
    program = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, _RET_ERRNO | _EPERM), (ld, 0, 0, 0)]
    x32 = 0x40000000 if machine == "x86_64" else 0xFFFFFFFF
    program.append((jge, eperm - 5, 0, x32))
    program.append((jeq, enosys - 6, 0, clone3))
    program.append((jeq, clone_check - 7, 0, clone))
    for i, number in enumerate(numbers):
        program.append((jeq, eperm - (8 + i), 0, number))
    program += [(ret, 0, 0, _RET_ALLOW), (ret, 0, 0, _RET_ERRNO | _EPERM), (ret, 0, 0, _RET_ERRNO | _ENOSYS),
                (ld, 0, 0, 16), (jset, 1, 0, _NS_FLAGS), (ret, 0, 0, _RET_ALLOW), (ret, 0, 0, _RET_ERRNO | _EPERM)]
    assert program[allow][3] == _RET_ALLOW and program[enosys][3] == _RET_ERRNO | _ENOSYS   # the layout
    assert program[clone_check] == (ld, 0, 0, 16)
    return program


def install_seccomp() -> bool:
    """Install the filter on this process (inherited by its children; ``no_new_privs`` must be set).
    False on a machine without a table here."""
    program = seccomp_program(os.uname().machine)
    if program is None:
        return False
    filters = (_SockFilter * len(program))(*[_SockFilter(*row) for row in program])
    fprog = _SockFprog(len(program), filters)
    _check(_libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl PR_SET_SECCOMP")
    return True
