"""Benchmark (issue 14, item 2): a family of 8 policies scored with one forward pass against member by
member (8 LMs on the same shared model, each scoring its own policy), side by side on the same requests.

Two settings, each its own pytest-benchmark group:

- ``policy_family_graph``: the zoo checkpoint ``graph-pt`` (0.33M parameters) on every request of
  ``graph_fig1`` (512 prompts, one request per path of S_x), ``batch_size`` 64;
- ``policy_family_smollm2`` (slow: loads SmolLM2-135M-Instruct from its GGUF, ~45 s): the first
  ``N_ARITH`` prompts of ``arith_ll`` (4-shot, the gold answer as continuation), ``batch_size`` 8. The
  whole task (64 prompts) would take ~8 minutes member by member on one thread, so a slice is timed.

Both modes must give the same answers (checked). Run: ``pytest tests/bench/test_bench_policy.py -q -s``
(the ratio is printed); add ``-m 'not slow'`` for the graph setting only. One torch thread.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance

from covbench.backends import clear_cache, make_lm
from covbench.backends.policy import Policy
from covbench.registry import ModelSpec, load_registry
from covbench.runner import DEFAULT_SEED, load_task

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "covbench" / "zoo" / "checkpoints" / "graph-pt"
N_ARITH = 8
POLICIES = [Policy(), Policy(temperature=0.7), Policy(temperature=1.3), Policy(top_k=20), Policy(top_p=0.9),
            Policy(top_p=0.95), Policy(min_p=0.05), Policy(temperature=0.7, top_p=0.9)]
_SECONDS: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """One torch thread (the project's default), so the ratio depends less on the other jobs."""


@pytest.fixture(scope="module", autouse=True)
def _fresh_cache() -> None:
    clear_cache()
    yield
    clear_cache()


def _requests(task_name: str, limit: int | None) -> list[Instance]:
    """The loglikelihood Instances lm-eval's evaluator would hand the LM for this task."""
    task = load_task(task_name).task
    task.set_fewshot_seed(seed=DEFAULT_SEED)
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    return list(task.instances)


def _members(spec: ModelSpec) -> list:
    """One LM per policy on the spec's (shared, loaded once) weights, each on its own (no family)."""
    base = spec.model_dump(exclude={"name", "generation"})
    return [make_lm(ModelSpec.model_validate({**base, "name": f"{spec.name}-{i}", "generation": {
        "temperature": p.temperature, "top_k": p.top_k, "top_p": p.top_p, "min_p": p.min_p}}))
        for i, p in enumerate(POLICIES)]


def _run(benchmark: object, group: str, mode: str, members: list, requests: list[Instance],
         capsys: pytest.CaptureFixture[str]) -> list[list[tuple[float, bool]]]:
    seconds: list[float] = []

    def one_pass() -> list[list[tuple[float, bool]]]:
        start = time.perf_counter()
        out = members[0].loglikelihood_policies(requests, POLICIES)
        seconds.append(time.perf_counter() - start)
        return out

    def member_by_member() -> list[list[tuple[float, bool]]]:
        start = time.perf_counter()
        out = [lm.loglikelihood(requests, disable_tqdm=True) for lm in members]
        seconds.append(time.perf_counter() - start)
        return out

    out = benchmark.pedantic(one_pass if mode == "one_pass" else member_by_member,  # type: ignore[attr-defined]
                             rounds=1, iterations=1, warmup_rounds=0)
    _SECONDS[(group, mode)] = min(seconds)
    benchmark.extra_info.update(requests=len(requests), policies=len(POLICIES), seconds=min(seconds))  # type: ignore[attr-defined]
    other = {"one_pass": "member_by_member", "member_by_member": "one_pass"}[mode]
    if (group, other) in _SECONDS:
        ratio = _SECONDS[(group, "member_by_member")] / _SECONDS[(group, "one_pass")]
        benchmark.extra_info["speedup_one_pass"] = ratio  # type: ignore[attr-defined]
        with capsys.disabled():
            print(f"\n{group}: {len(POLICIES)} policies x {len(requests)} requests: member by member "
                  f"{_SECONDS[(group, 'member_by_member')]:.2f} s, one pass {_SECONDS[(group, 'one_pass')]:.2f} s, "
                  f"ratio {ratio:.1f}x")
    return out


_ANSWERS: dict[tuple[str, str], list] = {}


@pytest.fixture(scope="module")
def graph_setting() -> tuple[list, list[Instance]]:
    spec = ModelSpec(name="graph-pt", backend="hf-fast", pretrained=str(ZOO), batch_size=64)
    return _members(spec), _requests("graph_fig1", None)


@pytest.mark.benchmark(group="policy_family_graph")
@pytest.mark.parametrize("mode", ["member_by_member", "one_pass"])
def test_graph_family(benchmark: object, graph_setting: tuple, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    members, requests = graph_setting
    _ANSWERS[("graph", mode)] = _run(benchmark, "policy_family_graph", mode, members, requests, capsys)
    if len({k for k in _ANSWERS if k[0] == "graph"}) == 2:
        assert _ANSWERS[("graph", "one_pass")] == _ANSWERS[("graph", "member_by_member")]


@pytest.fixture(scope="module")
def smollm2_setting() -> tuple[list, list[Instance]]:
    spec = load_registry(ROOT / "models.yaml").get("smollm2-135m")
    return _members(spec), _requests("arith_ll", N_ARITH)


@pytest.mark.slow
@pytest.mark.benchmark(group="policy_family_smollm2")
@pytest.mark.parametrize("mode", ["member_by_member", "one_pass"])
def test_smollm2_family(benchmark: object, smollm2_setting: tuple, mode: str,
                        capsys: pytest.CaptureFixture[str]) -> None:
    members, requests = smollm2_setting
    _ANSWERS[("smollm2", mode)] = _run(benchmark, "policy_family_smollm2", mode, members, requests, capsys)
    if len({k for k in _ANSWERS if k[0] == "smollm2"}) == 2:
        assert _ANSWERS[("smollm2", "one_pass")] == _ANSWERS[("smollm2", "member_by_member")]
