"""A LoRA (or any peft) adapter on a shared base model (docs/policies.md "Adapters").

``adapter: PATH`` in the registry names a folder written by peft's ``save_pretrained``
(``adapter_config.json`` plus ``adapter_model.safetensors``), relative to the registry file. It is
loaded with ``peft.PeftModel.from_pretrained`` (what lm-eval's ``HFLM(peft=...)`` does) onto a
:func:`covbench.backends.weights.share_tensors` copy of the base, and left unmerged: a LoRA layer
computes W x + (α/r) B A x with the base's own W, so the base stays usable by every other entry and
costs no second copy. Merging would write into the shared W, so it is never done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from covbench.backends.quantize import VariantError

__all__ = ["ADAPTER_CONFIG", "apply_adapter", "check_adapter_folder"]

ADAPTER_CONFIG = "adapter_config.json"


def check_adapter_folder(path: Path) -> None:
    """Raise ``ValueError`` (one line) unless ``path`` is a folder with a readable peft adapter config."""
    if not path.is_dir():
        raise ValueError(f"adapter folder '{path}' does not exist" if not path.exists()
                         else f"'{path}' is a file; adapter needs the folder peft's save_pretrained wrote")
    config = path / ADAPTER_CONFIG
    if not config.is_file():
        raise ValueError(f"'{path}' has no {ADAPTER_CONFIG} (not a peft adapter folder)")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{config} is not readable JSON: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict) or "peft_type" not in data:
        raise ValueError(f"{config} has no 'peft_type' (not a peft adapter config)")


def apply_adapter(model: Any, path: Path) -> Any:
    """``PeftModel.from_pretrained(model, path)``, unmerged, in eval mode.

    ``model`` must be a copy the caller owns (its layers are wrapped in place). A peft failure (target
    modules missing, shapes that do not match the base) becomes a :class:`VariantError` on ``adapter``.
    """
    from peft import PeftModel

    try:
        wrapped = PeftModel.from_pretrained(model, str(path), is_trainable=False)
    except Exception as e:  # noqa: BLE001 - any peft failure is one line naming the field
        raise VariantError("adapter", f"peft cannot apply '{path}' to this base model: "
                                      f"{type(e).__name__}: {' '.join(str(e).split())[:300]}") from None
    wrapped.eval()
    return wrapped
