"""Benchmarks of the two prefix-sharing paths of this branch, each against its baseline side by side.

1. TTT scoring (covbench/backends/ttt.py): the 16 paths of a Fig. 2 G3 prompt (H = 8, 4 branching
   layers) walked as one prefix tree (``TTTDecoder.score_many``: one forward per tree node, one gradient
   per edge) against replaying every path from the prompt (``TTTDecoder.score`` 16 times). Group
   ``ttt_g3_paths``.
2. Fig. 2 validation scoring (covbench/zoo/fig2_eval.py): the same G3 paths with the prompt run once and
   its key-value cache shared (``shared_prompt_logp``) against 16 padded rows (``response_logp``). Group
   ``fig2_g3_scoring``.

Both compare numbers as well as time. Model: the shipped Fig. 2 architecture at random init (GPT-2,
3 layers, d = 64, 191k parameters, m = 128). One torch thread. The ratio is printed.

Run: ``pytest tests/bench/test_bench_ttt.py -q`` (``--benchmark-only`` for pytest-benchmark's table).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

from covbench.backends.ttt import TTTDecoder, TTTSettings
from covbench.graphs.generator import FIG2_MIXTURE, fig2_config, stratified_docs
from covbench.graphs.tokenizer import PAD, vocabulary
from covbench.zoo.data import encode
from covbench.zoo.fig2_config import fig2_preset
from covbench.zoo.fig2_eval import shared_prompt_logp
from covbench.zoo.model import build_model
from covbench.zoo.scoring import response_logp

M = 128
N_DOCS = 4
_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """One thread: the numbers depend less on the other jobs sharing the cores."""


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return build_model(fig2_preset("fig2").model, M, seed=0).eval()


@pytest.fixture(scope="module")
def g3_examples() -> list[tuple[list[int], list[list[int]]]]:
    docs = [d for d in stratified_docs(fig2_config(8, m=M), FIG2_MIXTURE, N_DOCS, seed=5) if d.cls == "G3"]
    out = []
    for d in docs:
        examples = [encode(d, M, response=y) for y in d.support]
        assert len(examples) == 16
        out.append((list(examples[0].prompt), [list(e.response) for e in examples]))
    return out


def _time(benchmark: object, name: str, fn: Callable[[], list[float]], rounds: int) -> list[float]:
    seconds: list[float] = []

    def run() -> list[float]:
        start = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - start)
        return out

    out = benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=0)  # type: ignore[attr-defined]
    _SECONDS[name] = min(seconds)
    return out


def _report(capsys: pytest.CaptureFixture[str], what: str, base: str, new: str) -> None:
    if base in _SECONDS and new in _SECONDS:
        with capsys.disabled():
            print(f"\n{what}: {base} {_SECONDS[base]:.2f} s, {new} {_SECONDS[new]:.2f} s, "
                  f"ratio {_SECONDS[base] / _SECONDS[new]:.1f}x")


@pytest.mark.benchmark(group="ttt_g3_paths")
def test_ttt_replay_each_path(benchmark: object, model: torch.nn.Module, g3_examples: list) -> None:
    dec = TTTDecoder(model, TTTSettings(lr=0.01))
    out = _time(benchmark, "replay", lambda: [dec.score(p, r).logprob for p, rs in g3_examples for r in rs], 1)
    assert len(out) == 16 * len(g3_examples)


@pytest.mark.benchmark(group="ttt_g3_paths")
def test_ttt_prefix_tree(benchmark: object, model: torch.nn.Module, g3_examples: list,
                         capsys: pytest.CaptureFixture[str]) -> None:
    dec = TTTDecoder(model, TTTSettings(lr=0.01))
    out = _time(benchmark, "tree",
                lambda: [x.logprob for p, rs in g3_examples for x in dec.score_many(p, rs)], 2)
    replay = [dec.score(p, r).logprob for p, rs in g3_examples[:1] for r in rs]
    np.testing.assert_allclose(out[:16], replay, atol=1e-5)
    _report(capsys, f"TTT scoring of {16 * len(g3_examples)} G3 paths (H = 8)", "replay", "tree")


@pytest.mark.benchmark(group="fig2_g3_scoring")
def test_fig2_padded_rows(benchmark: object, model: torch.nn.Module, g3_examples: list) -> None:
    from covbench.zoo.data import Example

    pad = vocabulary(M)[PAD]
    exs = [Example(tuple(p), tuple(r)) for p, rs in g3_examples for r in rs]
    _time(benchmark, "padded", lambda: response_logp(model, exs, pad, batch_size=128).tolist(), 3)


@pytest.mark.benchmark(group="fig2_g3_scoring")
def test_fig2_shared_prompt(benchmark: object, model: torch.nn.Module, g3_examples: list,
                            capsys: pytest.CaptureFixture[str]) -> None:
    from covbench.zoo.data import Example

    out = _time(benchmark, "shared",
                lambda: [v for p, rs in g3_examples for v in shared_prompt_logp(model, p, rs)], 3)
    pad = vocabulary(M)[PAD]
    want = response_logp(model, [Example(tuple(p), tuple(r)) for p, rs in g3_examples for r in rs], pad)
    np.testing.assert_allclose(out, want, atol=1e-4)
    _report(capsys, f"Fig. 2 scoring of {16 * len(g3_examples)} G3 paths (H = 8)", "padded", "shared")
