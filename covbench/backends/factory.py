"""Registry entry -> a ready lm-eval LM object, built once per process.

``make_lm(spec)`` builds lm-eval's ``HFLM`` (backend ``hf``) or covbench's shared-prefill subclass
``FastHFLM`` (backend ``hf-fast``, imported only when a spec asks for it), or, for a spec with a ``ttt``
block, the test-time-training subclass ``TTTLM`` (:mod:`covbench.backends.ttt`, docs/ttt.md), on the
CPU, with the spec's batch size, dtype, max length, revision, trust_remote_code and GGUF file.
``get_lm(spec)`` caches the result by :func:`spec_hash`, so a pytest run loads each model once however
many tasks score it.

What the factory does not do: ``chat_template`` and ``generation`` are evaluation settings in lm-eval
(``simple_evaluate(apply_chat_template=..., gen_kwargs=...)``), so the runner reads them off the spec.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the registry is light; lm-eval and torch are imported only when a model is built
    from lm_eval.api.model import LM

    from covbench.registry import ModelSpec

_CACHE: dict[str, LM] = {}


class BackendError(Exception):
    """A model that could not be loaded; the message is one line naming the model and the reason."""


#: Registry fields that do not change a model's scores: editing them keeps stored results reusable.
NON_SCORING_FIELDS = frozenset({"description", "tags", "default", "floors", "tasks"})
#: Scoring fields added after results were first stored: hashed only when set, so every spec that does
#: not use them keeps the hash (and the stored results) it had before they existed.
HASHED_WHEN_SET = frozenset({"ttt"})


def spec_hash(spec: ModelSpec) -> str:
    """sha256 of the spec's scoring fields as canonical JSON: the store's ``model_spec_hash``.

    The spec as written is hashed (``pretrained`` unresolved), so the hash is the same on every
    machine. Fields that cannot change a score (:data:`NON_SCORING_FIELDS`: description, tags, the
    default flag, floors, the task list) are left out, so editing them keeps stored results reusable.
    """
    fields = {k: v for k, v in spec.model_dump(mode="json").items()
              if k not in NON_SCORING_FIELDS and not (k in HASHED_WHEN_SET and v is None)}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def model_args(spec: ModelSpec) -> dict[str, Any]:
    """The keyword arguments ``make_lm`` passes to the HFLM constructor (also lm-eval's --model_args)."""
    source = spec.source
    args: dict[str, Any] = {
        "pretrained": source.pretrained,
        "device": "cpu",
        "batch_size": spec.batch_size,
        "dtype": spec.dtype,
        "trust_remote_code": spec.trust_remote_code,
    }
    if spec.revision is not None:
        args["revision"] = spec.revision
    if spec.max_length is not None:
        args["max_length"] = spec.max_length
    if source.gguf_file is not None:
        args["gguf_file"] = source.gguf_file
    if spec.ttt is not None:  # covbench.backends.ttt.TTTLM's own arguments (docs/ttt.md)
        args |= {"ttt_lr": spec.ttt.lr, "ttt_project": spec.ttt.project, "ttt_reset": spec.ttt.reset}
    return args


def make_lm(spec: ModelSpec) -> LM:
    """Build a fresh lm-eval LM for ``spec``; a model that fails to load raises :class:`BackendError`."""
    lm_class = _lm_class(spec)
    _set_threads()
    try:
        # transformers and lm-eval print progress bars and warnings while loading; keep them out
        # of the pytest output unless loading fails.
        with _quiet() as captured:
            return lm_class(**model_args(spec))
    except Exception as e:  # noqa: BLE001 - any load failure becomes one line naming the model
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        tail = " ".join(captured.getvalue().split())[-200:]
        raise BackendError(f"model '{spec.name}': cannot load {spec.pretrained!r} with backend "
                           f"'{spec.backend}': {reason[:400]}" + (f" [log: {tail}]" if tail else "")) from None


def _set_threads() -> None:
    """Run torch on ``COVBENCH_THREADS`` threads (default 1).

    Measured on the 2-core CPU machines this project targets, with other processes busy: one SmolLM2
    log-likelihood took 10-12 s wall on torch's default 2 threads and 0.2-0.3 s on 1 thread, because
    oversubscribed threads wait on each other. One thread per process is the robust default;
    parallelism comes from running jobs in several processes (``pytest -n``). Set
    ``COVBENCH_THREADS=2`` on an otherwise idle machine to trade that robustness for speed.
    """
    import torch

    torch.set_num_threads(int(os.environ.get("COVBENCH_THREADS") or 1))


def get_lm(spec: ModelSpec) -> LM:
    """The cached LM for ``spec`` (built on first use; keyed by :func:`spec_hash`)."""
    key = spec_hash(spec)
    if key not in _CACHE:
        _CACHE[key] = make_lm(spec)
    return _CACHE[key]


def clear_cache() -> None:
    """Drop every cached LM (the pytest plugin calls it at session end to free memory)."""
    _CACHE.clear()


def cached_count() -> int:
    return len(_CACHE)


def _lm_class(spec: ModelSpec) -> type[LM]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # covbench never downloads at run time
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        if spec.ttt is not None:  # test-time training replaces scoring and sampling of either HF backend
            from covbench.backends.ttt import TTTLM  # registers "hf-ttt" with lm-eval

            return TTTLM
        if spec.backend == "hf-fast":
            from covbench.backends.fast_hf import FastHFLM  # registers "hf-fast" with lm-eval

            return FastHFLM
        from lm_eval.models.huggingface import HFLM

        return HFLM
    except ImportError as e:
        raise BackendError(f"model '{spec.name}': backend '{spec.backend}' is unavailable: {e}") from None


@contextlib.contextmanager
def _quiet():  # type: ignore[no-untyped-def]
    buffer = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("lm_eval", "transformers", "accelerate")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
