"""A real two-node Ray cluster on this machine for the tests, reachable from nowhere else.

Ray's servers bind every interface, so the cluster lives in a network namespace of its own
(``unshare --net``) that has only a loopback interface: nothing outside the namespace can reach it, and
its ports cannot collide with anyone else's. Commands that talk to it (the suite as a driver, a
benchmark's driver) run inside the namespace through ``nsenter``. The head and the second node are
``ray start --block`` processes, each in its own session (process group), with a random auth token.
:meth:`RayTestCluster.stop` ends both groups, then any process still in the namespace (every one of them
was started by this cluster), then the namespace holder: nothing is left running.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 6379  # the namespace is private: the default port is free there

# Runs inside the new namespace: bring its loopback up (SIOCGIFFLAGS / SIOCSIFFLAGS with IFF_UP, so no
# iproute2 is needed), then hold the namespace open until killed.
_HOLDER = """
import fcntl, socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0))[:18])[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))
while True:
    time.sleep(3600)
"""


class RayTestCluster:
    """``nodes`` Ray nodes of ``cpus`` CPUs each, in a private network namespace."""

    def __init__(self, root: Path, repo: Path, *, nodes: int = 2, cpus: int = 1, object_store_mb: int = 80) -> None:
        self.root, self.repo, self.nodes, self.cpus, self.object_store_mb = Path(root), Path(repo), nodes, cpus, object_store_mb
        self.address = f"127.0.0.1:{PORT}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
                    "PYTHONPATH": os.pathsep.join([str(self.repo), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                    "COVBENCH_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
        self.holder: subprocess.Popen | None = None
        self.groups: list[subprocess.Popen] = []
        self.netns = ""
        self.ray_tmp = ""  # Ray's own temp dir: short, its socket paths must stay under 108 bytes

    # ---- running things inside -----------------------------------------------------------------------

    def prefix(self) -> list[str]:
        assert self.holder is not None
        return ["nsenter", f"--target={self.holder.pid}", "--net", "--"]

    def run(self, args: list[str], timeout: float = 600, **kw: object) -> subprocess.CompletedProcess:
        return subprocess.run(self.prefix() + args, env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False, **kw)

    def popen(self, args: list[str], log: Path) -> subprocess.Popen:
        """A process in the namespace, in its own session, writing to ``log``."""
        return subprocess.Popen(self.prefix() + args, env=self.env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                start_new_session=True)

    def processes(self) -> list[tuple[int, str]]:
        """(pid, command line) of every process in the cluster's namespace."""
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/net") == self.netns:
                        cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                        out.append((int(entry), cmd.strip()))
                except OSError:
                    continue
        return out

    def worker_pids(self, title: str) -> list[int]:
        """Ray workers whose process title starts with ``title`` (e.g. "ray::RayModelWorker.run")."""
        return [pid for pid, cmd in self.processes() if cmd.startswith(title)]

    # ---- start and stop ---------------------------------------------------------------------------

    def start(self, timeout: float = 180) -> RayTestCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        self.holder = subprocess.Popen(["unshare", "--net", sys.executable, "-c", _HOLDER], start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.netns or self.netns == os.readlink("/proc/self/ns/net"):
            time.sleep(0.05)
            self.netns = os.readlink(f"/proc/{self.holder.pid}/ns/net")
            if time.monotonic() > deadline:
                raise RuntimeError("network namespace did not come up")
        common = ["--block", "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}", "--num-gpus=0",
                  f"--object-store-memory={self.object_store_mb << 20}", "--disable-usage-stats"]
        ray = str(Path(sys.executable).parent / "ray")
        try:
            self.ray_tmp = tempfile.mkdtemp(prefix="cbray-", dir="/tmp")
            self._node([ray, "start", "--head", f"--port={PORT}", "--include-dashboard=false",
                        f"--temp-dir={self.ray_tmp}", *common], "head", deadline)
            for i in range(1, self.nodes):
                self._node([ray, "start", f"--address={self.address}", *common], f"node{i}", deadline)
            self._wait_nodes(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _node(self, args: list[str], name: str, deadline: float) -> None:
        log = self.root / f"{name}.log"
        self.groups.append(self.popen(args, log))
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if self.groups[-1].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray {name} did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)

    def _wait_nodes(self, deadline: float) -> None:
        code = (f"import ray, time\nray.init(address='{self.address}', logging_level='ERROR')\n"
                f"while len([n for n in ray.nodes() if n['Alive']]) < {self.nodes}: time.sleep(0.2)\n")
        done = self.run([sys.executable, "-c", code], timeout=max(deadline - time.monotonic(), 10))
        if done.returncode != 0:
            raise RuntimeError(f"ray nodes did not join: {done.stderr[-2000:]}")

    def stop(self) -> None:
        # SIGKILL, not SIGTERM: a terminated node drains for 30 s first, and a test cluster keeps nothing.
        for group in reversed(self.groups):
            _signal_group(group, signal.SIGKILL)
        for group in reversed(self.groups):
            group.wait(timeout=30)
        time.sleep(0.5)
        if self.holder is not None:
            for pid, _ in self.processes():  # anything left in the namespace was started by this cluster
                if pid != self.holder.pid:
                    _kill(pid)
            self.holder.kill()
            self.holder.wait(timeout=10)
        self.groups.clear()
        if self.ray_tmp:
            shutil.rmtree(self.ray_tmp, ignore_errors=True)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
