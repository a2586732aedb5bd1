"""Benchmark: one LoRA training step, shared few-shot prefix + LM head on K + 1 positions vs plain batches.

Both variants take the same 32 training problems, rendered as ``arith_ll`` requests (4-shot context),
and run forward + backward of the mean answer-token cross-entropy through the same LoRA model:

- ``plain``: every sequence in full, right-padded, HF's shifted loss with −100 labels off the answer;
- ``shared``: :func:`covbench.finetune.trainer.answer_loss` on :func:`covbench.finetune.data.collate`'s
  batch (the common prefix once at batch size 1, broadcast cache, head on the last K + 1 positions).

The model is a random Llama of 4 layers, width 128, with the byte-level tokenizer (a 4-shot prompt is
about 290 tokens, a question and answer about 90), so the ratio mostly shows the prefix sharing; on
SmolLM2 the 49,152-token LM head adds to it (docs/finetune.md "Data" has the SmolLM2 measurements).

Run: ``pytest tests/bench/test_bench_finetune.py -q`` (the ratio is printed; group ``finetune_step``).
"""

from __future__ import annotations

import time

import pytest
import torch

from covbench.arith.training import training_problems
from covbench.finetune.base import build_tiny_llama, load_base
from covbench.finetune.config import BaseSpec, preset
from covbench.finetune.data import IGNORE, collate, encode_pair, load_eval_task, render
from covbench.finetune.trainer import add_lora, answer_loss

BATCH = 32
_SECONDS: dict[str, float] = {}  # variant -> fastest round
_LOSS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """One torch thread, as the training run uses."""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    spec = BaseSpec(kind="tiny-llama", pretrained="", gguf_file=None, d_model=128, n_layer=4, n_head=4)
    folder = build_tiny_llama(spec, tmp_path_factory.mktemp("bench-llama"), seed=0)
    base = load_base(spec.model_copy(update={"pretrained": str(folder)}), ".", seed=0)
    model = add_lora(base.model, preset("tiny")).train()
    task = load_eval_task("arith_ll")
    pairs = [encode_pair(base.tokenizer, *render(task, p)) for p in training_problems(BATCH, seed=0)]
    return model, pairs, base.tokenizer.pad_token_id


def _plain_loss(model, pairs, pad_id: int) -> torch.Tensor:
    width = max(len(p.context) + len(p.continuation) for p in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE)
    for i, p in enumerate(pairs):
        seq = p.context + p.continuation
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = 1
        labels[i, len(p.context):len(seq)] = torch.tensor(p.continuation)
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def _bench(benchmark, name: str, step) -> float:
    seconds: list[float] = []

    def run() -> float:
        start = time.perf_counter()
        loss = step()
        loss.backward()
        seconds.append(time.perf_counter() - start)
        return float(loss.detach())

    loss = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    _SECONDS[name] = min(seconds)
    benchmark.extra_info.update(seconds=min(seconds), loss=loss)
    return loss


@pytest.mark.benchmark(group="finetune_step")
def test_plain_batches(benchmark, setup) -> None:
    model, pairs, pad_id = setup
    _LOSS["plain"] = _bench(benchmark, "plain", lambda: _plain_loss(model, pairs, pad_id))


@pytest.mark.benchmark(group="finetune_step")
def test_shared_prefix_batches(benchmark, setup, capsys: pytest.CaptureFixture[str]) -> None:
    model, pairs, pad_id = setup
    batch = collate(pairs, pad_id)
    loss = _bench(benchmark, "shared", lambda: answer_loss(model, batch))
    if "plain" in _SECONDS:
        assert loss == pytest.approx(_LOSS["plain"], rel=1e-5)  # the same objective
        ratio = _SECONDS["plain"] / _SECONDS["shared"]
        benchmark.extra_info["speedup_vs_plain"] = ratio
        with capsys.disabled():
            print(f"\nLoRA step, batch {BATCH}, 4-shot arith prompts (prefix {batch.prefix_ids.shape[1]} "
                  f"tokens, suffix width {batch.input_ids.shape[1]}): plain {_SECONDS['plain']:.3f} s, "
                  f"shared prefix {_SECONDS['shared']:.3f} s, ratio {ratio:.1f}x")
