"""Typed records that cross module boundaries: one scored (model, task) run, its task, its arrays.

A stored run has two parts (docs/store.md):

- the **small part**, :class:`RunRecord`: identity (model, task, family, step), the :class:`TaskDescriptor`
  the runner wrote from the task YAML, :class:`Provenance` and the flat metric dict; it is readable on its
  own, without the arrays;
- the **arrays**, :class:`DocArrays` (per prompt: log-probs of the reference response and, where the
  support of π_ref(·|x) is enumerable, of every y in it) and :class:`SampleArrays` (per prompt and sample
  index: the generation and the verifier's verdict), as numpy arrays.

:class:`Run` holds both; the runner builds one and :func:`covbench.store.write_run` stores it. Floats may be
NaN (missing) or ±inf (a log-prob of a response the model gives zero probability).

Metric keys are flat strings: ``"ce"``, ``"ce_per_token"``, ``"bpb"``, ``"kl"``, and curves keyed by their
threshold with :func:`metric_key`, e.g. ``"cov@4"``, ``"pass_exact@8"``, ``"pass_sampled@8"``,
``"pass_pred@8"`` (point prediction), ``"pass_pred_lo@8"`` / ``"pass_pred_hi@8"`` (coverage bracket).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 2


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")


def format_n(n: float) -> str:
    """Canonical text of a threshold N: ``4.0 -> "4"``, ``5.7 -> "5.7"``, ``2.5e6 -> "2500000"``.

    >>> [format_n(x) for x in (4.0, 5.7, 16, 1.25)]
    ['4', '5.7', '16', '1.25']
    """
    n = float(n)
    if not math.isfinite(n):
        raise ValueError(f"threshold N must be finite, got {n!r}")
    return str(int(n)) if n == int(n) else repr(n)


def metric_key(name: str, n: float | None = None) -> str:
    """Flat key of a metric, with the threshold for curves: ``metric_key("cov", 4) == "cov@4"``.

    >>> metric_key("pass_exact", 8.0), metric_key("ce")
    ('pass_exact@8', 'ce')
    """
    return name if n is None else f"{name}@{format_n(n)}"


@lru_cache(maxsize=4096)  # a store has few distinct keys, split many times per build
def split_key(key: str) -> tuple[str, float | None]:
    """Inverse of :func:`metric_key`.

    >>> split_key("cov@5.7"), split_key("kl")
    (('cov', 5.7), ('kl', None))
    """
    name, _, n = key.partition("@")
    return name, (float(n) if n else None)


class Estimate(_Record):
    """A point value with an optional confidence interval; NaN means missing (never 0)."""

    value: float
    lo: float = math.nan
    hi: float = math.nan
    stderr: float = math.nan


MISSING = Estimate(value=math.nan)
_ESTIMATE_FIELDS = frozenset(Estimate.model_fields)


def estimate_of(value: float, lo: float, hi: float, stderr: float) -> Estimate:
    """An :class:`Estimate` from four floats already validated (the store's own numbers), without
    pydantic's validation: the catalog builds hundreds of thousands of them per site build."""
    e = object.__new__(Estimate)
    object.__setattr__(e, "__dict__", {"value": value, "lo": lo, "hi": hi, "stderr": stderr})
    object.__setattr__(e, "__pydantic_fields_set__", set(_ESTIMATE_FIELDS))
    object.__setattr__(e, "__pydantic_extra__", None)
    object.__setattr__(e, "__pydantic_private__", None)
    return e


class Provenance(_Record):
    covbench_version: str
    lm_eval_version: str
    git_commit: str  # "unknown" outside a git checkout
    task_hash: str  # sha256 of the task config and its data
    model_spec_hash: str  # sha256 of the registry entry's scoring fields, canonical JSON
    seed: int
    sampling: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    machine: str
    time: str  # ISO 8601 UTC


class RankNs(_Record):
    """The thresholds a task is ranked at: Pass@``pass_n`` next to Cov_``cov_n``.

    The default pairs Pass@8 with Cov_4, N/2 (docs/coverage-principle.md#bon-sandwich: a prompt
    covered at N/2 succeeds within N samples with probability ≥ 1 − e^−2)."""

    pass_n: float = Field(8.0, ge=1)
    cov_n: float = Field(4.0, ge=1)


class TaskDescriptor(_Record):
    """What covbench knows about a task, written by the runner from the task YAML's ``metadata.covbench``.

    ``reference``: ``known`` (π_D known: synthetic tasks) or ``gold`` (a gold answer/target).
    ``kind``: ``loglikelihood`` (scoring: CE, KL, Cov_N, exact/predicted Pass@N) or ``sample``
    (n generations per prompt and a verifier: sampled Pass@N). ``pairs_with``: for a sampling task, the
    scoring task on the same prompts (its measured Pass@N joins that task's table). ``rank``: the N the
    task is ranked at. ``classes``: the per-doc class labels in display order (the mixture components).
    """

    name: str = Field(min_length=1)
    reference: Literal["known", "gold"]
    kind: Literal["loglikelihood", "sample"]
    pairs_with: str | None = None
    rank: RankNs = Field(default_factory=RankNs)
    classes: tuple[str, ...] = ()
    title: str = ""


class RunRecord(_Record):
    """The small part of one scored (model, task) run: everything but the per-prompt arrays."""

    schema_version: int = SCHEMA_VERSION
    model: str
    task: str
    family: str | None = None
    step: int | None = None
    axis: str | None = None  # the family's axis ("temperature", "bits", ...); None: the training step
    x: float | None = None  # this member's position on it (None: ``step``)
    description: str = ""
    descriptor: TaskDescriptor
    provenance: Provenance
    metrics: dict[str, Estimate]

    @model_validator(mode="after")
    def _same_task(self) -> RunRecord:
        if self.descriptor.name != self.task:
            raise ValueError(f"descriptor.name is {self.descriptor.name!r} but task is {self.task!r}")
        return self

    @property
    def reference(self) -> str:
        return self.descriptor.reference

    def metric(self, key: str) -> Estimate:
        """The stored estimate of ``key``, or :data:`MISSING` (NaN) when the run has none."""
        return self.metrics.get(key, MISSING)


# ---- arrays --------------------------------------------------------------------------------------


def _array(values: object, dtype: type, name: str) -> np.ndarray:
    arr = np.array(values, dtype=dtype)  # a copy: records never alias their caller's buffers
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


def _optional(values: object, dtype: type, name: str) -> np.ndarray | None:
    return None if values is None else _array(values, dtype, name)


@dataclass(frozen=True, eq=False)
class Ragged:
    """Rows of different lengths as one flat array: row ``i`` is ``values[offsets[i]:offsets[i+1]]``.

    >>> r = Ragged.from_rows([[1.0, 2.0], [], [3.0]], np.float64)
    >>> len(r), r.row(0).tolist(), r.lengths.tolist()
    (3, [1.0, 2.0], [2, 0, 1])
    """

    values: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        off = self.offsets
        if off.ndim != 1 or off.size == 0 or off[0] != 0 or off[-1] != len(self.values) or (np.diff(off) < 0).any():
            raise ValueError(f"ragged offsets must rise from 0 to {len(self.values)}")

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[object]], dtype: type) -> Ragged:
        lengths = [len(r) for r in rows]
        offsets = _array(np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]), np.int64, "offsets")
        if dtype is str:
            values: object = tuple(str(v) for r in rows for v in r)
        else:
            flat = [v for r in rows for v in r]
            values = _array(np.asarray(flat, dtype=dtype) if flat else np.zeros(0, dtype), dtype, "values")
        return cls(values, offsets)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i]:self.offsets[i + 1]]

    def rows(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.row(i)

    def take(self, index: np.ndarray) -> Ragged:
        """The rows at ``index``, in that order."""
        rows = [self.row(int(i)) for i in index]
        if isinstance(self.values, tuple):
            return Ragged.from_rows(rows, str)
        return Ragged.from_rows(rows, self.values.dtype.type)

    def equals(self, other: Ragged) -> bool:
        if not np.array_equal(self.offsets, other.offsets):
            return False
        if isinstance(self.values, tuple) or isinstance(other.values, tuple):
            return tuple(self.values) == tuple(other.values)
        return bool(np.array_equal(self.values, other.values, equal_nan=True))


def _ragged(rows: object, dtype: type, name: str) -> Ragged | None:
    if rows is None or isinstance(rows, Ragged):
        return rows
    try:
        return Ragged.from_rows(list(rows), dtype)  # type: ignore[arg-type]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: {e}") from None


@dataclass(frozen=True, eq=False)
class DocArrays:
    """Per-prompt arrays of a scoring run, aligned by index (one entry per prompt).

    ``logp_model``: log π̂(y|x) of the reference response y, summed over response tokens.
    ``logp_ref``: log π_ref(y|x): log π_D(y|x) for known-π_D tasks, 0.0 for gold-answer tasks.
    ``support_logp_ref`` / ``support_logp_model``: for tasks whose support S_x is enumerable, per prompt
    the log π_D and log π̂ of every y in S_x (same order, one :class:`Ragged` row per prompt).
    ``logp_correct``: log π̂(S_x|x), the model's log mass on the correct set (exact Pass@N).
    ``cls``: per-prompt class label; ``weight``: per-prompt weight (class mixture), None = uniform.
    Lists are accepted and converted; the arrays are read-only.
    """

    doc_id: np.ndarray
    logp_model: np.ndarray
    logp_ref: np.ndarray
    n_tokens: np.ndarray
    n_bytes: np.ndarray
    cls: tuple[str, ...] | None = None
    weight: np.ndarray | None = None
    support_logp_ref: Ragged | None = None
    support_logp_model: Ragged | None = None
    logp_correct: np.ndarray | None = None

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        for name, dtype in (("doc_id", np.int64), ("logp_model", np.float64), ("logp_ref", np.float64),
                            ("n_tokens", np.int64), ("n_bytes", np.int64)):
            put(name, _array(getattr(self, name), dtype, name))
        put("weight", _optional(self.weight, np.float64, "weight"))
        put("logp_correct", _optional(self.logp_correct, np.float64, "logp_correct"))
        put("cls", None if self.cls is None else tuple(str(c) for c in self.cls))
        put("support_logp_ref", _ragged(self.support_logp_ref, np.float64, "support_logp_ref"))
        put("support_logp_model", _ragged(self.support_logp_model, np.float64, "support_logp_model"))
        self._check()

    def _check(self) -> None:
        n = self.doc_id.size
        for name in ("logp_model", "logp_ref", "n_tokens", "n_bytes", "weight", "logp_correct", "cls",
                     "support_logp_ref", "support_logp_model"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries, doc_id has {n}")
        if (self.support_logp_ref is None) != (self.support_logp_model is None):
            raise ValueError("support_logp_ref and support_logp_model must be given together")
        if self.support_logp_ref is not None and not np.array_equal(
                self.support_logp_ref.offsets, self.support_logp_model.offsets):  # type: ignore[union-attr]
            raise ValueError("support_logp_model rows differ in length from support_logp_ref rows")
        if np.unique(self.doc_id).size != n:
            raise ValueError("doc_id has duplicates")

    def __len__(self) -> int:
        return int(self.doc_id.size)

    @property
    def has_support(self) -> bool:
        return self.support_logp_ref is not None

    def weights(self) -> np.ndarray:
        """Per-prompt weights (uniform when none are stored)."""
        return np.ones(len(self)) if self.weight is None else self.weight

    def take(self, index: np.ndarray) -> DocArrays:
        """The prompts at ``index`` (positions), in that order."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return DocArrays(doc_id=self.doc_id[index], logp_model=self.logp_model[index],
                         logp_ref=self.logp_ref[index], n_tokens=self.n_tokens[index],
                         n_bytes=self.n_bytes[index], weight=pick(self.weight), logp_correct=pick(self.logp_correct),
                         cls=None if self.cls is None else tuple(self.cls[int(i)] for i in index),
                         support_logp_ref=None if self.support_logp_ref is None else self.support_logp_ref.take(index),
                         support_logp_model=(None if self.support_logp_model is None
                                             else self.support_logp_model.take(index)))

    def equals(self, other: DocArrays) -> bool:
        for name in ("doc_id", "logp_model", "logp_ref", "n_tokens", "n_bytes", "weight", "logp_correct"):
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b, equal_nan=True)):
                return False
        if self.cls != other.cls:
            return False
        for name in ("support_logp_ref", "support_logp_model"):
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None) or (a is not None and not a.equals(b)):
                return False
        return True


@dataclass(frozen=True, eq=False)
class SampleArrays:
    """Sampled generations per prompt and per sample index; ``correct.row(d)[j]`` is the verdict of
    sample j of prompt d. ``generations`` has the same shape (one string per sample), or is None when a
    reader asked for the verdicts only."""

    doc_id: np.ndarray
    generations: Ragged | None
    correct: Ragged
    max_gen_toks: int
    temperature: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "doc_id", _array(self.doc_id, np.int64, "doc_id"))
        object.__setattr__(self, "generations", _ragged(self.generations, str, "generations"))
        object.__setattr__(self, "correct", _ragged(self.correct, np.bool_, "correct"))
        n = self.doc_id.size
        for name in ("generations", "correct"):
            if getattr(self, name) is not None and len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, doc_id has {n}")
        if self.generations is not None and not np.array_equal(self.generations.offsets, self.correct.offsets):
            raise ValueError("generations and correct differ in samples per prompt")
        if np.unique(self.doc_id).size != n:
            raise ValueError("doc_id has duplicates")

    def __len__(self) -> int:
        return int(self.doc_id.size)

    @property
    def n(self) -> int:
        """Samples per prompt (the smallest row, so every prompt has at least n)."""
        return int(self.correct.lengths.min()) if len(self) else 0

    def counts(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per prompt, (samples, correct among them) over the first ``n`` samples (default: all)."""
        lengths = self.correct.lengths
        take = lengths if n is None else np.minimum(lengths, n)
        cum = np.concatenate([[0], np.cumsum(self.correct.values, dtype=np.int64)])
        starts = self.correct.offsets[:-1]
        return take.astype(np.int64), (cum[starts + take] - cum[starts]).astype(np.int64)

    def equals(self, other: SampleArrays) -> bool:
        same_text = (self.generations is None and other.generations is None) or (
            self.generations is not None and other.generations is not None and self.generations.equals(other.generations))
        return (np.array_equal(self.doc_id, other.doc_id) and same_text and self.correct.equals(other.correct) and self.max_gen_toks == other.max_gen_toks
                and self.temperature == other.temperature)


@dataclass(frozen=True, eq=False)
class Run:
    """A whole scored run: the small part and its arrays (what the runner stores)."""

    record: RunRecord
    docs: DocArrays | None = None
    samples: SampleArrays | None = None

    def equals(self, other: Run) -> bool:
        """Same small part (NaN equal to NaN) and equal arrays."""
        same = lambda a, b: (a is None and b is None) or (a is not None and b is not None and a.equals(b))  # noqa: E731
        return (self.record.model_dump_json() == other.record.model_dump_json()
                and same(self.docs, other.docs) and same(self.samples, other.samples))
