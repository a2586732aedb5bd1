"""Synthetic results stores for the leaderboard's tests and benchmarks (no model is run).

Each task is a two-class mixture like the paper's Fig. 1 (docs/coverage-principle.md#fig1): a majority class (90%)
and a minority class (10%), one correct answer per prompt, π_D deterministic (log π_D = 0), so
X = −log π̂(y*|x). A model is two numbers, its mean −log π̂ on each class; per-doc log-probs are
drawn around them, samples are Bernoulli(π̂(y*|x)) draws, and every metric is computed from those
arrays with :mod:`covbench.metrics`, so the per-doc arrays and the metrics agree as in a real run.

Independent models get random skills, so CE (dominated by the majority class) and coverage
(driven by the minority tail) disagree. A checkpoint family follows the Fig. 1 story: the
majority class keeps improving (CE falls at every step) while the minority class is learned
and then forgotten, so coverage and Pass@N are best mid-training.

>>> recs = synthetic_records(n_models=3, n_tasks=1, n_docs=16, families={"fam": 3})
>>> len(recs), sorted({r.record.family for r in recs if r.record.family})
(6, ['fam'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from covbench import metrics
from covbench.records import DocArrays, Estimate, Provenance, Run, RunRecord, SampleArrays, TaskDescriptor, metric_key
from covbench.store import write_run

COV_NS: tuple[float, ...] = (1.5, 2.0, 4.0, 5.7, 8.0, 16.0, 64.0, 256.0)
PASS_NS: tuple[int, ...] = (1, 2, 4, 8)
MINORITY = 0.2  # larger than Fig. 1's 10% so a few dozen prompts already show the effect


def _provenance(seed: int, step: int) -> Provenance:
    # A fixed time per record (no clock): the same arguments always give the same store.
    return Provenance(covbench_version="0.1.0", lm_eval_version="0.4.13", git_commit="synthetic",
                      task_hash="0" * 64, model_spec_hash=f"{seed:064d}", seed=seed,
                      sampling={"temperature": 1.0}, machine="synthetic",
                      time=f"2025-01-01T00:{step // 60 % 60:02d}:{step % 60:02d}Z")


def _binomial(p: float, n: int) -> Estimate:
    # A normal-approximation interval for a proportion over n prompts: only plausible test data.
    se = math.sqrt(max(p * (1 - p), 0.0) / n) if math.isfinite(p) else math.nan
    return Estimate(value=p, lo=max(p - 1.96 * se, 0.0), hi=min(p + 1.96 * se, 1.0), stderr=se)


def _metrics(logp: np.ndarray, correct: np.ndarray, n_tokens: np.ndarray, n_bytes: np.ndarray
             ) -> dict[str, Estimate]:
    """Every metric key a gold-answer run stores, from one model's per-doc arrays."""
    x = -logp  # X = log π_D − log π̂ with log π_D = 0
    n = logp.size
    ce = metrics.cross_entropy(logp, n_tokens, n_bytes)
    se_ce = float(np.std(x) / math.sqrt(n)) if np.isfinite(x).all() else math.nan
    out = {
        "ce": Estimate(value=ce.per_sequence, lo=ce.per_sequence - 1.96 * se_ce,
                       hi=ce.per_sequence + 1.96 * se_ce, stderr=se_ce),
        "ce_per_token": Estimate(value=ce.per_token),
        "bpb": Estimate(value=ce.bits_per_byte),
        "kl": Estimate(value=metrics.kl(x)),
    }
    for n_thr, cov in zip(COV_NS, metrics.coverage_profile(x, COV_NS)):
        out[metric_key("cov", n_thr)] = _binomial(float(cov), n)
    exact = metrics.exact_pass_at_n(logp, PASS_NS)
    per_prompt = metrics.pass_at_k(np.full(n, correct.shape[1]), correct.sum(axis=1), np.array(PASS_NS)[:, None])
    sampled = per_prompt.mean(axis=1)  # = metrics.sampled_pass_at_n with uniform weights, without list copies
    predicted = metrics.predicted_pass_at_n(logp, PASS_NS)
    bracket = metrics.pass_bracket(x, PASS_NS)
    for i, k in enumerate(PASS_NS):
        out[metric_key("pass_exact", k)] = Estimate(value=float(exact[i]))
        out[metric_key("pass_sampled", k)] = _binomial(float(sampled[i]), n)
        out[metric_key("pass_pred", k)] = Estimate(value=float(predicted[i]))
        out[metric_key("pass_pred_lo", k)] = Estimate(value=float(bracket.lo[i]))
        out[metric_key("pass_pred_hi", k)] = Estimate(value=float(bracket.hi[i]))
    return out


