"""Which N the leaderboard shows for each task: the Pass@N target and the coverage threshold paired with it.

The paper pairs Pass@N with Cov_{N/2} (paper.md §1.2: at M = N/2 a covered prompt succeeds with
probability ≥ 1 − e^{−2} ≈ 0.86; Fig. 1's scatter plots use the same pairing). Every task gets
Pass@8 next to Cov_4 unless the table below names it; the index page prints this rule.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskNs:
    """The thresholds one task's table uses: Pass@``pass_n`` next to Cov_``cov_n``."""

    pass_n: float
    cov_n: float
    source: str  # "table" (named below) or "default" (the fallback)


DEFAULT = TaskNs(pass_n=8.0, cov_n=4.0, source="default")

# The shipped tasks (tasks/*.yaml), named so the index page lists them. Fig. 1 (graph_fig1) reads
# Pass@8 next to Cov_4; Fig. 2 of the paper reads coverage at N = 16 (paper.md §5.3), so its
# length-family tasks pair Pass@32 (their largest exact Pass@N) with Cov_16.
TABLE: dict[str, TaskNs] = {
    "graph_fig1": TaskNs(pass_n=8.0, cov_n=4.0, source="table"),
    "graph_fig2_h8": TaskNs(pass_n=32.0, cov_n=16.0, source="table"),
    "graph_fig2_h16": TaskNs(pass_n=32.0, cov_n=16.0, source="table"),
    "graph_fig2_h24": TaskNs(pass_n=32.0, cov_n=16.0, source="table"),
    "arith_ll": TaskNs(pass_n=8.0, cov_n=4.0, source="table"),
}

# Sampling task → the scoring task on the same prompts (``metadata.covbench.pairs_with`` in the
# task YAML; the store's records do not carry it). The sampling task's measured Pass@N belongs to
# the scoring task's row; it gets no table of its own when both are in the store.
PAIRS: dict[str, str] = {
    "graph_fig1_sample": "graph_fig1",
    "arith_sample": "arith_ll",
}


def task_ns(task: str, table: dict[str, TaskNs] | None = None) -> TaskNs:
    """The thresholds for ``task``: its entry in ``table`` (default :data:`TABLE`) or :data:`DEFAULT`.

    >>> task_ns("arith_add").pass_n, task_ns("arith_add").cov_n, task_ns("arith_add").source
    (8.0, 4.0, 'default')
    >>> task_ns("graph_fig2_h16").cov_n
    16.0
    """
    return (TABLE if table is None else table).get(task, DEFAULT)
