"""Typed records that cross module boundaries: one scored (model, task) run and its per-doc arrays.

The results store (``covbench.store``) writes and reads exactly these; the runner fills them, the
leaderboard and ``covbench select`` read them. Floats may be NaN (missing) or ±inf (a log-prob of a
response the model gives zero probability); JSON keeps them as the constants NaN/Infinity.

Metric keys are flat strings: ``"ce"``, ``"ce_per_token"``, ``"bpb"``, ``"kl"``, and curves keyed by
their threshold with :func:`metric_key`, e.g. ``"cov@4"``, ``"pass_exact@8"``, ``"pass_sampled@8"``,
``"pass_pred@8"`` (point prediction), ``"pass_pred_lo@8"`` / ``"pass_pred_hi@8"`` (coverage bracket).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1


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


@lru_cache(maxsize=4096)  # a store has few distinct keys; the leaderboard splits 600,000 per build
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


class Provenance(_Record):
    covbench_version: str
    lm_eval_version: str
    git_commit: str  # "unknown" outside a git checkout
    task_hash: str  # sha256 of the task config and its data
    model_spec_hash: str  # sha256 of the registry entry, canonical JSON
    seed: int
    sampling: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    machine: str
    time: str  # ISO 8601 UTC


class DocArrays(_Record):
    """Per-doc arrays, aligned by index (one entry per prompt).

    ``logp_model``: log π̂(y|x) of the reference response y, summed over response tokens.
    ``logp_ref``: log π_ref(y|x): log π_D(y|x) for known-π_D tasks, 0.0 for gold-answer tasks.
    ``support_*``: for tasks whose π_D support S_x is enumerable, per doc the log π_D and log π̂ of
    every y in S_x (same order), so KL and Cov_N are exact expectations over π_D(·|x).
    ``logp_correct``: log π̂(S_x|x), the model's log mass on the correct set (exact Pass@N).
    """

    doc_id: list[int]
    cls: list[str] | None = None
    weight: list[float] | None = None  # per-doc weight (class mixture); None = uniform
    logp_model: list[float]
    logp_ref: list[float]
    n_tokens: list[int]
    n_bytes: list[int]
    support_logp_ref: list[list[float]] | None = None
    support_logp_model: list[list[float]] | None = None
    logp_correct: list[float] | None = None

    @model_validator(mode="after")
    def _aligned(self) -> DocArrays:
        n = len(self.doc_id)
        for name in ("cls", "weight", "logp_model", "logp_ref", "n_tokens", "n_bytes",
                     "support_logp_ref", "support_logp_model", "logp_correct"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries, doc_id has {n}")
        return self


class SampleArrays(_Record):
    """Sampled generations per doc and per sample index; ``correct[d][j]`` is the verifier's verdict."""

    doc_id: list[int]
    generations: list[list[str]]
    correct: list[list[bool]]
    temperature: float = 1.0
    max_gen_toks: int

    @property
    def n(self) -> int:
        """Samples per doc (the smallest row, so every doc has at least n)."""
        return min((len(row) for row in self.correct), default=0)


class RunRecord(_Record):
    """One scored (model, task) run: what the store keeps and the leaderboard renders."""

    schema_version: int = SCHEMA_VERSION
    model: str
    task: str
    reference: Literal["known", "gold"]
    family: str | None = None
    step: int | None = None
    description: str = ""
    provenance: Provenance
    metrics: dict[str, Estimate]
    docs: DocArrays | None = None
    samples: SampleArrays | None = None
