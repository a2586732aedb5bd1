"""Coverage profile, KL and cross-entropy from per-response log-probs (docs/coverage-principle.md#cov-def, #cov-vs-kl, #estimators).

Everything is in nats on the *sequence* level: ``X = log π_ref(y|x) − log π̂(y|x)`` summed over the
response tokens. Cov_N is a bad tail (lower is better); KL is the mean of X; CE is the mean of −log π̂.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._inputs import as_1d, as_thresholds, as_weights, weighted_mean

#: Thresholds N every task reports Cov_N at: roughly log-spaced from 1 to 1024, with the paper's
#: non-integer Fig. 1 thresholds (4.6, 5.7) and every N/2 and 2N of ``DEFAULT_PASS_NS``.
DEFAULT_COV_NS: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0, 4.6, 5.7, 6.0, 8.0, 12.0, 16.0, 24.0,
                                     32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)


def coverage_profile(log_ratios: object, Ns: object, weights: object = None) -> np.ndarray:
    """Coverage profile ``Cov_N = Σ w·1[X ≥ log N] / Σ w`` for every threshold N (paper Eq. 1/4).

    Args:
        log_ratios: 1-D X = log π_ref(y|x) − log π̂(y|x) per response (nats). ``+inf`` (the model
            gives the reference response zero probability) is uncovered at every N; NaN raises.
        Ns: real thresholds N ≥ 1, any shape (a scalar gives a 0-d array).
        weights: optional per-response weights ≥ 0 (class-mixture priors; for an exact expectation
            over an enumerated support, ``π_D(y|x) × doc weight``: see :func:`support_log_ratios`).

    Returns:
        float64 array shaped like ``Ns``; NaN (missing) for empty input or weights summing to 0.

    Examples:
        >>> coverage_profile([0.0, 1.0, 2.0, float("inf")], [1, 3, 1e6]).tolist()
        [1.0, 0.5, 0.25]
        >>> coverage_profile([0.0, 2.0], 4.0, weights=[3, 1]).item()
        0.25
        >>> coverage_profile([], [2.0]).tolist()
        [nan]
    """
    x = as_1d(log_ratios, "log_ratios", "coverage_profile")
    n_thr = as_thresholds(Ns, "coverage_profile")
    w = as_weights(weights, x.size, "coverage_profile")
    keep = w > 0
    x, w = x[keep], w[keep]
    if x.size == 0:
        return np.full(n_thr.shape, np.nan)
    # One sort gives the whole curve: the tail {X ≥ log N} is a suffix of the sorted X.
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    first = np.searchsorted(xs, np.log(n_thr), side="left")  # first index with X ≥ log N
    if weights is None:  # exact counts for the unweighted estimator (paper Eq. 28)
        return np.asarray((x.size - first) / x.size, dtype=np.float64)
    tail = np.concatenate([np.cumsum(ws[::-1])[::-1], [0.0]])  # tail[i] = Σ_{j ≥ i} ws[j]
    return np.asarray(tail[first] / tail[0], dtype=np.float64)


def kl(log_ratios: object, weights: object = None) -> float:
    """KL(π_ref‖π̂) estimate: the (weighted) mean of X over responses y ∼ π_ref (docs/coverage-principle.md#est-kl).

    ``+inf`` entries give ``inf`` (honest: the model misses a reference response). ``-inf`` means the
    reference gives its own sample zero probability, which is impossible, so it raises.

    Examples:
        >>> kl([0.5, 1.5])
        1.0
        >>> kl([0.0, float("inf")])
        inf
        >>> kl([])
        nan
    """
    x = as_1d(log_ratios, "log_ratios", "kl")
    w = as_weights(weights, x.size, "kl")
    bad = np.flatnonzero(np.isneginf(x) & (w > 0))
    if bad.size:
        raise ValueError(f"kl: log_ratios[{bad[0]}] is -inf (the reference gives its own response "
                         "zero probability)")
    return weighted_mean(x, w)


@dataclass(frozen=True)
class CrossEntropy:
    """Cross-entropy of the reference responses under the model.

    ``per_sequence``: mean −log π̂(y|x) in nats; ``per_token``: Σ(−log π̂)/Σ tokens (nats/token);
    ``bits_per_byte``: Σ(−log π̂)/(ln 2 · Σ bytes). NaN where the counts were not given.
    """

    per_sequence: float
    per_token: float
    bits_per_byte: float


def cross_entropy(logp_model: object, n_tokens: object = None, n_bytes: object = None,
                  weights: object = None) -> CrossEntropy:
    """Sequence, per-token and bits-per-byte cross-entropy (docs/coverage-principle.md#est-ce: the paper's D_CE, §3; lm-eval's bpb).

    Per-token and per-byte values are ratios of (weighted) sums, as lm-eval's ``bits_per_byte``,
    not means of per-doc ratios. A ``-inf`` log-prob gives ``+inf`` CE; NaN raises.

    Examples:
        >>> ce = cross_entropy([-1.0, -3.0], n_tokens=[1, 3], n_bytes=[2, 2])
        >>> ce.per_sequence, ce.per_token, round(ce.bits_per_byte, 6)
        (2.0, 1.0, 1.442695)
        >>> cross_entropy([-1.0, float("-inf")]).per_sequence
        inf
        >>> cross_entropy([]).per_sequence
        nan
    """
    lp = as_1d(logp_model, "logp_model", "cross_entropy")
    bad = np.flatnonzero(lp == np.inf)
    if bad.size:
        raise ValueError(f"cross_entropy: logp_model[{bad[0]}] is +inf; a log-probability is <= 0")
    w = as_weights(weights, lp.size, "cross_entropy")
    nll = -lp
    per_sequence = weighted_mean(nll, w)
    per_token = _ratio_of_sums(nll, n_tokens, w, "n_tokens")
    per_byte = _ratio_of_sums(nll, n_bytes, w, "n_bytes") / math.log(2.0)
    return CrossEntropy(per_sequence, per_token, per_byte)


def _ratio_of_sums(nll: np.ndarray, counts: object, w: np.ndarray, field: str) -> float:
    """Σ w·nll / Σ w·count over entries with w > 0; NaN without counts or when Σ w·count = 0."""
    if counts is None:
        return float("nan")
    c = as_1d(counts, field, "cross_entropy")
    if c.size != nll.size:
        raise ValueError(f"cross_entropy: {field} has {c.size} entries, logp_model has {nll.size}")
    bad = np.flatnonzero(~np.isfinite(c) | (c < 0))
    if bad.size:
        raise ValueError(f"cross_entropy: {field}[{bad[0]}] is {float(c[bad[0]])!r}; counts must be >= 0")
    keep = w > 0
    denom = np.dot(w[keep], c[keep])
    if not denom > 0:
        return float("nan")
    return float(np.dot(w[keep], nll[keep]) / denom)


def support_log_ratios(support_logp_ref: object, support_logp_model: object,
                       doc_weights: object = None) -> tuple[np.ndarray, np.ndarray]:
    """Flatten enumerated supports into (X, weights) for exact expectations over π_ref(·|x).

    Per doc d and response y in its support S_d: ``X = log π_ref(y|x_d) − log π̂(y|x_d)`` with weight
    ``π_ref(y|x_d) · w_d`` (docs/coverage-principle.md#est-exact, "exact weighting"). Entries with π_ref = 0 carry no
    weight and are dropped. Pass the result to :func:`coverage_profile` or :func:`kl`.

    Examples:
        >>> x, w = support_log_ratios([[0.0], [-0.6931471805599453] * 2], [[-1.0], [-1.0, -3.0]])
        >>> x.round(3).tolist(), w.round(3).tolist()
        ([1.0, 0.307, 2.307], [1.0, 0.5, 0.5])
        >>> coverage_profile(x, 4.0, weights=w).item()  # doc 2's second path is uncovered: (0+0.5)/2
        0.25
    """
    where = "support_log_ratios"
    if len(support_logp_ref) != len(support_logp_model):  # type: ignore[arg-type]
        raise ValueError(f"{where}: support_logp_ref has {len(support_logp_ref)} docs, "  # type: ignore[arg-type]
                         f"support_logp_model has {len(support_logp_model)}")  # type: ignore[arg-type]
    dw = as_weights(doc_weights, len(support_logp_ref), where, "doc_weights")  # type: ignore[arg-type]
    xs, ws = [], []
    for d, (ref, mod) in enumerate(zip(support_logp_ref, support_logp_model)):  # type: ignore[call-overload]
        r = as_1d(ref, f"support_logp_ref[{d}]", where)
        m = as_1d(mod, f"support_logp_model[{d}]", where)
        if r.size != m.size:
            raise ValueError(f"{where}: doc {d} has {r.size} reference and {m.size} model log-probs")
        live = r > -np.inf
        xs.append(r[live] - m[live])
        ws.append(np.exp(r[live]) * dw[d])
    if not xs:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(xs), np.concatenate(ws)
