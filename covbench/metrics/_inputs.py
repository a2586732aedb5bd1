"""Input checks shared by the metric modules: one-line ``ValueError``s that name the function and field.

Conventions every metric follows (docs/coverage-principle.md#conventions):

- NaN in a data array is an error (a silent NaN would turn into a wrong number), never a value;
- an empty input or weights that sum to zero give NaN (missing), not 0 and not an exception;
- ±inf log-probs are legal: a model can give a response zero probability.
"""

from __future__ import annotations

import numpy as np


def as_1d(values: object, field: str, where: str) -> np.ndarray:
    """``values`` as a 1-D float64 array; NaN raises naming ``where`` and ``field``.

    >>> as_1d([0.0, float("inf")], "log_ratios", "kl")
    array([ 0., inf])
    >>> as_1d([1.0, float("nan")], "log_ratios", "kl")
    Traceback (most recent call last):
    ValueError: kl: log_ratios[1] is NaN (missing values must be dropped before computing a metric)
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{where}: {field} must be 1-D, got shape {arr.shape}")
    bad = np.flatnonzero(np.isnan(arr))
    if bad.size:
        raise ValueError(f"{where}: {field}[{bad[0]}] is NaN (missing values must be dropped "
                         "before computing a metric)")
    return arr


def as_weights(weights: object, n: int, where: str, field: str = "weights") -> np.ndarray:
    """Per-entry weights: ``None`` means uniform; otherwise finite, ≥ 0 and of length ``n``.

    >>> as_weights(None, 2, "kl")
    array([1., 1.])
    >>> as_weights([1.0, -1.0], 2, "kl")
    Traceback (most recent call last):
    ValueError: kl: weights[1] is -1.0; weights must be finite and >= 0
    """
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{where}: {field} has shape {w.shape}, expected ({n},)")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise ValueError(f"{where}: {field}[{bad[0]}] is {float(w[bad[0]])!r}; weights must be finite and >= 0")
    # Only relative weights matter; rescaling to max 1 keeps Σ w·v from underflowing when every weight
    # is tiny (e.g. subnormal), where Σ w·v / Σ w would otherwise come out as 0 instead of the mean.
    top = float(w.max()) if w.size else 0.0
    return w / top if top > 0 else w


def as_thresholds(ns: object, where: str, field: str = "Ns") -> np.ndarray:
    """Thresholds N as float64 (any shape, scalar allowed); each must be real, finite and ≥ 1.

    >>> as_thresholds([1, 4.6], "coverage_profile")
    array([1. , 4.6])
    >>> as_thresholds(0.5, "coverage_profile")
    Traceback (most recent call last):
    ValueError: coverage_profile: Ns contains 0.5; every threshold N must be finite and >= 1
    """
    arr = np.asarray(ns, dtype=np.float64)
    bad = ~np.isfinite(arr) | ~(arr >= 1.0)
    if bad.any():
        raise ValueError(f"{where}: {field} contains {float(arr[bad].flat[0])!r}; "
                         "every threshold N must be finite and >= 1")
    return arr


def weighted_mean(values: np.ndarray, w: np.ndarray) -> float:
    """Σ w·v / Σ w over entries with w > 0 (so 0·inf never makes a NaN); NaN when Σ w = 0.

    >>> weighted_mean(np.array([1.0, np.inf]), np.array([1.0, 0.0]))
    1.0
    >>> weighted_mean(np.array([]), np.array([]))
    nan
    """
    keep = w > 0
    total = w[keep].sum()
    if not total > 0:
        return float("nan")
    return float(np.dot(w[keep], values[keep]) / total)
