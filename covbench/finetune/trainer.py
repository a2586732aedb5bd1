"""The LoRA trainer: adapter on a frozen base, answer-only loss, shared few-shot prefix, checkpoints.

Steps, in order (:func:`train`):

1. Load the base model (:mod:`covbench.finetune.base`) and the ``arith_ll`` task through lm-eval;
   collect the held-out facts of every evaluation doc (:func:`covbench.finetune.data.held_out`).
2. Wrap the base with a peft LoRA adapter (``cfg.lora``; A initialised from ``torch.manual_seed(seed)``,
   B = 0, so step 0 is the base model exactly). Only the adapter trains.
3. Each step draws ``batch_size`` fresh training problems from the held-out-free stream
   (:func:`covbench.arith.training.problem_stream`), renders them as lm-eval renders an ``arith_ll``
   request, and takes one AdamW step on the mean cross-entropy of the answer tokens y* = " 68\\n"
   (:func:`answer_loss`). Gradients are clipped; the lr warms up then follows a cosine.
4. At each log-spaced step of :func:`covbench.finetune.config.checkpoint_steps` the adapter is saved as
   ``<family>-<step:07d>/`` (:func:`save_adapter`: ``adapter_model.safetensors`` in ``save_dtype``,
   peft's ``adapter_config.json``, and ``covbench_train.json``); every ``log_every`` steps one JSON line
   goes to the log.

Determinism: the adapter init, the data stream and the CPU kernels are seeded or deterministic, there is
no dropout, and nothing depends on wall time, so with the same thread count (``cfg.threads``) two runs
write byte-identical ``adapter_model.safetensors`` (``tests/test_finetune_trainer.py`` checks it).
"""

from __future__ import annotations

import copy
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from covbench.arith.training import fact, problem_stream, training_seed
from covbench.finetune.base import Base, load_base
from covbench.finetune.config import FinetuneConfig, checkpoint_steps, lr_at
from covbench.finetune.data import (
    IGNORE,
    SharedPrefixBatch,
    collate,
    encode_pair,
    held_out,
    load_eval_task,
    render,
)

TRAIN_INFO = "covbench_train.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
Log = Callable[[dict[str, Any]], None]


def checkpoint_name(family: str, step: int) -> str:
    """Folder name of the adapter saved after ``step`` optimiser steps (zero-padded: names sort by step).

    >>> checkpoint_name("smollm2-lora", 44)
    'smollm2-lora-0000044'
    """
    return f"{family}-{step:07d}"


@dataclass(frozen=True)
class TrainResult:
    checkpoints: list[Path]
    wall_s: float
    losses: list[float]  # mean answer-token loss per logged window


def answer_loss(model: Any, batch: SharedPrefixBatch) -> torch.Tensor:
    """Mean cross-entropy (nats per answer token) of the batch's y* tokens.

    The shared prefix runs once with batch size 1 (with gradients: the adapter changes its keys and
    values), its cache is broadcast to B rows with ``expand`` (no copy; the backward pass sums the rows'
    gradients into it), the suffixes run on top of it, and the LM head runs on the last K + 1 positions
    only (``logits_to_keep``): logits at positions T−K−1 … T−2 predict the K label positions.
    """
    cache = None
    if batch.prefix_ids.shape[1]:
        cache = model(input_ids=batch.prefix_ids, use_cache=True).cache
        rows = batch.input_ids.shape[0]
        for layer in cache.layers:
            layer.keys = layer.keys.expand(rows, -1, -1, -1)
            layer.values = layer.values.expand(rows, -1, -1, -1)
    k = batch.labels.shape[1]
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                position_ids=batch.position_ids, cache=cache, use_cache=cache is not None,
                logits_to_keep=k + 1)
    logits = out.logits[:, :-1].float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.labels.reshape(-1),
                           ignore_index=IGNORE)


