"""The model registry: a YAML file of typed model specs, validated once, at load.

A registry file is a mapping with one key, ``models:``, holding a list of entries; each entry is a
:class:`ModelSpec` (pydantic, unknown keys rejected, frozen). Local paths resolve relative to the
YAML file's folder, never the CWD; ``pkg:DIST/PATH`` names a file inside an installed distribution
(see :mod:`covbench.backends.sources`). Every problem is one line, never a traceback::

    models.yaml: model 'tiny' (entry 2): field 'batch_size': Input should be greater than or equal to 1 (got 0)

Entries are numbered from 0, in file order. ``covbench validate [PATH]`` runs the same loader. The file is
read by :func:`covbench.yamlio.read_yaml` (size, nesting and alias limits; duplicate and non-string keys
are errors); docs/errors.md lists every kind of message.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "models.yaml").write_text("models:\\n  - {name: a, pretrained: gpt2, family: run, step: 1}\\n")
>>> reg = load_registry(d / "models.yaml")
>>> reg.names, [s.name for s in reg.resolve("run")]
(['a'], ['a'])
"""

from __future__ import annotations

import datetime
import difflib
import math
import reprlib
import sys
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from covbench.backends.adapters import check_adapter_folder
from covbench.backends.sources import Source, SourceError, resolve_source
from covbench.records import split_key
from covbench.yamlio import YamlError, one_line, printable, read_yaml

DEFAULT_REGISTRY = Path("models.yaml")
SELECTORS = ("all", "default")  # reserved selector words, never model or family names

# Metric names a floor may gate on (keys as in covbench/records.py); curves need "@N".


class RegistryError(Exception):
    """An invalid registry file or an unknown model; the message is one line naming file/model/field."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        # pydantic's lax mode reads true as 1 and false as 0: "step: true" is a mistake, not step 1.
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                where = _bool_where_number(field.annotation, data.get(name))
                if where is not None:
                    raise _FieldError(name + where, "Input should be a number, got a boolean (YAML reads "
                                                    "unquoted true/false/yes/no/on/off as booleans)")
        return data


class GenerationDefaults(_Spec):
    """Sampling defaults for generate_until tasks (lm-eval gen_kwargs); None = the task's own."""

    temperature: float = Field(1.0, gt=0, description="> 0: the Pass@N samplers need real sampling")
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    max_gen_toks: int | None = Field(None, ge=1)
    min_p: float | None = Field(None, ge=0, le=1)


class QuantizeSpec(_Spec):
    """A weight-only, group-wise quantized variant made at load time from the base weights (torchao;
    covbench/backends/quantize.py, docs/policies.md)."""

    bits: int = Field(ge=2, le=8)
    group_size: int = Field(ge=2, description="consecutive input columns sharing one scale; must divide "
                                                "every quantized layer's input width")
    scheme: Literal["sym", "asym"] = "sym"


class ResourceSpec(_Spec):
    """What each worker that serves this model holds on a cluster (``--executor ray``; docs/executors.md).

    Ray's ``num_cpus``, ``num_gpus`` and ``memory`` of the worker that loads the model once and runs
    all its tasks. Resources never change a score (not in ``spec_hash``).
    """

    cpus: float = Field(1.0, ge=0, description="CPU cores the worker holds")
    gpus: float = Field(0.0, ge=0, description="GPUs the worker holds (fractions share one GPU)")
    memory_gb: float | None = Field(None, gt=0, description="memory reserved for the worker, GiB (None: none)")


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
    axis: str | None = Field(None, min_length=1, description="what the family varies: 'temperature', 'bits', ...")
    x: float | None = Field(None, description="this member's position on the family's axis (default: step)")
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    default: bool = False
    tasks: list[str] | None = None  # suite tasks this model runs by default (None: every suite task)
    floors: dict[str, dict[str, float]] = Field(default_factory=dict)
    quantize: QuantizeSpec | None = None
    adapter: str | None = Field(None, min_length=1)   # peft adapter folder, relative to the registry file
    resources: ResourceSpec | None = None  # a cluster worker's share (docs/executors.md); None: 1 CPU
    ttt: TTTSpec | None = None  # test-time-training decoding (scoring and sampling); None: plain decoding

    _source: Source = PrivateAttr()
    _adapter_path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ModelSpec:
        if not self.name.strip():
            raise _FieldError("name", "must not be blank")
        for field, text in (("name", self.name), ("family", self.family), *(("tasks", t) for t in self.tasks or ())):
            if text is not None and not text.isprintable():  # names become test ids, file names, table cells
                raise _FieldError(field, f"must not contain control characters (got {_short(text)})")
        if (self.axis is not None or self.x is not None) and self.family is None:
            raise _FieldError("axis" if self.axis is not None else "x", "requires family (the family it places the model in)")
        if self.x is not None and not math.isfinite(self.x):
            raise _FieldError("x", f"must be a finite number, got {self.x}")
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
        self._source = _resolve(self.pretrained, self.gguf_file, base)
        self._adapter_path = _check_adapter(self.adapter, base)
        _check_policy_backend(self)
        return self

    @property
    def source(self) -> Source:
        """Where the weights are: absolute folder or hub id, plus the GGUF file name if any."""
        return self._source

    @property
    def adapter_path(self) -> Path | None:
        """The adapter folder, resolved against the registry file's folder (None without an adapter)."""
        return self._adapter_path


