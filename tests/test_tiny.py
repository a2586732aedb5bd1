"""covbench.tiny: a random tiny GPT-2 with the graph tokenizer that transformers and lm-eval load offline."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from covbench.graphs import generator as gen
from covbench.tiny import build_tiny_gpt2


def test_build_tiny_gpt2_saves_a_loadable_seeded_model(tmp_path: Path) -> None:
    a = build_tiny_gpt2(tmp_path / "a", m=32, n_positions=128, seed=1)
    b = build_tiny_gpt2(tmp_path / "b", m=32, n_positions=128, seed=1)
    model = AutoModelForCausalLM.from_pretrained(a)
    tok = AutoTokenizer.from_pretrained(a)
    assert model.config.vocab_size == len(tok) == 38 and model.config.n_positions == 128
    assert model.config.eos_token_id == tok.eos_token_id
    other = AutoModelForCausalLM.from_pretrained(b)
    for (name, p), q in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(p, q), name
    doc = gen.sample_docs(gen.fig1_config(), gen.FIG1_FINETUNE, n=1, seed=0)[0]
    ids = torch.tensor([tok(doc.prompt + doc.target)["input_ids"]])
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], 38) and torch.isfinite(logits).all()


def test_default_tiny_covers_both_graph_families(tiny_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    doc = max(gen.stratified_docs(gen.fig2_config(24), gen.FIG2_MIXTURE, 2, seed=0), key=lambda d: len(d.prompt))
    ids = tok(doc.prompt + doc.target)["input_ids"]
    assert tok.unk_token_id not in ids and len(ids) <= model.config.n_positions
