"""Word-level tokenizer of the graph tasks, saved as a transformers tokenizer (docs/coverage-principle.md#graph-task, "numeral").

Vocabulary, in id order: the node ids ``"0" .. "m-1"`` (token id == node id, so a model's logits over the
first m ids are directly a distribution over nodes), then ``"|"``, ``"/"``, ``"="``, then the specials
``"<eos>"``, ``"<pad>"``, ``"<unk>"``. Text is split on whitespace only (prompts and responses are plain
whitespace-separated text, so any text tokenizer can read them too); decoding joins tokens with one space.
eos is required by lm-eval's HF backend (docs/lm-eval-notes.md#trap-tokenizer-eos); bos is left unset, so HFLM uses eos as
the prefix token, and no special token is added when encoding.

>>> tok = build_tokenizer(8)
>>> tok("3 5 | 5 7 / 3 7 =")["input_ids"]
[3, 5, 8, 5, 7, 9, 3, 7, 10]
>>> tok.decode([3, 5, 7]), tok.eos_token_id, len(tok)
('3 5 7', 11, 14)
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SEPARATORS = ("|", "/", "=")
EOS, PAD, UNK = "<eos>", "<pad>", "<unk>"


def vocabulary(m: int) -> dict[str, int]:
    """Token -> id: node ids first (id == node id), then separators, then eos/pad/unk."""
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    tokens = [str(v) for v in range(m)] + list(SEPARATORS) + [EOS, PAD, UNK]
    return {t: i for i, t in enumerate(tokens)}


def build_tokenizer(m: int, model_max_length: int = 1024) -> PreTrainedTokenizerFast:
    """The graph tokenizer for node ids 0..m-1, as a transformers fast tokenizer."""
    core = Tokenizer(models.WordLevel(vocab=vocabulary(m), unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, pad_token=PAD, unk_token=UNK,
                                   model_max_length=model_max_length, clean_up_tokenization_spaces=False)


def save_tokenizer(out_dir: str | Path, m: int, model_max_length: int = 1024) -> Path:
    """Write the tokenizer files into ``out_dir`` (created if missing); returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer(m, model_max_length).save_pretrained(out)
    return out
