"""The Fig. 2 trainer: one model per (method, H, seed), trained online on the Fig. 2 mixture (docs/zoo.md).

A step draws K fresh docs (classes 0.94/0.05/0.01), computes the per-sequence summed response-token
log-likelihoods, weights them (1, or the truncation weights α_h of paper Eq. 24–26 from the exact teacher
π_D, :mod:`covbench.zoo.teacher`), averages over the K sequences, and takes the method's step
(:mod:`covbench.zoo.updates`). Docs of one class have prompts of (nearly) one length, so a batch is run
as one micro-batch per class; the gradients add up to the batch mean exactly.

At ``curve_steps`` the model is scored on a small stratified curve set (µ-weighted KL and Cov_N, the
Fig. 2 panels over training); at the end the weights are saved (float16), loaded back, and scored on
the validation set (``n_val_per_class`` prompts per class, the same docs for every method and seed at
one H). Both go into the run's ``covbench_train.json``.

Determinism: the init, the training docs, the curve docs and the validation docs each come from their
own seed; for a fixed thread count a run repeats bit for bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from covbench.graphs.generator import FIG2_MIXTURE, GraphConfig, GraphDoc, fig2_config, stratified_docs
from covbench.graphs.tokenizer import PAD, vocabulary

from .data import DocStream, collate, encode
from .fig2_config import Fig2Config, MethodSpec, curve_steps, run_name
from .fig2_eval import Fig2Metrics, evaluate_docs
from .model import build_model, load_checkpoint, save_checkpoint
from .teacher import next_token_distributions, teacher_tensor, token_kl
from .updates import StepInfo, rescale_gradient, truncation_weights

Log = Callable[[dict[str, Any]], None]
BASE_NAME = "fig2-base"
_BASE_METHOD = MethodSpec(optimizer="adamw", grad="plain", lr=1.0)  # lr is set per step from BaseSpec


@dataclass(frozen=True)
class StepStats:
    """One training step: mean summed NLL per sequence (nats), and the update's norm and multiplier."""

    nll: float
    weighted_nll: float  # Σ_h w_h·(−log π) per sequence, batch mean (= nll unless truncated)
    update: StepInfo


@dataclass(frozen=True)
class RunResult:
    name: str
    path: Path
    steps: int
    train_cpu_s: float
    train_wall_s: float
    validation: Fig2Metrics


def seeds_for(seed: int, h: int) -> dict[str, int]:
    """Independent seeds of one run's streams (init, training docs) and of the shared curve set."""
    return {"init": seed * 1000 + h, "data": seed * 1000 + 100 + h, "curve": 30_000 + h}


def graph_config(cfg: Fig2Config, h: int) -> GraphConfig:
    return fig2_config(h, m=cfg.m)


def validation_docs(cfg: Fig2Config, h: int, n_per_class: int | None = None) -> list[GraphDoc]:
    """The stratified validation set at H: prior/count weights, so weighted means are µ-weighted."""
    n = cfg.n_val_per_class if n_per_class is None else n_per_class
    return stratified_docs(graph_config(cfg, h), FIG2_MIXTURE, n, seed=cfg.val_seed + h)


def _by_class(docs: Sequence[GraphDoc]) -> list[list[GraphDoc]]:
    groups: dict[str, list[GraphDoc]] = {}
    for d in docs:
        groups.setdefault(d.cls, []).append(d)
    return [groups[c] for c in sorted(groups)]


