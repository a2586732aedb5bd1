"""Typed configuration of one zoo training run: graph task, model shape, pre-training, fine-tuning.

A run is fully described by a :class:`ZooConfig` (plus the code); the trainer writes it, with the seed
and wall times, into every checkpoint folder as ``covbench_train.json``. Two presets share one code path:

- ``shipped``: the family under ``covbench/zoo/checkpoints/`` (a few thousand CPU steps, see docs/zoo.md);
- ``tiny``: the same trainer in seconds, for the end-to-end test.

>>> cfg = preset("tiny")
>>> cfg.name, cfg.graph.n_layers, cfg.finetune.n_checkpoints >= 2
('tiny', 4, True)
>>> ft_checkpoint_steps(preset("shipped").finetune)[:3]
[5, 8, 14]
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GraphSpec(_Cfg):
    """The Fig. 1 task (``covbench.graphs.generator.fig1_config`` arguments)."""

    n_layers: int = Field(4, ge=1)
    m: int = Field(32, ge=6)
    edge_order: Literal["layered", "shuffled"] = "layered"


class ModelSpec(_Cfg):
    """A small causal LM. ``llama`` = rotary positions (transformers LlamaForCausalLM); ``gpt2`` = absolute."""

    arch: Literal["llama", "gpt2"] = "llama"
    d_model: int = Field(128, ge=8)
    n_layer: int = Field(4, ge=1)
    n_head: int = Field(4, ge=1)
    d_ff: int = Field(256, ge=8)  # llama MLP width (gpt2 uses 4·d_model)
    max_positions: int = Field(256, ge=16)

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelSpec:
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        return self


class PretrainSpec(_Cfg):
    """Online pre-training on the Fig. 1 pre-training mixture (G1, G2, G3 at 1/3) until valid mass ≥ target."""

    lr: float = Field(1e-3, gt=0)
    warmup: int = Field(200, ge=0)
    # After warmup: "constant", or "cosine" decay to min_lr_ratio·lr at max_steps (less gradient noise
    # late in the run, which is what the last few points of valid mass need).
    schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    batch_size: int = Field(64, ge=1)
    max_steps: int = Field(6000, ge=1)  # the cap of the stop rule
    min_steps: int = Field(0, ge=0)
    eval_every: int = Field(250, ge=1)
    target_valid_mass: float = Field(0.95, gt=0, le=1)
    n_eval_prompts: int = Field(256, ge=1)  # held-out pre-training-mixture prompts for the stop rule
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)


class FinetuneSpec(_Cfg):
    """Online fine-tuning on the 90/10 mixture; checkpoints at log-spaced steps (step 0 = pre-trained)."""

    lr: float = Field(3e-4, gt=0)
    batch_size: int = Field(64, ge=1)
    steps: int = Field(1500, ge=1)
    first_checkpoint: int = Field(10, ge=1)
    n_checkpoints: int = Field(10, ge=2)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)


class ZooConfig(_Cfg):
    name: str
    seed: int = 0
    graph: GraphSpec = GraphSpec()
    model: ModelSpec = ModelSpec()
    pretrain: PretrainSpec = PretrainSpec()
    # Optional second pre-training stage from stage 1's stored weights (fresh optimizer, own schedule,
    # own target); the stop rule is the same.
    pretrain_more: PretrainSpec | None = None
    finetune: FinetuneSpec = FinetuneSpec()
    threads: int = Field(2, ge=1)  # torch.set_num_threads: results are reproducible for a fixed value
    save_dtype: Literal["float16", "float32"] = "float16"  # stored weights (the family must fit in 20 MB)


def ft_checkpoint_steps(spec: FinetuneSpec) -> list[int]:
    """Log-spaced fine-tuning steps from ``first_checkpoint`` to ``steps`` (distinct, rounded, sorted).

    >>> ft_checkpoint_steps(FinetuneSpec(steps=100, first_checkpoint=1, n_checkpoints=3))
    [1, 10, 100]
    """
    lo, hi, k = math.log(spec.first_checkpoint), math.log(spec.steps), spec.n_checkpoints
    raw = [round(math.exp(lo + (hi - lo) * i / (k - 1))) for i in range(k)]
    return sorted({max(1, min(spec.steps, s)) for s in raw})


PRESETS: dict[str, ZooConfig] = {
    # The shipped family (docs/zoo.md): a 6-layer, 64-wide Llama-style model (rotary positions), 1 thread.
    "shipped": ZooConfig(
        name="shipped",
        model=ModelSpec(arch="llama", d_model=64, n_layer=6, n_head=4, d_ff=192, max_positions=256),
        pretrain=PretrainSpec(lr=2e-3, warmup=100, schedule="cosine", min_lr_ratio=0.1, batch_size=32,
                              max_steps=4000, eval_every=250, n_eval_prompts=256),
        pretrain_more=PretrainSpec(lr=6e-4, warmup=50, schedule="cosine", min_lr_ratio=0.1, batch_size=32,
                                   max_steps=3000, eval_every=250, n_eval_prompts=256, target_valid_mass=0.98),
        finetune=FinetuneSpec(lr=2e-5, batch_size=32, steps=1500, first_checkpoint=5, n_checkpoints=12),
        threads=1,
    ),
    "tiny": ZooConfig(
        name="tiny",
        model=ModelSpec(arch="llama", d_model=32, n_layer=2, n_head=2, d_ff=64, max_positions=128),
        pretrain=PretrainSpec(lr=5e-3, warmup=10, batch_size=16, max_steps=80, eval_every=40,
                              n_eval_prompts=16),
        finetune=FinetuneSpec(lr=1e-3, batch_size=16, steps=20, first_checkpoint=5, n_checkpoints=2),
        threads=1,
    ),
}


def preset(name: str) -> ZooConfig:
    """A named preset; unknown names raise with the list of presets."""
    if name not in PRESETS:
        raise ValueError(f"unknown zoo preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]
