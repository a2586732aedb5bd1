"""Driver for tests/bench/test_bench_ray.py: the same synthetic jobs through the local and the Ray executor.

Run inside the test cluster's network namespace (it is a Ray driver)::

    python tests/bench/ray_overhead.py --address 127.0.0.1:6379 --models 8 --tasks 125 --work DIR

Jobs: ``models × tasks`` (model, task) pairs. Each task is a small Fig. 1 task YAML (12 prompts), built
by the driver as in a real run; each job's run is computed by
:class:`covbench.executors.synthetic.SyntheticWorker` (64 prompts × 8 samples, no model), so what is
timed is the executor path itself: plan from the store, compute, ship the result back, write it. Both
paths write their own store under ``--work``; the script checks that every job is stored once in each
and prints one JSON object with the timings.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

for _name in ("lm_eval", "lm-eval"):
    logging.getLogger(_name).setLevel(logging.ERROR)


def _tasks(folder: Path, n: int) -> list[str]:
    from covbench.graphs.lmeval import DataSpec, TaskSpec, task_yaml

    folder.mkdir(parents=True, exist_ok=True)
    data = DataSpec(family="fig1", n_layers=4, m=32, mixture="fig1_finetune", seed=11, n=12)
    names = [f"t{i:04d}" for i in range(n)]
    for name in names:
        (folder / f"{name}.yaml").write_text(task_yaml(TaskSpec(name, data, "loglikelihood")))
    return names


def _timed_run(executor, jobs, root: Path, tasks_dir: Path) -> dict[str, float]:
    from covbench.executors.base import run_all

    start, cpu = time.perf_counter(), time.process_time()
    out = run_all(executor, jobs, root, tasks_dir=tasks_dir)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    failed = [e for _, o, e in out if o is None]
    assert not failed, failed[:3]
    return {"seconds": seconds, "driver_cpu_s": cpu, "jobs": len(out)}


def _component_costs(jobs, tasks_dir: Path, root: Path) -> dict[str, float]:
    """Per-job costs of the driver's own steps, measured alone: build a task, plan, encode+write a run."""
    from covbench.executors.synthetic import SyntheticWorker
    from covbench.runner import load_task, plan_job
    from covbench.store import write_run

    sample = jobs[:50]
    t0 = time.perf_counter()
    infos = [load_task(j.task, tasks_dir) for j in sample]
    t1 = time.perf_counter()
    plans = [plan_job(j.spec, i, root) for j, i in zip(sample, infos)]
    t2 = time.perf_counter()
    runs = [SyntheticWorker(j.spec).compute(p) for j, p in zip(sample, plans)]
    t3 = time.perf_counter()
    for run in runs:
        write_run(root, run)
    t4 = time.perf_counter()
    n = len(sample)
    return {"task_build_ms": 1e3 * (t1 - t0) / n, "plan_ms": 1e3 * (t2 - t1) / n,
            "synthetic_compute_ms": 1e3 * (t3 - t2) / n, "write_ms": 1e3 * (t4 - t3) / n}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=125)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args(argv)

    from covbench.executors.base import Job
    from covbench.executors.local import LocalExecutor
    from covbench.executors.ray_executor import RayExecutor
    from covbench.executors.synthetic import SyntheticWorker
    from covbench.registry import ModelSpec
    from covbench.runner import task_manager
    from covbench.store import run_files

    tasks_dir = args.work / "tasks"
    names = _tasks(tasks_dir, args.tasks)
    task_manager(str(tasks_dir))  # index the folder once, outside both timings
    specs = [ModelSpec(name=f"ckpt-{i:04d}", pretrained="gpt2") for i in range(args.models)]
    jobs = [Job(s, t) for s in specs for t in names]  # model-major, as the suite orders them

    local = _timed_run(LocalExecutor(worker_class=SyntheticWorker), jobs, args.work / "local", tasks_dir)
    connect = time.perf_counter()
    with RayExecutor(address=args.address, worker_class=SyntheticWorker) as executor:
        connect = time.perf_counter() - connect
        ray = _timed_run(executor, jobs, args.work / "ray", tasks_dir)
        ray["workers"] = len(executor._workers)
        ray["worker_start_s"] = min(executor.worker_start_s)
    costs = _component_costs(jobs, tasks_dir, args.work / "components")
    for root in ("local", "ray"):
        counts = {len(run_files(args.work / root, j.spec.name, j.task)) for j in jobs}
        assert counts == {1}, (root, counts)
    from covbench.store import catalog

    start = time.perf_counter()
    assert len(catalog(args.work / "ray")) == len(jobs)  # what the terminal summary reads at the end
    catalog_s = time.perf_counter() - start
    report = {"jobs": len(jobs), "models": args.models, "tasks": args.tasks, "local_s": local["seconds"],
              "ray_s": ray["seconds"], "ray_connect_s": connect, "ray_workers": ray["workers"],
              "local_ms_per_job": 1e3 * local["seconds"] / len(jobs), "ray_ms_per_job": 1e3 * ray["seconds"] / len(jobs),
              "local_driver_cpu_ms_per_job": 1e3 * local["driver_cpu_s"] / len(jobs),
              "ray_driver_cpu_ms_per_job": 1e3 * ray["driver_cpu_s"] / len(jobs),
              "ray_worker_start_s": ray["worker_start_s"], "catalog_s": catalog_s, **costs}
    print("RESULT " + json.dumps(report))
    return report


if __name__ == "__main__":
    main()
