"""A mean over prompts with a closed-form interval: per-class values and paired differences (docs/selection.md#intervals).

For per-prompt values v_i (a class's −log π̂, coverage indicators, per-prompt Pass@N; or the per-prompt
difference d_i = Pass@N of pick A − Pass@N of pick B on the same prompt) with weights w_i > 0:

    mean  m  = Σ_i w_i v_i / Σ_i w_i
    se²      = n_eff/(n_eff − 1) · Σ_i w_i² (v_i − m)² / (Σ_i w_i)²,      n_eff = (Σ w)² / Σ w²
    interval = m ± t_{n_eff − 1, 1 − α/2} · se

The sum is the linearisation variance that :mod:`covbench.metrics._agreement` uses for every pairwise
order (its :func:`~covbench.metrics._agreement.centred` computes the deviations here too); the factor
n_eff/(n_eff − 1) and the Student-t quantile make it, for uniform weights, exactly the textbook
one-sample (for differences: paired) t interval (tests/test_selection_intervals.py checks it against
scipy). Kish's effective size n_eff counts unequal weights (stratified Fig. 2 prompts) honestly.

Why not the percentile bootstrap of the stored metrics: these means are computed by the site for every
class of every model on every task (10,000 runs in the leaderboard benchmark) and for every family; a
closed form costs O(prompts) per value, is deterministic, and for means of bounded per-prompt values over
tens to hundreds of prompts it agrees with the bootstrap (the tests compare both, and simulate coverage).

Conventions: a row with NaN is missing (NaN everywhere); a row with +inf (a response of probability 0:
CE = +inf) has mean +inf and the interval [+inf, +inf], since no resample removes a prompt whose value is
certain; fewer than two prompts, or n_eff ≤ 1, leave the interval NaN; no weight > 0 leaves everything NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from ._agreement import centred


@dataclass(frozen=True)
class MeanCI:
    """Weighted means with their intervals; arrays shaped like the input's leading axes (and groups).

    ``n``: prompts with weight > 0 behind each value (an array of the same shape, int)."""

    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    stderr: np.ndarray
    n: np.ndarray
    level: float


def _check(values: object, weights: object, level: float, where: str) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 0:
        raise ValueError(f"{where}: values must have a prompts axis")
    w = np.ones(v.shape[-1]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (v.shape[-1],):
        raise ValueError(f"{where}: weights have shape {w.shape}, expected ({v.shape[-1]},)")
    if (~np.isfinite(w) | (w < 0)).any():
        raise ValueError(f"{where}: weights must be finite and >= 0")
    if not 0.0 < level < 1.0:
        raise ValueError(f"{where}: level must be in (0, 1), got {level!r}")
    top = w.max(initial=0.0)
    return v, (w / top if top > 0 else w)


def mean_ci(values: object, weights: object = None, level: float = 0.95) -> MeanCI:
    """Weighted mean of each row of ``values`` (``[..., prompts]``) with its t interval (module docstring).

    Examples:
        >>> ci = mean_ci([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5]])
        >>> ci.value.tolist(), ci.lo[1].item(), ci.hi[1].item(), ci.n.tolist()
        ([2.5, 0.5], 0.5, 0.5, [4, 4])
        >>> round(ci.stderr[0].item(), 4), round(ci.lo[0].item(), 3), round(ci.hi[0].item(), 3)
        (0.6455, 0.446, 4.554)
    """
    v, w = _check(values, weights, level, "mean_ci")
    lead = v.shape[:-1]
    flat = v.reshape(int(np.prod(lead, dtype=np.int64)), v.shape[-1])
    live = w > 0
    flat, w = flat[:, live], w[live]
    n = int(live.sum())
    nan = np.full(flat.shape[0], np.nan)
    if n == 0:
        out = MeanCI(nan, nan, nan, nan, np.zeros(flat.shape[0], np.int64), level)
    else:
        missing = np.isnan(flat).any(axis=1)
        c = centred(np.where(missing[:, None], 0.0, flat), w)
        n_eff = w.sum() ** 2 / (w * w).sum()
        value = np.where(missing, np.nan, c.means)
        if n < 2 or not n_eff > 1.0 + 1e-12:
            stderr = lo = hi = nan
        else:
            stderr = np.sqrt((c.scaled * c.scaled).sum(axis=1) * n_eff / (n_eff - 1.0))
            q = float(special.stdtrit(n_eff - 1.0, 0.5 + level / 2.0))
            with np.errstate(invalid="ignore"):  # inf ± 0 stays inf; NaN rows stay NaN
                lo = np.where(np.isinf(value), value, value - q * stderr)
                hi = np.where(np.isinf(value), value, value + q * stderr)
            stderr = np.where(missing, np.nan, stderr)
        out = MeanCI(value, lo, hi, stderr, np.full(flat.shape[0], n, np.int64), level)
    return MeanCI(*(a.reshape(lead) for a in (out.value, out.lo, out.hi, out.stderr, out.n)), level)


def grouped_mean_ci(values: object, codes: object, n_groups: int, weights: object = None,
                    level: float = 0.95) -> MeanCI:
    """:func:`mean_ci` within each group: ``codes[i]`` ∈ {0, …, n_groups − 1} is prompt i's group (−1: in
    none); results have shape ``values.shape[:-1] + (n_groups,)``. An empty group is NaN (missing).

    Examples:
        >>> ci = grouped_mean_ci([1.0, 3.0, 10.0, 0.0], [0, 0, 1, -1], 3)
        >>> ci.value.tolist(), ci.n.tolist()
        ([2.0, 10.0, nan], [2, 1, 0])
    """
    v, w = _check(values, weights, level, "grouped_mean_ci")
    code = np.asarray(codes)
    if code.shape != (v.shape[-1],) or not np.issubdtype(code.dtype, np.integer):
        raise ValueError(f"grouped_mean_ci: codes must be {v.shape[-1]} integers, got {code.dtype} {code.shape}")
    parts = [mean_ci(v[..., code == g], w[code == g], level) for g in range(n_groups)]
    stack = lambda name: np.stack([getattr(p, name) for p in parts], axis=-1) if parts else \
        np.zeros(v.shape[:-1] + (0,))
    return MeanCI(stack("value"), stack("lo"), stack("hi"), stack("stderr"), stack("n").astype(np.int64), level)


__all__ = ["MeanCI", "grouped_mean_ci", "mean_ci"]
