"""The build's second core and its writer: a forked child, a shared chunk queue, the writer process.

Whatever runs where, the site must be byte-for-byte the one a single process makes, errors must
come back as one line, and a failed build must leave the previous site untouched.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import pytest

from covbench.store import StoreScan, write_run
from leaderboard import background, build, synthetic
from leaderboard.sitewriter import MARKER, SiteWriteError, SiteWriter

needs_fork = pytest.mark.skipif(not background.can_fork(), reason="needs os.fork and two CPUs")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def many_models(tmp_path_factory) -> Path:
    """60 models × 2 tasks: three chunks of per-model files, so both processes get some."""
    root = tmp_path_factory.mktemp("store")
    for r in synthetic.synthetic_records(n_models=56, n_tasks=2, n_docs=12, n_samples=4,
                                         families={"fam": 4}, seed=3):
        write_run(root, r)
    return root


def test_parallel_build_is_byte_identical_to_one_process(many_models, tmp_path):
    store = build.scan(many_models)
    build.build_site(store, tmp_path / "par", B=25, parallel=True)
    build.build_site(store, tmp_path / "one", B=25, parallel=False)
    par, one = _files(tmp_path / "par"), _files(tmp_path / "one")
    in_memory = {rel: text.encode("utf-8") for rel, text in build.site_files(store, B=25).items()}
    assert len(par) > 3 * 60 and par.keys() == one.keys() == in_memory.keys()
    assert par == one == in_memory
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


@needs_fork
def test_forked_work_returns_its_value_and_its_error():
    parent = os.getpid()
    assert background.start(lambda: (os.getpid() != parent, [1.5, float("nan")])).result()[0] is True
    with pytest.raises(ValueError, match="bad input"):
        background.start(lambda: (_ for _ in ()).throw(ValueError("bad input"))).result()


@needs_fork
def test_forks_with_another_thread_alive():
    # Under pytest a progress bar's monitor thread is often alive; the build still uses the second core.
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        parent = os.getpid()
        with warnings.catch_warnings():  # Python 3.12+ warns about forking a threaded process
            warnings.simplefilter("ignore", DeprecationWarning)
            assert background.start(lambda: os.getpid() != parent).result() is True
    finally:
        stop.set()
        thread.join()


@needs_fork
def test_a_child_that_dies_is_replaced_by_doing_the_work_here():
    parent = os.getpid()

    def work() -> int:
        if os.getpid() != parent:
            os._exit(9)  # killed before it could answer
        return 42

    assert background.start(work).result() == 42


def test_without_fork_the_work_runs_at_once():
    ran = []
    pending = background.start(lambda: ran.append(os.getpid()) or "done", parallel=False)
    assert ran == [os.getpid()] and pending.result() == "done"


@needs_fork
def test_claims_give_every_chunk_to_exactly_one_process():
    claims = background.Claims(500)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child claims as fast as it can and reports what it got
        try:
            os.close(read)
            os.write(write, ",".join(str(i) for i in claims).encode() or b"-")
        finally:
            os._exit(0)
    os.close(write)
    mine = list(claims)
    with os.fdopen(read, "rb") as f:
        text = f.read().decode()
    os.waitpid(pid, 0)
    theirs = [] if text == "-" else [int(i) for i in text.split(",")]
    assert sorted(mine + theirs) == list(range(500))
    claims.close()
    with pytest.raises(ValueError, match="32,768"):
        background.Claims(40000)


def test_writer_replaces_only_its_own_sites(tmp_path):
    out = tmp_path / "site"
    with SiteWriter(out) as w:
        w.put("index.html", "<p>one</p>")
        w.put(MARKER, "ours")
        w.write_direct("plots/a.svg", "<svg/>")
    assert _files(out) == {"index.html": b"<p>one</p>", MARKER: b"ours", "plots/a.svg": b"<svg/>"}
    with SiteWriter(out) as w:  # a site we built is replaced as a whole
        w.put("index.html", "<p>two</p>")
        w.put(MARKER, "ours")
    assert _files(out) == {"index.html": b"<p>two</p>", MARKER: b"ours"}
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "keep.txt").write_text("user data")
    with pytest.raises(SiteWriteError, match="not built by covbench; refusing"):
        SiteWriter(tmp_path / "theirs")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SiteWriteError, match="not a folder"):
        SiteWriter(tmp_path / "file")


def test_a_failed_build_leaves_the_old_site(tmp_path):
    out = tmp_path / "site"
    with SiteWriter(out) as w:
        w.put("index.html", "old")
        w.put(MARKER, "ours")
    with pytest.raises(RuntimeError, match="model crashed"), SiteWriter(out) as w:
        w.put("index.html", "half")
        raise RuntimeError("model crashed")
    assert _files(out) == {"index.html": b"old", MARKER: b"ours"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_a_file_that_cannot_be_written_is_one_line_and_keeps_the_old_site(tmp_path):
    out = tmp_path / "site"
    with SiteWriter(out) as w:
        w.put(MARKER, "ours")
    w = SiteWriter(out)
    w.put("data", "a file where a folder must go")
    w.put("data/results.csv", "x")
    with pytest.raises(SiteWriteError) as err:
        w.close()
    assert "data/results.csv: cannot write" in str(err.value) and "\n" not in str(err.value)
    assert _files(out) == {MARKER: b"ours"}
    with pytest.raises(SiteWriteError, match="cannot write"):
        SiteWriter(tmp_path / "again").write_direct("", "a folder is not a file")


def test_build_error_keeps_store_results_and_old_site(many_models, tmp_path, monkeypatch):
    out = tmp_path / "site"
    build.build(many_models, out, B=10)
    before = _files(out)

    def broken(*args, **kwargs):
        raise RuntimeError("render failed")

    monkeypatch.setattr(build, "render", broken)
    with pytest.raises(RuntimeError, match="render failed"):
        build.build_site(StoreScan(records=build.scan(many_models).records, errors=[]), out, B=10)
    assert _files(out) == before
