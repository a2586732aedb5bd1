"""The suite on a real Ray cluster (``--executor ray``): same outcome, summary, exit code and store as a
local run; a worker killed mid-job is retried; a driver killed with SIGKILL resumes from the store.

The cluster (head + a second node, 1 CPU each, tests/ray_cluster.py) is started once per session and
shared. The suite runs as its own driver process inside the cluster's network namespace, on small Fig. 1
tasks (12 prompts, n = 2) and random tiny GPT-2s, as in tests/test_suite.py.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from suite_env import write_suite_env

from covbench.store import read_run, run_files

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "suite"
JOBS = [(m, t) for m in ("tiny-a", "tiny-b") for t in ("mini", "mini_sample")]


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model_dir):
    return write_suite_env(tmp_path_factory.mktemp("ray-suite"), tiny_model_dir,
                           tiny_b=", resources: {cpus: 1, memory_gb: 0.5}",
                           more=f"  - {{name: needs-gpu, pretrained: {tiny_model_dir}, resources: {{gpus: 1}}}}\n")


def _args(env: Path, results: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", str(SUITE), "-p", "no:randomly", "-p", "no:cacheprovider", "-v",
            "--models-file", str(env / "models.yaml"), "--tasks-dir", str(env / "tasks"),
            "--results-dir", str(env / results), "--tasks", "mini,mini_sample", *extra]


def _ray(cluster, *more: str) -> list[str]:
    return ["--executor", "ray", "--ray-address", cluster.address, *more]


def _summary(out: str, results: Path) -> list[str]:
    """The covbench section of the terminal summary, without timings, the Ray lines and the store's path."""
    lines = [ln.rstrip("= ") for ln in out[out.index("covbench: "):].replace(str(results), "RESULTS").splitlines()]
    keep = [ln for ln in lines if not ln.startswith("covbench ray:") and not re.match(r"^=+ .* in [\d.]+s", ln)]
    return [ln for ln in keep if not ln.startswith("FAILED") and not ln.startswith("=")]


def _failures(out: str) -> list[str]:
    return sorted(ln for ln in out.splitlines() if ln.startswith("FAILED"))


def _same_run(a, b) -> bool:
    """Equal small part and arrays, except the provenance fields that name the machine and the time."""
    strip = {"provenance": {"machine", "time"}}
    return (a.record.model_dump_json(exclude=strip) == b.record.model_dump_json(exclude=strip)  # NaN == NaN
            and ((a.docs is None and b.docs is None) or a.docs.equals(b.docs))
            and ((a.samples is None and b.samples is None) or a.samples.equals(b.samples)))


def _assert_store_matches(env: Path, results: str, reference: str, writers: int = 1) -> None:
    stored = []
    for model, task in JOBS:
        files = run_files(env / results, model, task)
        assert len(files) == 1, (model, task, files)  # once per job: no duplicate from a retry
        assert _same_run(read_run(files[0]), read_run(run_files(env / reference, model, task)[0])), (model, task)
        stored += files
    # run-<time>-<host>-<pid>-<random>: every file was written by the driver(s), none by the workers
    assert len({f.name.split("-")[3] for f in stored}) == writers, [f.name for f in stored]
    leftovers = [p for p in (env / results).rglob("*") if p.is_file() and not p.name.startswith("run-")]
    assert not [p for p in leftovers if ".covbench" not in p.parts], leftovers  # nothing partial


@pytest.fixture(scope="module")
def local_run(env):
    return subprocess.run(_args(env, "r-local", "--model", "fam", "--model", "no-weights"), cwd=REPO,
                          capture_output=True, text=True, timeout=900, check=False)


def test_ray_run_is_the_local_run(ray_cluster, env, local_run):
    ray_run = ray_cluster.run(_args(env, "r-ray", "--model", "fam", "--model", "no-weights", *_ray(ray_cluster)),
                              cwd=REPO, timeout=900)
    out, local = ray_run.stdout, local_run.stdout
    assert local_run.returncode == 1 and ray_run.returncode == local_run.returncode, out[-3000:]
    assert "3 failed, 3 passed" in local and "3 failed, 3 passed" in out, out[-3000:]
    assert _failures(out) == _failures(local)  # the same one-line reasons
    assert "floor pass_exact@8 ≥ 0.999: got" in out and "model 'no-weights': cannot load" in out
    assert _summary(out, env / "r-ray") == _summary(local, env / "r-local")  # the same table and job messages
    # 6 jobs: fam's 4, and no-weights' mini_sample with its partner mini (each fails in one line, not retried)
    assert re.search(r"covbench ray: 6/6 jobs computed on \d+ workers in [\d.]+ s \(2 failed, 0 retried", out), out[-2000:]
    assert "covbench ray: 0/" in out  # live progress was shown
    _assert_store_matches(env, "r-ray", "r-local")


