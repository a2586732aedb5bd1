"""Token batches for the zoo trainer: graph docs → (prompt ids, response ids) → padded tensors.

Token ids come from the graph tokenizer's vocabulary (``covbench.graphs.tokenizer``), so what the
trainer sees is exactly what lm-eval's HF backend feeds the saved checkpoint: the prompt tokens, then
the response tokens, with no bos/eos (HFLM encodes context and continuation without special tokens).
Batches are right-padded; ``labels`` are −100 everywhere except the response tokens (loss on the
response only, docs/coverage-principle.md#graph-task recommendation).

>>> from covbench.graphs.generator import FIG1_FINETUNE, fig1_config
>>> stream = DocStream(fig1_config(), FIG1_FINETUNE, seed=0)
>>> b = collate([encode(d, 32) for d in stream.take(2)], pad_id=36)
>>> b.input_ids.shape[0], int((b.labels != -100).sum(1)[0])
(2, 6)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from covbench.graphs.generator import GraphConfig, GraphDoc, path_text, sample_doc
from covbench.graphs.tokenizer import vocabulary


@dataclass(frozen=True)
class Example:
    """One training or scoring pair: prompt ids and response ids (lists of ints)."""

    prompt: tuple[int, ...]
    response: tuple[int, ...]


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor  # [B, T] long, right-padded
    attention_mask: torch.Tensor  # [B, T] long, 1 on real tokens
    labels: torch.Tensor  # [B, T] long, token id on response tokens, −100 elsewhere


def _ids(text: str, m: int) -> tuple[int, ...]:
    vocab = vocabulary(m)
    return tuple(vocab[t] for t in text.split())


def encode(doc: GraphDoc, m: int, response: str | None = None) -> Example:
    """The doc's prompt with ``response`` (default: its target y ∼ π_D) as token ids."""
    return Example(_ids(doc.prompt, m), _ids(doc.target if response is None else response, m))


def valid_path_examples(doc: GraphDoc, m: int) -> list[Example]:
    """One example per valid path of the doc's graph (≤ 4 for Fig. 1), in ``Graph.valid_paths`` order."""
    prompt = _ids(doc.prompt, m)
    return [Example(prompt, _ids(path_text(p), m)) for p in doc.graph.valid_paths()]


def collate(examples: Sequence[Example], pad_id: int) -> Batch:
    """Right-pad prompt+response to the longest example; labels mark the response tokens only."""
    if not examples:
        raise ValueError("collate: no examples")
    width = max(len(e.prompt) + len(e.response) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        seq = e.prompt + e.response
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        labels[i, len(e.prompt): len(seq)] = torch.tensor(e.response)
    return Batch(ids, mask, labels)


class DocStream:
    """Fresh docs from a class mixture, one seeded ``random.Random`` stream (online training data).

    The same (cfg, mixture, seed) yields the same docs in the same order, so a run's data order is
    reproducible; pre-training and fine-tuning use different seeds (and both differ from evaluation).
    """

    def __init__(self, cfg: GraphConfig, mixture: dict[str, float], seed: int) -> None:
        self.cfg = cfg
        self.classes, self.probs = list(mixture), list(mixture.values())
        self.rng = random.Random(seed)
        self.n_drawn = 0

    def take(self, n: int) -> list[GraphDoc]:
        out = []
        for _ in range(n):
            cls = self.rng.choices(self.classes, self.probs)[0]
            out.append(sample_doc(self.cfg, cls, self.rng, doc_id=self.n_drawn))
            self.n_drawn += 1
        return out
