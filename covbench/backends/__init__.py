"""Backends: registry entry -> lm-eval LM (``make_lm``/``get_lm``), and where weights live (``sources``).

The factory's names are exported lazily, so importing :mod:`covbench.backends.sources` (which the
registry does) never imports lm-eval or torch.

>>> from covbench.backends import spec_hash
>>> from covbench.registry import ModelSpec
>>> len(spec_hash(ModelSpec(name="gpt2", pretrained="gpt2")))
64
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

# torchao (quantized variants, covbench/backends/quantize.py) is imported by transformers on every model
# load once it is installed; on a CPU build of torch it logs one warning per CUDA-only extension it
# cannot load, and torch logs a deprecation per enum it registers. Known and harmless here: not shown.
for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)

__all__ = ["BackendError", "clear_cache", "family_key", "get_lm", "get_lms", "make_lm", "model_args", "spec_hash"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("covbench.backends.factory"), name)
    raise AttributeError(f"module 'covbench.backends' has no attribute '{name}'")