def _response_logp(model: PreTrainedModel, docs: Sequence[GraphDoc], m: int, pad_id: int,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-softmax at the response positions ``[B, R, V]`` and the target tokens ``[B, R]`` (R = H + 2)."""
    examples = [encode(d, m) for d in docs]
    b = collate(examples, pad_id)
    logits = model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
    r = len(examples[0].response)
    # Position t predicts token t + 1: response token k of example i is predicted at len(prompt_i) − 1 + k.
    pos = torch.tensor([[len(e.prompt) - 1 + k for k in range(r)] for e in examples])
    rows = torch.arange(len(examples))[:, None]
    logp = torch.log_softmax(logits[rows, pos].float(), dim=-1)
    targets = torch.tensor([list(e.response) for e in examples])
    return logp, targets


def _teacher(docs: Sequence[GraphDoc], m: int, width: int, vocab_size: int) -> torch.Tensor:
    vocab = vocabulary(m)

    def ids(text: str) -> tuple[int, ...]:
        return tuple(vocab[t] for t in text.split())

    dists = [next_token_distributions([ids(y) for y in d.support], d.support_logp, ids(d.target))
             for d in docs]
    return teacher_tensor(dists, vocab_size, width)


def train_step(model: PreTrainedModel, opt: torch.optim.Optimizer, docs: Sequence[GraphDoc],
               method: MethodSpec, m: int, pad_id: int, *, per_token: bool = False,
               clip: float | None = None) -> StepStats:
    """One step of ``method`` on ``docs``: loss = −(1/K) Σ_seq Σ_h w_h log π_θ(y_h | x, y_{<h}).

    ``per_token`` divides the loss by the response length (stage 1's per-token mean; docs of one batch
    share H); ``clip`` clips the global gradient norm before the step (stage 1 only).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt.zero_grad(set_to_none=True)
    k = len(docs)
    nll = weighted = 0.0
    for group in _by_class(docs):
        logp, targets = _response_logp(model, group, m, pad_id)
        tok = logp.gather(-1, targets[..., None])[..., 0]  # [B, R] log π_θ(y_h | prefix)
        if method.grad == "truncated":
            a = token_kl(_teacher(group, m, targets.shape[1], logp.shape[-1]), logp.detach())
            w = truncation_weights(a, method.trunc_cap)
        else:
            w = torch.ones_like(tok)
        loss = -(w * tok).sum() / k / (tok.shape[1] if per_token else 1)
        loss.backward()
        nll += float(-tok.detach().sum()) / k
        weighted += float(-(w * tok).detach().sum()) / k
    info = rescale_gradient(params, method.grad, method.damping)
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    return StepStats(nll, weighted, info)


def make_optimizer(model: PreTrainedModel, method: MethodSpec) -> torch.optim.Optimizer:
    if method.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=method.lr, betas=(0.9, 0.98),
                                 weight_decay=method.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=method.lr, momentum=method.momentum)


def train_run(cfg: Fig2Config, method_name: str, h: int, seed: int, out_root: str | Path, log: Log,
              ) -> RunResult:
    """Train, save (``cfg.save_dtype``) and validate one run; returns where it went and its numbers."""
    if method_name not in cfg.methods:
        raise ValueError(f"unknown method {method_name!r}; the preset has {sorted(cfg.methods)}")
    torch.set_num_threads(cfg.threads)
    method, name = cfg.methods[method_name], run_name(method_name, h, seed)
    m, pad_id, gcfg, seeds = cfg.m, vocabulary(cfg.m)[PAD], graph_config(cfg, h), seeds_for(seed, h)
    model = _initial_model(cfg, out_root, seeds["init"])
    opt = make_optimizer(model, method)
    stream = DocStream(gcfg, FIG2_MIXTURE, seed=seeds["data"])
    curve_docs = stratified_docs(gcfg, FIG2_MIXTURE, cfg.n_curve_per_class, seed=seeds["curve"])
    at = set(curve_steps(cfg.steps, cfg.n_curve))
    curve: list[dict[str, Any]] = []
    train_cpu = train_wall = 0.0
    window: list[StepStats] = []
    for step in range(1, cfg.steps + 1):
        c0, w0 = time.process_time(), time.time()
        for group in opt.param_groups:
            group["lr"] = method.lr * min(1.0, step / method.warmup) if method.warmup else method.lr
        window.append(train_step(model, opt, stream.take(cfg.batch_size), method, m, pad_id))
        train_cpu += time.process_time() - c0
        train_wall += time.time() - w0
        diverged = not (math.isfinite(window[-1].nll) and math.isfinite(window[-1].update.grad_norm)
                        and _finite(model))
        if step in at or diverged:
            point = _curve_point(model, curve_docs, m, pad_id, step, window)
            curve.append(point)
            log({"run": name, **point, "train_cpu_s": round(train_cpu, 1)})
            window = []
        if diverged:  # the loss or the weights are no longer finite: nothing left to train
            break
    info = {"run": name, "method": method_name, "method_spec": method.model_dump(), "H": h, "seed": seed,
            "step": step, "steps": cfg.steps, "diverged": diverged, "batch_size": cfg.batch_size,
            "train_cpu_s": round(train_cpu, 1), "train_wall_s": round(train_wall, 1), "curve": curve,
            "seeds": seeds, "init": BASE_NAME if cfg.base is not None else "random",
            "config": cfg.model_dump(mode="json")}
    path = save_checkpoint(model, Path(out_root) / name, m, info, cfg.save_dtype)
    stored = load_checkpoint(path)  # every reported number is measured on the stored, rounded weights
    c0 = time.process_time()
    val = evaluate_docs(stored, validation_docs(cfg, h), m, pad_id)
    diverged = diverged or math.isnan(val.kl)  # e.g. weights that overflow float16 when stored
    info |= {"validation": val.to_dict(), "validation_cpu_s": round(time.process_time() - c0, 1),
             "diverged": diverged}
    save_checkpoint(stored, path, m, info, cfg.save_dtype)  # same weights (already rounded), with the numbers
    log({"run": name, "saved": str(path), "train_cpu_s": info["train_cpu_s"], "kl": val.kl,
         "cov@16": val.cov.get("cov@16", math.nan), "diverged": diverged})
    return RunResult(name, path, step, train_cpu, train_wall, val)