def _record(model: str, task: str, skills: tuple[float, float], cls: np.ndarray, noise: np.ndarray,
            rng: np.random.Generator, n_samples: int, seed: int, family: str | None = None,
            step: int | None = None, description: str = "") -> Run:
    n_docs = cls.size
    # −log π̂(y*|x) per doc: the class's mean times a mean-1 Gamma noise shared by every model,
    # so models are compared on the same hard and easy prompts (what a paired bootstrap needs).
    logp = -np.where(cls == 1, skills[1], skills[0]) * noise
    correct = rng.random((n_docs, n_samples)) < np.exp(logp)[:, None]
    n_tokens = np.full(n_docs, 6)
    n_bytes = np.full(n_docs, 12)
    docs = DocArrays(doc_id=list(range(n_docs)), cls=["minority" if c else "majority" for c in cls],
                     logp_model=logp.tolist(), logp_ref=[0.0] * n_docs, n_tokens=n_tokens.tolist(),
                     n_bytes=n_bytes.tolist(), logp_correct=logp.tolist())
    samples = SampleArrays(doc_id=list(range(n_docs)),
                           generations=[["y" if ok else "n" for ok in row] for row in correct.tolist()],
                           correct=correct.tolist(), temperature=1.0, max_gen_toks=8)
    record = RunRecord(model=model, task=task, family=family, step=step, description=description,
                       descriptor=TaskDescriptor(name=task, reference="gold", kind="loglikelihood",
                                                 classes=("majority", "minority")),
                       provenance=_provenance(seed, step or 0), metrics=_metrics(logp, correct, n_tokens, n_bytes))
    return Run(record, docs, samples)


def _family_skills(n_steps: int) -> list[tuple[float, float]]:
    """Fig. 1 in miniature: majority −log π̂ falls linearly; minority is U-shaped (best at t ≈ 0.45).

    CE = 0.8·major + 0.2·minor has slope −2.4 + 4·(t − 0.45) ≤ −0.2 < 0, so it falls at every
    step while coverage of the minority class collapses late (−log π̂ ≈ 3.3 > log 4 at the end).
    """
    ts = np.linspace(0.0, 1.0, n_steps)
    return [(0.05 + 3.0 * (1 - t), 0.3 + 10.0 * (t - 0.45) ** 2) for t in ts]


def synthetic_records(n_models: int = 6, n_tasks: int = 2, n_docs: int = 64, n_samples: int = 8,
                      families: Mapping[str, int] | None = None, seed: int = 0,
                      names: Sequence[str] = (), descriptions: Mapping[str, str] | None = None
                      ) -> list[Run]:
    """Records for ``n_models`` independent models plus each family's checkpoints, on every task.

    Args:
        n_models: independent models ``model-000`` ... (random skills).
        n_tasks: tasks ``synth-0`` ...; each has its own prompts (classes and noise).
        n_docs, n_samples: prompts per task and samples per prompt (Pass@k is measured for k ≤ n).
        families: family name → number of checkpoints, named ``FAMILY/step-S``.
        seed: everything is drawn from ``numpy.random.default_rng(seed)``.
        names: extra independent model names (e.g. hostile strings for escaping tests).
        descriptions: model name → description.
    """
    rng = np.random.default_rng(seed)
    descriptions = dict(descriptions or {})
    models = [(f"model-{i:03d}", None, None, (float(rng.uniform(0.05, 1.5)), float(rng.uniform(0.1, 6.0))))
              for i in range(n_models)]
    models += [(name, None, None, (float(rng.uniform(0.05, 1.5)), float(rng.uniform(0.1, 6.0))))
               for name in names]
    for family, n_steps in sorted((families or {}).items()):
        for i, skills in enumerate(_family_skills(n_steps)):
            step = 1000 * (i + 1)
            models.append((f"{family}/step-{step}", family, step, skills))
    records = []
    for t in range(n_tasks):
        cls = (rng.random(n_docs) < MINORITY).astype(int)
        noise = rng.gamma(shape=4.0, scale=0.25, size=n_docs)
        for j, (name, family, step, skills) in enumerate(models):
            records.append(_record(name, f"synth-{t}", skills, cls, noise, rng, n_samples,
                                   seed=seed * 1_000_003 + j, family=family, step=step,
                                   description=descriptions.get(name, "")))
    records.sort(key=lambda r: (r.record.task, r.record.model))
    return records


def write_store(root: Path, runs: Sequence[Run]) -> Path:
    """Write ``runs`` into a results store at ``root`` with :func:`covbench.store.write_run`."""
    for run in runs:
        write_run(root, run)
    return Path(root)
