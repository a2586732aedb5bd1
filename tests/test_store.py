"""The results store, format 2: round trips, atomic append-only writes, concurrent writers, corrupt files,
the index, format-1 stores and ``to_dataframe``."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from covbench import store
from covbench.records import DocArrays, Estimate, Ragged, SampleArrays
from covbench.store import StoreError, catalog, latest_run, read_record, read_run, run_dir, run_files, slug, write_run
from covbench.store.cli import main as store_main
from covbench.store.index import INDEX_DIR, INDEX_NAME
from records_factory import gold_docs, record, run


def _full_run(model: str = "m", task: str = "t"):
    docs = DocArrays(doc_id=[3, 1, 2], logp_model=[-1.0, -math.inf, -2.5], logp_ref=[0.0, -0.69, 0.0],
                     n_tokens=[1, 2, 3], n_bytes=[3, 4, 5], cls=["G1", "G2", "G1"], weight=[0.5, 0.25, 0.25],
                     support_logp_ref=[[0.0], [-0.69, -0.69], []], support_logp_model=[[-1.0], [-2.0, -math.inf], []],
                     logp_correct=[-1.0, -2.0, -math.inf])
    samples = SampleArrays(doc_id=[3, 1, 2], generations=[["a", "é ✓"], [""], []], correct=[[True, False], [True], []],
                           max_gen_toks=5, temperature=0.7)
    return run(model, task, {"ce": math.inf, "kl": math.nan, "cov@4": 0.25}, docs=docs, samples=samples,
               reference="known")


def test_round_trip_keeps_everything(tmp_path):
    original = _full_run()
    path = write_run(tmp_path, original)
    back = read_run(path)
    assert back.equals(original)
    assert back.record.metrics["ce"].value == math.inf and math.isnan(back.record.metrics["kl"].value)
    assert list(back.samples.generations.row(0)) == ["a", "é ✓"] and len(back.samples.correct.row(2)) == 0
    assert read_record(path).model_dump_json() == original.record.model_dump_json()


def test_run_file_is_a_safetensors_file(tmp_path):
    from safetensors.numpy import load_file

    path = write_run(tmp_path, _full_run())
    tensors = load_file(str(path))  # an independent reader of the format
    np.testing.assert_array_equal(tensors["docs.doc_id"], [3, 1, 2])
    np.testing.assert_array_equal(tensors["samples.correct"], [True, False, True])
    header_len = struct.unpack("<Q", path.read_bytes()[:8])[0]
    meta = json.loads(path.read_bytes()[8:8 + header_len])["__metadata__"]
    assert meta["format"] == "covbench-run-2" and json.loads(meta["record"])["model"] == "m"


def test_small_part_reads_only_the_head(tmp_path, monkeypatch):
    path = write_run(tmp_path, _full_run())
    reads = []
    real_open = open

    def counting_open(p, mode="r", *a, **k):
        f = real_open(p, mode, *a, **k)
        if str(p) == str(path):
            real_read = f.read
            f.read = lambda n=-1: reads.append(n) or real_read(n)  # type: ignore[method-assign]
        return f

    monkeypatch.setattr("builtins.open", counting_open)
    read_record(path)
    assert reads and all(n > 0 for n in reads) and sum(reads) < path.stat().st_size


def test_append_only_latest_wins_and_no_temp_files(tmp_path):
    first = write_run(tmp_path, run(metrics={"ce": 1.0}))
    second = write_run(tmp_path, run(metrics={"ce": 2.0}))
    assert first != second and first.exists() and second.exists()
    found, path = latest_run(tmp_path, "m", "t")
    assert found.record.metrics["ce"].value == 2.0 and path == second
    assert run_files(tmp_path, "m", "t") == sorted([first, second])
    assert not list(run_dir(tmp_path, "m", "t").glob(".tmp-*"))


def test_slugs_are_path_safe_and_distinct():
    names = ["<script>alert(1)</script>", "a/b", "a_b", "a b", "../../etc", "", "é"]
    slugs = [slug(n) for n in names]
    assert len(set(slugs)) == len(names)
    assert all("/" not in s and not s.startswith(".") for s in slugs)


def _writer(args: tuple[str, int]) -> int:
    root, i = args
    for j in range(10):
        write_run(Path(root), run(model=f"m{i % 2}", metrics={"ce": float(i * 100 + j)}))
    return i


def test_concurrent_writers_lose_nothing(tmp_path):
    with mp.get_context("spawn").Pool(4) as pool:
        pool.map(_writer, [(str(tmp_path), i) for i in range(4)])
    files = run_files(tmp_path, "m0", "t") + run_files(tmp_path, "m1", "t")
    assert len(files) == 40
    values = sorted(read_run(f).record.metrics["ce"].value for f in files)
    assert values == sorted(float(i * 100 + j) for i in range(4) for j in range(10))


@pytest.mark.parametrize("damage, field", [
    (lambda raw: raw[:5], "(file)"),
    (lambda raw: b"\x00" * 8 + raw[8:], "(header)"),
    (lambda raw: raw[:40], "(header)"),
    (lambda raw: raw[:-3], "(data)"),
    (lambda raw: raw.replace(b'"covbench-run-2"', b'"covbench-run-9"'), "__metadata__.format"),
    (lambda raw: raw.replace(b'\\"model\\":\\"m\\"', b'\\"model\\":7    '), "record.model"),
    (lambda raw: raw.replace(b'"docs.n_bytes"', b'"docs.n_bytez"'), "docs.n_bytes"),
])
def test_corrupt_file_names_file_and_field_and_loses_nothing(tmp_path, damage, field):
    good = write_run(tmp_path, _full_run())
    raw = good.read_bytes()
    bad = good.parent / "run-99999999T999999999999Z-x-1-ffff.safetensors"  # sorts last: the "latest"
    bad.write_bytes(damage(raw))
    with pytest.raises(StoreError) as e:
        read_run(bad)
    msg = str(e.value)
    assert msg.startswith(str(bad)) and f"field '{field}'" in msg and "\n" not in msg
    cat = catalog(tmp_path)
    assert len(cat) == 1 and cat.rels[0].endswith(good.name)  # the older good run is used
    assert len(cat.errors) == 1 and cat.errors[0].startswith(str(bad))
    assert bad.exists() and good.exists()  # nothing is deleted
    assert latest_run(tmp_path, "m", "t")[1] == good


def test_index_finds_latest_without_opening_every_run(tmp_path, monkeypatch):
    for m in range(5):
        write_run(tmp_path, run(model=f"m{m}", metrics={"ce": float(m)}))
    first = catalog(tmp_path)
    assert len(list((tmp_path / INDEX_DIR / INDEX_NAME).glob("shard-*.safetensors"))) == 5 or (tmp_path / INDEX_DIR / INDEX_NAME).is_dir()
    time.sleep(store.index.RACY_NS / 1e9 + 0.1)  # past the racy window: folders may now be trusted
    catalog(tmp_path)  # a look after the window records the folders as settled
    opened = []
    monkeypatch.setattr(store.index, "read_whole", lambda p, text=True: opened.append(p) or pytest.fail("opened"))
    second = catalog(tmp_path)
    assert opened == [] and second.rels == first.rels
    np.testing.assert_array_equal(second.values, first.values)


def test_index_sees_new_runs_and_agrees_with_a_rebuild(tmp_path):
    write_run(tmp_path, run(model="a", metrics={"ce": 1.0}))
    catalog(tmp_path)
    write_run(tmp_path, run(model="a", metrics={"ce": 2.0}))
    write_run(tmp_path, run(model="b", metrics={"ce": 3.0}))
    cat = catalog(tmp_path)
    assert [cat.estimate(i, "ce").value for i in range(len(cat))] == [2.0, 3.0]
    shutil.rmtree(tmp_path / INDEX_DIR / INDEX_NAME)
    rebuilt = catalog(tmp_path)
    assert rebuilt.rels == cat.rels and rebuilt.smalls == cat.smalls
    np.testing.assert_array_equal(rebuilt.values, cat.values)


@pytest.mark.parametrize("garbage", [b"", b"not an index", struct.pack("<Q", 10) + b"{}        ", b"\xff" * 100])
def test_corrupt_index_is_rebuilt(tmp_path, garbage):
    write_run(tmp_path, run(metrics={"ce": 1.5}))
    catalog(tmp_path)
    for shard in (tmp_path / INDEX_DIR / INDEX_NAME).glob("shard-*.safetensors"):
        shard.write_bytes(garbage)
    cat = catalog(tmp_path)
    assert len(cat) == 1 and cat.estimate(0, "ce").value == 1.5


def test_catalog_and_dataframe(tmp_path):
    write_run(tmp_path, run(model="b", task="t", metrics={"ce": 2.0, "cov@4": 0.5}, family="f", step=3))
    write_run(tmp_path, run(model="a", task="t", metrics={"ce": 1.0}))
    write_run(tmp_path, run(model="a", task="u", metrics={"pass_sampled@8": 0.25}, kind="sample"))
    df = store.to_dataframe(tmp_path)
    assert list(df["model"]) == ["a", "b", "a"] and list(df["task"]) == ["t", "t", "u"]
    assert df.loc[1, "ce"] == 2.0 and math.isnan(df.loc[0, "cov@4"]) and math.isnan(df.loc[1, "ce.lo"])
    assert df.loc[1, "family"] == "f" and df.loc[1, "step"] == 3 and df.loc[2, "kind"] == "sample"
    assert df.loc[0, "sampling.temperature"] == 1.0 and df.loc[0, "rank_pass_n"] == 8.0


def _v1_record(model: str = "m", ce: float = 1.0) -> dict:
    return {"schema_version": 1, "model": model, "task": "arith_ll", "reference": "gold",
            "provenance": {"covbench_version": "0.1.0", "lm_eval_version": "0.4.13", "git_commit": "x",
                           "task_hash": "t", "model_spec_hash": "m", "seed": 1, "sampling": {}, "machine": "x",
                           "time": "2026-01-01T00:00:00+00:00"},
            "metrics": {"ce": {"value": ce, "lo": "NaN", "hi": "NaN", "stderr": "NaN"}},
            "docs": {"doc_id": [0, 1], "logp_model": [-1.0, "-Infinity"], "logp_ref": [0.0, 0.0], "n_tokens": [2, 2],
                     "n_bytes": [3, 3]}}


def test_format_1_runs_are_read_and_migrated(tmp_path):
    folder = run_dir(tmp_path, "m", "arith_ll")
    folder.mkdir(parents=True)
    old = folder / "run-20260101T000000000000Z-1-aaaa.json"
    old.write_text(json.dumps(_v1_record()).replace('"NaN"', "NaN").replace('"-Infinity"', "-Infinity"))
    broken = folder / "run-20250101T000000000000Z-1-bbbb.json"
    broken.write_text("{oops")
    legacy = read_run(old)
    assert legacy.record.descriptor.pairs_with is None and legacy.record.descriptor.kind == "loglikelihood"
    assert legacy.record.descriptor.rank.cov_n == 4.0  # from the installed arith_ll task
    assert legacy.docs.logp_model[1] == -math.inf
    assert len(catalog(tmp_path)) == 1
    assert store_main(["migrate", str(tmp_path)]) == 1  # one unreadable file: reported, left in place
    assert not old.exists() and broken.exists()
    assert (tmp_path / INDEX_DIR / "format1" / folder.parent.name / folder.name / old.name).is_file()
    migrated = folder / (old.name[:-5] + ".safetensors")
    assert read_run(migrated).equals(legacy)
    assert store_main(["migrate", str(tmp_path)]) == 1  # idempotent


def test_a_refresh_rewrites_only_the_shards_that_changed(tmp_path):
    from covbench.store.index import shard_of

    for m in range(20):
        write_run(tmp_path, run(model=f"m{m}", metrics={"ce": float(m)}))
    catalog(tmp_path)
    time.sleep(store.index.RACY_NS / 1e9 + 0.1)
    catalog(tmp_path)
    shards = {p: p.stat().st_mtime_ns for p in (tmp_path / INDEX_DIR / INDEX_NAME).glob("shard-*")}
    path = write_run(tmp_path, run(model="m3", metrics={"ce": 9.0}))
    cat = catalog(tmp_path)
    assert cat.estimate(cat.find("m3", "t"), "ce").value == 9.0
    touched = {p for p, t in shards.items() if p.stat().st_mtime_ns != t}
    folder = f"{path.parent.parent.name}/{path.parent.name}"
    assert touched == {tmp_path / INDEX_DIR / INDEX_NAME / f"shard-{shard_of(folder):02d}.safetensors"}


def test_store_command_ls_and_bad_root(tmp_path, capsys):
    write_run(tmp_path, run(metrics={"ce": 1.0}))
    assert store_main(["ls", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"][0]["model"] == "m" and out["errors"] == []
    assert store_main(["index", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_ragged_rows_round_trip_empty_and_unicode():
    r = Ragged.from_rows([["x", "ÿ"], [], ["🙂"]], str)
    assert [list(row) for row in r.rows()] == [["x", "ÿ"], [], ["🙂"]]
    with pytest.raises(ValueError, match="doc_id has 2"):
        DocArrays(doc_id=[0, 1], logp_model=[0.0], logp_ref=[0.0, 0.0], n_tokens=[1, 1], n_bytes=[1, 1])


def test_write_is_atomic_under_a_killed_writer(tmp_path):
    # a writer killed mid-write leaves only a temporary file, which no reader ever takes for a run
    write_run(tmp_path, run(metrics={"ce": 1.0}))
    folder = run_dir(tmp_path, "m", "t")
    (folder / ".tmp-run-x.safetensors-123").write_bytes(b"half a fi")
    cat = catalog(tmp_path)
    assert len(cat) == 1 and cat.errors == ()
