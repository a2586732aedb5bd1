"""Benchmark: ``verifier_coverage`` on a HumanEval-sized run, cold caches against warm ones.

164 prompts with n = 16 verdicts each, the 18 thresholds of ``DEFAULT_COV_NS``. Cold: the caches of
test levels, cells and LP rows are cleared before each round, as in a fresh process; warm: a second
model on the same task (same n, same M grid) reuses them. The ratio is printed; with
``--benchmark-only`` pytest-benchmark's table shows both in group ``verifier_coverage``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from covbench.metrics import DEFAULT_COV_NS, _mixing, _mixing_lp, verifier_coverage

_SECONDS: dict[str, float] = {}


def _verdicts(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = np.where(rng.random(164) < 0.3, 0.0, rng.beta(2.0, 2.0, 164))
    n = np.full(164, 16)
    return n, rng.binomial(n, p)


def _clear() -> None:
    _mixing.fuzzy_quantiles.cache_clear()
    _mixing.cells.cache_clear()
    _mixing_lp._rows.cache_clear()


def _bench(benchmark: object, name: str, cold: bool) -> None:
    n, c = _verdicts(1)
    seconds: list[float] = []

    def run() -> object:
        if cold:
            _clear()
        start = time.perf_counter()
        out = verifier_coverage(n, c, DEFAULT_COV_NS)
        seconds.append(time.perf_counter() - start)
        return out

    if not cold:
        verifier_coverage(*_verdicts(2), DEFAULT_COV_NS)  # another model on the same task fills the caches
    out = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)  # type: ignore[attr-defined]
    _SECONDS[name] = min(seconds)
    assert np.isfinite(out.lo).all()


@pytest.mark.benchmark(group="verifier_coverage")
def test_verifier_coverage_cold(benchmark: object) -> None:
    _bench(benchmark, "cold", cold=True)


@pytest.mark.benchmark(group="verifier_coverage")
def test_verifier_coverage_warm(benchmark: object, capsys: pytest.CaptureFixture[str]) -> None:
    _bench(benchmark, "warm", cold=False)
    if "cold" in _SECONDS:
        with capsys.disabled():
            print(f"\nverifier_coverage, 164 prompts x n=16, 18 thresholds: cold {_SECONDS['cold']:.2f} s, "
                  f"warm {_SECONDS['warm']:.2f} s, ratio {_SECONDS['cold'] / _SECONDS['warm']:.1f}x")
