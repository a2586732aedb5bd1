"""Benchmark: build the whole site for 1,000 models × 10 tasks of synthetic results (target ≤ 5 s).

The records are generated once per session in memory (64 prompts, 8 samples each). To keep that
generation affordable, 1,000 models are scored on one task's prompts and the record set is relabelled
as 10 tasks: the build does the full per-task work for each (ranks, τ bootstrap, tables, plots, data)
because it shares nothing across tasks. ``COVBENCH_BENCH_MODELS`` shrinks the store for quick runs.
"""

from __future__ import annotations

import os

import pytest

from covbench.store import StoreScan
from leaderboard import build, synthetic

N_MODELS = int(os.environ.get("COVBENCH_BENCH_MODELS", "1000"))
N_TASKS = 10


@pytest.fixture(scope="session")
def big_store() -> StoreScan:
    base = synthetic.synthetic_records(n_models=N_MODELS - 16, n_tasks=1, n_docs=64, n_samples=8,
                                       families={"fam-a": 8, "fam-b": 8}, seed=1)
    records = [r.model_copy(update={"task": f"synth-{t}"}) for t in range(N_TASKS) for r in base]
    records.sort(key=lambda r: (r.task, r.model))
    return StoreScan(records=records, errors=[])


def test_bench_build_site(benchmark, big_store, tmp_path):
    out = tmp_path / "site"

    def run() -> None:
        build.write_site(out, build.site_files(big_store))

    benchmark.pedantic(run, rounds=3, iterations=1)
    assert (out / "index.html").stat().st_size > 0
    assert len(list((out / "models").glob("*.html"))) == N_MODELS
