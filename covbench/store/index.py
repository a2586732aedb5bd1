"""The store's index and the catalog it gives: the latest readable run of every (model, task), found
without opening every run (docs/store.md#index).

The index is a cache, never the truth: the run files are. Writers never touch it, so concurrent writers
(``pytest -n 2``, several machines on one shared folder) cannot corrupt it. A reader refreshes it:

1. list the store's ``<task>/<model>`` folders and stat each (one ``stat`` per folder);
2. a folder whose modification time is the one the index recorded keeps its entry; any other folder
   (new, changed, or "racy": modified within :data:`RACY_NS` of when it was last looked at, so a write in
   the same clock tick could hide behind an unchanged time) is listed again, and its newest run files are
   read, newest first, until one is readable: that is its latest run; the unreadable newer ones are
   reported, never deleted;
3. if anything changed, the new index is written beside the old one and renamed over it (atomic), so
   two readers refreshing at once each leave a complete, correct index.

The index is 64 shard files, ``<root>/.covbench/index/shard-NN.safetensors`` (a folder's shard: a stable
hash of its name), so a refresh after a few new runs rewrites a few small files, not the whole index.
Each holds its latest runs' metrics as a ``[runs, keys, 4]`` float array (value, lo, hi, stderr), their
per-prompt vectors (:class:`covbench.summarize.Vectors`, computed once per run), and the rest of each small
part as JSON in the header. A missing, unreadable or foreign shard is rebuilt from the run files.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from covbench.records import MISSING, DocArrays, Estimate, Provenance, Run, RunRecord, SampleArrays, TaskDescriptor, estimate_of

from covbench.summarize import Vectors, vectors_of

from . import legacy, runfile
from .runfile import RunFileError

INDEX_FORMAT = "covbench-index-3"
INDEX_DIR = ".covbench"
INDEX_NAME = "index"  # a folder of SHARDS files
SHARDS = 64
RACY_NS = 2_000_000_000  # folder times within 2 s of the look are re-checked next time (coarse clocks, NFS)
_FIELDS = ("value", "lo", "hi", "stderr")
_VEC_FIELDS = ("doc_id", *Vectors.FIELDS)
_INT_FIELDS = {"doc_id", "n", "c", "cls"}


def is_run_file(name: str) -> bool:
    return name.startswith("run-") and (name.endswith(runfile.SUFFIX) or name.endswith(legacy.SUFFIX))


def read_small(path: Path) -> RunRecord:
    """The small part of a run file of either format (format 1 has no other way than reading it all)."""
    if path.name.endswith(runfile.SUFFIX):
        return runfile.record_of(runfile.read_header(path))
    return legacy.read(path).record


def read_whole(path: Path, text: bool = True) -> Run:
    if path.name.endswith(runfile.SUFFIX):
        return runfile.read(path, text)
    return legacy.read(path)


def error_line(path: Path, e: Exception) -> str:
    """One line naming the file and the field."""
    if isinstance(e, RunFileError):
        return " ".join(f"{path}: field '{e.field}': {e}".split())
    if isinstance(e, OSError):
        return f"{path}: cannot read: {e.strerror or e}"
    return " ".join(f"{path}: {type(e).__name__}: {e}".split())


@dataclass(frozen=True)
class _Metrics:
    """A run's metrics in columnar form: ``values[k]`` = (value, lo, hi, stderr) of ``keys[k]``.
    Entries loaded from one index share its ``keys`` tuple and are rows of its arrays."""

    keys: tuple[str, ...]
    values: np.ndarray  # [K, 4]
    present: np.ndarray  # [K] bool

    @classmethod
    def of(cls, metrics: dict[str, Estimate]) -> _Metrics:
        keys = tuple(sorted(metrics))
        values = np.array([[metrics[k].value, metrics[k].lo, metrics[k].hi, metrics[k].stderr] for k in keys],
                          dtype=np.float64).reshape(len(keys), 4)
        return cls(keys, values, np.ones(len(keys), dtype=bool))


@dataclass(frozen=True)
class _Entry:
    """One ``<task>/<model>`` folder as the index records it."""

    folder: str
    mtime_ns: int
    racy: bool
    runs: tuple[str, ...]  # run file names, oldest first
    latest: str | None  # the newest readable one
    errors: tuple[str, ...]  # the unreadable ones newer than ``latest``
    small: dict[str, Any] | None  # latest's small part without metrics: identity, descriptor, provenance
    metrics: _Metrics | None
    vectors: Vectors | None = None  # latest's per-prompt vectors at its task's rank N


def _columns(entries: Sequence[_Entry]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """The union of the entries' metric keys, and ``[entries, keys, 4]`` values / ``[entries, keys]`` present,
    filled block by block (entries sharing a key tuple, e.g. all those read from one index, in one go)."""
    keys = tuple(sorted({k for e in entries for k in e.metrics.keys}))  # type: ignore[union-attr]
    col = {k: i for i, k in enumerate(keys)}
    values = np.full((len(entries), len(keys), 4), np.nan)
    present = np.zeros((len(entries), len(keys)), dtype=bool)
    groups: dict[int, tuple[tuple[str, ...], list[int]]] = {}
    for i, e in enumerate(entries):
        groups.setdefault(id(e.metrics.keys), (e.metrics.keys, []))[1].append(i)  # type: ignore[union-attr]
    for group_keys, rows in groups.values():
        cols = np.array([col[k] for k in group_keys], dtype=np.int64)
        at = np.array(rows, dtype=np.int64)
        values[at[:, None], cols[None, :]] = np.stack([entries[i].metrics.values for i in rows])  # type: ignore[union-attr]
        present[at[:, None], cols[None, :]] = np.stack([entries[i].metrics.present for i in rows])  # type: ignore[union-attr]
    return keys, values, present


def _scan_folder(root: Path, folder: str, mtime_ns: int, now_ns: int) -> _Entry:
    path = root / folder
    try:
        names = sorted(n for n in os.listdir(path) if is_run_file(n))
    except OSError:
        names = []
    errors: list[str] = []
    for name in reversed(names):
        try:  # the whole file: a run whose arrays are damaged is as unreadable as one with a bad header
            run = read_whole(path / name, text=False)
            desc = run.record.descriptor
            vectors = vectors_of((run.docs, run.samples), desc.rank, desc.classes)
        except (RunFileError, OSError, ValueError) as e:
            errors.append(error_line(path / name, e))
            continue
        small = run.record.model_dump(mode="json", exclude={"metrics"})
        return _Entry(folder, mtime_ns, now_ns - mtime_ns < RACY_NS, tuple(names), name, tuple(errors), small,
                      _Metrics.of(run.record.metrics), vectors)
    return _Entry(folder, mtime_ns, now_ns - mtime_ns < RACY_NS, tuple(names), None, tuple(errors), None, None)


def _folders(root: Path) -> list[tuple[str, int]]:
    """Every ``<task>/<model>`` folder with its modification time, sorted."""
    out = []
    try:
        tasks = [e for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    for t in tasks:
        for m in os.scandir(t.path):
            if m.is_dir() and not m.name.startswith("."):
                out.append((f"{t.name}/{m.name}", m.stat().st_mtime_ns))
    return sorted(out)


# ---- the index file -------------------------------------------------------------------------------


def shard_of(folder: str) -> int:
    """The index shard holding a folder's entry (a stable hash of its name)."""
    return zlib.crc32(folder.encode()) % SHARDS


