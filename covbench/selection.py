"""Checkpoint selection by coverage tournaments (docs/coverage-principle.md#tournament), next to the min-CE baseline.

Input: ``logp[k, i] = log π_k(y_i|x_i)``, the sequence log-prob of candidate k on held-out sample
(x_i, y_i) ∼ π_D: a [K candidates × n samples] matrix. Pure numpy.

Pairwise statistic (paper Eq. 28): ``pairwise[j, k] = Ĉov_N(π_j‖π_k)``, the (weighted) fraction of held-out
samples on which challenger j gives at least N times the likelihood of candidate k. A candidate never
challenges itself: ``pairwise[k, k] = 0``, which is the paper's value for every N > 1 (at N = 1 the
self-comparison would be a trivial 1 for everyone).

Tie-break (the paper leaves it open): among candidates with exactly equal worst-case scores, the one
with the lowest held-out cross-entropy ``mean(−logp)``, then the earliest index. ``min_ce`` breaks its
own ties by the earliest index. Results are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from covbench import metrics


@dataclass(frozen=True)
class TournamentResult:
    """A tournament's pick and its evidence.

    ``scores[k]`` = max_j ``pairwise[j, k]`` (the worst case of candidate k; lower is better);
    ``ce[k]`` = held-out mean −log π_k (nats per sequence, used for the tie-break); ``n_threshold`` = N.
    For the offset tournament, ``pairwise`` is the objective ``Ĉov_N − 2γ·Ĉov^on_N`` and
    ``on_policy`` holds ``Ĉov^on_N``.
    """

    pick: int
    scores: np.ndarray
    pairwise: np.ndarray
    ce: np.ndarray
    n_threshold: float
    on_policy: np.ndarray | None = None


def _check_logp(logp: object, weights: object, where: str) -> tuple[np.ndarray, np.ndarray]:
    lp = np.asarray(logp, dtype=np.float64)
    if lp.ndim != 2 or lp.shape[0] == 0 or lp.shape[1] == 0:
        raise ValueError(f"{where}: logp must be [K candidates >= 1, n samples >= 1], got shape {lp.shape}")
    if np.isnan(lp).any():
        k, i = np.argwhere(np.isnan(lp))[0]
        raise ValueError(f"{where}: logp[{k}, {i}] is NaN")
    if (lp == np.inf).any():
        raise ValueError(f"{where}: logp contains +inf; a log-probability is <= 0")
    w = np.ones(lp.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (lp.shape[1],) or (~np.isfinite(w) | (w < 0)).any() or not w.sum() > 0:
        raise ValueError(f"{where}: weights must be {lp.shape[1]} finite values >= 0 with a positive sum")
    return lp, w


def _log_threshold(n_threshold: float, where: str) -> float:
    if not (math.isfinite(n_threshold) and n_threshold >= 1.0):
        raise ValueError(f"{where}: N must be finite and >= 1, got {n_threshold!r}")
    return math.log(n_threshold)


def _held_out_ce(lp: np.ndarray, w: np.ndarray) -> np.ndarray:
    """mean_w(−logp) per candidate; a zero-probability sample (−inf) gives +inf, honestly."""
    live = w > 0
    return -(lp[:, live] @ w[live]) / w[live].sum()


def _pick(scores: np.ndarray, ce: np.ndarray) -> int:
    """Lowest score, then lowest CE, then earliest index (np.lexsort sorts by the last key first)."""
    return int(np.lexsort((np.arange(scores.size), ce, scores))[0])


def pairwise_coverage(logp: object, n_threshold: float, weights: object = None) -> np.ndarray:
    """``[K, K]`` matrix ``Ĉov_N(π_j‖π_k) = Σ_i w_i 1[logp_j(i) − logp_k(i) ≥ log N] / Σ w`` (Eq. 28).

    Two candidates that both give a sample zero probability (−inf − −inf) do not beat each other.

    Examples:
        >>> pairwise_coverage([[0.0, -5.0], [-1.0, -1.0]], 4.0).tolist()
        [[0.0, 0.0], [0.5, 0.0]]
    """
    lp, w = _check_logp(logp, weights, "pairwise_coverage")
    log_n = _log_threshold(n_threshold, "pairwise_coverage")
    out = np.empty((lp.shape[0], lp.shape[0]))
    with np.errstate(invalid="ignore"):
        for j in range(lp.shape[0]):  # one challenger at a time: O(K·n) memory
            out[j] = ((lp[j][None, :] - lp) >= log_n) @ w / w.sum()
    np.fill_diagonal(out, 0.0)
    return out


def tournament(logp: object, N: float, weights: object = None) -> TournamentResult:
    """Simple min–max coverage tournament, paper Eq. 29: ``argmin_k max_j Ĉov_N(π_j‖π_k)``.

    Args:
        logp: ``[K, n]`` sequence log-probs of each candidate on held-out samples from π_D.
        N: the threshold (real, ≥ 1); for a Best-of-N budget B, N ≈ B/2 is a reasonable choice.
        weights: optional per-sample weights (class-mixture priors).

    Returns:
        :class:`TournamentResult`; ties broken as the module docstring says.

    Examples:
        >>> lp = [[-2.5, -2.5, -2.5, -2.5],    # covers every sample a little
        ...       [0.0, 0.0, 0.0, -8.0]]       # lower CE, but drops the last sample
        >>> r = tournament(lp, 16.0)
        >>> r.pick, r.scores.tolist(), min_ce(lp)
        (0, [0.0, 0.25], 1)
    """
    lp, w = _check_logp(logp, weights, "tournament")
    pairwise = pairwise_coverage(lp, N, w)
    scores = pairwise.max(axis=0)
    ce = _held_out_ce(lp, w)
    return TournamentResult(_pick(scores, ce), scores, pairwise, ce, float(N))


def offset_tournament(logp: object, gen_logp: object, N: float, gamma: float = 1.0,
                      weights: object = None) -> TournamentResult:
    """Offset ("on-policy") tournament, paper Eq. 32: ``argmin_k max_j [Ĉov_N(j‖k) − 2γ·Ĉov^on_N(j‖k)]``.

    ``Ĉov^on_N(π_j‖π_k) = mean_{i,s} 1[log π_j(y) − log π_k(y) ≥ log N]`` over samples y ∼ π_k(·|x_i)
    drawn from the *candidate* k itself. The paper's guarantee needs γ = N^a with N ≥ 8γ² (arXiv v2;
    N^{1−2a} ≥ 4 in the ICLR text); γ = 1 is a = 0.

    Args:
        logp: ``[K, n]`` as :func:`tournament`.
        gen_logp: ``[K, K, n, m]``; ``gen_logp[k, j, i, s] = log π_j(y)`` for y the s-th sample that
            candidate k drew at prompt x_i.
        N: threshold ≥ 1; gamma: the offset weight γ > 0; weights: per-prompt weights.

    Examples:
        >>> lp = np.array([[-1.0, -1.0], [-1.0, -9.0]])
        >>> gen = np.zeros((2, 2, 2, 1))          # both agree on each other's samples
        >>> offset_tournament(lp, gen, 8.0).pick
        0
    """
    lp, w = _check_logp(logp, weights, "offset_tournament")
    g = np.asarray(gen_logp, dtype=np.float64)
    k_cands, n = lp.shape
    if g.ndim != 4 or g.shape[:3] != (k_cands, k_cands, n) or g.shape[3] == 0:
        raise ValueError(f"offset_tournament: gen_logp must be [{k_cands}, {k_cands}, {n}, m >= 1], "
                         f"got {g.shape}")
    if np.isnan(g).any():
        raise ValueError("offset_tournament: gen_logp contains NaN")
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"offset_tournament: gamma must be finite and > 0, got {gamma!r}")
    log_n = _log_threshold(N, "offset_tournament")
    own = g[np.arange(k_cands), np.arange(k_cands)]  # own[k, i, s] = log π_k(y_ks)
    with np.errstate(invalid="ignore"):
        wins = (g - own[:, None]) >= log_n  # [k, j, i, s]: challenger j beats k on k's own sample
    on = (wins.mean(axis=-1) @ w / w.sum()).T  # [j, k]
    np.fill_diagonal(on, 0.0)
    objective = pairwise_coverage(lp, N, w) - 2.0 * gamma * on
    scores = objective.max(axis=0)
    ce = _held_out_ce(lp, w)
    return TournamentResult(_pick(scores, ce), scores, objective, ce, float(N), on)


def min_ce(logp: object, weights: object = None) -> int:
    """The baseline pick: the candidate with the lowest held-out CE ``mean(−logp)``; ties: earliest.

    Examples:
        >>> min_ce([[-2.0, -2.0], [-1.0, -3.0], [-0.5, -3.5]])
        0
    """
    lp, w = _check_logp(logp, weights, "min_ce")
    return int(np.argmin(_held_out_ce(lp, w)))  # argmin returns the first of equal minima


@dataclass(frozen=True)
class FamilyPicks:
    """The min-CE and tournament picks of a family of checkpoints on the prompts they all share.

    ``names`` in the order given; ``scores[k]``: candidate k's tournament worst case (NaN when there is
    no matrix); ``tournament`` / ``min_ce``: indices into ``names`` (None without per-prompt arrays).
    """

    names: tuple[str, ...]
    scores: np.ndarray
    tournament: int | None
    min_ce: int | None
    n_prompts: int
    n_threshold: float


def _common(doc_ids: Sequence[object]) -> list[int]:
    """The prompt ids every list holds, sorted."""
    return sorted(set.intersection(*(set(np.asarray(d).tolist()) for d in doc_ids)))  # type: ignore[arg-type]


def _at(doc_id: object, values: object, ids: list[int]) -> np.ndarray:
    """``values`` (aligned with ``doc_id``) at the prompts ``ids``, in that order."""
    at = {int(x): i for i, x in enumerate(np.asarray(doc_id).tolist())}  # type: ignore[arg-type]
    return np.asarray(values, dtype=np.float64)[[at[x] for x in ids]]


def family_picks(names: list[str], doc_ids: list[np.ndarray | None], logp: list[np.ndarray | None], N: float,
                 weights: np.ndarray | None = None, weight_ids: np.ndarray | None = None) -> FamilyPicks:
    """min-CE and tournament (Eq. 29) picks of checkpoints scored on held-out samples from π_D.

    Each checkpoint gives its prompts' ``doc_ids`` and ``logp`` (log π̂ of the reference responses,
    aligned). Both picks use the same [K × n] matrix on the prompts *every* checkpoint was scored on, so
    they see the same evidence; ``weights`` (per prompt of ``weight_ids``) weight the prompts.
    Without arrays for every checkpoint there is no pick.

    Examples:
        >>> ids = np.arange(4)
        >>> p = family_picks(["a", "b"], [ids, ids], [np.full(4, -2.5), np.array([0.0, 0, 0, -8])], 16.0)
        >>> p.names[p.tournament], p.names[p.min_ce], p.n_prompts
        ('a', 'b', 4)
    """
    nan = np.full(len(names), np.nan)
    if not names or any(d is None or v is None for d, v in zip(doc_ids, logp)):
        return FamilyPicks(tuple(names), nan, None, None, 0, float(N))
    common = _common(doc_ids)
    if not common:
        return FamilyPicks(tuple(names), nan, None, None, 0, float(N))
    matrix = np.stack([_at(d, v, common) for d, v in zip(doc_ids, logp)])
    w = None
    if weights is not None and weight_ids is not None:
        w = _at(weight_ids, weights, common)
    if np.isnan(matrix).any():
        return FamilyPicks(tuple(names), nan, None, None, len(common), float(N))
    t = tournament(matrix, N, w)
    return FamilyPicks(tuple(names), t.scores, t.pick, min_ce(matrix, w), len(common), float(N))


@dataclass(frozen=True)
class OffsetPicks:
    """The three picks of a family on the prompts shared by its held-out scores and its on-policy samples:
    min-CE, the simple tournament (Eq. 29) and the offset tournament (Eq. 32), with their evidence."""

    names: tuple[str, ...]
    min_ce: int
    simple: TournamentResult
    offset: TournamentResult
    n_prompts: int
    m: int
    gamma: float

    @property
    def guarantee_holds(self) -> bool:
        """Whether N ≥ 8γ², the condition of the offset tournament's guarantee (arXiv v2 Thm 6.4)."""
        return self.offset.n_threshold >= 8.0 * self.gamma ** 2


