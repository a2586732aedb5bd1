"""Benchmarks: the leaderboard for 1,000 models × 10 tasks of synthetic results (target ≤ 5 s).

The store is generated once per session and written to disk as the runner writes it (one JSON
file per (model, task), 64 prompts and 8 samples each). To keep generation affordable, 1,000
models are scored on one task's prompts and the record set is relabelled as 10 tasks: the build
does the full per-task work for each (ranks, τ bootstrap, tables, plots, data) because it shares
nothing across tasks.

``test_bench_build_site`` times the build from the scanned store (what ``covbench leaderboard
build`` does after :func:`covbench.store.scan`), writing the site to disk, with the second core
(the target); ``test_bench_build_site_one_process`` the same without it; ``test_bench_scan_store``
the scan (reading and validating the 10,000 files) on its own. A warm-up round (imports, fonts,
template compilation) is not timed. ``COVBENCH_BENCH_MODELS`` shrinks the store for quick runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from covbench.store import StoreScan, run_dir, scan
from leaderboard import build, synthetic

N_MODELS = int(os.environ.get("COVBENCH_BENCH_MODELS", "1000"))
N_TASKS = 10


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory) -> Path:
    base = synthetic.synthetic_records(n_models=N_MODELS - 16, n_tasks=1, n_docs=64, n_samples=8,
                                       families={"fam-a": 8, "fam-b": 8}, seed=1)
    root = tmp_path_factory.mktemp("bench-store")
    for t in range(N_TASKS):
        for r in base:
            record = r.model_copy(update={"task": f"synth-{t}"})
            folder = run_dir(root, record.model, record.task)
            folder.mkdir(parents=True)
            # The file the runner's store.write_run would write, without its fsync per file.
            (folder / "run-20261123T000000000000Z-1-00000000.json").write_text(record.model_dump_json(),
                                                                                encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def big_store(store_dir) -> StoreScan:
    store = scan(store_dir)
    assert len(store.records) == N_MODELS * N_TASKS and not store.errors
    return store


def test_bench_build_site(benchmark, big_store, tmp_path):
    out = tmp_path / "site"
    benchmark.pedantic(build.build_site, args=(big_store, out), rounds=5, iterations=1, warmup_rounds=1)
    assert (out / "index.html").stat().st_size > 0
    assert len(list((out / "models").glob("*.html"))) == N_MODELS
    assert len(list((out / "plots").glob("m-*.svg"))) == N_MODELS


def test_bench_build_site_one_process(benchmark, big_store, tmp_path):
    """The same build on one core (no forked child): what a one-CPU machine gets."""
    out = tmp_path / "site"
    benchmark.pedantic(build.build_site, args=(big_store, out), kwargs={"parallel": False},
                       rounds=3, iterations=1, warmup_rounds=1)
    assert len(list((out / "models").glob("*.html"))) == N_MODELS


def test_bench_scan_store(benchmark, store_dir):
    store = benchmark.pedantic(scan, args=(store_dir,), rounds=2, iterations=1)
    assert len(store.records) == N_MODELS * N_TASKS