def _shard_path(root: Path, shard: int) -> Path:
    return root / INDEX_DIR / INDEX_NAME / f"shard-{shard:02d}.safetensors"


def _load_index(root: Path) -> dict[str, _Entry]:
    """Every entry of the stored index's shards; a missing, unreadable or foreign shard gives none (its
    folders are then read again)."""
    out: dict[str, _Entry] = {}
    for shard in range(SHARDS):
        out.update(_load_shard(_shard_path(root, shard)))
    return out


def _load_shard(path: Path) -> dict[str, _Entry]:
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if not 2 <= n <= 1 << 30:
                return {}
            header = json.loads(f.read(n))
            data = f.read()
        meta = header["__metadata__"]
        if meta.get("format") != INDEX_FORMAT:
            return {}
        keys = tuple(json.loads(meta["keys"]))
        rows = json.loads(meta["entries"])
        start, end = header["values"]["data_offsets"]
        values = np.frombuffer(data[start:end], dtype="<f8").reshape(-1, len(keys), 4)
        start, end = header["present"]["data_offsets"]
        present = np.frombuffer(data[start:end], dtype="?").reshape(-1, len(keys))
        columns = {f: np.frombuffer(data[header[f"vec.{f}"]["data_offsets"][0]:header[f"vec.{f}"]["data_offsets"][1]],
                                    dtype="<i8" if f in _INT_FIELDS else "<f8") for f in _VEC_FIELDS}
        out: dict[str, _Entry] = {}
        for row in rows:
            slot = row["slot"]
            metrics = None if slot is None else _Metrics(keys, values[slot], present[slot])
            vec = None
            if row.get("vec") is not None:
                lo, hi, fields = row["vec"]
                vec = Vectors(**{f: columns[f][lo:hi] for f in ("doc_id", *fields)})
            out[row["folder"]] = _Entry(row["folder"], int(row["mtime_ns"]), bool(row["racy"]), tuple(row["runs"]),
                                        row["latest"], tuple(row["errors"]), row["small"], metrics, vec)
        return out
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
        return {}