def offset_picks(names: list[str], doc_ids: list[np.ndarray], logp: list[np.ndarray], gen_doc_id: np.ndarray,
                 gen_logp: np.ndarray, N: float, gamma: float = 1.0, weights: np.ndarray | None = None,
                 weight_ids: np.ndarray | None = None) -> OffsetPicks:
    """min-CE, simple and offset tournament picks on the prompts every checkpoint was scored on *and* has
    on-policy samples for (``gen_logp[k, j, i, s]`` at prompt ``gen_doc_id[i]``; docs/selection.md#offset).

    Examples:
        >>> ids = np.arange(2)
        >>> lp = [np.array([0.0, -9.0]), np.array([-3.0, -3.0])]
        >>> gen = np.full((2, 2, 2, 1), -1.0)
        >>> p = offset_picks(["a", "b"], [ids, ids], lp, ids, gen, 8.0)
        >>> p.names[p.simple.pick], p.names[p.offset.pick], p.names[p.min_ce], p.n_prompts
        ('b', 'b', 'b', 2)
    """
    g = np.asarray(gen_logp, dtype=np.float64)
    if g.ndim != 4 or g.shape[:2] != (len(names), len(names)) or g.shape[2] != len(gen_doc_id):
        raise ValueError(f"offset_picks: gen_logp must be [{len(names)}, {len(names)}, {len(gen_doc_id)}, m], "
                         f"got {g.shape}")
    common = _common([*doc_ids, gen_doc_id])
    if not common:
        raise ValueError("offset_picks: no prompt has both held-out scores for every checkpoint and on-policy samples")
    matrix = np.stack([_at(d, v, common) for d, v in zip(doc_ids, logp)])
    pos = {int(x): i for i, x in enumerate(np.asarray(gen_doc_id).tolist())}
    gen = g[:, :, [pos[x] for x in common]]
    w = None if weights is None or weight_ids is None else _at(weight_ids, weights, common)
    return OffsetPicks(tuple(names), min_ce(matrix, w), tournament(matrix, N, w),
                       offset_tournament(matrix, gen, N, gamma, w), len(common), int(g.shape[3]), float(gamma))


