"""Format 1 of a stored run (covbench ≤ 0.1: one JSON file per run), read and converted to format 2.

A format-1 file is one JSON object: the run record with its per-prompt arrays as JSON lists
(docs/store.md#format-1). It has no task descriptor; :func:`read` takes it from the installed task of that
name (``covbench.taskmeta.descriptor_for``) when there is one, and otherwise derives the facts the file
holds: the reference, and the kind from which arrays are present (no pairing, the default rank N).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from covbench.records import DocArrays, Estimate, Provenance, Run, RunRecord, SampleArrays, TaskDescriptor

from .runfile import RunFileError

SUFFIX = ".json"


class _V1(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")


class _DocsV1(_V1):
    doc_id: list[int]
    cls: list[str] | None = None
    weight: list[float] | None = None
    logp_model: list[float]
    logp_ref: list[float]
    n_tokens: list[int]
    n_bytes: list[int]
    support_logp_ref: list[list[float]] | None = None
    support_logp_model: list[list[float]] | None = None
    logp_correct: list[float] | None = None


class _SamplesV1(_V1):
    doc_id: list[int]
    generations: list[list[str]]
    correct: list[list[bool]]
    temperature: float = 1.0
    max_gen_toks: int


class _RecordV1(_V1):
    schema_version: Literal[1] = 1
    model: str
    task: str
    reference: Literal["known", "gold"]
    family: str | None = None
    step: int | None = Field(None, ge=0)
    description: str = ""
    provenance: Provenance
    metrics: dict[str, Estimate]
    docs: _DocsV1 | None = None
    samples: _SamplesV1 | None = None


def _descriptor(v1: _RecordV1, lookup: Callable[[str], TaskDescriptor | None]) -> TaskDescriptor:
    found = lookup(v1.task)
    if found is not None and found.reference == v1.reference:
        return found
    kind = "sample" if v1.samples is not None and v1.docs is None else "loglikelihood"
    return TaskDescriptor(name=v1.task, reference=v1.reference, kind=kind)


def read(path: Path, lookup: Callable[[str], TaskDescriptor | None] | None = None) -> Run:
    """A format-1 file as a :class:`~covbench.records.Run`; a schema problem names the field."""
    if lookup is None:
        from covbench.taskmeta import descriptor_for

        lookup = descriptor_for
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RunFileError("(file)", "not UTF-8 text") from None
    try:
        v1 = _RecordV1.model_validate_json(text)
    except ValidationError as e:
        err = e.errors()[0]
        raise RunFileError(".".join(str(p) for p in err["loc"]) or "(file)", err["msg"]) from None
    record = RunRecord(model=v1.model, task=v1.task, family=v1.family, step=v1.step, description=v1.description,
                       descriptor=_descriptor(v1, lookup), provenance=v1.provenance, metrics=v1.metrics)
    try:
        docs = None if v1.docs is None else DocArrays(**v1.docs.model_dump())
        samples = None if v1.samples is None else SampleArrays(**v1.samples.model_dump())
    except ValueError as e:
        raise RunFileError("docs" if "support" in str(e) or v1.samples is None else "samples", str(e)) from None
    return Run(record, docs, samples)

