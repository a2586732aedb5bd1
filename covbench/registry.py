"""The model registry: a YAML file of typed model specs, validated once, at load.

A registry file is a mapping with one key, ``models:``, holding a list of entries; each entry is a
:class:`ModelSpec` (pydantic, unknown keys rejected, frozen). Local paths resolve relative to the
YAML file's folder, never the CWD; ``pkg:DIST/PATH`` names a file inside an installed distribution
(see :mod:`covbench.backends.sources`). Every problem is one line, never a traceback::

    models.yaml: model 'tiny' (entry 2): field 'batch_size': Input should be greater than or equal to 1 (got 0)

Entries are numbered from 0, in file order. ``covbench validate [PATH]`` runs the same loader.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "models.yaml").write_text("models:\\n  - {name: a, pretrained: gpt2, family: run, step: 1}\\n")
>>> reg = load_registry(d / "models.yaml")
>>> reg.names, [s.name for s in reg.resolve("run")]
(['a'], ['a'])
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from covbench.backends.sources import Source, SourceError, resolve_source
from covbench.records import split_key

DEFAULT_REGISTRY = Path("models.yaml")
SELECTORS = ("all", "default")  # reserved selector words, never model or family names

# Metric names a floor may gate on (keys as in covbench/records.py); curves need "@N".
_SCALAR_METRICS = {"ce", "ce_per_token", "bpb", "kl"}
_CURVE_METRICS = {"cov", "pass_exact", "pass_sampled", "pass_pred", "pass_pred_lo", "pass_pred_hi"}


class RegistryError(Exception):
    """An invalid registry file or an unknown model; the message is one line naming file/model/field."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerationDefaults(_Spec):
    """Sampling defaults for generate_until tasks (lm-eval gen_kwargs); None = the task's own."""

    temperature: float = Field(1.0, gt=0, description="> 0: the Pass@N samplers need real sampling")
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    max_gen_toks: int | None = Field(None, ge=1)


class TTTSpec(_Spec):
    """Test-time-training decoding (paper Eq. 22–23, docs/ttt.md): a step per token, reset per sequence.

    ``lr`` is η; ``project`` is null (no projection) or the radius r of the ball ‖ϑ − θ‖₂ ≤ r that every
    step is projected onto. Scoring and sampling both run the updates (``covbench.backends.ttt``).
    """

    lr: float = Field(gt=0, description="η: step size of the per-token update")
    project: float | None = Field(None, gt=0, description="radius r of the ball around θ, or null")
    reset: Literal["per_sequence"] = "per_sequence"


class ModelSpec(_Spec):
    """One registered model.

    ``pretrained`` is kept exactly as written (so :func:`covbench.backends.spec_hash` does not depend
    on where the file or site-packages lie); :attr:`source` is the resolved location.
    """

    name: str = Field(min_length=1)
    backend: Literal["hf", "hf-fast"] = "hf"
    pretrained: str = Field(min_length=1)
    revision: str | None = None
    gguf_file: str | None = None
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    batch_size: int = Field(16, ge=1)
    max_length: int | None = Field(None, ge=1)
    trust_remote_code: bool = False
    chat_template: bool = False
    generation: GenerationDefaults | None = None
    family: str | None = Field(None, min_length=1)
    step: int | None = Field(None, ge=0)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    default: bool = False
    tasks: list[str] | None = None  # suite tasks this model runs by default (None: every suite task)
    floors: dict[str, dict[str, float]] = Field(default_factory=dict)
    ttt: TTTSpec | None = None  # test-time-training decoding (scoring and sampling); None: plain decoding

    _source: Source = PrivateAttr()

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ModelSpec:
        if not self.name.strip():
            raise _FieldError("name", "must not be blank")
        if self.step is not None and self.family is None:
            raise _FieldError("step", "step requires family (the training run it is a checkpoint of)")
        if self.name in SELECTORS:
            raise _FieldError("name", f"'{self.name}' is reserved for selecting models")
        if self.family in SELECTORS:
            raise _FieldError("family", f"'{self.family}' is reserved for selecting models")
        if self.tasks is not None and not all(t.strip() for t in self.tasks):
            raise _FieldError("tasks", "task names must not be empty")
        for task, floors in self.floors.items():
            for key, value in floors.items():
                _check_floor(task, key, value)
        base = Path((info.context or {}).get("base_dir", "."))
        try:
            self._source = resolve_source(self.pretrained, self.gguf_file, base)
        except SourceError as e:
            raise _FieldError(e.field, str(e)) from None
        return self

    @property
    def source(self) -> Source:
        """Where the weights are: absolute folder or hub id, plus the GGUF file name if any."""
        return self._source