def test_worker_killed_mid_job_is_retried(ray_cluster, env, local_run, tmp_path):
    driver = ray_cluster.popen(_args(env, "r-kill", "--model", "fam", *_ray(ray_cluster)), tmp_path / "driver.log")
    killed, deadline = None, time.monotonic() + 300
    while killed is None and driver.poll() is None and time.monotonic() < deadline:
        busy = ray_cluster.worker_pids("ray::RayModelWorker.run")  # a worker in the middle of a job
        if busy:
            killed = busy[0]
            subprocess.run(["kill", "-KILL", str(killed)], check=False)
        time.sleep(0.01)
    assert killed is not None, "no worker was seen running a job"
    driver.wait(timeout=600)
    out = (tmp_path / "driver.log").read_text()
    assert driver.returncode == 1 and "1 failed, 3 passed" in out, out[-3000:]  # tiny-b's floor, as locally
    retried = re.search(r"covbench ray: 4/4 jobs computed on \d+ workers in [\d.]+ s \(0 failed, (\d+) retried", out)
    assert retried and int(retried.group(1)) >= 1, out[-3000:]
    print(f"\nkilled worker pid {killed} mid-job; {retried.group(0)}")
    _assert_store_matches(env, "r-kill", "r-local")


def test_driver_killed_resumes_from_the_store(ray_cluster, env, local_run, tmp_path):
    results = env / "r-resume"
    driver = ray_cluster.popen(_args(env, "r-resume", "--model", "fam", *_ray(ray_cluster)), tmp_path / "first.log")
    deadline = time.monotonic() + 300
    while driver.poll() is None and time.monotonic() < deadline:
        if any(run_files(results, m, t) for m, t in JOBS):
            break
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    stored = {(m, t) for m, t in JOBS if run_files(results, m, t)}
    assert stored and len(stored) < len(JOBS), (stored, (tmp_path / "first.log").read_text()[-2000:])
    again = ray_cluster.run(_args(env, "r-resume", "--model", "fam", *_ray(ray_cluster)), cwd=REPO, timeout=900)
    out = again.stdout
    assert again.returncode == 1 and "1 failed, 3 passed" in out, out[-3000:]
    for model, task in stored:
        assert f"{model} × {task}: reused the stored result" in out, out[-3000:]
    print(f"\nkilled the driver after {len(stored)} of {len(JOBS)} jobs were stored; the rerun reused them")
    _assert_store_matches(env, "r-resume", "r-local", writers=2)


def test_unplaceable_and_usage_errors_are_one_line(ray_cluster, env):
    gpu = ray_cluster.run(_args(env, "r-gpu", "--model", "needs-gpu", "--tasks", "mini", *_ray(ray_cluster)),
                          cwd=REPO, timeout=600)
    assert gpu.returncode == 1, gpu.stdout[-2000:]
    assert ("model 'needs-gpu': field 'resources': needs 1 CPU, 1 GPU per worker; no node of the Ray cluster "
            "has that") in gpu.stdout
    xdist = ray_cluster.run(_args(env, "r-x", "--model", "fam", "-n", "2", *_ray(ray_cluster)), cwd=REPO, timeout=300)
    assert xdist.returncode == 4 and "--executor ray runs every job on the Ray cluster" in xdist.stderr
    nowhere = ray_cluster.run(_args(env, "r-x", "--model", "fam", "--executor", "ray", "--ray-address",
                                    "127.0.0.1:1"), cwd=REPO, timeout=300)
    assert nowhere.returncode == 4 and "cannot use the Ray cluster at '127.0.0.1:1'" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr


def test_without_an_address_a_local_cluster_is_started_and_stopped(ray_cluster, env):
    """No --ray-address: the driver starts its own cluster (here inside the namespace) and stops it."""
    before = {pid for pid, _ in ray_cluster.processes()}
    done = ray_cluster.run(_args(env, "r-own", "--model", "tiny-a", "--tasks", "mini", "--executor", "ray"),
                           cwd=REPO, timeout=600)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:]
    assert re.search(r"covbench ray: 1/1 jobs computed on 1 workers", done.stdout), done.stdout[-2000:]
    assert len(run_files(env / "r-own", "tiny-a", "mini")) == 1
    deadline = time.monotonic() + 30
    while (left := [cmd for pid, cmd in ray_cluster.processes() if pid not in before]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, left  # nothing of the driver's own cluster is left running
