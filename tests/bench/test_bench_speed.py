"""Benchmarks (issue 15, item 6): three speed ratios, each measured side by side in one run.

1. ``exact_vs_sampled`` — exact Pass@N by scoring the correct set (``graph_fig1``: every path of S_x
   scored) against sampled Pass@N (``graph_fig1_sample``: n = 32 samples per prompt and the verifier) on
   the zoo checkpoint ``graph-ft-0000112``, at the same standard error. Both jobs run through
   :func:`covbench.runner.run_job` (lm-eval, the adapter, the metrics, the store). Per prompt x the exact
   value is e_x = 1 − (1 − π̂(S_x|x))^N and the sampled one the unbiased estimate ĥ_x from n samples; the
   task's Pass@N is their mean over prompts, so with P prompts SE = sd/√P. Equal SE needs
   P_s / P_e = Var(ĥ) / Var(e) prompts, so (docs/scale.md "Speed")

       cost ratio = (t_s · Var(ĥ)) / (t_e · Var(e)),   t = seconds per prompt of each job,

   with both variances over the 128 prompts the two tasks share, at N = 8 (the task's rank N). Timed twice:
   whole jobs (the model and the task index loaded beforehand) and the model's own calls alone.
2. ``ll_scoring`` — log-likelihood scoring of ``arith_ll`` (4-shot, gold answer) by SmolLM2-135M: stock
   lm-eval ``hf`` against ``hf-fast`` on the same requests and weights, and both against the fp32
   matmul throughput of this machine measured in the same run (one thread, a 1024³ ``torch.mm``): the
   roofline time is the model's matmul FLOPs for the tokens the requests contain over that throughput.
3. ``sampled_repeats`` — ``arith_sample`` (n = 16 samples per prompt of the long few-shot prompt, up to
   10 new tokens) by SmolLM2: stock ``repeats`` (each copy prefilled and generated alone) against
   ``hf-fast`` (one prefill per prompt, the 16 rows decoded together).

SmolLM2 settings are slow (one GGUF load, ~45 s here) and time a slice of the prompts (``N_LL`` = 8,
``N_SAMPLE`` = 2 by default; ``COVBENCH_BENCH_LL_PROMPTS`` / ``COVBENCH_BENCH_SAMPLE_PROMPTS`` change
them, up to the whole tasks' 64 and 32; the sizes are printed and kept in ``extra_info``). One torch
thread throughout.
Run: ``pytest tests/bench/test_bench_speed.py -q -s -p no:randomly``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance

from covbench import summarize
from covbench.backends import clear_cache, make_lm
from covbench.registry import load_registry
from covbench.runner import DEFAULT_SEED, load_task, run_job

ROOT = Path(__file__).resolve().parents[2]
PASS_N = 8
# SmolLM2 slices timed in CI (the whole tasks: 64 and 32 prompts, ~15 min here; set the variables to run them)
N_LL = int(os.environ.get("COVBENCH_BENCH_LL_PROMPTS", "8"))  # arith_ll prompts timed (of 64)
N_SAMPLE = int(os.environ.get("COVBENCH_BENCH_SAMPLE_PROMPTS", "2"))  # arith_sample prompts (of 32), × 16 samples
_SECONDS: dict[tuple[str, str], float] = {}
_PEAKS: list[float] = []  # fp32 matmul FLOP/s measured in this run


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """One torch thread (the project's default): the roofline is measured on one thread too."""


@pytest.fixture(scope="module", autouse=True)
def _fresh_cache() -> None:
    clear_cache()
    yield
    clear_cache()


def _registry():
    return load_registry(ROOT / "models.yaml")


# ---- 1. exact vs sampled Pass@N ---------------------------------------------------------------------


def equal_se_cost_ratio(exact: np.ndarray, sampled: np.ndarray, t_exact: float, t_sampled: float) -> float:
    """(t_s · Var ĥ) / (t_e · Var e): how much more the sampled estimate costs at the exact one's standard
    error (t = seconds per prompt; variances over the same prompts).

    >>> round(equal_se_cost_ratio(np.array([0.0, 1.0]), np.array([0.0, 2.0]), 1.0, 3.0), 6)
    12.0
    """
    return float(t_sampled * np.var(sampled, ddof=1) / (t_exact * np.var(exact, ddof=1)))


def _model_seconds(spec) -> tuple[float, float, int, int]:
    """Model time alone (no lm-eval bookkeeping, no metrics): scoring every path of S_x of graph_fig1's
    prompts, and drawing graph_fig1_sample's n = 32 samples per prompt plus the verifier's verdicts.
    Returns (exact seconds, sampled seconds, exact prompts, sampled prompts)."""
    from covbench.backends import get_lm
    from covbench.graphs.verifier import is_correct

    lm = get_lm(spec)
    exact = _instances("graph_fig1", None)
    start = time.perf_counter()
    lm.loglikelihood(exact, disable_tqdm=True)
    t_exact = time.perf_counter() - start
    sampled = _instances("graph_fig1_sample", None)
    torch.manual_seed(DEFAULT_SEED)
    start = time.perf_counter()
    out = lm.generate_until(sampled, disable_tqdm=True)
    verdicts = [is_correct(g, i.doc["support"], int(i.doc["n_layers"]) + 2) for g, i in zip(out, sampled)]
    t_sampled = time.perf_counter() - start
    assert len(verdicts) == len(sampled) == 32 * 128
    return t_exact, t_sampled, len({i.doc_id for i in exact}), len({i.doc_id for i in sampled})


@pytest.mark.benchmark(group="exact_vs_sampled")
def test_exact_vs_sampled_pass_at_n(benchmark, tmp_path, capsys):
    from covbench.backends import get_lm

    spec = _registry().get("graph-ft-0000112")
    get_lm(spec), load_task("graph_fig1"), load_task("graph_fig1_sample")  # model and task index: not timed
    seconds: dict[str, float] = {}
    outcomes = {}

    def both() -> None:
        for task in ("graph_fig1", "graph_fig1_sample"):
            start = time.perf_counter()
            outcomes[task] = run_job(spec, task, tmp_path / f"store-{len(seconds)}")
            seconds[task] = time.perf_counter() - start

    benchmark.pedantic(both, rounds=1, iterations=1, warmup_rounds=0)
    exact_run, sampled_run = outcomes["graph_fig1"].run, outcomes["graph_fig1_sample"].run
    assert not outcomes["graph_fig1"].reused and not outcomes["graph_fig1_sample"].reused
    exact_all = summarize.per_doc_pass_exact(exact_run.docs, (PASS_N,))[0]
    sampled = summarize.per_doc_pass_sampled(sampled_run.samples, (PASS_N,))[0]
    at = {int(d): i for i, d in enumerate(exact_run.docs.doc_id)}
    exact = exact_all[[at[int(d)] for d in sampled_run.samples.doc_id]]  # the 128 shared prompts
    assert abs(exact.mean() - sampled.mean()) < 4 * np.std(sampled, ddof=1) / np.sqrt(sampled.size)
    n_e, n_s = len(exact_run.docs), len(sampled_run.samples)
    job_ratio = equal_se_cost_ratio(exact, sampled, seconds["graph_fig1"] / n_e, seconds["graph_fig1_sample"] / n_s)
    m_exact, m_sampled, m_n_e, m_n_s = _model_seconds(spec)
    model_ratio = equal_se_cost_ratio(exact, sampled, m_exact / m_n_e, m_sampled / m_n_s)
    var_e, var_s = float(np.var(exact, ddof=1)), float(np.var(sampled, ddof=1))
    benchmark.extra_info.update(exact_job_s=seconds["graph_fig1"], sampled_job_s=seconds["graph_fig1_sample"],
                                exact_model_s=m_exact, sampled_model_s=m_sampled, exact_prompts=n_e,
                                sampled_prompts=n_s, n=sampled_run.samples.n, var_exact=var_e, var_sampled=var_s,
                                cost_ratio_jobs=job_ratio, cost_ratio_model=model_ratio)
    with capsys.disabled():
        print(f"\nexact vs sampled Pass@{PASS_N} (graph-ft-0000112, hf-fast): Var e = {var_e:.4f}, Var h = {var_s:.4f} "
              f"(n={sampled_run.samples.n}, {n_s} shared prompts: {var_s / var_e:.2f}x the prompts for equal SE); "
              f"whole jobs: exact {seconds['graph_fig1']:.1f} s / {n_e} prompts, sampled {seconds['graph_fig1_sample']:.1f} s"
              f" / {n_s} prompts -> sampled costs {job_ratio:.1f}x at equal SE; model time only: exact {m_exact:.2f} s, "
              f"sampled {m_sampled:.2f} s -> {model_ratio:.1f}x")


# ---- SmolLM2 --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    """(stock hf LM, hf-fast LM) on one shared copy of SmolLM2's weights (loaded once)."""
    fast_spec = _registry().get("smollm2-135m")
    stock_spec = fast_spec.model_copy(update={"name": "smollm2-135m-stock", "backend": "hf"})
    return make_lm(stock_spec), make_lm(fast_spec)


def _instances(task_name: str, limit: int | None) -> list[Instance]:
    task = load_task(task_name).task
    task.set_fewshot_seed(seed=DEFAULT_SEED)
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    return [inst for inst in task.instances for _ in range(inst.repeats)]


def matmul_flops(size: int = 1024, rounds: int = 5) -> float:
    """fp32 FLOP/s of ``torch.mm`` on two size × size matrices, best of ``rounds`` (this thread count)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def forward_flops(model: torch.nn.Module, lengths: list[int]) -> float:
    """Matmul FLOPs of one causal forward pass over sequences of ``lengths`` tokens: 2 · (weights of
    every Linear, the LM head included) per token, plus attention's QKᵀ and AV (2 · 2 · T · d per token
    and layer on average over a length-T sequence, T/2 keys per query under the causal mask: counted
    as 2 · T · d)."""
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    cfg = model.config
    d, layers = cfg.hidden_size, cfg.num_hidden_layers
    return float(sum(2 * linear * t + 2 * layers * t * t * d for t in lengths))


@pytest.mark.slow
@pytest.mark.benchmark(group="ll_scoring")
@pytest.mark.parametrize("backend", ["stock", "fast"])
def test_loglikelihood_scoring(benchmark, smollm2, backend, capsys):
    lm = smollm2[0] if backend == "stock" else smollm2[1]
    requests = _instances("arith_ll", N_LL)
    seconds: list[float] = []

    def score() -> list[tuple[float, bool]]:
        start = time.perf_counter()
        out = lm.loglikelihood(requests, disable_tqdm=True)
        seconds.append(time.perf_counter() - start)
        return out

    out = benchmark.pedantic(score, rounds=1, iterations=1, warmup_rounds=0)
    assert len(out) == len(requests) and all(np.isfinite(lp) for lp, _ in out)
    _SECONDS[("ll", backend)] = min(seconds)
    lengths = [len(ctx) + len(cont) - 1 for _, ctx, cont in _tokens(lm, requests)]
    flops = forward_flops(lm.model, lengths)
    _PEAKS.append(matmul_flops())  # measured after each backend; both are judged against the best
    peak = max(_PEAKS)
    benchmark.extra_info.update(prompts=N_LL, tokens=sum(lengths), seconds=min(seconds), model_gflop=flops / 1e9,
                                matmul_gflops=peak / 1e9, of_roofline=flops / peak / min(seconds))
    with capsys.disabled():
        print(f"\nll scoring, {backend}: {N_LL} arith_ll prompts ({sum(lengths)} tokens, {flops / 1e9:.1f} GFLOP): "
              f"{min(seconds):.2f} s; fp32 matmul {_PEAKS[-1] / 1e9:.1f} GFLOP/s now, best {peak / 1e9:.1f}")
        if len({k for k in _SECONDS if k[0] == "ll"}) == 2:
            ratio = _SECONDS[("ll", "stock")] / _SECONDS[("ll", "fast")]
            roof = flops / peak
            benchmark.extra_info["speedup_vs_stock"] = ratio
            print(f"ll scoring: hf-fast is {ratio:.2f}x stock lm-eval hf; roofline {roof:.2f} s at "
                  f"{peak / 1e9:.1f} GFLOP/s: stock {100 * roof / _SECONDS[('ll', 'stock')]:.0f}%, "
                  f"hf-fast {100 * roof / _SECONDS[('ll', 'fast')]:.0f}% of it")


def _tokens(lm, requests):
    from covbench.backends.scoring import encode_requests

    return encode_requests(lm, requests)


@pytest.mark.slow
@pytest.mark.benchmark(group="sampled_repeats")
@pytest.mark.parametrize("backend", ["stock", "fast"])
def test_sampled_repeats(benchmark, smollm2, backend, capsys):
    lm = smollm2[0] if backend == "stock" else smollm2[1]
    requests = _instances("arith_sample", N_SAMPLE)
    assert len(requests) == 16 * N_SAMPLE
    seconds: list[float] = []

    def generate() -> list[str]:
        torch.manual_seed(DEFAULT_SEED)
        start = time.perf_counter()
        out = lm.generate_until(requests, disable_tqdm=True)
        seconds.append(time.perf_counter() - start)
        return out

    out = benchmark.pedantic(generate, rounds=1, iterations=1, warmup_rounds=0)
    assert len(out) == len(requests) and all(isinstance(s, str) for s in out)
    if backend == "fast":
        assert lm.last_stats.prefill_rows == N_SAMPLE and lm.last_stats.fallback_requests == 0
    _SECONDS[("sample", backend)] = min(seconds)
    benchmark.extra_info.update(prompts=N_SAMPLE, samples=len(requests), seconds=min(seconds))
    with capsys.disabled():
        print(f"\nsampled arith_sample, {backend}: {N_SAMPLE} prompts x n=16: {min(seconds):.2f} s")
        if len({k for k in _SECONDS if k[0] == "sample"}) == 2:
            ratio = _SECONDS[("sample", "stock")] / _SECONDS[("sample", "fast")]
            benchmark.extra_info["speedup_vs_stock"] = ratio
            print(f"sampled arith_sample: hf-fast is {ratio:.1f}x stock lm-eval repeats")
