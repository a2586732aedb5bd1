"""The zoo trainer: pre-train on the Fig. 1 pre-training mixture until the model has learned validity,
then fine-tune online on the 90/10 mixture, saving log-spaced checkpoints (docs/coverage-principle.md#fig1).

Steps, in order (``train``):

1. ``pretrain``: AdamW with linear warmup then a constant or cosine lr, fresh docs every batch (online; the
   paper uses a fixed 512k-prompt set), loss on response tokens only. Every ``eval_every`` steps it
   scores every valid path of held-out pre-training-mixture prompts and stops once the mass on valid
   paths reaches ``target_valid_mass`` (or at ``max_steps``). Saved as ``graph-pt``. If the config
   has ``pretrain_more``, a second stage continues from those stored weights with a fresh optimizer,
   its own schedule and its own (higher) target, under the same stop rule (``--phase pretrain-more``
   runs it alone); ``graph-pt`` is then overwritten with the stage-2 weights.
2. ``finetune``: from the pre-trained weights, a fresh AdamW at a constant small lr on fresh 90/10
   docs; ``graph-ft-NNNNNNN`` is saved at each log-spaced step of ``ft_checkpoint_steps``.

Determinism: the init (``torch.manual_seed``), the pre-training docs, the evaluation docs and the
fine-tuning docs each come from their own seed derived from ``cfg.seed``; with the same thread count
(``cfg.threads``) on the same machine the run repeats bit for bit (CPU kernels are deterministic).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from covbench.graphs.generator import FIG1_FINETUNE, FIG1_PRETRAIN, GraphConfig, fig1_config, sample_docs
from covbench.graphs.tokenizer import PAD, vocabulary

from .config import PretrainSpec, ZooConfig, ft_checkpoint_steps
from .data import DocStream, collate, encode
from .model import build_model, load_checkpoint, save_checkpoint
from .scoring import score_docs

PT_NAME = "graph-pt"
Log = Callable[[dict[str, Any]], None]

# Seed offsets: one independent stream per job, all derived from cfg.seed.
_PRETRAIN_DATA, _PRETRAIN_EVAL, _FINETUNE_DATA = 1, 2, 3


def ft_name(step: int) -> str:
    """Folder name of the fine-tuning checkpoint at ``step`` (zero-padded so names sort by step)."""
    return f"graph-ft-{step:07d}"


@dataclass(frozen=True)
class PhaseResult:
    steps: int
    wall_s: float
    losses: list[float]  # mean training loss (nats per response token) per logged window
    checkpoints: list[Path]
    valid_mass: float = math.nan  # held-out mass on valid paths at the end (pre-training only)


def graph_config(cfg: ZooConfig) -> GraphConfig:
    return fig1_config(n_layers=cfg.graph.n_layers, m=cfg.graph.m, edge_order=cfg.graph.edge_order)


def _seed(cfg: ZooConfig, job: int) -> int:
    return cfg.seed * 1000 + job


def _step(model: PreTrainedModel, opt: torch.optim.Optimizer, stream: DocStream, batch_size: int, m: int,
          pad_id: int, clip: float) -> float:
    """One AdamW step on a fresh batch; returns the mean response-token cross-entropy (nats)."""
    b = collate([encode(d, m) for d in stream.take(batch_size)], pad_id)
    # HF shifts labels internally and averages over the non −100 (response) tokens.
    loss = model(input_ids=b.input_ids, attention_mask=b.attention_mask, labels=b.labels).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return float(loss.detach())


def _optimizer(model: PreTrainedModel, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)


def pretrain_lr(spec: PretrainSpec, step: int) -> float:
    """Linear warmup to ``spec.lr``, then constant or cosine decay to ``min_lr_ratio·lr`` at ``max_steps``.

    >>> s = PretrainSpec(lr=1.0, warmup=10, max_steps=110, schedule="cosine", min_lr_ratio=0.1)
    >>> [round(pretrain_lr(s, k), 3) for k in (5, 10, 60, 110)]
    [0.5, 1.0, 0.55, 0.1]
    """
    if step < spec.warmup:
        return spec.lr * step / spec.warmup
    if spec.schedule == "constant":
        return spec.lr
    progress = (step - spec.warmup) / max(1, spec.max_steps - spec.warmup)
    r = spec.min_lr_ratio
    return spec.lr * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _pretrain_loop(model: PreTrainedModel, cfg: ZooConfig, spec: PretrainSpec, stage: int, log: Log,
                   ) -> tuple[int, float, list[float], float]:
    """Steps until held-out valid mass ≥ target (checked every ``eval_every``) or ``max_steps``.

    Returns (steps, wall seconds, windowed losses, last valid mass).
    """
    m = cfg.graph.m
    pad_id = vocabulary(m)[PAD]
    gcfg = graph_config(cfg)
    opt = _optimizer(model, spec.lr, spec.weight_decay)
    # Stage k draws its own training docs; the stop-rule prompts are the same for every stage.
    stream = DocStream(gcfg, FIG1_PRETRAIN, seed=_seed(cfg, _PRETRAIN_DATA) + 100 * stage)
    eval_docs = sample_docs(gcfg, FIG1_PRETRAIN, spec.n_eval_prompts, seed=_seed(cfg, _PRETRAIN_EVAL))
    t0, window, losses, mass = time.time(), [], [], math.nan
    step = 0
    for step in range(1, spec.max_steps + 1):
        for group in opt.param_groups:
            group["lr"] = pretrain_lr(spec, step)
        window.append(_step(model, opt, stream, spec.batch_size, m, pad_id, spec.grad_clip))
        if step % spec.eval_every == 0 or step == spec.max_steps:
            mass = float(score_docs(model, eval_docs, m, pad_id).valid_mass().mean())
            losses.append(sum(window) / len(window))
            log({"phase": "pretrain", "stage": stage, "step": step, "loss": losses[-1], "valid_mass": mass,
                 "wall_s": round(time.time() - t0, 1)})
            window = []
            if mass >= spec.target_valid_mass and step >= spec.min_steps:
                break
    return step, time.time() - t0, losses, mass


def _save_pt(model: PreTrainedModel, cfg: ZooConfig, out_root: Path, stages: list[dict[str, Any]],
             log: Log) -> Path:
    mass = stages[-1]["valid_mass_heldout"]
    target = (cfg.pretrain_more if len(stages) > 1 else cfg.pretrain).target_valid_mass  # the last stage's
    info = {"phase": "pretrain", "step": 0, "finetune_step": 0,
            "pretrain_steps": sum(st["steps"] for st in stages), "stages": stages,
            "valid_mass_heldout": mass, "target_valid_mass": target, "reached_target": mass >= target,
            "wall_s": round(sum(st["wall_s"] for st in stages), 1), "config": cfg.model_dump(),
            "seed": cfg.seed}
    path = save_checkpoint(model, out_root / PT_NAME, cfg.graph.m, info, cfg.save_dtype)
    log({"phase": "pretrain", "saved": str(path), "steps": info["pretrain_steps"], "valid_mass": mass,
         "wall_s": info["wall_s"]})
    return path


def pretrain(cfg: ZooConfig, out_root: Path, log: Log) -> PhaseResult:
    """Stage 1 from a seeded init; then stage 2 (``cfg.pretrain_more``), if set, until its own target."""
    model = build_model(cfg.model, cfg.graph.m, seed=cfg.seed)
    steps, wall, losses, mass = _pretrain_loop(model, cfg, cfg.pretrain, 1, log)
    stages = [{"stage": 1, "steps": steps, "wall_s": round(wall, 1), "valid_mass_heldout": mass}]
    path = _save_pt(model, cfg, out_root, stages, log)
    if cfg.pretrain_more is not None and mass < cfg.pretrain_more.target_valid_mass:
        return pretrain_more(cfg, out_root, log)
    return PhaseResult(steps, wall, losses, [path], mass)


def pretrain_more(cfg: ZooConfig, out_root: Path, log: Log) -> PhaseResult:
    """Stage 2: continue from the stored ``graph-pt`` (fresh AdamW, ``cfg.pretrain_more`` schedule)."""
    if cfg.pretrain_more is None:
        raise ValueError("config field 'pretrain_more' is not set")
    pt_dir = out_root / PT_NAME
    prev = json.loads((pt_dir / "covbench_train.json").read_text())
    model = load_checkpoint(pt_dir).train()
    torch.manual_seed(_seed(cfg, _PRETRAIN_DATA) + 100)
    steps, wall, losses, mass = _pretrain_loop(model, cfg, cfg.pretrain_more, 2, log)
    first = prev.get("stages") or [{"stage": 1, "steps": prev["pretrain_steps"], "wall_s": prev["wall_s"],
                                    "valid_mass_heldout": prev["valid_mass_heldout"]}]
    stages = [first[0], {"stage": 2, "steps": steps, "wall_s": round(wall, 1),
                                    "valid_mass_heldout": mass}]
    path = _save_pt(model, cfg, out_root, stages, log)
    return PhaseResult(steps, wall, losses, [path], mass)


def finetune(cfg: ZooConfig, out_root: Path, log: Log) -> PhaseResult:
    """Fine-tune the saved ``graph-pt`` (as stored, after rounding) online on the 90/10 mixture."""
    spec, m = cfg.finetune, cfg.graph.m
    pad_id = vocabulary(m)[PAD]
    pt_dir = out_root / PT_NAME
    pt_info = json.loads((pt_dir / "covbench_train.json").read_text())
    model = load_checkpoint(pt_dir).train()
    torch.manual_seed(_seed(cfg, _FINETUNE_DATA))
    opt = _optimizer(model, spec.lr, spec.weight_decay)
    stream = DocStream(graph_config(cfg), FIG1_FINETUNE, seed=_seed(cfg, _FINETUNE_DATA))
    save_at = set(ft_checkpoint_steps(spec))
    t0, window, losses, paths = time.time(), [], [], []
    for step in range(1, spec.steps + 1):
        window.append(_step(model, opt, stream, spec.batch_size, m, pad_id, spec.grad_clip))
        if step in save_at:
            losses.append(sum(window) / len(window))
            wall = time.time() - t0
            info = {"phase": "finetune", "step": step, "finetune_step": step,
                    "pretrain_steps": pt_info["pretrain_steps"], "lr": spec.lr, "wall_s": round(wall, 1),
                    "pretrain_wall_s": pt_info["wall_s"], "config": cfg.model_dump(), "seed": cfg.seed}
            paths.append(save_checkpoint(model, out_root / ft_name(step), m, info, cfg.save_dtype))
            log({"phase": "finetune", "step": step, "loss": losses[-1], "wall_s": round(wall, 1),
                 "saved": str(paths[-1])})
            window = []
    return PhaseResult(spec.steps, time.time() - t0, losses, paths)


def train(cfg: ZooConfig, out_root: str | Path, log: Log, phases: tuple[str, ...] = ("pretrain", "finetune"),
          ) -> dict[str, PhaseResult]:
    """Run the requested phases in order, writing checkpoints under ``out_root``."""
    torch.set_num_threads(cfg.threads)
    root = Path(out_root)
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, PhaseResult] = {}
    if "pretrain" in phases:
        results["pretrain"] = pretrain(cfg, root, log)
    if "pretrain-more" in phases:
        results["pretrain"] = pretrain_more(cfg, root, log)
    if "finetune" in phases:
        results["finetune"] = finetune(cfg, root, log)
    return results
