"""What must hold for any scored run, as pure functions that return one-line problems (empty = fine).

- :func:`record_problems`: every value inside its metric card's range; curves monotone in N as their card
  says (Cov_N non-increasing, Pass@N non-decreasing: docs/coverage-principle.md#sanity-checks); KL ≥ 0
  when it is an exact expectation over the enumerated support.
- :func:`agreement_problems`: a sampling run against the scoring run it pairs with, same model, same
  prompts: sampled and exact Pass@N agree within 4 standard errors (docs/coverage-principle.md
  #exact-vs-sampled), and measured Pass@N lies inside the coverage bracket
  (docs/coverage-principle.md#bon-sandwich) up to 4 standard errors.
- :func:`floor_problems`: the registry's per-model bounds (``floors``), the regression gate.

They read runs only; the suite (``suite/test_suite.py``) decides which runs to compare and gets them from
the runner.
"""

from __future__ import annotations

import math

import numpy as np

from covbench import metrics
from covbench.metrics import card_for
from covbench.records import Estimate, Run, RunRecord, metric_key, split_key
from covbench.summarize import single_answer

TOL = 1e-9
Z = 4.0  # agreement within 4 standard errors


def _curve(record: RunRecord, name: str) -> list[tuple[float, float]]:
    pts = []
    for key, est in record.metrics.items():
        base, n = split_key(key)
        if base == name and n is not None and not math.isnan(est.value):
            pts.append((n, est.value))
    return sorted(pts)


def record_problems(run: Run) -> list[str]:
    """Range and shape problems of one run's metrics. KL's lower end 0 holds only for an exact expectation
    over the enumerated support; a one-sample estimate of it (one reference response per prompt) may be
    negative, so it is checked only when the run enumerated the support."""
    record = run.record
    exact_kl = run.docs is not None and run.docs.has_support
    problems = []
    curves = set()
    for key, est in sorted(record.metrics.items()):
        try:
            card = card_for(key)
        except KeyError:
            continue  # a metric covbench has no card for: nothing to check it against
        lo, hi = card.range
        if card.name == "kl" and not exact_kl:
            lo = -math.inf
        if not math.isnan(est.value) and not lo - TOL <= est.value <= hi + TOL:
            problems.append(f"{key} = {est.value} is outside [{lo:g}, {hi:g}]")
        if card.curve and card.monotone:
            curves.add(card.name)
    for name in sorted(curves):
        sign = card_for(name).monotone
        what = "non-increasing" if sign < 0 else "non-decreasing"
        pts = _curve(record, name)
        for (n0, v0), (n1, v1) in zip(pts, pts[1:]):
            if sign * (v1 - v0) < -TOL:
                problems.append(f"{name} is not {what} in N: {metric_key(name, n0)} = {v0:.6g}, "
                                f"{metric_key(name, n1)} = {v1:.6g}")
    return problems


def same_policy(sampled: RunRecord, scored: RunRecord) -> bool:
    """Whether the samples were drawn from the policy the scores describe (docs/policies.md): the runner
    records each run's policy; runs stored before it did are compared when they sampled at temperature 1
    without truncation (what scoring then described)."""
    a, b = sampled.provenance.sampling.get("policy"), scored.provenance.sampling.get("policy")
    if a is not None and b is not None:
        return a == b
    s = sampled.provenance.sampling
    return float(s.get("temperature", 1.0) or 1.0) == 1.0 and not s.get("top_p") and not s.get("top_k")


def _se(est: Estimate) -> float:
    return 0.0 if math.isnan(est.stderr) else est.stderr


def _model_se(per_prompt: np.ndarray, w: np.ndarray) -> float:
    """Sampling SE of a measured Pass@N given the model: the unbiased estimator is a U-statistic whose
    per-prompt variance is at most that of one kernel, q(1 − q) with q the exact per-prompt Pass@N."""
    return float(np.sqrt(np.sum(w**2 * per_prompt * (1 - per_prompt))) / np.sum(w))


def agreement_problems(sampled: Run, scored: Run) -> list[str]:
    """Sampled vs exact Pass@N, and measured Pass@N vs the coverage bracket, on the prompts both share.

    Tolerance: 4 × the larger of the measured value's bootstrap SE and its model-based sampling SE.
    The bracket's upper end (1 − ½·Cov_2N) bounds the scored event itself, so it is checked only for
    known-π_D tasks, whose verifier accepts exactly S_x; a gold-answer verifier may accept more strings
    than y* (e.g. "12."), so there only the lower end is a bound on the measured value.
    """
    if sampled.samples is None or scored.docs is None or not same_policy(sampled.record, scored.record):
        return []
    docs = scored.docs
    index = {int(d): i for i, d in enumerate(docs.doc_id)}
    rows = np.array([index[int(d)] for d in sampled.samples.doc_id if int(d) in index], dtype=int)
    if rows.size == 0:
        return []
    w = docs.weights()[rows]
    reference = scored.record.reference
    problems = []
    for key, meas in sorted(sampled.record.metrics.items()):
        base, n = split_key(key)
        if base != "pass_sampled" or n is None or math.isnan(meas.value):
            continue
        if docs.logp_correct is not None:
            per = metrics.pass_at_n_per_prompt(docs.logp_correct[rows], [n])[0]
            exact = float(np.average(per, weights=w))
            tol = Z * max(_se(meas), _model_se(per, w)) + TOL
            if abs(meas.value - exact) > tol:
                problems.append(f"sampled {key} = {meas.value:.4f} and exact = {exact:.4f} on the same "
                                f"{rows.size} prompts differ by more than {Z:g} standard errors ({tol:.4f})")
        if single_answer(docs, reference):
            x = docs.logp_ref[rows] - docs.logp_model[rows]
            bracket = metrics.pass_bracket(x, [n], w)
            lo, hi = float(bracket.lo[0]), float(bracket.hi[0])
            pred = metrics.pass_at_n_per_prompt(docs.logp_model[rows], [n])[0]
            tol = Z * max(_se(meas), _model_se(pred, w)) + TOL
            upper = hi + tol if reference == "known" else math.inf
            if not lo - tol <= meas.value <= upper:
                problems.append(f"measured {key} = {meas.value:.4f} is outside the coverage bracket "
                                f"[{lo:.4f}, {hi:.4f}] (± {tol:.4f}) on the same {rows.size} prompts")
    return problems


def floor_problems(record: RunRecord, floors: dict[str, dict[str, float]]) -> list[str]:
    """The registry's bounds for this task: a minimum for higher-is-better metrics (Pass@N), a maximum
    for lower-is-better ones (CE, KL, Cov_N), as the metric's card says."""
    problems = []
    for key, bound in sorted(floors.get(record.task, {}).items()):
        hib = card_for(key).higher_is_better
        want = f"{key} {'≥' if hib else '≤'} {bound:g}"
        est = record.metrics.get(key)
        if est is None or math.isnan(est.value):
            problems.append(f"floor {want}: the metric is missing")
        elif (est.value < bound) if hib else (est.value > bound):
            problems.append(f"floor {want}: got {est.value:.4f}")
    return problems