def add_lora(model: Any, cfg: FinetuneConfig) -> Any:
    """Wrap ``model`` in a peft LoRA model (seeded init, no dropout, no bias)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(cfg.seed)
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, target_modules=list(cfg.lora.targets),
                      lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def save_adapter(model: Any, out_dir: Path, info: dict[str, Any], dtype: str, base_ref: str) -> Path:
    """Write the adapter weights (``dtype``), peft's ``adapter_config.json`` and ``covbench_train.json``.

    ``base_ref`` goes into the adapter config's ``base_model_name_or_path`` (peft does not use it when the
    base model is given, as in lm-eval's HFLM ``peft=``); it names the base portably, never a local path.
    """
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    # save_embedding_layers=False: the embeddings are not adapted, and "auto" would look the base up by name
    state = {k: v.detach().to(getattr(torch, dtype)).contiguous()
             for k, v in get_peft_model_state_dict(model, save_embedding_layers=False).items()}
    save_file(state, str(out_dir / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    peft_cfg = copy.deepcopy(model.peft_config["default"])
    peft_cfg.base_model_name_or_path = base_ref
    # peft keeps target_modules as a set, whose order follows the per-process string hash: sort it, so
    # the file's bytes do not depend on PYTHONHASHSEED
    peft_cfg.target_modules = sorted(peft_cfg.target_modules)
    peft_cfg.save_pretrained(str(out_dir))
    (out_dir / TRAIN_INFO).write_text(json.dumps(_with_versions(info), indent=2, sort_keys=True) + "\n")
    return out_dir


def _with_versions(info: dict[str, Any]) -> dict[str, Any]:
    import lm_eval
    import peft
    import transformers

    import covbench

    return {**info, "versions": {"covbench": covbench.__version__, "torch": torch.__version__,
                                 "transformers": transformers.__version__, "peft": peft.__version__,
                                 "lm_eval": getattr(lm_eval, "__version__", "unknown"),
                                 "python": platform.python_version()},
            "machine": f"{platform.machine()} {platform.system()} ({torch.get_num_threads()} threads)"}


def _base_ref(cfg: FinetuneConfig, base: Base) -> str:
    if cfg.base.kind == "gguf":
        return f"{cfg.base.pretrained}/{cfg.base.gguf_file}"
    return f"tiny-llama(d={cfg.base.d_model}, layers={cfg.base.n_layer}, seed={cfg.seed})"


def train(cfg: FinetuneConfig, out_root: str | Path, log: Log, work_dir: str | Path | None = None,
          tasks_dir: Path | None = None) -> TrainResult:
    """Train ``cfg`` and save its adapters under ``out_root``; ``work_dir`` holds a built tiny base."""
    torch.set_num_threads(cfg.threads)
    root = Path(out_root)
    root.mkdir(parents=True, exist_ok=True)
    t_load = time.time()
    base = load_base(cfg.base, work_dir or root, cfg.seed)
    task = load_eval_task("arith_ll", tasks_dir)
    held = held_out(cfg.data.eval_tasks, tasks_dir)
    model = add_lora(base.model, cfg)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    stream = problem_stream(cfg.seed, held.facts)
    pad_id = base.tokenizer.pad_token_id if base.tokenizer.pad_token_id is not None else 0
    log({"event": "start", "config": cfg.name, "load_s": round(time.time() - t_load, 1),
         "trainable_params": sum(p.numel() for p in trainable), "held_out_facts": len(held.facts),
         "held_out_docs": held.n_docs, "data_seed": training_seed(cfg.seed)})
    save_at = set(checkpoint_steps(cfg.train))
    seen_questions: set[str] = set()
    t0, cpu0, window, losses, paths, examples = time.time(), time.process_time(), [], [], [], 0
    for step in range(1, cfg.train.steps + 1):
        problems = [next(stream) for _ in range(cfg.train.batch_size)]
        overlap = [p.question for p in problems if p.question in held.questions or fact(p) in held.facts]
        if overlap:  # cannot happen (the stream rejects held-out facts); a guard against future edits
            raise RuntimeError(f"training problem equals an evaluation doc: {overlap[0]!r}")
        seen_questions.update(p.question for p in problems)
        examples += len(problems)
        pairs = [encode_pair(base.tokenizer, *render(task, p, cfg.data.few_shot_context)) for p in problems]
        batch = collate(pairs, pad_id)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg.train, step)
        loss = answer_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, cfg.train.grad_clip)
        opt.step()
        window.append(float(loss.detach()))
        if step % cfg.train.log_every == 0 or step in save_at:
            losses.append(sum(window) / len(window))
            log({"event": "step", "step": step, "loss": round(losses[-1], 5), "lr": lr_at(cfg.train, step),
                 "examples": examples, "prefix_tokens": int(batch.prefix_ids.shape[1]),
                 "suffix_width": int(batch.input_ids.shape[1]), "wall_s": round(time.time() - t0, 1)})
            window = []
        if step in save_at:
            info = {"step": step, "seed": cfg.seed, "config": cfg.model_dump(mode="json"),
                    "loss_window": losses[-1], "lr": lr_at(cfg.train, step),
                    "wall_s": round(time.time() - t0, 1), "cpu_s": round(time.process_time() - cpu0, 1),
                    "examples_seen": examples,
                    "distinct_questions_seen": len(seen_questions), "data_seed": training_seed(cfg.seed),
                    "held_out_facts": len(held.facts), "held_out_docs": held.n_docs,
                    "base": {"pretrained": cfg.base.pretrained, "gguf_file": cfg.base.gguf_file,
                             "sha256": base.sha256}}
            name = checkpoint_name(cfg.family, step)
            paths.append(save_adapter(model, root / name, info, cfg.save_dtype, _base_ref(cfg, base)))
            log({"event": "saved", "step": step, "path": name, "wall_s": info["wall_s"]})
    wall = time.time() - t0
    log({"event": "done", "steps": cfg.train.steps, "wall_s": round(wall, 1),
         "cpu_s": round(time.process_time() - cpu0, 1), "examples": examples,
         "distinct_questions": len(seen_questions)})
    return TrainResult(paths, wall, losses)