class _FieldError(ValueError):
    """Raised inside validators to name the field the problem belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check_floor(task: str, key: str, value: float) -> None:
    name, n = split_key(key) if "@" in key else (key, None)
    where = f"floors.{task}.{key}"
    if name in _CURVE_METRICS and n is None:
        raise _FieldError(where, f"'{name}' is a curve; name its threshold, e.g. '{name}@8'")
    if name not in _SCALAR_METRICS | _CURVE_METRICS or (name in _SCALAR_METRICS and n is not None):
        known = sorted(_SCALAR_METRICS) + [f"{m}@N" for m in sorted(_CURVE_METRICS)]
        raise _FieldError(where, f"unknown metric key (known: {', '.join(known)})")
    if not math.isfinite(value):
        raise _FieldError(where, f"floor must be a finite number, got {value}")


class Registry:
    """The validated models of one registry file, in file order."""

    def __init__(self, specs: Sequence[ModelSpec], path: Path) -> None:
        self.path = Path(path)
        self.specs: tuple[ModelSpec, ...] = tuple(specs)
        self._by_name = {s.name: s for s in self.specs}

    def __len__(self) -> int:
        return len(self.specs)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    @property
    def families(self) -> dict[str, list[ModelSpec]]:
        """Family name -> its checkpoints ordered by step (entries without a step last, file order)."""
        out: dict[str, list[ModelSpec]] = {}
        for spec in self.specs:
            if spec.family is not None:
                out.setdefault(spec.family, []).append(spec)
        return {f: sorted(v, key=lambda s: (s.step is None, s.step or 0)) for f, v in out.items()}

    def get(self, name: str) -> ModelSpec:
        """The model called ``name``; unknown -> :class:`RegistryError` with "did you mean"."""
        if name not in self._by_name:
            raise RegistryError(self._unknown(name, self.names))
        return self._by_name[name]

    def resolve(self, selector: str) -> list[ModelSpec]:
        """Models picked by a model name, a family name, ``all`` or ``default``."""
        if selector == "all":
            return list(self.specs)
        if selector == "default":
            return [s for s in self.specs if s.default]
        if selector in self._by_name:
            return [self._by_name[selector]]
        if selector in self.families:
            return list(self.families[selector])
        raise RegistryError(self._unknown(selector, [*self.names, *self.families, *SELECTORS]))

    def resolve_many(self, selectors: Iterable[str]) -> list[ModelSpec]:
        """Union of :meth:`resolve` over ``selectors``, first occurrence order, no duplicates."""
        seen: dict[str, ModelSpec] = {}
        for selector in selectors:
            for spec in self.resolve(selector):
                seen.setdefault(spec.name, spec)
        return list(seen.values())

    def _unknown(self, name: str, candidates: list[str]) -> str:
        hint = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
        did_you_mean = f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""
        return f"{self.path}: unknown model or family '{name}'{did_you_mean} (known: {len(self)} models)"


def load_registry(path: str | Path) -> Registry:
    """Read and validate a registry file; any problem raises a one-line :class:`RegistryError`."""
    path = Path(path)
    data = _read_yaml(path)
    entries = _entries(path, data)
    specs: list[ModelSpec] = []
    first_index: dict[str, int] = {}
    for i, entry in enumerate(entries):
        label = _label(entry, i)
        if not isinstance(entry, dict):
            raise RegistryError(f"{path}: {label}: must be a mapping of fields, got {type(entry).__name__}")
        spec = _validate_entry(path, label, entry)
        if spec.name in first_index:
            raise RegistryError(f"{path}: {label}: field 'name': duplicate name "
                                f"(entry {first_index[spec.name]} has it too)")
        first_index[spec.name] = i
        specs.append(spec)
    _check_families(path, specs)
    return Registry(specs, path)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RegistryError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise RegistryError(f"{path}: not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise RegistryError(_one_line(f"{path}: {where}YAML syntax error: {problem}")) from None


def _entries(path: Path, data: Any) -> list[Any]:
    if data is None:
        raise RegistryError(f"{path}: field 'models': missing (the file is empty)")
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: top level must be a mapping with a 'models:' list, "
                            f"got {type(data).__name__}")
    extra = sorted(str(k) for k in data if k != "models")
    if extra:
        raise RegistryError(f"{path}: field '{extra[0]}': unknown top-level key (only 'models' is allowed)")
    if "models" not in data:
        raise RegistryError(f"{path}: field 'models': missing")
    if not isinstance(data["models"], list):
        raise RegistryError(f"{path}: field 'models': must be a list of model entries, "
                            f"got {type(data['models']).__name__}")
    return data["models"]


def _label(entry: Any, i: int) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"model '{_one_line(name)}' (entry {i})" if isinstance(name, str) and name.strip() else f"entry {i}"


def _validate_entry(path: Path, label: str, entry: dict[str, Any]) -> ModelSpec:
    try:
        return ModelSpec.model_validate(entry, context={"base_dir": path.parent})
    except ValidationError as e:
        field, message = _describe(e.errors()[0], entry)
        raise RegistryError(_one_line(f"{path}: {label}: field '{field}': {message}")) from None


def _describe(err: Any, entry: dict[str, Any]) -> tuple[str, str]:
    """(field, message) for the first pydantic error, with the value received."""
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _FieldError):  # raised by our own validators: they know the field
        return ctx_error.field, str(ctx_error)
    field = ".".join(str(p) for p in err["loc"]) or "(entry)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(err["loc"])
        hint = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1)
        did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
        return field, f"unknown key{did_you_mean} (allowed: {', '.join(allowed)})"
    if err["type"] == "missing":
        return field, "required field is missing"
    return field, f"{err['msg']} (got {_short(err.get('input'))})"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    nested: dict[str, type[BaseModel]] = {"generation": GenerationDefaults, "ttt": TTTSpec}
    model: type[BaseModel] = nested.get(str(loc[0]), ModelSpec) if len(loc) > 1 else ModelSpec
    return list(model.model_fields)


def _check_families(path: Path, specs: list[ModelSpec]) -> None:
    # A family name that is also a model name would make `--model X` ambiguous.
    names = {s.name: i for i, s in enumerate(specs)}
    for i, spec in enumerate(specs):
        if spec.family is not None and spec.family in names and names[spec.family] != i:
            raise RegistryError(f"{path}: model '{spec.name}' (entry {i}): field 'family': "
                                f"'{spec.family}' is also a model name (entry {names[spec.family]})")
        if spec.family is not None and spec.family == spec.name:
            raise RegistryError(f"{path}: model '{spec.name}' (entry {i}): field 'family': "
                                f"must differ from the model's own name")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(text: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def validate_main(argv: Sequence[str]) -> int:
    """``covbench validate [PATH]``: exit 0 and ``ok: N models in PATH``, or 2 and the one-line error."""
    args = list(argv)
    if args and args[0] in ("-h", "--help"):
        print("usage: covbench validate [PATH]   (default: ./models.yaml)")
        return 0
    if len(args) > 1:
        print("usage: covbench validate [PATH]", file=sys.stderr)
        return 2
    path = Path(args[0]) if args else DEFAULT_REGISTRY
    try:
        registry = load_registry(path)
    except RegistryError as e:
        print(e, file=sys.stderr)
        return 2
    print(f"ok: {len(registry)} models in {path}")
    return 0