class _FieldError(ValueError):
    """Raised inside validators to name the field the problem belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _resolve(pretrained: str, gguf_file: str | None, base: Path) -> Source:
    """:func:`resolve_source`, with every OS-level failure turned into a field error."""
    for field, text in (("pretrained", pretrained), ("gguf_file", gguf_file)):
        if text is not None and "\x00" in text:
            raise _FieldError(field, f"must not contain a NUL character (got {_short(text)})")
    try:
        source = resolve_source(pretrained, gguf_file, base)
    except SourceError as e:
        raise _FieldError(e.field, str(e)) from None
    except (OSError, RuntimeError, ValueError) as e:  # a name too long, "~nosuchuser", ...
        in_gguf = gguf_file is not None and isinstance(e, OSError) and str(e.filename or "").endswith(gguf_file)
        field = "gguf_file" if in_gguf else "pretrained"
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise _FieldError(field, f"cannot use {_short(gguf_file if in_gguf else pretrained)}: {reason}") from None
    if source.kind != "hub" and not Path(source.pretrained).is_dir():  # e.g. /dev/zero
        raise _FieldError("pretrained", f"'{source.pretrained}' is neither a folder nor a GGUF file")
    return source


def _bool_where_number(annotation: Any, value: Any) -> str | None:
    """Where (".key" path, "" for the value itself) ``value`` holds a bool that ``annotation`` wants as a
    number (int or float), or None.

    >>> _bool_where_number(int | None, True), _bool_where_number(bool, True)
    ('', None)
    >>> _bool_where_number(dict[str, dict[str, float]], {"t": {"kl": 1.0, "ce": False}})
    '.t.ce'
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    options = [a for a in args if a is not type(None)] if origin in (typing.Union, types.UnionType) else [annotation]
    if isinstance(value, bool):
        return "" if options and all(a in (int, float) for a in options) else None
    for option in options:
        inner_origin, inner_args = typing.get_origin(option), typing.get_args(option)
        if inner_origin is dict and isinstance(value, dict):
            items: Iterable[tuple[Any, Any]] = value.items()
        elif inner_origin is list and isinstance(value, list):
            items = enumerate(value)
        else:
            continue
        for key, item in items:
            where = _bool_where_number(inner_args[-1], item)
            if where is not None:
                return f".{key}{where}"
    return None


def _check_adapter(adapter: str | None, base: Path) -> Path | None:
    if adapter is None:
        return None
    path = (base / Path(adapter).expanduser()).resolve()
    try:
        check_adapter_folder(path)
    except ValueError as e:
        raise _FieldError("adapter", str(e)) from None
    return path


def _check_policy_backend(spec: ModelSpec) -> None:
    """Stock ``hf`` scores at temperature 1 without truncation: it cannot score another sampled policy.

    Scoring a tempered or truncated policy is covbench's own code (``hf-fast``); stock lm-eval stays
    the unmodified reference it is compared against (docs/policies.md "Which backends").
    """
    gen = spec.generation
    if spec.backend != "hf" or gen is None:
        return
    on = {"temperature": gen.temperature != 1.0, "top_k": gen.top_k is not None,
          "top_p": gen.top_p not in (None, 1.0), "min_p": gen.min_p not in (None, 0.0)}
    for name, is_on in on.items():
        if is_on:
            raise _FieldError(f"generation.{name}", "backend 'hf' (lm-eval's stock HFLM) scores at temperature "
                                                    "1 without truncation, so CE and coverage would not "
                                                    "describe this sampled policy; use backend 'hf-fast'")


