"""Format 2 of a stored run: one safetensors file whose header is the small part (docs/store.md#format-2).

Layout (the safetensors format, so any safetensors reader opens it)::

    8 bytes    little-endian u64: N, the header's length
    N bytes    JSON header: {"__metadata__": {...}, "<tensor>": {"dtype", "shape", "data_offsets"}, ...},
               padded with spaces to a multiple of 8
    the data   every tensor's bytes, little-endian, back to back

``__metadata__`` (string values only, as safetensors requires) holds ``format`` = ``covbench-run-2``,
``record`` = the :class:`~covbench.records.RunRecord` as JSON (identity, descriptor, provenance, metrics)
and ``arrays`` = JSON for what is not a number array (class labels, sampling settings). So the small part
is read with two reads of the file's head, and the arrays load only when asked for, straight into numpy
(``np.frombuffer``, no copy, no unpickling). Ragged rows (an enumerated support per prompt, n samples per
prompt, the text of each sample) are a flat tensor plus an offsets tensor. Text is UTF-8 bytes.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from covbench.records import DocArrays, Ragged, Run, RunRecord, SampleArrays

FORMAT = "covbench-run-2"
SUFFIX = ".safetensors"
MAX_HEADER = 64 << 20  # a run's header is a few KB; anything this large is not ours

_DTYPES: dict[str, np.dtype] = {"F64": np.dtype("<f8"), "I64": np.dtype("<i8"), "BOOL": np.dtype("?"),
                                "U8": np.dtype("u1")}
_NAMES = {v: k for k, v in _DTYPES.items()}


class RunFileError(Exception):
    """A run file that cannot be read; ``field`` names the part that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# ---- writing ------------------------------------------------------------------------------------


def _doc_tensors(docs: DocArrays) -> tuple[list[tuple[str, np.ndarray]], dict[str, Any]]:
    tensors = [("docs.doc_id", docs.doc_id), ("docs.logp_model", docs.logp_model),
               ("docs.logp_ref", docs.logp_ref), ("docs.n_tokens", docs.n_tokens), ("docs.n_bytes", docs.n_bytes)]
    if docs.weight is not None:
        tensors.append(("docs.weight", docs.weight))
    if docs.logp_correct is not None:
        tensors.append(("docs.logp_correct", docs.logp_correct))
    meta: dict[str, Any] = {"cls_labels": None}
    if docs.cls is not None:
        labels = sorted(set(docs.cls))
        code = {c: i for i, c in enumerate(labels)}
        tensors.append(("docs.cls", np.array([code[c] for c in docs.cls], dtype=np.int64)))
        meta["cls_labels"] = labels
    if docs.support_logp_ref is not None and docs.support_logp_model is not None:
        tensors += [("docs.support.offsets", docs.support_logp_ref.offsets),
                    ("docs.support.logp_ref", docs.support_logp_ref.values),
                    ("docs.support.logp_model", docs.support_logp_model.values)]
    return tensors, meta


def _sample_tensors(samples: SampleArrays) -> tuple[list[tuple[str, np.ndarray]], dict[str, Any]]:
    encoded = [g.encode("utf-8") for g in samples.generations.values]
    text_offsets = np.concatenate([[0], np.cumsum([len(b) for b in encoded], dtype=np.int64)])
    text = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    tensors = [("samples.doc_id", samples.doc_id), ("samples.offsets", samples.correct.offsets),
               ("samples.correct", samples.correct.values), ("samples.text", text),
               ("samples.text_offsets", text_offsets)]
    return tensors, {"max_gen_toks": samples.max_gen_toks, "temperature": samples.temperature}


