"""Typed configuration of the Fig. 2 families: the H grid, the seeds, the model and the training methods.

One run trains one model on the Fig. 2 mixture (classes 0.94/0.05/0.01, ``covbench.graphs.generator``) at
one H with one method and one seed; a preset lists the grid ``methods × hs × seeds`` that
``covbench zoo train --preset fig2`` trains (docs/zoo.md, "Figure 2"). A method is an optimizer plus a
gradient rule of :mod:`covbench.zoo.updates`: ``plain``, ``normalized`` (paper Eq. 17/18) or
``truncated`` (Eq. 24–26).

>>> cfg = fig2_preset("fig2-tiny")
>>> sorted(cfg.methods), cfg.hs
(['nsgd', 'sgd', 'trunc'], (4, 6))
>>> run_name("nsgd", 16, 2)
'fig2-nsgd-h16-s2'
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from .config import ModelSpec, _Cfg


class MethodSpec(_Cfg):
    """Optimizer and gradient rule of one family (covbench.zoo.updates).

    ``lr`` is η. ``damping`` is λ of the normalized rule (ignored otherwise); ``trunc_n`` is N of the
    truncated rule's cap A = log N (ignored otherwise). ``momentum`` is heavy-ball momentum of the SGD
    optimizer (0: the paper's rules). ``warmup`` ramps η linearly over the first steps.
    """

    optimizer: Literal["sgd", "adamw"] = "sgd"
    grad: Literal["plain", "normalized", "truncated"] = "plain"
    lr: float = Field(gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    damping: float = Field(1.0, gt=0)
    trunc_n: float = Field(16.0, ge=1)
    warmup: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _sensible(self) -> MethodSpec:
        if self.optimizer == "adamw" and self.grad == "normalized":
            raise ValueError("grad 'normalized' rescales the whole gradient, which AdamW undoes per "
                             "coordinate: use optimizer 'sgd'")
        if self.optimizer == "adamw" and self.momentum:
            raise ValueError("momentum applies to optimizer 'sgd' only (AdamW has its own betas)")
        return self

    @property
    def trunc_cap(self) -> float:
        """A = log N of the truncated rule."""
        return math.log(self.trunc_n)


class BaseSpec(_Cfg):
    """Stage 1: one AdamW model trained on the Fig. 2 mixture with every H of the grid pooled (``fig2-base``).

    Steps cycle through the H grid (one H per batch); the loss is the per-token mean (AdamW is scale
    free, so this only sets the logged number); warmup then cosine decay to ``min_lr_ratio``·lr; global
    gradient clipping at ``grad_clip``. Every run of stage 2 starts from these stored weights.
    """

    lr: float = Field(3e-3, gt=0)
    warmup: int = Field(100, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    steps: int = Field(3000, ge=1)
    batch_size: int = Field(16, ge=1)
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    seed: int = 0


class Fig2Config(_Cfg):
    """The grid of runs and everything a run needs; stored whole in every run's ``covbench_train.json``."""

    name: str
    model: ModelSpec
    methods: dict[str, MethodSpec]
    base: BaseSpec | None = None  # None: every run starts from its own random init (seeded)
    hs: tuple[int, ...] = (8, 16, 24)
    seeds: tuple[int, ...] = (0, 1, 2)
    m: int = Field(128, ge=6)  # node ids: the graph_fig2_h* tasks use 128 for every H (one tokenizer)
    batch_size: int = Field(32, ge=1)  # K sequences per step (the minibatch of Eq. 17)
    steps: int = Field(1000, ge=1)
    n_curve: int = Field(6, ge=1)  # log-spaced steps at which the small curve set is scored
    n_curve_per_class: int = Field(32, ge=1)  # curve set: prompts per class (stratified, µ-weighted)
    n_val_per_class: int = Field(512, ge=1)  # final validation: prompts per class (paper: 1024)
    val_seed: int = 20260  # validation docs are shared by every method and seed at one H (paired)
    threads: int = Field(1, ge=1)
    save_dtype: Literal["float16", "float32"] = "float16"

    @model_validator(mode="after")
    def _grid(self) -> Fig2Config:
        if not self.methods:
            raise ValueError("methods: at least one method is needed")
        for name in self.methods:
            if not name.replace("_", "").isalnum():
                raise ValueError(f"methods: name {name!r} must be alphanumeric (it names folders)")
        for h in self.hs:
            if h < 4 or h % 2 or self.m < 4 * h + 2:
                raise ValueError(f"hs: H = {h} needs an even H >= 4 and m >= 4H + 2 (m = {self.m})")
        if len(set(self.hs)) != len(self.hs) or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("hs and seeds must not repeat")
        return self


def run_name(method: str, h: int, seed: int) -> str:
    """Folder and registry name of one run."""
    return f"fig2-{method}-h{h}-s{seed}"


def curve_steps(steps: int, n: int) -> list[int]:
    """``n`` log-spaced steps from 1 to ``steps`` (distinct, sorted, always including ``steps``).

    >>> curve_steps(1000, 4)
    [1, 10, 100, 1000]
    """
    if n == 1:
        return [steps]
    return sorted({max(1, min(steps, round(steps ** (i / (n - 1))))) for i in range(n)})


# GPT-2 with absolute positions, as in the paper (its App. C.1; docs/zoo.md "Figure 2"), sized for one
# CPU thread.
_SHIPPED_MODEL = ModelSpec(arch="gpt2", d_model=64, n_layer=3, n_head=4, d_ff=256, max_positions=512)

FIG2_PRESETS: dict[str, Fig2Config] = {
    "fig2": Fig2Config(
        name="fig2",
        model=_SHIPPED_MODEL,
        base=BaseSpec(lr=3e-3, warmup=100, min_lr_ratio=0.1, steps=1500, batch_size=16),
        # η and λ calibrated at the smallest H from fig2-base (docs/zoo.md, "Figure 2"): η = 0.01 is the
        # largest probed step that did not raise the curve-set KL at H = 8 (0.03 did, 0.1 diverged);
        # λ = 7 is the median ‖ĝ‖ there, and η_nsgd = 2λ·0.01 makes a typical normalized step at H = 8
        # equal to the plain one. The truncated rule takes plain SGD's η.
        methods={
            "sgd": MethodSpec(optimizer="sgd", grad="plain", lr=0.01),
            "nsgd": MethodSpec(optimizer="sgd", grad="normalized", lr=0.14, damping=7.0),
            "trunc": MethodSpec(optimizer="sgd", grad="truncated", lr=0.01, trunc_n=16.0),
        },
        hs=(8, 16, 24), seeds=(0, 1, 2), batch_size=16, steps=300,
    ),
    "fig2-tiny": Fig2Config(
        name="fig2-tiny",
        model=ModelSpec(arch="gpt2", d_model=16, n_layer=1, n_head=2, d_ff=64, max_positions=256),
        base=BaseSpec(lr=3e-3, warmup=2, steps=4, batch_size=4),
        methods={
            "sgd": MethodSpec(optimizer="sgd", grad="plain", lr=0.05),
            "nsgd": MethodSpec(optimizer="sgd", grad="normalized", lr=0.5, damping=1.0),
            "trunc": MethodSpec(optimizer="sgd", grad="truncated", lr=0.05, trunc_n=16.0),
        },
        m=32, hs=(4, 6), seeds=(0,), batch_size=8, steps=6, n_curve=2, n_curve_per_class=2,
        n_val_per_class=2,
    ),
}


def fig2_preset(name: str) -> Fig2Config:
    """A named Fig. 2 preset; unknown names raise with the list of presets."""
    if name not in FIG2_PRESETS:
        raise ValueError(f"unknown Fig. 2 preset {name!r}; expected one of {sorted(FIG2_PRESETS)}")
    return FIG2_PRESETS[name]
