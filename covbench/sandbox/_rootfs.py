"""The sandbox's root file system, built by the launcher (``docs/sandbox.md`` §"Process tree").

A read-only tmpfs holding read-only ``nosuid,nodev`` binds of the system libraries and the interpreter,
device nodes, a minimal ``/etc``, and empty ``/tmp`` and ``/.old``; no ``/proc``. Root mode builds it
once in the zygote's mount namespace; a user namespace builds it per run. Each run mounts a fresh tmpfs
on ``/tmp``, its working directory.

Stdlib only; imported by plain name inside the launcher (``python -I -S``).
"""

from __future__ import annotations

import os
import stat

if __package__:                   # imported for its docstrings and tests
    from covbench.sandbox import _linux as L
else:
    import _linux as L


def enter_root(fs: dict) -> None:
    """Init, per run: a fresh tmpfs on /tmp (the working directory). Root mode is already in the
    sandbox's root (the session joined the kept mount namespace and copied it); a user namespace
    builds that root now and pivots into it."""
    if not fs["template"]:
        root = fs["root"]
        L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
        root_tmpfs(root, fs, mknod=False)
        pivot(root)
        L.sethostname("sandbox")
    L.mount("tmpfs", "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV, fs["tmpfs"])
    os.chdir("/tmp")


def root_tmpfs(root: str, fs: dict, mknod: bool) -> None:
    """A read-only tmpfs at ``root``: binds of the interpreter and system libraries, device nodes (real
    root creates them; a user namespace binds them), /etc files, and empty /tmp and /.old; no /proc."""
    L.mount("tmpfs", root, "tmpfs", L.MS_NOSUID | (0 if mknod else L.MS_NODEV),
            "size=4m,nr_inodes=1024,mode=0755")
    for path in fs["ro_binds"]:
        _bind(path, root + path, read_only=True)
    for path, target in fs["symlinks"]:
        os.makedirs(os.path.dirname(root + path), 0o755, exist_ok=True)
        os.symlink(target, root + path)
    os.makedirs(root + "/dev", 0o755, exist_ok=True)
    for device, rdev in fs["devices"]:
        if mknod:
            os.mknod(root + device, 0o666 | stat.S_IFCHR, rdev)
            os.chmod(root + device, 0o666)
        else:
            _bind(device, root + device, read_only=False)
    os.symlink("/tmp", root + "/dev/shm")
    for path, text in fs["files"]:
        os.makedirs(os.path.dirname(root + path), 0o755, exist_ok=True)
        with open(root + path, "w") as handle:
            handle.write(text)
    os.mkdir(root + "/tmp", 0o755)
    os.mkdir(root + "/.old", 0o000)
    L.mount(None, root, None, L.MS_REMOUNT | L.MS_BIND | L.MS_RDONLY | L.MS_NOSUID
            | (0 if mknod else L.MS_NODEV))


def pivot(root: str) -> None:
    L.pivot_root(root, root + "/.old")
    os.chdir("/")
    L.umount2("/.old", L.MNT_DETACH)


def _bind(source: str, target: str, read_only: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, 0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    L.mount(source, target, None, L.MS_BIND | L.MS_REC)
    if read_only:
        locked = os.statvfs(source).f_flag & os.ST_NOEXEC
        flags = L.MS_REMOUNT | L.MS_BIND | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV
        L.mount(None, target, None, flags | (L.MS_NOEXEC if locked else 0))
