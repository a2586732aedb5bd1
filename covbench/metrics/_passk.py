"""Pass@N: the unbiased sampled estimator, the exact value from scoring, and coverage's prediction.

Formulas: docs/coverage-principle.md#bon-sandwich, #est-pass-exact; the estimator is Chen et al. 2021 (Codex, arXiv 2107.03374).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._inputs import as_1d, as_thresholds, as_weights

#: Sample budgets N every task reports Pass@N at (paper Fig. 1 uses 4, 8, 12).
DEFAULT_PASS_NS: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 32)

# log π̂ a little above 0 is the rounding of a logsumexp over a support of mass 1; beyond this, a bug.
_LOGP_ROUNDING = 1e-6


def pass_at_k(n: object, c: object, k: object) -> np.ndarray:
    """Unbiased Pass@k from n samples of which c are correct: ``1 − C(n−c, k)/C(n, k)``.

    Computed in the stable product form ``1 − Π_{i=n−c+1}^{n} (1 − k/i)`` (Chen et al. 2021), summed
    in log space with ``log1p`` and finished with ``expm1`` so tiny values keep their digits.
    Broadcasts over ``n``, ``c`` and ``k`` (one entry per problem, or a grid of k).

    Args:
        n: samples drawn per problem (integers ≥ 0).
        c: correct samples per problem (integers, 0 ≤ c ≤ n).
        k: budget (integers ≥ 1).

    Returns:
        float64 array of the broadcast shape; **NaN where k > n** (missing, never 1.0).

    Examples:
        >>> pass_at_k(10, 3, [1, 8, 11]).round(6).tolist()
        [0.3, 1.0, nan]
        >>> pass_at_k([5, 5], [0, 5], 2).tolist()
        [0.0, 1.0]
    """
    n_a, c_a, k_a = (_as_counts(v, name) for v, name in ((n, "n"), (c, "c"), (k, "k")))
    if (k_a < 1).any():
        raise ValueError("pass_at_k: k must be >= 1")
    if (c_a > n_a).any():
        raise ValueError("pass_at_k: c > n (more correct samples than samples)")
    n_b, c_b, k_b = np.broadcast_arrays(n_a, c_a, k_a)
    out = np.full(n_b.shape, np.nan)
    # Distinct (n, k) pairs as one integer each (a 1-D unique is far cheaper than unique rows).
    stride = int(k_b.max(initial=0)) + 1
    for code in np.unique(n_b.ravel() * stride + k_b.ravel()).tolist():
        nn, kk = divmod(int(code), stride)
        if kk > nn:
            continue
        sel = (n_b == nn) & (k_b == kk)
        cc = c_b[sel]
        c_max = min(int(cc.max()), nn - kk)
        # log Π_{i=n−c+1}^{n}(1 − k/i) for every c ≤ c_max at once: a cumulative sum over i = n, n−1, ...
        log_fail = np.concatenate([[0.0], np.cumsum(np.log1p(-kk / np.arange(nn, nn - c_max, -1.0)))])
        # With c > n − k every k-subset holds a correct sample: Pass@k is exactly 1.
        out[sel] = np.where(cc > nn - kk, 1.0, 0.0 - np.expm1(log_fail[np.minimum(cc, c_max)]))
    return out


def _as_counts(values: object, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"pass_at_k: {name} must be integer counts, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not (np.isfinite(arr) & (arr == np.round(arr))).all():
            raise ValueError(f"pass_at_k: {name} must be integer counts (no NaN, no fractions)")
        arr = arr.astype(np.int64)
    if (arr < 0).any():
        raise ValueError(f"pass_at_k: {name} must be >= 0")
    return arr.astype(np.int64)


def sampled_pass_at_n(correct: Sequence[Sequence[bool]], Ns: object,
                      weights: object = None) -> np.ndarray:
    """Mean unbiased Pass@N over prompts from per-sample verdicts ``correct[prompt][sample]``.

    A prompt with fewer than N samples makes Pass@N missing (NaN) for that N: never a guess.

    Examples:
        >>> sampled_pass_at_n([[True, False], [False, False]], [1, 2, 3]).tolist()
        [0.25, 0.5, nan]
    """
    n_thr = as_thresholds(Ns, "sampled_pass_at_n")
    if (n_thr != np.round(n_thr)).any():
        raise ValueError("sampled_pass_at_n: Ns must be integers for sampled Pass@N")
    n = np.array([len(row) for row in correct], dtype=np.int64)
    c = np.array([int(np.sum(row)) for row in correct], dtype=np.int64)
    w = as_weights(weights, n.size, "sampled_pass_at_n")
    if not w.sum() > 0:
        return np.full(n_thr.shape, np.nan)
    per_prompt = pass_at_k(n[None, :], c[None, :], n_thr.reshape(-1, 1).astype(np.int64))
    return (per_prompt @ w / w.sum()).reshape(n_thr.shape)


def pass_at_n_per_prompt(log_p: object, Ns: object) -> np.ndarray:
    """Per-prompt ``1 − (1 − p)^N`` from ``log p``, shape ``[len(Ns), prompts]``.

    ``(1 − p)^N = exp(N · log(1 − p))`` with ``log(1 − p)`` from ``log p`` by the two-branch log1mexp
    (``log(−expm1(lp))`` near p = 1, ``log1p(−exp(lp))`` otherwise), and the final ``1 − e^t`` by
    ``−expm1(t)``: accurate both for p = 1e-300 and p = 1 − 1e-12.

    Examples:
        >>> pass_at_n_per_prompt([np.log(0.5), 0.0, -np.inf], [1, 2]).tolist()
        [[0.5, 1.0, 0.0], [0.75, 1.0, 0.0]]
        >>> float(pass_at_n_per_prompt([np.log(1e-300)], [4])[0, 0] / 4e-300).__round__(9)
        1.0
    """
    lp = as_1d(log_p, "log_p", "pass_at_n")
    if (lp > _LOGP_ROUNDING).any():
        i = int(np.flatnonzero(lp > _LOGP_ROUNDING)[0])
        raise ValueError(f"pass_at_n: log_p[{i}] = {float(lp[i])!r} > 0 is not a log-probability")
    lp = np.minimum(lp, 0.0)
    n_thr = as_thresholds(Ns, "pass_at_n").reshape(-1)
    with np.errstate(divide="ignore"):  # log(0) = -inf at p = 1 is the right answer
        log_fail_once = np.where(lp > -np.log(2.0), np.log(-np.expm1(lp)), np.log1p(-np.exp(lp)))
        t = n_thr[:, None] * log_fail_once[None, :]
    return -np.expm1(t)


def exact_pass_at_n(log_p_correct: object, Ns: object, weights: object = None) -> np.ndarray:
    """Exact Pass@N ``E_x[1 − (1 − π̂(S_x|x))^N]`` from the log of the model's mass on each correct set.

    No sampling: the value follows from scoring the enumerable correct set S_x (docs/coverage-principle.md#est-pass-exact).

    Returns:
        float64 array shaped like ``Ns``; NaN for empty input or weights summing to zero.

    Examples:
        >>> exact_pass_at_n(np.log([0.5, 0.1]), [1, 2]).round(6).tolist()
        [0.3, 0.47]
        >>> exact_pass_at_n([], [1]).tolist()
        [nan]
    """
    per_prompt = pass_at_n_per_prompt(log_p_correct, Ns)
    w = as_weights(weights, per_prompt.shape[1], "exact_pass_at_n")
    shape = np.shape(np.asarray(Ns, dtype=np.float64))
    if not w.sum() > 0:
        return np.full(shape, np.nan)
    return (per_prompt @ w / w.sum()).reshape(shape)


def predicted_pass_at_n(log_p_gold: object, Ns: object, weights: object = None) -> np.ndarray:
    """Pass@N predicted from scoring the gold answer: ``E_x[1 − (1 − π̂(y*|x))^N]``.

    For single-answer tasks this is the per-prompt exact form of the coverage prediction (docs/coverage-principle.md#bon-sandwich, "explicit sandwich", p(x) = π̂(y*|x)). It equals exact Pass@N when y* is the *only* correct
    string; when several strings are correct it is a **lower bound** (the model's mass on the correct
    set is at least its mass on y*). It is a prediction from scoring, not a measurement.

    Examples:
        >>> predicted_pass_at_n(np.log([0.5, 0.1]), 2).round(6).item()
        0.47
    """
    return exact_pass_at_n(log_p_gold, Ns, weights)
