"""Weight-only, group-wise quantization variants of a loaded model, with torchao (docs/policies.md).

For every ``nn.Linear`` in the decoder blocks (the output head and the embeddings stay at the base
precision), each row of the weight W is cut into groups of ``group_size`` consecutive input
columns, and each group g gets its own scale s_g (and, for ``asym``, zero point z_g); with b bits:

    sym:   q = clamp(round(w / s_g), −2^(b−1), 2^(b−1) − 1),   s_g = max|w| / ((2^b − 1) / 2)
    asym:  q = clamp(round(w / s_g) + z_g, −2^(b−1), 2^(b−1) − 1),   s_g = (max w − min w) / (2^b − 1)
    ŵ = s_g · (q − z_g)     (z_g = 0 for sym)

so every group has at most 2^b distinct values and |w − ŵ| ≤ s_g / 2 (``tests/test_quant.py``
checks both on the real weights). This is torchao's ``IntxWeightOnlyConfig`` (bits 1-8, any group
size dividing the input width), applied with ``torchao.quantization.quantize_``; the quantized
weights are stored as int8 codes plus per-group scales (about 1 byte per weight instead of 4) and
dequantized inside each matmul. Why torchao and not optimum-quanto or gguf-py: docs/policies.md.

The variant is a :func:`covbench.backends.weights.share_tensors` copy of the base: the base model is
never modified, and every tensor that is not quantized (embeddings, norms, the head) is the base's
own tensor, not a copy.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from covbench.registry import QuantizeSpec

__all__ = ["VariantError", "quantizable_layers", "quantize_model", "torchao_config"]

SKIP_LAYERS = frozenset({"lm_head"})   # the output head (often tied to the embeddings) keeps base precision


class VariantError(ValueError):
    """A quantization or adapter setting that does not fit the loaded model; ``field`` names the registry
    field (``quantize.group_size``, ``adapter``, ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def quantizable_layers(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """The ``nn.Linear`` layers a variant quantizes, by qualified name (the output head excluded)."""
    import torch

    return {name: mod for name, mod in model.named_modules()
            if isinstance(mod, torch.nn.Linear) and name.rsplit(".", 1)[-1] not in SKIP_LAYERS}


def torchao_config(settings: QuantizeSpec):  # type: ignore[no-untyped-def]
    """torchao's ``IntxWeightOnlyConfig`` for the registry's ``quantize`` block."""
    import torch

    with _quiet_torchao():
        from torchao.quantization import IntxWeightOnlyConfig, MappingType
        from torchao.quantization.granularity import PerGroup

    mapping = MappingType.SYMMETRIC if settings.scheme == "sym" else MappingType.ASYMMETRIC
    return IntxWeightOnlyConfig(weight_dtype=getattr(torch, f"int{settings.bits}"),
                                granularity=PerGroup(settings.group_size), mapping_type=mapping)


def quantize_model(model: torch.nn.Module, settings: QuantizeSpec) -> torch.nn.Module:
    """Quantize ``model``'s decoder Linear weights in place (call it on a shared-tensor copy, never the base).

    Raises :class:`VariantError` (field ``quantize`` or ``quantize.group_size``) when the model has no
    Linear layer to quantize or the group size does not divide a layer's input width.
    """
    layers = quantizable_layers(model)
    if not layers:
        raise VariantError("quantize", f"{type(model).__name__} has no nn.Linear layers to quantize "
                                       "(torchao quantizes nn.Linear; e.g. GPT-2's Conv1D is not supported)")
    for name, layer in layers.items():
        if layer.in_features % settings.group_size:
            raise VariantError("quantize.group_size", f"{settings.group_size} does not divide the input width "
                                                      f"{layer.in_features} of layer '{name}'")
    with _quiet_torchao():
        from torchao.quantization import quantize_

        quantize_(model, torchao_config(settings), filter_fn=lambda mod, fqn: fqn in layers)
    return model


@contextlib.contextmanager
def _quiet_torchao():  # type: ignore[no-untyped-def]
    """torchao logs a warning per CUDA-only extension it cannot load on a CPU build; keep them out."""
    names = ("torchao", "torch.utils._pytree")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
