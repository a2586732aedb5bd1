"""Metric cards: the metadata each stored metric carries and the leaderboard renders (never restates).

Keys are the base names of the store's metric keys (covbench/records.py): ``"cov"`` for ``"cov@4"``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

_PAPER = "Chen et al., The Coverage Principle: How Pre-Training Enables Post-Training, arXiv 2510.15020"
_CODEX = "Chen et al. 2021, Evaluating Large Language Models Trained on Code, arXiv 2107.03374"


@dataclass(frozen=True)
class MetricCard:
    """What a metric is: direction, range, unit, formula, a one-paragraph card and a citation."""

    name: str
    title: str
    higher_is_better: bool
    range: tuple[float, float]
    unit: str
    formula: str
    card: str
    citation: str
    curve: bool = False  # keyed by a threshold N ("cov@4"), or a scalar ("ce")
    monotone: int = 0  # in N: −1 non-increasing, +1 non-decreasing, 0 no shape (checked by the suite)


def _card(name: str, title: str, hib: bool, rng: tuple[float, float], unit: str, formula: str,
          card: str, citation: str = _PAPER, *, monotone: int | None = None) -> MetricCard:
    """A card; ``monotone`` given (−1, 0 or +1) makes it a curve over N."""
    return MetricCard(name, title, hib, rng, unit, formula, " ".join(card.split()), citation,
                      curve=monotone is not None, monotone=monotone or 0)


_INF = math.inf
METRICS: dict[str, MetricCard] = {c.name: c for c in (
    _card("ce", "Cross-entropy (sequence)", False, (0.0, _INF), "nats",
          "E_x[−log π̂(y|x)], y the reference response",
          """Mean negative log-likelihood of the reference response, summed over its tokens. It upper
          bounds KL and ranks models like KL when the reference is fixed, but says nothing about
          the tail of the log-ratio that Best-of-N depends on. Paper §3 (D_CE)."""),
    _card("ce_per_token", "Cross-entropy per token", False, (0.0, _INF), "nats/token",
          "Σ_x −log π̂(y|x) / Σ_x tokens(y)",
          """Sequence cross-entropy divided by the number of response tokens (a ratio of sums over
          prompts). Comparable across tasks of different length, but only between models sharing a
          tokenizer."""),
    _card("bpb", "Bits per byte", False, (0.0, _INF), "bits/byte",
          "Σ_x −log π̂(y|x) / (ln 2 · Σ_x bytes(y))",
          """Cross-entropy in bits per UTF-8 byte of the response: tokenizer-independent, so models
          with different vocabularies compare directly (lm-eval's bits_per_byte).""",
          "Gao et al. 2020, The Pile, arXiv 2101.00027"),
    _card("kl", "KL divergence", False, (0.0, _INF), "nats",
          "E_{x, y∼π_D}[log π_D(y|x) − log π̂(y|x)]",
          """Sequence-level KL from the data (reference) distribution to the model: the mean of the
          log-ratio X. Exact only where π_D is known (synthetic tasks). It grows with the sequence
          length even when Best-of-N performance does not, and bounds coverage only loosely:
          Cov_N ≤ KL/(log N − 1 + 1/N) (paper Prop 3.1)."""),
    _card("cov", "Coverage profile Cov_N", False, (0.0, 1.0), "probability",
          "Cov_N = P_{x, y∼π_ref}[log π_ref(y|x) − log π̂(y|x) ≥ log N]",
          """The reference mass that the model under-weights by a factor of at least N: a bad tail,
          so lower is better, and non-increasing in N. It is what predicts Best-of-N: failure of
          Pass@N lies between ½·Cov_{2N} and Cov_M + (1 − 1/M)^N (paper Eq. 1, Props D.6/D.7).
          For gold-answer tasks π_ref puts all mass on the gold answer, so Cov_N = P_x[π̂(y*|x) ≤ 1/N].""", monotone=-1),
    _card("cov_set", "Coverage of the correct set", False, (0.0, 1.0), "probability",
          "Cov_M = P_x[π̂(S_x|x) ≤ 1/M], from c correct of n sampled verdicts per prompt",
          """The share of prompts on which the model produces a correct response (one its verifier
          accepts) with probability at most 1/M: a bad tail, lower is better. Unlike Cov_N of one
          gold string it counts every correct response, so it is meaningful for code and math. n
          verdicts per prompt identify it only partially: the value is the NPMLE point estimate,
          missing where M > n/2, and the interval is a finite-sample one, valid for any
          distribution of the per-prompt success probability (docs/verifier-coverage.md).
          Computed from final-answer matches it is the answer-level coverage of paper §7.1.""", monotone=-1),
    _card("pass_exact", "Pass@N (exact)", True, (0.0, 1.0), "probability",
          "E_x[1 − (1 − π̂(S_x|x))^N]",
          """Probability that at least one of N samples is correct, computed exactly from the model's
          probability mass on the enumerable set S_x of correct responses: no sampling error.""", monotone=1),
    _card("pass_sampled", "Pass@N (sampled)", True, (0.0, 1.0), "probability",
          "E_x[1 − C(n−c, N)/C(n, N)]",
          """Unbiased estimate of Pass@N from n ≥ N samples per prompt of which c pass the verifier
          (stable product form). Missing when n < N, never 1.""", _CODEX, monotone=1),
    _card("pass_pred", "Pass@N predicted from scoring", True, (0.0, 1.0), "probability",
          "E_x[1 − (1 − π̂(y*|x))^N]",
          """Pass@N predicted from the model's probability of the gold answer alone. Equals exact
          Pass@N when the gold answer is the only correct string, and is a lower bound when several
          strings are correct.""", monotone=1),
    _card("pass_pred_lo", "Pass@N lower bound from coverage", True, (0.0, 1.0), "probability",
          "1 − min_M [Cov_M + (1 − 1/M)^N]",
          """The Pass@N that the coverage profile guarantees on a single-answer task: a prompt covered
          at level M fails N independent samples with probability below (1 − 1/M)^N (docs/coverage-principle.md#bon-sandwich;
          arXiv 2510.15020 Prop D.6).""", monotone=1),
    _card("pass_pred_hi", "Pass@N upper bound from coverage", True, (0.0, 1.0), "probability",
          "1 − ½·Cov_{2N}",
          """The most Pass@N that the coverage profile allows on a single-answer task: a prompt not
          covered at level 2N fails all N samples with probability at least ½ (paper Prop D.7).""", monotone=1),
)}


def card_for(key: str) -> MetricCard:
    """The card of a store metric key such as ``"cov@4"`` or ``"ce"``; unknown names raise.

    Examples:
        >>> card_for("pass_exact@8").higher_is_better
        True
        >>> card_for("covv@2")
        Traceback (most recent call last):
        KeyError: "unknown metric 'covv' (did you mean 'cov'?); known: bpb, ce, ce_per_token, cov, cov_set, kl, pass_exact, pass_pred, pass_pred_hi, pass_pred_lo, pass_sampled"
    """
    name = key.partition("@")[0]
    if name not in METRICS:
        close = difflib.get_close_matches(name, METRICS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(f"unknown metric {name!r}{hint}; known: {', '.join(sorted(METRICS))}")
    return METRICS[name]