def encode(run: Run) -> bytes:
    """The bytes of ``run``'s file."""
    tensors: list[tuple[str, np.ndarray]] = []
    arrays_meta: dict[str, Any] = {"docs": None, "samples": None}
    if run.docs is not None:
        t, arrays_meta["docs"] = _doc_tensors(run.docs)
        tensors += t
    if run.samples is not None:
        t, arrays_meta["samples"] = _sample_tensors(run.samples)
        tensors += t
    header: dict[str, Any] = {"__metadata__": {"format": FORMAT, "record": run.record.model_dump_json(),
                                               "arrays": json.dumps(arrays_meta, sort_keys=True)}}
    chunks, offset = [], 0
    for name, arr in tensors:
        data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype)
        raw = data.tobytes()
        header[name] = {"dtype": _NAMES[data.dtype], "shape": list(data.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":"), sort_keys=True, allow_nan=False).encode("utf-8")
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and one rename, so a reader
    sees the whole file or none, and a killed writer leaves only a ``.tmp-*`` file (never read)."""
    tmp = path.parent / f".tmp-{path.name}-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---- reading ------------------------------------------------------------------------------------


def read_header(path: Path) -> dict[str, Any]:
    """The parsed JSON header of a run file (reads only the file's head)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise RunFileError("(file)", "too short to be a run file")
        (n,) = struct.unpack("<Q", head)
        if not 2 <= n <= MAX_HEADER:
            raise RunFileError("(header)", f"header length {n} is not plausible (not a covbench run file?)")
        raw = f.read(n)
    return _parse_header(raw, n)


def _parse_header(raw: bytes, n: int) -> dict[str, Any]:
    if len(raw) != n:
        raise RunFileError("(header)", f"file ends inside the header ({len(raw)} of {n} bytes)")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFileError("(header)", f"not JSON: {e}") from None
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        raise RunFileError("__metadata__", "missing")
    meta = header["__metadata__"]
    if meta.get("format") != FORMAT:
        raise RunFileError("__metadata__.format", f"expected {FORMAT!r}, got {meta.get('format')!r}")
    header["__header_len__"] = n
    return header


def record_of(header: dict[str, Any]) -> RunRecord:
    """The small part from a header; a schema problem names the field (``record.metrics.ce.value``)."""
    text = header["__metadata__"].get("record")
    if not isinstance(text, str):
        raise RunFileError("__metadata__.record", "missing")
    try:
        return RunRecord.model_validate_json(text)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise RunFileError(f"record.{where}" if where else "record", err["msg"]) from None


def _tensors(header: dict[str, Any], data: memoryview) -> dict[str, np.ndarray]:
    """Every tensor of the file as a read-only numpy view, after checking the safetensors layout."""
    spans = []
    for name, info in header.items():
        if name.startswith("__"):
            continue
        try:
            dtype = _DTYPES[info["dtype"]]
            shape = [int(s) for s in info["shape"]]
            start, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise RunFileError(name, "malformed tensor entry (dtype, shape, data_offsets)") from None
        if len(shape) != 1 or shape[0] < 0 or end - start != shape[0] * dtype.itemsize:
            raise RunFileError(name, f"shape {shape} does not match its {end - start} bytes")
        spans.append((start, end, name, dtype, shape[0]))
    spans.sort()
    at = 0
    out: dict[str, np.ndarray] = {}
    for start, end, name, dtype, count in spans:
        if start != at:
            raise RunFileError(name, f"data_offsets start at {start}, expected {at}")
        if end > len(data):
            raise RunFileError("(data)", f"the file ends inside tensor {name!r} ({len(data)} of {end} data bytes)")
        at = end
        out[name] = np.frombuffer(data, dtype=dtype, count=count, offset=start)
    if at != len(data):
        raise RunFileError("(data)", f"tensors cover {at} bytes of {len(data)}")
    return out


def _need(t: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in t:
        raise RunFileError(name, "missing")
    return t[name]


def _docs(t: dict[str, np.ndarray], meta: dict[str, Any]) -> DocArrays:
    labels = meta.get("cls_labels")
    cls = None
    if "docs.cls" in t:
        if not isinstance(labels, list) or (t["docs.cls"].size and not 0 <= int(t["docs.cls"].max()) < len(labels)):
            raise RunFileError("docs.cls", "class codes do not match the stored labels")
        cls = tuple(str(labels[int(c)]) for c in t["docs.cls"])
    support_ref = support_model = None
    if "docs.support.offsets" in t:
        offsets = t["docs.support.offsets"]
        support_ref = Ragged(_need(t, "docs.support.logp_ref"), offsets)
        support_model = Ragged(_need(t, "docs.support.logp_model"), offsets)
    return DocArrays(doc_id=_need(t, "docs.doc_id"), logp_model=_need(t, "docs.logp_model"),
                     logp_ref=_need(t, "docs.logp_ref"), n_tokens=_need(t, "docs.n_tokens"),
                     n_bytes=_need(t, "docs.n_bytes"), weight=t.get("docs.weight"), cls=cls,
                     logp_correct=t.get("docs.logp_correct"), support_logp_ref=support_ref,
                     support_logp_model=support_model)


def _samples(t: dict[str, np.ndarray], meta: dict[str, Any], with_text: bool) -> SampleArrays:
    offsets = _need(t, "samples.offsets")
    generations = None
    if with_text:
        text, text_off = _need(t, "samples.text"), _need(t, "samples.text_offsets")
        if text_off.size == 0 or text_off[0] != 0 or text_off[-1] != text.size or (np.diff(text_off) < 0).any():
            raise RunFileError("samples.text_offsets", "offsets do not split the text")
        raw = text.tobytes()
        try:
            strings = tuple(raw[a:b].decode("utf-8") for a, b in zip(text_off[:-1].tolist(), text_off[1:].tolist()))
        except UnicodeDecodeError:
            raise RunFileError("samples.text", "not UTF-8") from None
        generations = Ragged(strings, offsets)  # type: ignore[arg-type]
    return SampleArrays(doc_id=_need(t, "samples.doc_id"), generations=generations,
                        correct=Ragged(_need(t, "samples.correct"), offsets),
                        max_gen_toks=int(meta["max_gen_toks"]), temperature=float(meta["temperature"]))


def read_arrays(path: Path, header: dict[str, Any], text: bool = True) -> tuple[DocArrays | None, SampleArrays | None]:
    """The arrays of a run file whose header was read with :func:`read_header`; ``text=False`` leaves the
    samples' generations unread (None), for readers that need only the verdicts."""
    with open(path, "rb") as f:
        f.seek(8 + header["__header_len__"])
        data = memoryview(f.read())
    return _arrays(header, data, text)


def read_arrays_of(path: Path, text: bool = True) -> tuple[DocArrays | None, SampleArrays | None]:
    """The arrays of a run file, in one read of the file (the small part is not validated)."""
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise RunFileError("(file)", "too short to be a run file")
    (n,) = struct.unpack("<Q", raw[:8])
    if not 2 <= n <= MAX_HEADER:
        raise RunFileError("(header)", f"header length {n} is not plausible (not a covbench run file?)")
    header = _parse_header(raw[8:8 + n], n)
    return _arrays(header, memoryview(raw)[8 + n:], text)


def _arrays(header: dict[str, Any], data: memoryview, text: bool) -> tuple[DocArrays | None, SampleArrays | None]:
    t = _tensors(header, data)
    try:
        meta = json.loads(header["__metadata__"].get("arrays", "{}"))
    except (TypeError, json.JSONDecodeError):
        raise RunFileError("__metadata__.arrays", "not JSON") from None
    if not isinstance(meta, dict):
        raise RunFileError("__metadata__.arrays", "not a JSON object")
    try:
        docs = _docs(t, meta.get("docs") or {}) if "docs.doc_id" in t else None
        samples = _samples(t, meta.get("samples") or {}, text) if "samples.doc_id" in t else None
    except (KeyError, TypeError) as e:
        raise RunFileError("__metadata__.arrays", f"missing or wrong setting {e}") from None
    except ValueError as e:  # the records' own alignment checks
        raise RunFileError("(arrays)", str(e)) from None
    return docs, samples


def read(path: Path, text: bool = True) -> Run:
    """A whole run file: small part and arrays (``text=False``: without the samples' text)."""
    header = read_header(path)
    docs, samples = read_arrays(path, header, text)
    return Run(record_of(header), docs, samples)


def tensor_names(header: dict[str, Any]) -> Iterable[str]:
    return (k for k in header if not k.startswith("__"))
