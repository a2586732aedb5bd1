"""What must hold for any scored run, as functions that return one-line problems (empty = fine).

- :func:`record_problems`: values in range; Cov_N non-increasing in N and Pass@N non-decreasing in N
  (paper.md §7 item 8); CE ≥ 0; KL ≥ 0 when it is an exact expectation over the enumerated support.
- :func:`paired_problems`: a sampling task against the scoring task it pairs with, on the same
  model: sampled and exact Pass@N agree within 4 standard errors (design.md "Exact and sampled Pass@N
  must agree"), and measured Pass@N lies inside the coverage bracket (paper.md §1.2) up to 4 standard
  errors of sampling noise. Skipped when the model samples with temperature ≠ 1, top-p or top-k, since
  the exact and predicted values describe the model's distribution at temperature 1.
- :func:`floor_problems`: the registry's per-model bounds (``floors``), the regression gate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from covbench import metrics
from covbench.metrics import card_for
from covbench.summarize import single_answer
from covbench.records import Estimate, RunRecord, metric_key, split_key
from covbench.registry import ModelSpec

TOL = 1e-9
Z = 4.0  # agreement within 4 standard errors


def _curve(record: RunRecord, name: str) -> list[tuple[float, float]]:
    pts = []
    for key, est in record.metrics.items():
        base, n = split_key(key)
        if base == name and n is not None and not math.isnan(est.value):
            pts.append((n, est.value))
    return sorted(pts)


def record_problems(record: RunRecord) -> list[str]:
    problems = []
    for key, est in record.metrics.items():
        base, _ = split_key(key)
        if base in ("cov", "pass_exact", "pass_sampled", "pass_pred", "pass_pred_lo", "pass_pred_hi"):
            if not math.isnan(est.value) and not -TOL <= est.value <= 1 + TOL:
                problems.append(f"{key} = {est.value} is outside [0, 1]")
    for name, sign, what in (("cov", -1, "non-increasing"), ("pass_exact", 1, "non-decreasing"),
                             ("pass_sampled", 1, "non-decreasing"), ("pass_pred", 1, "non-decreasing")):
        pts = _curve(record, name)
        for (n0, v0), (n1, v1) in zip(pts, pts[1:]):
            if sign * (v1 - v0) < -TOL:
                problems.append(f"{name} is not {what} in N: {metric_key(name, n0)} = {v0:.6g}, "
                                f"{metric_key(name, n1)} = {v1:.6g}")
    ce = record.metrics.get("ce")
    if ce is not None and ce.value < -TOL:
        problems.append(f"ce = {ce.value} < 0")
    kl = record.metrics.get("kl")
    exact_kl = record.docs is not None and record.docs.support_logp_ref is not None
    if kl is not None and exact_kl and kl.value < -TOL:
        problems.append(f"kl = {kl.value} < 0 although it is an exact expectation over the support")
    return problems


def _plain_sampling(record: RunRecord) -> bool:
    s = record.provenance.sampling
    return float(s.get("temperature", 1.0) or 1.0) == 1.0 and not s.get("top_p") and not s.get("top_k")


def _se(est: Estimate) -> float:
    return 0.0 if math.isnan(est.stderr) else est.stderr


def _shared_docs(sampled: RunRecord, scored: RunRecord) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows of the scored task's docs for the sampled prompts, and those prompts' weights."""
    if sampled.samples is None or scored.docs is None:
        return None
    index = {d: i for i, d in enumerate(scored.docs.doc_id)}
    rows = np.array([index[d] for d in sampled.samples.doc_id if d in index], dtype=int)
    if rows.size == 0:
        return None
    w = np.ones(rows.size) if scored.docs.weight is None else np.asarray(scored.docs.weight, float)[rows]
    return rows, w