def _write_shard(path: Path, entries: Sequence[_Entry]) -> None:
    live = [e for e in entries if e.metrics is not None]
    keys, values, present = _columns(live)
    slot = {e.folder: i for i, e in enumerate(live)}
    columns: dict[str, list[np.ndarray]] = {f: [] for f in _VEC_FIELDS}
    spans: dict[str, list] = {}
    at = 0
    for e in live:
        v = e.vectors
        if v is None:
            continue
        size = v.doc_id.size
        fields = [f for f in Vectors.FIELDS if getattr(v, f) is not None]
        for f in _VEC_FIELDS:
            col = getattr(v, f)
            columns[f].append(col if col is not None else np.zeros(size))
        spans[e.folder] = [at, at + size, fields]
        at += size
    rows = [{"folder": e.folder, "mtime_ns": e.mtime_ns, "racy": e.racy, "runs": list(e.runs), "latest": e.latest,
             "errors": list(e.errors), "small": e.small, "slot": slot.get(e.folder), "vec": spans.get(e.folder)}
            for e in entries]
    blobs = [("values", "F64", values.astype("<f8").tobytes()), ("present", "BOOL", present.tobytes())]
    for f in _VEC_FIELDS:
        dtype = "<i8" if f in _INT_FIELDS else "<f8"
        blobs.append((f"vec.{f}", "I64" if f in _INT_FIELDS else "F64",
                      (np.concatenate(columns[f]) if columns[f] else np.zeros(0)).astype(dtype).tobytes()))
    header: dict[str, Any] = {"__metadata__": {"format": INDEX_FORMAT, "keys": json.dumps(list(keys)),
                                               "entries": json.dumps(rows, sort_keys=True)}}
    offset = 0
    for name, dtype, raw in blobs:
        size = 1 if dtype == "BOOL" else 8
        header[name] = {"dtype": dtype, "shape": [len(raw) // size], "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    head += b" " * (-len(head) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(raw for _, _, raw in blobs))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---- the catalog ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Catalog:
    """The latest readable run of every (model, task) of a store, sorted by (task, model), with the
    one-line errors of the unreadable newer files. Metrics are columnar: ``values[i, k]`` holds
    (value, lo, hi, stderr) of ``keys[k]`` for entry ``i``, NaN where the run stores no such key."""

    root: Path
    rels: tuple[str, ...]  # each entry's run file, relative to the root ("<task>/<model>/run-....safetensors")
    smalls: tuple[dict[str, Any], ...]  # identity, descriptor and provenance of each entry (JSON form)
    descriptors: tuple[TaskDescriptor, ...]
    keys: tuple[str, ...]
    values: np.ndarray  # [entries, keys, 4]
    present: np.ndarray  # [entries, keys] bool
    errors: tuple[str, ...]
    vectors: tuple[Vectors | None, ...] = ()  # each entry's per-prompt vectors (covbench.summarize.Vectors)

    def __len__(self) -> int:
        return len(self.rels)

    def path(self, i: int) -> Path:
        return self.root / self.rels[i]

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(self.root / r for r in self.rels)

    def model(self, i: int) -> str:
        return self.smalls[i]["model"]

    def task(self, i: int) -> str:
        return self.smalls[i]["task"]

    def estimate(self, i: int, key: str) -> Estimate:
        k = self.col.get(key)
        if k is None or not self.present[i, k]:
            return MISSING
        return estimate_of(*self.values[i, k].tolist())

    def block(self, rows: np.ndarray, key: str) -> np.ndarray:
        """``[len(rows), 4]`` (value, lo, hi, stderr) of ``key`` for the entries ``rows``; NaN where absent."""
        k = self.col.get(key)
        if k is None:
            return np.full((len(rows), 4), np.nan)
        return np.where(self.present[rows, k][:, None], self.values[rows, k], np.nan)

    def column(self, key: str, what: str = "value") -> np.ndarray:
        """``what`` (value, lo, hi or stderr) of ``key`` for every entry; NaN where absent."""
        k = self.col.get(key)
        if k is None:
            return np.full(len(self), np.nan)
        return np.where(self.present[:, k], self.values[:, k, _FIELDS.index(what)], np.nan)

    @cached_property
    def col(self) -> dict[str, int]:
        """Position of each metric key in :attr:`keys`."""
        return {k: i for i, k in enumerate(self.keys)}

    def record(self, i: int) -> RunRecord:
        """Entry ``i``'s small part as a record (validated)."""
        metrics = {k: self.estimate(i, k) for j, k in enumerate(self.keys) if self.present[i, j]}
        return RunRecord.model_validate({**self.smalls[i], "metrics": metrics})

    def provenance(self, i: int) -> Provenance:
        return Provenance.model_validate(self.smalls[i]["provenance"])

    def arrays(self, i: int, text: bool = True) -> tuple[DocArrays | None, SampleArrays | None]:
        """Entry ``i``'s arrays only (its small part is already here); ``text=False``: no samples' text."""
        path = self.path(i)
        if path.name.endswith(runfile.SUFFIX):
            return runfile.read_arrays_of(path, text)
        run = legacy.read(path)
        return run.docs, run.samples

    def load(self, i: int, text: bool = True) -> Run:
        """Entry ``i`` with its arrays (read from its run file); ``text=False`` skips the samples' text."""
        return read_whole(self.path(i), text)

    def subset(self, keep: list[int]) -> Catalog:
        """The entries at ``keep`` (in catalog order), e.g. the runs of one suite session."""
        at = sorted(set(keep))
        return Catalog(root=self.root, rels=tuple(self.rels[i] for i in at),
                       smalls=tuple(self.smalls[i] for i in at), descriptors=tuple(self.descriptors[i] for i in at),
                       keys=self.keys, values=self.values[at], present=self.present[at], errors=self.errors,
                       vectors=tuple(self.vectors[i] for i in at) if self.vectors else ())

    def find(self, model: str, task: str) -> int | None:
        for i, s in enumerate(self.smalls):
            if s["model"] == model and s["task"] == task:
                return i
        return None


def _catalog(root: Path, entries: Iterable[_Entry]) -> Catalog:
    live = [e for e in entries if e.small is not None]
    live.sort(key=lambda e: (e.small["task"], e.small["model"]))  # type: ignore[index]
    keys, values, present = _columns(live)
    shared: dict[str, TaskDescriptor] = {}  # one descriptor object per distinct descriptor
    descriptors = []
    for e in live:
        text = json.dumps(e.small["descriptor"], sort_keys=True)  # type: ignore[index]
        if text not in shared:
            shared[text] = TaskDescriptor.model_validate(e.small["descriptor"])  # type: ignore[index]
        descriptors.append(shared[text])
    errors = tuple(err for e in sorted(entries, key=lambda e: e.folder) for err in e.errors)
    return Catalog(root=root, rels=tuple(f"{e.folder}/{e.latest}" for e in live),
                   smalls=tuple(e.small for e in live), descriptors=tuple(descriptors),  # type: ignore[misc]
                   keys=keys, values=values, present=present, errors=errors,
                   vectors=tuple(e.vectors for e in live))


def refresh(root: Path, write: bool = True) -> Catalog:
    """The store's catalog, refreshing the index first (see the module docstring)."""
    root = Path(root)
    old = _load_index(root)
    entries: list[_Entry] = []
    now_ns = time.time_ns()
    found = _folders(root)
    dirty = {shard_of(f) for f in set(old) - {f for f, _ in found}}  # folders that vanished
    for folder, mtime_ns in found:
        prev = old.get(folder)
        if prev is not None and prev.mtime_ns == mtime_ns and not prev.racy:
            entries.append(prev)
            continue
        entries.append(_scan_folder(root, folder, mtime_ns, now_ns))
        dirty.add(shard_of(folder))
    if dirty and write and root.is_dir():
        by_shard: dict[int, list[_Entry]] = {k: [] for k in dirty}
        for e in entries:
            if (k := shard_of(e.folder)) in by_shard:
                by_shard[k].append(e)
        try:  # only the shards that changed are written: a refresh after one new run writes one small file
            for k, shard_entries in sorted(by_shard.items()):
                _write_shard(_shard_path(root, k), shard_entries)
        except OSError:
            pass  # a read-only store still gives a correct catalog; only the next look is slower
    return _catalog(root, entries)
