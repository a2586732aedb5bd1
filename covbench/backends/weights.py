"""One base-model load per process; quantized and adapter variants built from it (docs/policies.md).

A registry entry's weights are a base model (``pretrained``, ``gguf_file``, ``revision``, ``dtype``,
``trust_remote_code``: the :class:`BaseKey`), optionally quantized (``quantize``) and optionally with a
LoRA adapter (``adapter``). This module loads each base once per process (a GGUF is dequantised once)
and builds each variant once from the cached base, never from disk again:

- policy variants (entries that differ only in ``generation``) get the very same model object;
- a quantized variant is a :func:`share_tensors` copy of the base whose Linear weights are replaced by
  torchao's quantized tensors (:mod:`covbench.backends.quantize`); everything else is the base's tensors;
- an adapter variant is a :func:`share_tensors` copy of the (possibly quantized) base wrapped by
  ``peft.PeftModel.from_pretrained``: LoRA layers are added to the copy and kept unmerged, so the base's
  weights are never written to.

Counters (:func:`load_count`) let tests see how often a base was really read from disk.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from covbench.registry import ModelSpec, QuantizeSpec

__all__ = ["BaseKey", "Weights", "base_key", "clear", "load_count", "share_tensors", "weights_for"]


@dataclass(frozen=True)
class BaseKey:
    """What identifies a base model's weights on disk and how they are materialised."""

    pretrained: str            # resolved folder or hub id
    gguf_file: str | None
    revision: str | None
    dtype: str
    trust_remote_code: bool


@dataclass(frozen=True)
class Weights:
    """A loaded model and its tokenizer, ready to hand to lm-eval's HFLM."""

    model: Any       # transformers PreTrainedModel, or a peft PeftModel wrapping one
    tokenizer: Any


_BASES: dict[BaseKey, Weights] = {}
_VARIANTS: dict[tuple[BaseKey, str, str | None], Weights] = {}
_LOADS: Counter[BaseKey] = Counter()


def base_key(spec: ModelSpec) -> BaseKey:
    source = spec.source
    return BaseKey(pretrained=source.pretrained, gguf_file=source.gguf_file, revision=spec.revision,
                   dtype=spec.dtype, trust_remote_code=spec.trust_remote_code)


def weights_for(spec: ModelSpec) -> Weights:
    """The entry's model and tokenizer: the cached base, or a variant built once from it."""
    adapter = Path(spec.adapter_path) if spec.adapter_path is not None else None
    return _variant(base_key(spec), spec.quantize, adapter)


def load_count(key: BaseKey | None = None) -> int:
    """How many times a base was read from disk in this process (``key`` None: all bases)."""
    return _LOADS[key] if key is not None else sum(_LOADS.values())


def clear() -> None:
    """Forget every cached base and variant (the factory's ``clear_cache`` calls it)."""
    _BASES.clear()
    _VARIANTS.clear()


def share_tensors(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model``'s module tree whose parameters and buffers *are* the original's tensors.

    ``copy.deepcopy`` with every parameter and buffer pre-entered in its memo: modules, configs and
    hooks are copied, tensors are not (tied weights stay tied). Replacing a parameter of the copy
    (quantization) or wrapping its layers (LoRA) leaves the original untouched; writing into a shared
    tensor in place would not, and no variant does.
    """
    memo: dict[int, Any] = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo)


def _base(key: BaseKey) -> Weights:
    if key not in _BASES:
        _BASES[key] = _load_base(key)
        _LOADS[key] += 1
    return _BASES[key]


def _load_base(key: BaseKey) -> Weights:
    """Read a base model and its tokenizer with the arguments lm-eval's HFLM uses on a CPU.

    ``HFLM._create_model`` calls ``from_pretrained(pretrained, revision, dtype, trust_remote_code,
    gguf_file, quantization_config=None, subfolder="", device_map={"": "cpu"}, max_memory=None)`` and
    ``_create_tokenizer`` calls ``AutoTokenizer.from_pretrained`` with ``gguf_file`` (GGUF) or
    ``use_fast=True``: the same calls here give the same weights, so an entry without variants scores
    exactly as before (``tests/test_backends_weights.py``).
    """
    import transformers
    from lm_eval.models.utils_hf import get_dtype

    revision = key.revision if key.revision is not None else "main"
    common: dict[str, Any] = {"revision": revision, "trust_remote_code": key.trust_remote_code}
    config = transformers.AutoConfig.from_pretrained(key.pretrained, gguf_file=key.gguf_file, **common)
    auto = transformers.AutoModelForCausalLM
    if getattr(config, "model_type", None) in transformers.models.auto.modeling_auto \
            .MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        auto = transformers.AutoModelForSeq2SeqLM     # as HFLM._get_backend decides
    model = auto.from_pretrained(key.pretrained, dtype=get_dtype(key.dtype), gguf_file=key.gguf_file,
                                 quantization_config=None, subfolder="", device_map={"": "cpu"},
                                 max_memory=None, **common)
    model.eval()
    tok_kwargs: dict[str, Any] = {"gguf_file": key.gguf_file} if key.gguf_file else {"use_fast": True}
    tokenizer = transformers.AutoTokenizer.from_pretrained(key.pretrained, **common, **tok_kwargs)
    return Weights(model=model, tokenizer=tokenizer)


def _variant(key: BaseKey, quantize: QuantizeSpec | None, adapter: Path | None) -> Weights:
    """Base -> quantized copy -> adapter on top, each level cached and built from the level below."""
    if quantize is None and adapter is None:
        return _base(key)
    vkey = (key, quantize.model_dump_json() if quantize is not None else "", str(adapter) if adapter else None)
    if vkey not in _VARIANTS:
        if adapter is not None:
            from covbench.backends.adapters import apply_adapter

            below = _variant(key, quantize, None)
            model = apply_adapter(share_tensors(below.model), adapter)
        else:
            from covbench.backends.quantize import quantize_model

            below = _base(key)
            model = quantize_model(share_tensors(below.model), quantize)  # type: ignore[arg-type]
            _return_freed_memory()
        _VARIANTS[vkey] = Weights(model=model, tokenizer=below.tokenizer)
    return _VARIANTS[vkey]


def _return_freed_memory() -> None:
    """Give the float32 temporaries of quantization back to the OS (glibc's ``malloc_trim``).

    Quantizing SmolLM2 layer by layer frees ~0.3 GB of temporaries that glibc keeps in its heap; the
    resident size then overstates a variant's cost (0.12 GB) until that memory is reused. Elsewhere
    (no glibc) this does nothing.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        return
