"""Build, save and load the zoo's small causal LMs (HF format: safetensors + the graph tokenizer).

The model is a transformers ``LlamaForCausalLM`` (rotary positions) or ``GPT2LMHeadModel`` (absolute
positions), so lm-eval's stock ``hf`` backend and ``AutoModelForCausalLM`` load a checkpoint offline.
Weights are stored as float16 by default (half the bytes: the whole shipped family must fit in 20 MB);
they are loaded back as float32, and every number in docs/zoo.md is measured on the stored, rounded
weights. Each folder also holds ``covbench_train.json``: config, seed, step, wall time, versions.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
)

from covbench.graphs.tokenizer import EOS, PAD, save_tokenizer, vocabulary

from .config import ModelSpec

TRAIN_INFO = "covbench_train.json"


def build_model(spec: ModelSpec, m: int, seed: int) -> PreTrainedModel:
    """A randomly initialised model for the graph vocabulary of node ids 0..m-1 (seeded init)."""
    vocab = vocabulary(m)
    torch.manual_seed(seed)
    ids = {"bos_token_id": None, "eos_token_id": vocab[EOS], "pad_token_id": vocab[PAD]}
    if spec.arch == "llama":
        cfg: Any = LlamaConfig(vocab_size=len(vocab), hidden_size=spec.d_model, intermediate_size=spec.d_ff,
                               num_hidden_layers=spec.n_layer, num_attention_heads=spec.n_head,
                               num_key_value_heads=spec.n_head, max_position_embeddings=spec.max_positions,
                               tie_word_embeddings=True, **ids)
        return LlamaForCausalLM(cfg)
    cfg = GPT2Config(vocab_size=len(vocab), n_positions=spec.max_positions, n_embd=spec.d_model,
                     n_layer=spec.n_layer, n_head=spec.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, **ids)
    return GPT2LMHeadModel(cfg)


def save_checkpoint(model: PreTrainedModel, out_dir: str | Path, m: int, info: dict[str, Any],
                    dtype: str = "float16") -> Path:
    """Write weights (``dtype``), config, the graph tokenizer and ``covbench_train.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(getattr(torch, dtype)).clone() for k, v in model.state_dict().items()}
    model.save_pretrained(out, state_dict=state, safe_serialization=True)
    # Record the stored dtype in config.json so loaders that follow it ("auto") know what they read.
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["dtype"] = dtype
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    save_tokenizer(out, m, model_max_length=model.config.max_position_embeddings
                   if hasattr(model.config, "max_position_embeddings") else model.config.n_positions)
    (out / TRAIN_INFO).write_text(json.dumps(_with_versions(info), indent=2, sort_keys=True) + "\n")
    return out


def load_checkpoint(path: str | Path) -> PreTrainedModel:
    """Load a checkpoint folder as float32 on the CPU, in eval mode."""
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    return model.eval()


def read_train_info(path: str | Path) -> dict[str, Any]:
    """The ``covbench_train.json`` of a checkpoint folder."""
    return json.loads((Path(path) / TRAIN_INFO).read_text())


def _with_versions(info: dict[str, Any]) -> dict[str, Any]:
    import transformers

    import covbench

    return {**info, "versions": {"covbench": getattr(covbench, "__version__", "unknown"),
                                 "torch": torch.__version__, "transformers": transformers.__version__,
                                 "python": platform.python_version()},
            "machine": f"{platform.machine()} {platform.system()} ({torch.get_num_threads()} threads)"}