def _model_se(per_prompt: np.ndarray, w: np.ndarray) -> float:
    """Sampling SE of a measured Pass@N given the model: the unbiased estimator is a U-statistic whose
    per-prompt variance is at most that of one kernel, q(1 − q) with q the exact per-prompt Pass@N."""
    return float(np.sqrt(np.sum(w**2 * per_prompt * (1 - per_prompt))) / np.sum(w))


def agreement_problems(sampled: RunRecord, scored: RunRecord) -> list[str]:
    """Sampled vs exact Pass@N, and measured Pass@N vs the coverage bracket, on the prompts both share.

    Tolerance: 4 × the larger of the measured value's bootstrap SE and its model-based sampling SE.
    The bracket's upper end (1 − ½·Cov_2N) bounds the scored event itself, so it is checked only for
    known-π_D tasks, whose verifier accepts exactly S_x; a gold-answer verifier may accept more strings
    than y* (e.g. "12."), so there only the lower end is a bound on the measured value.
    """
    shared = _shared_docs(sampled, scored)
    if shared is None:
        return []
    rows, w = shared
    docs = scored.docs
    problems = []
    for key, meas in sorted(sampled.metrics.items()):
        base, n = split_key(key)
        if base != "pass_sampled" or n is None or math.isnan(meas.value):
            continue
        if docs.logp_correct is not None:
            per = metrics.pass_at_n_per_prompt(np.asarray(docs.logp_correct)[rows], [n])[0]
            exact = float(np.average(per, weights=w))
            tol = Z * max(_se(meas), _model_se(per, w)) + TOL
            if abs(meas.value - exact) > tol:
                problems.append(f"sampled {key} = {meas.value:.4f} and exact = {exact:.4f} on the same "
                                f"{rows.size} prompts differ by more than {Z:g} standard errors ({tol:.4f})")
        if single_answer(docs, scored.reference):
            x = np.asarray(docs.logp_ref)[rows] - np.asarray(docs.logp_model)[rows]
            bracket = metrics.pass_bracket(x, [n], w)
            lo, hi = float(bracket.lo[0]), float(bracket.hi[0])
            pred = metrics.pass_at_n_per_prompt(np.asarray(docs.logp_model)[rows], [n])[0]
            tol = Z * max(_se(meas), _model_se(pred, w)) + TOL
            upper = hi + tol if scored.reference == "known" else math.inf
            if not lo - tol <= meas.value <= upper:
                problems.append(f"measured {key} = {meas.value:.4f} is outside the coverage bracket "
                                f"[{lo:.4f}, {hi:.4f}] (± {tol:.4f}) on the same {rows.size} prompts")
    return problems


def paired_problems(record: RunRecord, spec: ModelSpec, results_dir: Path,
                    get_lm: Callable[[ModelSpec], Any] | None = None, tasks_dir: Path | None = None) -> list[str]:
    """Score (or reuse) the paired scoring task and compare; nothing for unpaired tasks."""
    from covbench.runner import TASKS_DIR, load_task, run_job

    tasks_dir = tasks_dir or TASKS_DIR
    partner = load_task(record.task, tasks_dir).pairs_with
    if not partner or record.samples is None or not _plain_sampling(record):
        return []
    scored = run_job(spec, partner, results_dir, get_lm=get_lm, tasks_dir=tasks_dir).record
    return agreement_problems(record, scored)


def floor_problems(record: RunRecord, spec: ModelSpec) -> list[str]:
    """The registry's bounds for this task: a minimum for higher-is-better metrics (Pass@N), a maximum
    for lower-is-better ones (CE, KL, Cov_N), as the metric's card says."""
    problems = []
    for key, bound in sorted(spec.floors.get(record.task, {}).items()):
        hib = card_for(key).higher_is_better
        want = f"{key} {'≥' if hib else '≤'} {bound:g}"
        est = record.metrics.get(key)
        if est is None or math.isnan(est.value):
            problems.append(f"floor {want}: the metric is missing")
        elif (est.value < bound) if hib else (est.value > bound):
            problems.append(f"floor {want}: got {est.value:.4f}")
    return problems
