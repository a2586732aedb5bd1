"""The site survives being killed, and the store survives concurrent writers while a build reads it."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from covbench import synthetic
from covbench.site import build
from covbench.store import catalog, run_files, slug, write_run
from covbench.store.index import INDEX_DIR, INDEX_NAME
from site_helpers import files

BUILD = [sys.executable, "-c", "import sys; from covbench.site.build import main; sys.exit(main(sys.argv[1:]))", "build"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[Path, Path, dict[str, bytes], dict[str, bytes]]:
    """An old store, a new one (the old plus four models), and the complete site of each."""
    root = tmp_path_factory.mktemp("kill")
    runs = synthetic.synthetic_records(n_models=40, n_tasks=3, n_docs=32, families={"fam": 6})
    added = {f"model-{i:03d}" for i in (3, 11, 19, 27)}
    synthetic.write_store(root / "old", [r for r in runs if r.record.model not in added])
    shutil.copytree(root / "old", root / "new")
    synthetic.write_store(root / "new", [r for r in runs if r.record.model in added])
    for name in ("old", "new"):
        shutil.rmtree(root / name / INDEX_DIR, ignore_errors=True)
    build.build(root / "old", root / "ref-old")
    build.build(root / "new", root / "ref-new")
    return root / "old", root / "new", files(root / "ref-old"), files(root / "ref-new")


def test_sigkill_at_random_points_never_publishes_a_partial_site(stores, tmp_path):
    old, new, ref_old, ref_new = stores
    out = tmp_path / "site"
    build.build(old, out)
    start = time.perf_counter()
    build.build(new, tmp_path / "timing")
    duration = time.perf_counter() - start
    rng = random.Random(20261130)
    outcomes = []
    for trial in range(14):
        source = new if trial % 2 == 0 else old  # alternate, so both directions of the swap are killed
        proc = subprocess.Popen([*BUILD, "--results", str(source), "--out", str(out)], env={**os.environ},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Wait until the build is under way (its folder beside --out exists), then kill it at a random
        # point of its writing, renaming and cleaning; the last two trials are left to finish.
        deadline = time.monotonic() + 120
        while proc.poll() is None and not list(tmp_path.glob(".site.new-*")) and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 1.3 * duration) if trial < 12 else 3 * duration + 1)
        if trial >= 12:
            proc.wait(timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = files(out)
        assert now in (ref_old, ref_new), f"trial {trial}: the published site is neither complete site"
        outcomes.append("new" if now == ref_new else "old")
    assert len(set(outcomes)) == 2, outcomes  # some kills landed before the swap and some after
    build.build(new, out)  # a completed build after the kills: complete, every model has its page
    assert files(out) == ref_new
    assert not list(tmp_path.glob(".site.new-*")) and not list(tmp_path.glob(".site.old-*"))
    cat = catalog(new)
    assert all((out / "models" / f"{slug(cat.model(i))}.html").is_file() for i in range(len(cat)))


def _writer(args: tuple[str, int, int]) -> None:
    root, worker, n = args
    runs = synthetic.synthetic_records(n_models=n, n_tasks=2, n_docs=12, seed=worker)
    for r in runs:
        rec = r.record.model_copy(update={"model": f"w{worker}-{r.record.model}"})
        write_run(Path(root), type(r)(rec, r.docs, r.samples))


def test_two_writers_while_a_build_reads_lose_nothing(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_writer, args=((str(store), w, 25),)) for w in range(2)]
    for p in writers:
        p.start()
    builds = 0
    while any(p.is_alive() for p in writers) or builds == 0:
        build.build(store, tmp_path / "site")  # reads the store (and refreshes its index) while writers write
        builds += 1
    for p in writers:
        p.join()
        assert p.exitcode == 0
    expected = {(f"w{w}-model-{i:03d}", f"synth-{t}") for w in range(2) for i in range(25) for t in range(2)}
    stored = {(m, t) for m, t in expected if run_files(store, m, t)}
    assert stored == expected  # every run written is on disk
    cat = catalog(store)  # the index after the race
    assert {(cat.model(i), cat.task(i)) for i in range(len(cat))} == expected and cat.errors == ()
    shutil.rmtree(store / INDEX_DIR / INDEX_NAME)
    rebuilt = catalog(store)  # agrees with a rebuild from the run files
    assert rebuilt.rels == cat.rels and rebuilt.smalls == cat.smalls
    np.testing.assert_array_equal(rebuilt.values, cat.values)
    final = build.build(store, tmp_path / "site")
    assert final.n_models == 50 and builds >= 1
    assert all((tmp_path / "site" / "models" / f"{slug(m)}.html").is_file() for m, _ in expected)
