"""The results store: round trips, atomic append-only writes, concurrent writers, corrupt files."""

from __future__ import annotations

import math
import multiprocessing as mp
from pathlib import Path

import pytest

from covbench.store import StoreError, latest_run, read_run, run_dir, run_files, scan, slug, write_run
from records_factory import gold_docs, record


def test_round_trip_keeps_nan_and_inf(tmp_path):
    rec = record(metrics={"ce": math.inf, "kl": math.nan, "cov@4": 0.25}, docs=gold_docs([-1.0, -math.inf]))
    back = read_run(write_run(tmp_path, rec))
    assert back.metrics["ce"].value == math.inf and math.isnan(back.metrics["kl"].value)
    assert back.docs.logp_model == [-1.0, -math.inf]


def test_append_only_latest_wins_and_no_temp_files(tmp_path):
    first = write_run(tmp_path, record(metrics={"ce": 1.0}))
    second = write_run(tmp_path, record(metrics={"ce": 2.0}))
    assert first != second and first.exists() and second.exists()
    assert latest_run(tmp_path, "m", "t").metrics["ce"].value == 2.0
    assert [p.name for p in run_files(tmp_path, "m", "t")] == sorted([first.name, second.name])
    assert not list(run_dir(tmp_path, "m", "t").glob(".tmp-*"))


def test_slugs_are_path_safe_and_distinct():
    names = ["<script>alert(1)</script>", "a/b", "a_b", "a b", "../../etc", ""]
    slugs = [slug(n) for n in names]
    assert len(set(slugs)) == len(names)
    assert all("/" not in s and not s.startswith(".") for s in slugs)


def _writer(args: tuple[str, int]) -> int:
    root, i = args
    for j in range(10):
        write_run(Path(root), record(model=f"m{i % 2}", metrics={"ce": float(i * 100 + j)}))
    return i


def test_concurrent_writers_lose_nothing(tmp_path):
    with mp.get_context("spawn").Pool(4) as pool:
        pool.map(_writer, [(str(tmp_path), i) for i in range(4)])
    files = run_files(tmp_path, "m0", "t") + run_files(tmp_path, "m1", "t")
    assert len(files) == 40
    values = sorted(read_run(f).metrics["ce"].value for f in files)
    assert values == sorted(float(i * 100 + j) for i in range(4) for j in range(10))


def test_corrupt_file_names_file_and_field_and_loses_nothing(tmp_path):
    good = write_run(tmp_path, record(metrics={"ce": 1.0}))
    bad = good.parent / "run-99999999T999999999999Z-1-ffff.json"  # sorts last: the "latest"
    bad.write_text('{"model": "m", "task": "t"}')
    with pytest.raises(StoreError) as e:
        read_run(bad)
    msg = str(e.value)
    assert str(bad) in msg and "field '" in msg and "\n" not in msg
    result = scan(tmp_path)
    assert [r.metrics["ce"].value for r in result.records] == [1.0]  # the older good run is kept
    assert len(result.errors) == 1 and str(bad) in result.errors[0]


def test_unparseable_json(tmp_path):
    p = tmp_path / "run-x.json"
    p.write_text("{not json")
    with pytest.raises(StoreError, match="run-x.json"):
        read_run(p)
