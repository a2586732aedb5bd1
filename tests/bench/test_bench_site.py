"""Benchmarks (issue 12), side by side in one run, on a synthetic store of 1,000 models × 10 tasks
(10,000 run files of 64 prompts × 8 samples, :mod:`covbench.synthetic`):

- ``cold``: the store with no index and no site: read every run file, build the index, build the site
  (one process), i.e. ``covbench leaderboard build`` on a fresh store;
- ``cold_indexed``: a fresh site from a store whose index is up to date (the usual first build);
- ``incremental``: a rebuild after one new model's 10 runs (the index and the site of the other 999 models
  in place); it must give the same bytes as a cold build of the same store (checked once);
- ``dataframe``: ``covbench.store.to_dataframe`` of the indexed store.

Targets (issue 12): cold ≤ 5 s, incremental ≤ 0.5 s. Run: ``pytest tests/bench/test_bench_site.py -q
--benchmark-columns=min,mean,max,rounds``; the means are also printed (``-s``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from covbench import store, synthetic
from covbench.site.build import build
from covbench.store.index import INDEX_DIR

N_MODELS, N_TASKS, N_DOCS, N_SAMPLES = 1000, 10, 64, 8
NEW = "model-000"


def _mean(benchmark) -> float:
    """The benchmark's mean time, NaN under --benchmark-disable (one plain call, no statistics)."""
    return float("nan") if benchmark.stats is None else benchmark.stats["mean"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The store of 999 models, and the new model's 10 runs in a folder of their own."""
    root = tmp_path_factory.mktemp("bench-site")
    runs = synthetic.synthetic_records(n_models=N_MODELS, n_tasks=N_TASKS, n_docs=N_DOCS, n_samples=N_SAMPLES)
    synthetic.write_store(root / "store", [r for r in runs if r.record.model != NEW])
    synthetic.write_store(root / "new", [r for r in runs if r.record.model == NEW])
    return root / "store", root / "new"


def _add(new: Path, target: Path) -> list[Path]:
    added = []
    for f in new.rglob("run-*"):
        dest = target / f.relative_to(new)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
        added.append(dest)
    return added


def _remove(paths: list[Path]) -> None:
    for p in paths:
        p.unlink()
        if not any(p.parent.iterdir()):
            p.parent.rmdir()


def test_bench_cold_including_reading_the_store(benchmark, stores, tmp_path):
    store_dir, _ = stores

    def fresh() -> None:
        shutil.rmtree(store_dir / INDEX_DIR, ignore_errors=True)
        shutil.rmtree(tmp_path / "site", ignore_errors=True)

    report = benchmark.pedantic(lambda: build(store_dir, tmp_path / "site"), setup=fresh, rounds=3, iterations=1)
    assert report.n_models == N_MODELS - 1 and report.kept == []
    print(f"\ncold (no index, no site): mean {_mean(benchmark):.2f} s")


def test_bench_cold_site_from_an_indexed_store(benchmark, stores, tmp_path):
    store_dir, _ = stores
    store.catalog(store_dir)  # the index is up to date
    benchmark.pedantic(lambda: build(store_dir, tmp_path / "site"),
                       setup=lambda: shutil.rmtree(tmp_path / "site", ignore_errors=True), rounds=3, iterations=1)
    print(f"\ncold site, indexed store: mean {_mean(benchmark):.2f} s")


def test_bench_incremental_after_one_new_model(benchmark, stores, tmp_path):
    store_dir, new = stores
    site = tmp_path / "site"
    build(store_dir, site)  # the published site of the 999 models
    baseline = tmp_path / "baseline"
    shutil.copytree(site, baseline, copy_function=shutil.copy2)
    added: list[Path] = []

    def setup() -> None:
        nonlocal added
        if added:  # back to the 999-model store and its site
            _remove(added)
            store.catalog(store_dir)
            shutil.rmtree(site)
            shutil.copytree(baseline, site, copy_function=shutil.copy2)
        added = _add(new, store_dir)

    report = benchmark.pedantic(lambda: build(store_dir, site), setup=setup, rounds=5, iterations=1)
    assert report.n_models == N_MODELS and any(NEW in r for r in report.rendered)
    cold = build(store_dir, tmp_path / "cold")  # the same bytes as a cold build of the same store
    for f in cold.rendered:
        assert (site / f).read_bytes() == (tmp_path / "cold" / f).read_bytes(), f
    print(f"\nincremental (+1 model, 10 runs): mean {_mean(benchmark):.3f} s")
    _remove(added)


def test_bench_to_dataframe(benchmark, stores):
    store_dir, _ = stores
    store.catalog(store_dir)
    df = benchmark(store.to_dataframe, store_dir)
    assert len(df) == (N_MODELS - 1) * N_TASKS
    print(f"\nto_dataframe: mean {_mean(benchmark):.3f} s")
