"""The base model a LoRA adapter is trained on: SmolLM2's GGUF as the registry loads it, or a tiny Llama.

``gguf``: ``from_pretrained(folder, gguf_file=NAME, dtype=float32)``, which is what lm-eval's HFLM does
for the registry entry ``smollm2-135m`` (transformers dequantises the Q4_1 weights to float32), with the
``pkg:DIST/PATH`` reference resolved by :mod:`covbench.backends.sources`.

``tiny-llama``: a seeded random ``LlamaForCausalLM`` (tied embeddings, as SmolLM2) with a byte-level
tokenizer (256 byte symbols, no merges: any text encodes, one token per byte), saved to a folder so that
``HFLM(pretrained=FOLDER, peft=ADAPTER)`` loads it like any local model. The tests use it.

>>> import tempfile
>>> tok = byte_tokenizer()
>>> ids = tok.encode("Q: 7 * 6?\\nA: 42\\n")
>>> len(ids), tok.decode(ids) == "Q: 7 * 6?\\nA: 42\\n"
(16, True)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from covbench.finetune.config import BaseSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
EOS = "<|endoftext|>"


@dataclass(frozen=True)
class Base:
    """A loaded base model, its tokenizer, and where lm-eval finds the same weights."""

    model: Any  # transformers PreTrainedModel (float32, train mode off)
    tokenizer: Any
    pretrained: str  # folder for HFLM(pretrained=...)
    gguf_file: str | None  # file name inside ``pretrained`` (None: HF-format folder)
    sha256: str  # of the GGUF file, or of the tiny model's safetensors


def byte_tokenizer(model_max_length: int = 2048) -> Any:
    """A byte-level BPE tokenizer with no merges (ids 0..255 = bytes, 256 = end of text)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet, key=lambda c: ord(c)))}
    vocab[EOS] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, pad_token=EOS,
                                   model_max_length=model_max_length, clean_up_tokenization_spaces=False)


def build_tiny_llama(spec: BaseSpec, out_dir: str | Path, seed: int) -> Path:
    """Save a seeded random Llama of ``spec``'s shape plus :func:`byte_tokenizer` into ``out_dir``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = byte_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=spec.d_model, intermediate_size=2 * spec.d_model,
                      num_hidden_layers=spec.n_layer, num_attention_heads=spec.n_head,
                      num_key_value_heads=spec.n_head, max_position_embeddings=2048,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_base(spec: BaseSpec, work_dir: str | Path, seed: int) -> Base:
    """Load (building first, for ``tiny-llama`` without a saved folder) the base model in float32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if spec.kind == "tiny-llama":
        folder = Path(spec.pretrained) if spec.pretrained else Path(work_dir) / "tiny-base"
        if not (folder / "config.json").exists():
            build_tiny_llama(spec, folder, seed)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(folder)
        return Base(model.eval(), tok, str(folder.resolve()), None, _sha256(folder / "model.safetensors"))
    from covbench.backends.sources import resolve_source

    source = resolve_source(spec.pretrained, spec.gguf_file, REPO_ROOT)
    kwargs = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    tok = AutoTokenizer.from_pretrained(source.pretrained, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source.pretrained, dtype=torch.float32, **kwargs)
    digest = _sha256(source.gguf_path) if source.gguf_path else "unknown"
    return Base(model.eval(), tok, source.pretrained, source.gguf_file, digest)