def _finite(model: PreTrainedModel) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _initial_model(cfg: Fig2Config, out_root: str | Path, init_seed: int) -> PreTrainedModel:
    """Stage 2 starts from the stored ``fig2-base`` (when the config has a base), else a seeded init."""
    if cfg.base is None:
        return build_model(cfg.model, cfg.m, seed=init_seed).train()
    base_dir = Path(out_root) / BASE_NAME
    if not (base_dir / "covbench_train.json").exists():
        raise FileNotFoundError(f"{base_dir}: no stage-1 model; run 'covbench zoo train --preset {cfg.name} "
                                f"--phase base' first")
    return load_checkpoint(base_dir).train()


def base_lr(cfg: Fig2Config, step: int) -> float:
    """Stage 1's learning rate: linear warmup, then cosine decay to ``min_lr_ratio``·lr at the last step."""
    spec = cfg.base
    if spec is None:
        raise ValueError("config field 'base' is not set")
    if step < spec.warmup:
        return spec.lr * step / spec.warmup
    progress = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
    r = spec.min_lr_ratio
    return spec.lr * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_base(cfg: Fig2Config, out_root: str | Path, log: Log) -> RunResult:
    """Stage 1: AdamW on the Fig. 2 mixture, one H per step in turn over the grid; saved as ``fig2-base``."""
    spec = cfg.base
    if spec is None:
        raise ValueError("config field 'base' is not set")
    torch.set_num_threads(cfg.threads)
    m, pad_id = cfg.m, vocabulary(cfg.m)[PAD]
    model = build_model(cfg.model, m, seed=spec.seed).train()
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.98), weight_decay=spec.weight_decay)
    streams = {h: DocStream(graph_config(cfg, h), FIG2_MIXTURE, seed=50_000 + spec.seed * 100 + h)
               for h in cfg.hs}
    curve_docs = {h: stratified_docs(graph_config(cfg, h), FIG2_MIXTURE, cfg.n_curve_per_class,
                                     seed=seeds_for(0, h)["curve"]) for h in cfg.hs}
    at = set(curve_steps(spec.steps, cfg.n_curve))
    curve: list[dict[str, Any]] = []
    train_cpu = train_wall = 0.0
    window: list[StepStats] = []
    for step in range(1, spec.steps + 1):
        c0, w0 = time.process_time(), time.time()
        for group in opt.param_groups:
            group["lr"] = base_lr(cfg, step)
        h = cfg.hs[(step - 1) % len(cfg.hs)]
        window.append(train_step(model, opt, streams[h].take(spec.batch_size), _BASE_METHOD, m, pad_id,
                                 per_token=True, clip=spec.grad_clip))
        train_cpu += time.process_time() - c0
        train_wall += time.time() - w0
        if step in at:
            points = {str(hh): _curve_point(model, curve_docs[hh], m, pad_id, step, []) for hh in cfg.hs}
            curve.append({"step": step, "by_H": points})
            log({"run": BASE_NAME, "step": step, "train_cpu_s": round(train_cpu, 1),
                 **{f"kl_h{hh}": round(p["kl"], 3) for hh, p in points.items()},
                 **{f"cov16_h{hh}": round(p["cov@16"], 3) for hh, p in points.items()}})
            window = []
    info = {"run": BASE_NAME, "stage": 1, "step": spec.steps, "steps": spec.steps, "hs": list(cfg.hs),
            "train_cpu_s": round(train_cpu, 1), "train_wall_s": round(train_wall, 1), "curve": curve,
            "config": cfg.model_dump(mode="json")}
    path = save_checkpoint(model, Path(out_root) / BASE_NAME, m, info, cfg.save_dtype)
    stored = load_checkpoint(path)
    c0 = time.process_time()
    vals = {str(h): evaluate_docs(stored, validation_docs(cfg, h), m, pad_id) for h in cfg.hs}
    info |= {"validation_by_H": {h: v.to_dict() for h, v in vals.items()},
             "validation_cpu_s": round(time.process_time() - c0, 1)}
    save_checkpoint(stored, path, m, info, cfg.save_dtype)
    log({"run": BASE_NAME, "saved": str(path), "train_cpu_s": info["train_cpu_s"],
         **{f"kl_h{h}": v.kl for h, v in vals.items()},
         **{f"cov16_h{h}": v.cov["cov@16"] for h, v in vals.items()}})
    return RunResult(BASE_NAME, path, spec.steps, train_cpu, train_wall, vals[str(cfg.hs[-1])])


