"""Benchmark (issue 6): ``hf-fast`` against stock lm-eval ``repeats`` on the same model, task and n = 32.

Both backends get the flat request list lm-eval's evaluator builds for ``graph_fig1_sample`` (128 prompts
of 69-78 tokens, ``repeats: 32``, up to 7 new tokens, ``do_sample: true``, ``temperature: 1.0``): each
Instance repeated ``repeats`` times (docs/lm-eval-notes.md#trap-repeats). The model is a random GPT-2 of the issue's shape
(3 layers, 96 wide, 3 heads; 351,648 parameters with the m = 32 graph vocabulary and 128 positions).
Both use ``batch_size=32``: stock generates 32 rows per ``model.generate`` call (one prompt's 32 copies);
hf-fast prefills 32 distinct prompts per forward and decodes their 1024 rows together.

Run: ``pytest tests/bench/test_bench_fast_hf.py -q`` (the ratio is printed; with ``--benchmark-only``
pytest-benchmark's table shows both in group ``fast_hf_repeats``). One torch thread for both, so the
numbers do not depend on the other jobs sharing the CPU's cores as much.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from covbench.backends.fast_hf import FastHFLM
from covbench.taskmeta import TASKS_DIR
from covbench.tiny import build_tiny_gpt2

TASK = "graph_fig1_sample"
N_SAMPLES = 32
BATCH_SIZE = 32
_SECONDS: dict[str, float] = {}   # backend -> fastest round, for the ratio


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny matmuls on a shared 2-core machine: one thread avoids OpenMP spin contention."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The issue's 348k-parameter GPT-2 shape, with the graph task's m = 32 tokenizer."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("bench-gpt2"), m=32, n_layer=3, n_embd=96, n_head=3,
                           n_positions=128)


@pytest.fixture(scope="module")
def requests() -> list[Instance]:
    """The flat list the evaluator hands the LM: every Instance ``repeats`` times, copies adjacent."""
    from lm_eval.tasks import TaskManager

    task = TaskManager(include_path=str(TASKS_DIR), include_defaults=False).load([TASK])["tasks"][TASK]
    task.build_all_requests(limit=None, rank=0, world_size=1)
    assert len(task.instances) == 128 and all(i.repeats == N_SAMPLES for i in task.instances)
    return [inst for inst in task.instances for _ in range(inst.repeats)]


def _bench(benchmark: object, lm: HFLM, requests: list[Instance], name: str, rounds: int) -> list[str]:
    seconds: list[float] = []

    def run() -> list[str]:
        torch.manual_seed(1234)
        start = time.perf_counter()
        out = lm.generate_until(requests, disable_tqdm=True)
        seconds.append(time.perf_counter() - start)
        return out

    target: Callable[[], list[str]] = run
    out = benchmark.pedantic(target, rounds=rounds, iterations=1, warmup_rounds=0)  # type: ignore[attr-defined]
    _SECONDS[name] = min(seconds)
    benchmark.extra_info.update(requests=len(requests), seconds=min(seconds))  # type: ignore[attr-defined]
    assert len(out) == len(requests) and all(isinstance(s, str) for s in out)
    return out


@pytest.mark.benchmark(group="fast_hf_repeats")
def test_stock_hf_repeats(benchmark: object, model_dir: Path, requests: list[Instance]) -> None:
    lm = HFLM(pretrained=str(model_dir), device="cpu", batch_size=BATCH_SIZE)
    _bench(benchmark, lm, requests, "stock", rounds=1)


@pytest.mark.benchmark(group="fast_hf_repeats")
def test_fast_hf_repeats(benchmark: object, model_dir: Path, requests: list[Instance],
                         capsys: pytest.CaptureFixture[str]) -> None:
    lm = FastHFLM(pretrained=str(model_dir), device="cpu", batch_size=BATCH_SIZE)
    _bench(benchmark, lm, requests, "fast", rounds=3)
    assert lm.last_stats.prefill_rows == 128 and lm.last_stats.sampled_rows == len(requests)
    assert lm.last_stats.fallback_requests == 0
    if "stock" in _SECONDS:
        ratio = _SECONDS["stock"] / _SECONDS["fast"]
        benchmark.extra_info["speedup_vs_stock"] = ratio  # type: ignore[attr-defined]
        with capsys.disabled():
            print(f"\nhf-fast vs stock lm-eval repeats ({TASK}, 128 prompts x n={N_SAMPLES}, "
                  f"batch_size={BATCH_SIZE}): stock {_SECONDS['stock']:.2f} s, hf-fast {_SECONDS['fast']:.2f} s, "
                  f"ratio {ratio:.1f}x")
