"""The word-level graph tokenizer: ids, eos, round trip through save_pretrained / AutoTokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from covbench.graphs import generator as gen
from covbench.graphs.tokenizer import EOS, PAD, UNK, build_tokenizer, save_tokenizer, vocabulary


def test_vocabulary_layout_node_ids_first() -> None:
    vocab = vocabulary(32)
    assert [vocab[str(v)] for v in range(32)] == list(range(32))
    assert [vocab[t] for t in ("|", "/", "=", EOS, PAD, UNK)] == list(range(32, 38))
    with pytest.raises(ValueError):
        vocabulary(0)


def test_prompt_and_target_tokenize_one_token_per_word(tmp_path: Path) -> None:
    save_tokenizer(tmp_path, 32)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert tok.eos_token == EOS and tok.eos_token_id == 35 and tok.pad_token_id == 36
    for doc in gen.sample_docs(gen.fig1_config(), gen.FIG1_PRETRAIN, n=20, seed=0):
        ids = tok(doc.prompt)["input_ids"]
        assert len(ids) == len(doc.prompt.split()) and tok.unk_token_id not in ids
        target = tok(doc.target)["input_ids"]
        assert target == [int(v) for v in doc.target.split()]
        assert tok.decode(target) == doc.target.strip()
        assert tok.decode(ids) == doc.prompt


def test_unknown_word_maps_to_unk() -> None:
    tok = build_tokenizer(4)
    assert tok("1 9 x")["input_ids"] == [1, tok.unk_token_id, tok.unk_token_id]
