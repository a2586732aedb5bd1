"""Benchmarks of the per-class views (issue 16 item 6), side by side with their baselines in one run.

1. ``class_table`` of one task board of 1,000 models (64 prompts, 2 classes; :mod:`covbench.synthetic`):
   the grouped computation (one :func:`covbench.metrics.grouped_mean_ci` call per distinct prompt list)
   against a per-model loop over the same function, and against ``views.rows`` (the board's rows, which
   every build computes anyway) for scale.
2. A cold site build of 200 models × 10 tasks with the per-class tables against the same build with them
   switched off (``class_table`` patched to return None): what the per-class pages cost the build.

Run: ``pytest tests/bench/test_bench_classes.py -q -s --benchmark-columns=min,mean,max,rounds``; the ratios
are printed.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from covbench import metrics, synthetic, views
from covbench.site.build import build
from covbench.store import catalog

RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def one_task(tmp_path_factory):
    root = tmp_path_factory.mktemp("classes-bench")
    synthetic.write_store(root, synthetic.synthetic_records(n_models=1000, n_tasks=1, n_docs=64, n_samples=8))
    cat = catalog(root)
    g = views.groups(cat)[0]
    return cat, g, views.rows(cat, g)


def _per_model(cat, g, rows):
    """The baseline: one grouped_mean_ci call per model (what a model page alone would do)."""
    out = []
    by_model = {cat.model(i): i for i in g.entries}
    for r in rows:
        v = cat.vectors[by_model[r.model]]
        out.append(metrics.grouped_mean_ci(np.stack([v.nll, v.cov, v.pass_exact]), v.cls, 2, v.weight))
    return out


def test_bench_class_table_grouped(benchmark, one_task):
    cat, g, rows = one_task
    table = benchmark(views.class_table, cat, g, rows, cat.vectors.__getitem__)
    assert len(table.rows) == 1000
    RESULTS["grouped"] = benchmark.stats["mean"]


def test_bench_class_table_per_model_loop(benchmark, one_task):
    cat, g, rows = one_task
    loop = benchmark(_per_model, cat, g, rows)
    table = views.class_table(cat, g, rows, cat.vectors.__getitem__)
    assert np.allclose(loop[7].value, table.rows[7].values[:, :, 0], equal_nan=True)  # the same numbers
    RESULTS["loop"] = benchmark.stats["mean"]


def test_bench_board_rows_for_scale(benchmark, one_task):
    cat, g, _ = one_task
    benchmark(views.rows, cat, g)
    RESULTS["rows"] = benchmark.stats["mean"]
    print(f"\nclass_table, 1,000 models: grouped {RESULTS['grouped'] * 1e3:.1f} ms, per-model loop "
          f"{RESULTS['loop'] * 1e3:.1f} ms ({RESULTS['loop'] / RESULTS['grouped']:.1f}x); board rows "
          f"{RESULTS['rows'] * 1e3:.1f} ms")


@pytest.fixture(scope="module")
def store_200(tmp_path_factory):
    root = tmp_path_factory.mktemp("classes-site")
    synthetic.write_store(root, synthetic.synthetic_records(n_models=200, n_tasks=10, n_docs=64, n_samples=8))
    catalog(root)  # the index is up to date
    return root


@pytest.mark.parametrize("per_class", [False, True], ids=["without", "with"])
def test_bench_site_build_with_and_without_classes(benchmark, store_200, tmp_path, monkeypatch, per_class):
    if not per_class:
        from covbench.views import classes

        monkeypatch.setattr(classes, "class_table", lambda *a, **k: None)
    out = tmp_path / "site"
    benchmark.pedantic(lambda: build(store_200, out), setup=lambda: shutil.rmtree(out, ignore_errors=True),
                       rounds=3, iterations=1)
    text = (out / "tasks").iterdir().__next__().read_text(encoding="utf-8")
    assert ("Per class" in text) == per_class
    RESULTS["with" if per_class else "without"] = benchmark.stats["mean"]
    if per_class:
        print(f"\ncold site build, 200 models x 10 tasks: without per-class {RESULTS['without']:.2f} s, with "
              f"{RESULTS['with']:.2f} s ({RESULTS['with'] / RESULTS['without']:.2f}x)")
