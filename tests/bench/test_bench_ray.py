"""Benchmark (issue 15): per-job overhead of the Ray path against the local path, 1,000 synthetic jobs.

8 models × 125 tasks = 1,000 (model, task) jobs whose runs are synthetic (no model; 64 prompts × 8
samples each, :class:`covbench.executors.synthetic.SyntheticWorker`), run side by side in one driver
process (tests/bench/ray_overhead.py) through the local executor and through the Ray executor on the
session's two-node test cluster (tests/ray_cluster.py, 1 CPU per node, so at most two model workers at
a time). Both paths plan from the store, compute and write every run; the Ray path also starts one
worker process per model and ships each run back to the driver. Reported (printed, and in the
benchmark's ``extra_info``): wall time per job of each path, their ratio, and the driver's per-job
costs measured alone (task build, plan, write). docs/scale.md turns these into a 100-node estimate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parent / "ray_overhead.py"
MODELS, TASKS = 8, 125


@pytest.mark.benchmark(group="ray_overhead")
def test_ray_overhead_per_job(benchmark, ray_cluster, tmp_path, capsys):
    result: dict = {}

    def run() -> None:
        done = ray_cluster.run([sys.executable, str(SCRIPT), "--address", ray_cluster.address, "--models",
                                str(MODELS), "--tasks", str(TASKS), "--work", str(tmp_path / "work")], timeout=1500)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
        assert done.returncode == 0 and line, (done.stdout[-2000:], done.stderr[-3000:])
        result.update(json.loads(line.removeprefix("RESULT ")))

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    assert result["jobs"] == MODELS * TASKS >= 1000 and result["ray_workers"] >= MODELS
    ratio = result["ray_s"] / result["local_s"]
    benchmark.extra_info.update(result, ray_over_local=ratio)
    with capsys.disabled():
        print(f"\nRay vs local executor, {result['jobs']} synthetic jobs ({MODELS} models × {TASKS} tasks): "
              f"local {result['local_s']:.1f} s ({result['local_ms_per_job']:.1f} ms/job), "
              f"ray {result['ray_s']:.1f} s ({result['ray_ms_per_job']:.1f} ms/job; connect "
              f"{result['ray_connect_s']:.1f} s, {result['ray_workers']} workers, fastest worker start "
              f"{result['ray_worker_start_s']:.1f} s), ratio {ratio:.2f}; driver CPU per job: local "
              f"{result['local_driver_cpu_ms_per_job']:.1f} ms, ray {result['ray_driver_cpu_ms_per_job']:.1f} ms; "
              f"driver alone per job: task build {result['task_build_ms']:.1f} ms, plan {result['plan_ms']:.1f} ms, "
              f"write {result['write_ms']:.1f} ms, synthetic compute {result['synthetic_compute_ms']:.1f} ms; "
              f"catalog of the {result['jobs']} stored runs {result['catalog_s']:.1f} s")
