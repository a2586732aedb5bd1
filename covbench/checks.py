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

from covbench.metrics import card_for
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


def agreement_problems(sampled: RunRecord, scored: RunRecord) -> list[str]:
    """Sampled vs exact Pass@N, and measured Pass@N vs the coverage bracket, for every shared N."""
    problems = []
    for key, meas in sampled.metrics.items():
        base, n = split_key(key)
        if base != "pass_sampled" or n is None or math.isnan(meas.value):
            continue
        exact = scored.metrics.get(metric_key("pass_exact", n))
        if exact is not None and not math.isnan(exact.value):
            tol = Z * math.hypot(_se(meas), _se(exact)) + TOL
            if abs(meas.value - exact.value) > tol:
                problems.append(f"sampled {key} = {meas.value:.4f} and exact = {exact.value:.4f} differ by "
                                f"more than {Z:g} standard errors ({tol:.4f})")
        lo = scored.metrics.get(metric_key("pass_pred_lo", n))
        hi = scored.metrics.get(metric_key("pass_pred_hi", n))
        if lo is not None and hi is not None and not math.isnan(lo.value):
            slack = Z * _se(meas) + TOL
            if not lo.value - slack <= meas.value <= hi.value + slack:
                problems.append(f"measured {key} = {meas.value:.4f} is outside the coverage bracket "
                                f"[{lo.value:.4f}, {hi.value:.4f}] (± {slack:.4f})")
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