@dataclass(frozen=True)
class PairedDifference:
    """Mean over shared prompts of (value of A − value of B), with its t interval (docs/selection.md#paired)."""

    value: float
    lo: float
    hi: float
    stderr: float
    n_prompts: int
    level: float


def paired_difference(doc_a: object, values_a: object, doc_b: object, values_b: object,
                      weights: object = None, weight_ids: object = None, level: float = 0.95) -> PairedDifference:
    """Mean of the per-prompt differences a_i − b_i on the prompts both were measured on, with the paired t
    interval of :func:`covbench.metrics.mean_ci` (e.g. Pass@N of the tournament pick minus the min-CE pick).

    The same prompts for both picks is what makes it paired: prompt difficulty cancels in a_i − b_i, so the
    interval is much narrower than the two picks' own intervals suggest.

    Examples:
        >>> d = paired_difference([0, 1, 2, 3], [0.9, 0.8, 0.7, 1.0], [3, 2, 1, 0], [0.9, 0.6, 0.7, 0.8])
        >>> round(d.value, 3), round(d.lo, 3), round(d.hi, 3), d.n_prompts   # B at prompt i: 0.8, 0.7, 0.6, 0.9
        (0.1, 0.1, 0.1, 4)
    """
    common = _common([doc_a, doc_b])
    if not common:
        return PairedDifference(np.nan, np.nan, np.nan, np.nan, 0, level)
    d = _at(doc_a, values_a, common) - _at(doc_b, values_b, common)
    w = None if weights is None or weight_ids is None else _at(weight_ids, weights, common)
    ci = metrics.mean_ci(d, w, level)
    return PairedDifference(float(ci.value), float(ci.lo), float(ci.hi), float(ci.stderr), len(common), level)
