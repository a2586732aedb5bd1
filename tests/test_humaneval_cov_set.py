"""``cov_set@M`` in every sampling run (covbench.summarize.cov_set, docs/humaneval.md#cov-set): the grid n
resolves, intervals that cover a known truth, ragged n, and answer-level coverage on an answer-match task."""

from __future__ import annotations

import math

import numpy as np
import pytest

from covbench.metrics import DEFAULT_COV_NS
from covbench.records import SampleArrays
from covbench.summarize import cov_set, summarize


def samples_of(correct_rows: list[list[bool]]) -> SampleArrays:
    return SampleArrays(doc_id=list(range(len(correct_rows))), generations=None, correct=correct_rows, max_gen_toks=1)


def simulate(p: np.ndarray, n: int | np.ndarray, seed: int) -> SampleArrays:
    rng = np.random.default_rng(seed)
    ns = np.broadcast_to(n, p.shape)
    return samples_of([list(rng.random(k) < q) for q, k in zip(p, ns)])


@pytest.mark.parametrize("n, expected_max", [(2, 1.0), (4, 2.0), (8, 4.0), (16, 8.0), (64, 32.0)])
def test_grid_stops_where_n_stops_resolving(n, expected_max) -> None:
    rng = np.random.default_rng(n)
    out = cov_set(simulate(rng.beta(0.5, 2, 60), n, seed=n))
    ms = sorted(float(k.split("@")[1]) for k in out)
    assert ms == [m for m in DEFAULT_COV_NS if m <= max(1.0, n / 2)] and ms[-1] == expected_max
    assert out["cov_set@1"].value == 1.0 == out["cov_set@1"].lo == out["cov_set@1"].hi


def test_intervals_cover_the_sample_truth_of_a_known_mixture() -> None:
    """30% of prompts never solved, the rest Beta(4, 2): Cov_M is known for every M (the spike dominates)."""
    misses = 0
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        p = np.where(rng.random(200) < 0.3, 0.0, rng.beta(4, 2, 200))
        out = cov_set(simulate(p, 16, seed))
        for key, e in out.items():
            m = float(key.split("@")[1])
            truth = float(np.mean(p <= 1 / m))
            assert 0.0 <= e.lo <= e.value <= e.hi <= 1.0
            misses += not e.lo <= truth <= e.hi
            if m >= 4:  # where the spike at 0 is all of the tail, the point is close (docs/verifier-coverage.md §9)
                assert abs(e.value - truth) < 0.08
            assert e.stderr >= 0.0
    assert misses == 0  # a 95% interval that is conservative by construction


def test_ragged_n_uses_every_sample_and_the_median_n() -> None:
    rows = [[True] * 3 + [False] * 13] * 10 + [[False] * 6] * 5 + [[True, False] * 20] * 5
    out = cov_set(samples_of(rows))
    assert max(float(k.split("@")[1]) for k in out) == 8.0  # median n = 16 (not the smallest, 6)
    # every prompt solved at a rate > 1/8 except the five that never were: Cov_8 >= 5/20
    assert out["cov_set@8"].hi >= 0.25


def test_missing_never_becomes_zero() -> None:
    assert cov_set(samples_of([])) == {}
    assert cov_set(samples_of([[], []])) == {}
    one = cov_set(samples_of([[True], [False]]))  # n = 1 resolves only M = 1
    assert list(one) == ["cov_set@1"]
    m = summarize(None, samples_of([[True, False], [False, False]]), "gold")
    assert math.isnan(m["pass_sampled@4"].value) and "cov_set@2" not in m and m["cov_set@1"].value == 1.0


def test_answer_level_coverage_on_an_answer_match_task() -> None:
    """arith's number verifier: '68', ' 68.', 'The answer is 68' all count, so Cov^ans_M <= cov@M of the
    exact string (docs/verifier-coverage.md §8); stored under the same key."""
    from covbench.arith.lmeval import sample_verdicts

    gens = [[" 68", " 68.", " The answer is 68", " 69"]] * 6 + [[" 12", " 13", " 14", " 15"]] * 2
    docs = [{"answer": 68}] * 6 + [{"answer": 99}] * 2
    answer = samples_of([sample_verdicts(d, g) for d, g in zip(docs, gens)])
    strict = samples_of([[g == " 68" for g in row] for row in gens])
    a, s = cov_set(answer), cov_set(strict)
    assert [int(r.sum()) for r in answer.correct.rows()] == [3] * 6 + [0] * 2
    assert a["cov_set@2"].value <= s["cov_set@2"].value
    assert a["cov_set@2"].hi <= s["cov_set@2"].hi + 1e-9