def _curve_point(model: PreTrainedModel, docs: Sequence[GraphDoc], m: int, pad_id: int, step: int,
                 window: Sequence[StepStats]) -> dict[str, Any]:
    model.eval()
    metrics = evaluate_docs(model, docs, m, pad_id)
    model.train()
    n = len(window)
    return {"step": step, "train_nll": sum(s.nll for s in window) / n if n else math.nan,
            "grad_norm": sum(s.update.grad_norm for s in window) / n if n else math.nan,
            "kl": metrics.kl, "cov@16": metrics.cov.get("cov@16", math.nan),
            "per_class": {c: {"kl": v["kl"], "cov@16": v["cov@16"]} for c, v in metrics.per_class.items()}}


def grid(cfg: Fig2Config, methods: Sequence[str] | None = None, hs: Sequence[int] | None = None,
         seeds: Sequence[int] | None = None) -> list[tuple[str, int, int]]:
    """The (method, H, seed) runs selected from the preset's grid, methods outermost, then H, then seed."""
    for mth in methods or []:
        if mth not in cfg.methods:
            raise ValueError(f"--method {mth!r}: the preset has {sorted(cfg.methods)}")
    for h in hs or []:
        if h not in cfg.hs:
            raise ValueError(f"--h {h}: the preset's H grid is {list(cfg.hs)}")
    return [(mth, h, s) for mth in (methods or list(cfg.methods)) for h in (hs or cfg.hs)
            for s in (seeds or cfg.seeds)]


def train_grid(cfg: Fig2Config, out_root: str | Path, log: Log, methods: Sequence[str] | None = None,
               hs: Sequence[int] | None = None, seeds: Sequence[int] | None = None) -> list[RunResult]:
    """Every selected run of the grid (:func:`grid`), one after the other."""
    picked = grid(cfg, methods, hs, seeds)
    Path(out_root).mkdir(parents=True, exist_ok=True)
    return [train_run(cfg, mth, h, s, out_root, log) for mth, h, s in picked]
