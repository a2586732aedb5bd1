"""Tiny GPT-2 checkpoints with the graph tokenizer, for tests that need a real model through lm-eval.

``build_tiny_gpt2`` saves a randomly initialised model (seeded, a fraction of a second);
``warm_tiny_gpt2`` additionally fits it for a few hundred steps on the graph generator, so its
probabilities of valid paths are far from 0 and 1 (tests that compare exact and sampled Pass@N need that).
Both write a folder that ``lm_eval --model hf --model_args pretrained=DIR`` and
``AutoModelForCausalLM.from_pretrained`` load offline.

>>> import tempfile
>>> d = build_tiny_gpt2(tempfile.mkdtemp(), m=8, n_positions=64)
>>> sorted(p.name for p in d.iterdir())[:2]
['config.json', 'generation_config.json']
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from covbench.graphs.generator import FIG1_PRETRAIN, GraphConfig, sample_docs
from covbench.graphs.tokenizer import EOS, PAD, build_tokenizer, vocabulary


def _config(m: int, n_layer: int, n_embd: int, n_head: int, n_positions: int) -> GPT2Config:
    vocab = vocabulary(m)
    return GPT2Config(vocab_size=len(vocab), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                      n_head=n_head, bos_token_id=vocab[EOS], eos_token_id=vocab[EOS],
                      pad_token_id=vocab[PAD])


def build_tiny_gpt2(out_dir: str | Path, *, m: int = 128, n_layer: int = 2, n_embd: int = 64,
                    n_head: int = 2, n_positions: int = 512, seed: int = 0) -> Path:
    """Save a randomly initialised GPT-2 plus the graph tokenizer (node ids 0..m-1) into ``out_dir``.

    Defaults cover both graph families: m = 128 node ids, 512 positions (a Fig. 2 H = 24 prompt plus
    its response is about 470 tokens).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(_config(m, n_layer, n_embd, n_head, n_positions))
    model.save_pretrained(out)
    build_tokenizer(m, model_max_length=n_positions).save_pretrained(out)
    return out


def sharpen_gpt2(out_dir: str | Path, *, std: float, seed: int) -> Path:
    """Re-draw every weight matrix of the GPT-2 saved in ``out_dir`` from N(0, std²) (seeded) and save it
    back: next-token distributions far from uniform and dependent on position, so a padding, position-id
    or policy-transform bug changes them measurably (the tests' "sharp" models)."""
    out = Path(out_dir)
    model = GPT2LMHeadModel.from_pretrained(out)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, std)
    model.save_pretrained(out)
    return out


def warm_tiny_gpt2(out_dir: str | Path, *, cfg: GraphConfig, mixture: dict[str, float] = FIG1_PRETRAIN,
                   steps: int = 300, batch_size: int = 32, lr: float = 3e-3, n_layer: int = 2,
                   n_embd: int = 64, n_head: int = 2, seed: int = 0) -> Path:
    """Build a tiny GPT-2 for ``cfg`` and fit it with response-only cross-entropy on fresh docs.

    Not the zoo trainer: a few hundred Adam steps, just enough that the model puts real but imperfect
    mass on valid paths. Deterministic for a given seed on one machine (torch CPU kernels).
    """
    out = Path(out_dir)
    tok = build_tokenizer(cfg.m)
    docs = sample_docs(cfg, mixture, n=steps * batch_size, seed=seed)
    prompts = [tok(d.prompt)["input_ids"] for d in docs]
    responses = [tok(d.target)["input_ids"] for d in docs]
    width = max(len(p) + len(r) for p, r in zip(prompts, responses))
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(_config(cfg.m, n_layer, n_embd, n_head, n_positions=_round_up(width)))
    optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    model.train()
    for step in range(steps):
        batch = order[step * batch_size:(step + 1) * batch_size]
        ids, labels = _batch([prompts[i] for i in batch], [responses[i] for i in batch], tok.pad_token_id)
        loss = model(input_ids=ids, labels=labels).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    model.save_pretrained(out)
    build_tokenizer(cfg.m, model_max_length=model.config.n_positions).save_pretrained(out)
    return out


def _round_up(n: int, to: int = 64) -> int:
    return -(-n // to) * to


def _batch(prompts: list[list[int]], responses: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded input ids and labels that score only the response tokens (-100 elsewhere)."""
    width = max(len(p) + len(r) for p, r in zip(prompts, responses))
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    labels = torch.full((len(prompts), width), -100, dtype=torch.long)
    for row, (p, r) in enumerate(zip(prompts, responses)):
        seq = p + r
        ids[row, :len(seq)] = torch.tensor(seq)
        labels[row, len(p):len(seq)] = torch.tensor(r)
    return ids, labels
