"""covbench.metrics: the statistics of the benchmark, as pure numpy/scipy functions over arrays.

Formulas: docs/coverage-principle.md (arXiv 2510.15020); the coverage of the correct set estimated from
sampled verdicts (``verifier_coverage``, metric ``cov_set@M``): docs/verifier-coverage.md.
Conventions: log-probs are natural-log sequence sums over response tokens; ``X = log π_ref(y|x) −
log π̂(y|x)``; Cov_N is a bad tail (lower is better); missing is NaN, never 0; NaN in an input array
raises ``ValueError``.

>>> import numpy as np
>>> from covbench import metrics
>>> x = -np.log([0.9, 0.5, 0.01])              # gold-answer task: X = −log π̂(y*|x)
>>> metrics.coverage_profile(x, [2, 4]).round(3).tolist()
[0.667, 0.333]
>>> metrics.exact_pass_at_n(-x, [1]).round(3).tolist()
[0.47]
"""

from ._agreement import TauCI, rank_agreement, rank_agreements
from ._bootstrap import (
    BootstrapCI,
    bootstrap_counts,
    bootstrap_indices,
    bootstrap_statistic,
    paired_bootstrap,
)
from ._bracket import DEFAULT_BRACKET_MS, PassBracket, pass_bracket
from ._cards import METRICS, MetricCard, card_for
from ._means import MeanCI, grouped_mean_ci, mean_ci
from ._coverage import DEFAULT_COV_NS, CrossEntropy, coverage_profile, cross_entropy, kl, support_log_ratios
from ._passk import (
    DEFAULT_PASS_NS,
    exact_pass_at_n,
    pass_at_k,
    pass_at_n_per_prompt,
    predicted_pass_at_n,
    sampled_pass_at_n,
)
from ._ranks import RankFlip, kendall_tau, rank_flips, ranks, spearman
from ._verifier import VerifierCoverage, cov_set_bounds, verifier_coverage

__all__ = [
    "DEFAULT_BRACKET_MS",
    "DEFAULT_COV_NS",
    "DEFAULT_PASS_NS",
    "METRICS",
    "BootstrapCI",
    "CrossEntropy",
    "MeanCI",
    "MetricCard",
    "PassBracket",
    "RankFlip",
    "TauCI",
    "VerifierCoverage",
    "bootstrap_counts",
    "bootstrap_indices",
    "bootstrap_statistic",
    "card_for",
    "cov_set_bounds",
    "coverage_profile",
    "cross_entropy",
    "exact_pass_at_n",
    "grouped_mean_ci",
    "kendall_tau",
    "kl",
    "mean_ci",
    "paired_bootstrap",
    "pass_at_k",
    "pass_at_n_per_prompt",
    "pass_bracket",
    "predicted_pass_at_n",
    "rank_agreement",
    "rank_agreements",
    "rank_flips",
    "ranks",
    "sampled_pass_at_n",
    "spearman",
    "support_log_ratios",
    "verifier_coverage",
]
