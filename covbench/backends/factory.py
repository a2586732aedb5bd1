"""Registry entry -> a ready lm-eval LM object, built once per process.

``make_lm(spec)`` builds lm-eval's ``HFLM`` (backend ``hf``) or covbench's shared-prefill subclass
``FastHFLM`` (backend ``hf-fast``, imported only when a spec asks for it), or, for a spec with a
``ttt`` block, the test-time-training subclass ``TTTLM`` (:mod:`covbench.backends.ttt`, docs/ttt.md),
on the CPU, with the spec's batch size and max length, around the weights of :func:`covbench.backends.weights.weights_for`: each
base model (``pretrained``, ``gguf_file``, ``revision``, ``dtype``) is read once per process, and the
quantized and adapter variants are built from it (docs/policies.md "Sharing"). ``get_lm(spec)`` caches
the LM by :func:`spec_hash`, so a pytest run builds each entry once however many tasks score it.

``hf-fast`` LMs score the entry's own sampling policy (``generation``: temperature, top-k, top-p,
min-p; :mod:`covbench.backends.policy`). Entries that share weights and differ only in their policy
form a :class:`~covbench.backends.family.PolicyFamily`: :func:`get_lms` builds them together, and then
the first member asked to score a request list scores every member's policy in one forward pass.

What the factory does not do: ``chat_template`` and the sampling ``gen_kwargs`` are evaluation settings
in lm-eval (``simple_evaluate(apply_chat_template=..., gen_kwargs=...)``), so the runner reads them off
the spec.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from covbench.backends.quantize import VariantError

if TYPE_CHECKING:  # the registry is light; lm-eval and torch are imported only when a model is built
    from lm_eval.api.model import LM

    from covbench.backends.family import PolicyFamily
    from covbench.registry import ModelSpec

_CACHE: dict[str, LM] = {}
_FAMILIES: dict[str, PolicyFamily] = {}


class BackendError(Exception):
    """A model that could not be loaded; the message is one line naming the model and the reason."""


#: Registry fields that do not change a model's scores: editing them keeps stored results reusable.
NON_SCORING_FIELDS = frozenset({"description", "tags", "default", "floors", "tasks", "axis", "x", "resources"})


def spec_hash(spec: ModelSpec) -> str:
    """sha256 of the spec's scoring fields as canonical JSON: the store's ``model_spec_hash``.

    The spec as written is hashed (``pretrained`` unresolved), so the hash is the same on every
    machine. Fields that cannot change a score (:data:`NON_SCORING_FIELDS`: description, tags, the
    default flag, floors, the task list, a family's axis label and x value, a cluster worker's resources) are
    left out, so editing them keeps stored results reusable.
    """
    fields = _scoring_fields(spec)
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


#: Fields added after stored results existed: left out of the hash while unset, so the hash of an entry
#: that does not use them is what it was before they existed (its stored results stay reusable).
_LATER_FIELDS = frozenset({"quantize", "adapter", "ttt"})
_LATER_GENERATION_FIELDS = frozenset({"min_p"})


def _scoring_fields(spec: ModelSpec) -> dict[str, Any]:
    fields = {k: v for k, v in spec.model_dump(mode="json").items()
              if k not in NON_SCORING_FIELDS and not (k in _LATER_FIELDS and v is None)}
    if isinstance(fields.get("generation"), dict):
        fields["generation"] = {k: v for k, v in fields["generation"].items()
                                if not (k in _LATER_GENERATION_FIELDS and v is None)}
    return fields


def family_key(spec: ModelSpec) -> str:
    """Entries with the same family key share one model and differ at most in their policy.

    The hash of every scoring field except ``name`` and ``generation`` (the policy and the sampling
    length): same weights, backend, batch size and maximum length, so every member's requests are
    batched alike.
    """
    fields = {k: v for k, v in _scoring_fields(spec).items() if k not in ("generation", "name")}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def model_args(spec: ModelSpec) -> dict[str, Any]:
    """The spec as lm-eval's ``--model_args`` for the stock CLI (``lm_eval --model hf --model_args ...``).

    ``make_lm`` itself passes the loaded, shared model object instead (:func:`lm_args`); a ``quantize``
    block has no stock equivalent and is not in these arguments.
    """
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
    if spec.adapter_path is not None:
        args["peft"] = str(spec.adapter_path)
    if spec.ttt is not None:  # covbench.backends.ttt.TTTLM's own arguments (docs/ttt.md)
        args |= {"ttt_lr": spec.ttt.lr, "ttt_project": spec.ttt.project, "ttt_reset": spec.ttt.reset}
    return args


def make_lm(spec: ModelSpec, family: PolicyFamily | None = None) -> LM:
    """Build a fresh lm-eval LM for ``spec``; a model that fails to load raises :class:`BackendError`.

    The weights come from the per-process cache (:func:`covbench.backends.weights.weights_for`); an
    ``hf-fast`` LM scores the entry's policy and, given ``family``, joins that policy family.
    """
    lm_class = _lm_class(spec)
    _set_threads()
    try:
        # transformers and lm-eval print progress bars and warnings while loading; keep them out
        # of the pytest output unless loading fails.
        with _quiet() as captured:
            return lm_class(**lm_args(spec, family))
    except VariantError as e:
        raise BackendError(f"model '{spec.name}': field '{e.field}': {' '.join(str(e).split())}") from None
    except Exception as e:  # noqa: BLE001 - any load failure becomes one line naming the model
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        tail = " ".join(captured.getvalue().split())[-200:]
        raise BackendError(f"model '{spec.name}': cannot load {spec.pretrained!r} with backend "
                           f"'{spec.backend}': {reason[:400]}" + (f" [log: {tail}]" if tail else "")) from None


def lm_args(spec: ModelSpec, family: PolicyFamily | None = None) -> dict[str, Any]:
    """The keyword arguments ``make_lm`` passes to the LM class: the shared model object and tokenizer
    (loaded here, once per process), the batch settings, and for ``hf-fast`` the policy and family."""
    from covbench.backends.weights import weights_for

    weights = weights_for(spec)
    args: dict[str, Any] = {"pretrained": weights.model, "tokenizer": weights.tokenizer,
                            "batch_size": spec.batch_size, "trust_remote_code": spec.trust_remote_code}
    if spec.revision is not None:
        args["revision"] = spec.revision
    if spec.max_length is not None:
        args["max_length"] = spec.max_length
    if spec.ttt is not None:  # TTTLM (an HFLM): its own arguments; it restores the shared weights per sequence
        args.update(ttt_lr=spec.ttt.lr, ttt_project=spec.ttt.project, ttt_reset=spec.ttt.reset)
    elif spec.backend == "hf-fast":
        from covbench.backends.policy import policy_of

        args.update(policy=policy_of(spec), family=family)
    return args


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
    """The cached LM for ``spec`` (built on first use; keyed by :func:`spec_hash`).

    An ``hf-fast`` entry joins the policy family of its :func:`family_key`; an entry built later adds
    its policy to the family. Build the members together with :func:`get_lms` so that the first
    scoring call already covers every member.
    """
    key = spec_hash(spec)
    if key not in _CACHE:
        family = _family(spec) if spec.backend == "hf-fast" and spec.ttt is None else None
        _CACHE[key] = make_lm(spec, family)
    return _CACHE[key]


def get_lms(specs: Sequence[ModelSpec]) -> dict[str, LM]:
    """Build (or fetch) the LMs of ``specs`` together, by name.

    Members of one policy family (same weights and batch settings, different ``generation``) share one
    model object, and after this call each member's ``loglikelihood`` scores all members' policies in
    one forward pass and caches the answers for the others. To score a family of K policies on a task
    with one forward pass: call this once, then run the task for each member (for example
    ``covbench.runner.run_job(spec, task, results_dir)`` per member: its default ``get_lm`` is this
    module's cache).
    """
    return {spec.name: get_lm(spec) for spec in specs}


def clear_cache() -> None:
    """Drop every cached LM, policy family and loaded weights (the pytest plugin calls it at session end)."""
    from covbench.backends import weights

    _CACHE.clear()
    _FAMILIES.clear()
    weights.clear()


def _family(spec: ModelSpec) -> PolicyFamily:
    from covbench.backends.family import PolicyFamily

    return _FAMILIES.setdefault(family_key(spec), PolicyFamily())


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