def _check_floor(task: str, key: str, value: float) -> None:
    where = f"floors.{task}.{key}"
    try:
        name, n = split_key(key) if "@" in key else (key, None)
    except ValueError:
        raise _FieldError(where, "the threshold after '@' must be a number, e.g. 'cov@8'") from None
    if n is not None and not (math.isfinite(n) and n >= 1):
        raise _FieldError(where, f"the threshold after '@' must be a finite number >= 1, got {n:g}")
    from covbench.metrics import METRICS  # the metric cards say which names exist and which are curves

    card = METRICS.get(name)
    if card is not None and card.curve and n is None:
        raise _FieldError(where, f"'{name}' is a curve; name its threshold, e.g. '{name}@8'")
    if card is None or (not card.curve and n is not None):
        known = sorted(c.name + ("@N" if c.curve else "") for c in METRICS.values())
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
        return one_line(f"{self.path}: unknown model or family '{name}'{did_you_mean} (known: {len(self)} models)")


def load_registry(path: str | Path) -> Registry:
    """Read and validate a registry file; any problem raises a one-line :class:`RegistryError`."""
    path = Path(path)
    try:
        return _load(path)
    except RegistryError as e:  # names and keys come from the file: keep the message on one line
        raise RegistryError(one_line(str(e))) from None


def _load(path: Path) -> Registry:
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
        return read_yaml(path, string_keys=True)
    except YamlError as e:
        raise RegistryError(str(e)) from None


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
    if not isinstance(name, str) or not name.strip():
        return f"entry {i}"
    return f"model '{printable(name if len(name) <= 60 else name[:57] + '...')}' (entry {i})"


def _validate_entry(path: Path, label: str, entry: dict[str, Any]) -> ModelSpec:
    try:
        return ModelSpec.model_validate(entry, context={"base_dir": path.parent})
    except ValidationError as e:
        field, message = _describe(e.errors()[0], entry)
        raise RegistryError(f"{path}: {label}: field '{field}': {message}") from None


def _describe(err: Any, entry: dict[str, Any]) -> tuple[str, str]:
    """(field, message) for the first pydantic error, with the value received."""
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _FieldError):  # raised by our own validators: they know the field
        return printable(".".join([*(str(p) for p in err["loc"]), ctx_error.field])), str(ctx_error)
    field = printable(".".join(str(p) for p in err["loc"])) or "(entry)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(err["loc"])
        hint = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1)
        did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
        return field, f"unknown key{did_you_mean} (allowed: {', '.join(allowed)})"
    if err["type"] == "missing":
        return field, "required field is missing"
    return field, f"{err['msg']} (got {_got(err.get('input'), err['type'] == 'string_type')})"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    nested: dict[str, type[BaseModel]] = {"generation": GenerationDefaults, "quantize": QuantizeSpec,
                                          "resources": ResourceSpec, "ttt": TTTSpec}
    model = nested.get(str(loc[0]), ModelSpec) if len(loc) > 1 else ModelSpec
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


_REPR = reprlib.Repr()  # bounded: a deep or alias-multiplied value is never walked in full
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 80, 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, str) and len(value) > limit:
        return f"{value[: limit - 20]!r}... ({len(value):,} characters)"
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _got(value: Any, wants_text: bool) -> str:
    """The value received, with a hint when YAML typed an unquoted word that was meant as text."""
    if wants_text and isinstance(value, bool):
        return f"{value}: YAML reads unquoted true/false/yes/no/on/off as booleans; quote the value"
    if wants_text and isinstance(value, (datetime.date, datetime.datetime)):
        return f"{value.isoformat()}: YAML reads an unquoted date as a date; quote the value"
    return _short(value)


def validate_main(argv: Sequence[str]) -> int:
    """``covbench validate [PATH]``: exit 0 and ``ok: N models in PATH``, or 2 and the one-line error."""
    args = list(argv)
    if args and args[0] in ("-h", "--help"):
        print("usage: covbench validate [PATH]   (default: ./models.yaml)")
        return 0
    if len(args) > 1:
        print(f"covbench validate: expected at most one PATH, got {len(args)} arguments "
              "(usage: covbench validate [PATH])", file=sys.stderr)
        return 2
    path = Path(args[0]) if args else DEFAULT_REGISTRY
    try:
        registry = load_registry(path)
    except RegistryError as e:
        print(e, file=sys.stderr)
        return 2
    print(one_line(f"ok: {len(registry)} models in {path}"))
    return 0
