"""Exact scoring of graph docs: teacher-force every valid path of each prompt, in batches.

For a Fig. 1 prompt there are at most 4 valid paths, so the model's whole distribution over valid
responses is enumerable: ``log π̂(path | x)`` for each valid path (the sum of its response-token
log-probs, docs/coverage-principle.md#scoring) gives

- the mass on valid paths ``Σ_path π̂(path|x)`` (the pre-training stop rule);
- ``log π̂(y|x)`` for y = the doc's target (a sample of π_D) and for each y in S_x;
- ``log π̂(S_x|x) = logsumexp_{y ∈ S_x} log π̂(y|x)`` (exact Pass@N, docs/coverage-principle.md#est-pass-exact).

This module knows torch and the model; the statistics on top are ``covbench.metrics`` (pure numpy).

>>> import numpy as np
>>> s = DocScores(path_logp=(np.log([0.5, 0.25]),), support_idx=((0,),), target_idx=(1,), cls=("G3",),
...               logp_ref_target=(0.0,))
>>> s.valid_mass().round(3).tolist(), s.logp_target().round(3).tolist(), s.logp_support().round(3).tolist()
([0.75], [-1.386], [-0.693])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from covbench.graphs.generator import GraphDoc, path_text

from .data import Example, collate, valid_path_examples


@dataclass(frozen=True)
class DocScores:
    """Per-doc log-probs of every valid path, and where the target and S_x sit among them."""

    path_logp: tuple[np.ndarray, ...]  # per doc: log π̂ of each valid path (nats)
    support_idx: tuple[tuple[int, ...], ...]  # per doc: indices of S_x's paths in path_logp
    target_idx: tuple[int, ...]  # per doc: index of the target y ∼ π_D
    cls: tuple[str, ...]
    logp_ref_target: tuple[float, ...]  # log π_D(target|x)

    def valid_mass(self) -> np.ndarray:
        """π̂(valid paths | x) per doc."""
        return np.array([np.exp(lp).sum() for lp in self.path_logp])

    def logp_target(self) -> np.ndarray:
        """log π̂(target | x) per doc."""
        return np.array([lp[i] for lp, i in zip(self.path_logp, self.target_idx)])

    def logp_support(self) -> np.ndarray:
        """log π̂(S_x | x) per doc (log-sum-exp over the support's paths)."""
        return np.array([np.logaddexp.reduce(lp[list(idx)]) for lp, idx in zip(self.path_logp, self.support_idx)])


@torch.no_grad()
def response_logp(model: torch.nn.Module, examples: Sequence[Example], pad_id: int,
                  batch_size: int = 256) -> np.ndarray:
    """Σ over response tokens of log π̂(token | prefix), one float64 per example (teacher forcing)."""
    was_training = model.training
    model.eval()
    out = []
    for lo in range(0, len(examples), batch_size):
        b = collate(examples[lo: lo + batch_size], pad_id)
        logits = model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits.float()
        # Position t predicts token t+1: shift, then keep response positions only.
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        labels = b.labels[:, 1:]
        tok = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        out.append((tok * (labels != -100)).sum(-1).double().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


def score_docs(model: torch.nn.Module, docs: Sequence[GraphDoc], m: int, pad_id: int,
               batch_size: int = 256) -> DocScores:
    """Score every valid path of every doc in one pass of batched teacher forcing."""
    examples: list[Example] = []
    counts, support_idx, target_idx = [], [], []
    for doc in docs:
        paths = [path_text(p) for p in doc.graph.valid_paths()]
        where = {text: i for i, text in enumerate(paths)}
        if doc.target not in where or any(y not in where for y in doc.support):
            raise ValueError(f"doc {doc.doc_id}: target or support is not a valid path of its graph")
        examples += valid_path_examples(doc, m)
        counts.append(len(paths))
        support_idx.append(tuple(where[y] for y in doc.support))
        target_idx.append(where[doc.target])
    flat = response_logp(model, examples, pad_id, batch_size)
    splits = np.split(flat, np.cumsum(counts)[:-1]) if docs else []
    return DocScores(tuple(splits), tuple(support_idx), tuple(target_idx), tuple(d.cls for d in docs),
                     tuple(d.logp_target for d in docs))
