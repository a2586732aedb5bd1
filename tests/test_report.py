"""The terminal summary table."""

from __future__ import annotations

from covbench.report import render
from records_factory import record


def test_table_merges_paired_task_ranks_and_hides_empty_columns():
    recs = [
        record("late", "graph", {"ce": 0.3, "kl": 0.3, "cov@4": 0.10, "pass_exact@8": 0.95}),
        record("early", "graph", {"ce": 0.8, "kl": 0.8, "cov@4": 0.00, "pass_exact@8": 0.99}),
        record("late", "graph_sample", {"pass_sampled@8": 0.94}),
        record("early", "graph_sample", {"pass_sampled@8": 0.99}),
    ]
    text = render(recs, {"graph_sample": "graph"})
    lines = text.splitlines()
    assert lines[0] == "graph" and "graph_sample" not in text
    header = lines[1].split()
    assert header[:4] == ["model", "CE", "KL", "Cov4"] and "Cov2" not in header
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    col = {h: i for i, h in enumerate(header)}
    # ranks (P@8 headers span two words, so index from the end): rCE, rCov4, rP@8
    assert rows["late"][-3:] == ["1", "2", "2"] and rows["early"][-3:] == ["2", "1", "1"]
    assert rows["late"][col["CE"]] == "0.300"


def test_missing_cells_print_dash():
    text = render([record("a", "t", {"ce": 1.0, "kl": float("nan")}), record("b", "t", {"ce": 2.0, "kl": 0.5})])
    row_a = [line for line in text.splitlines() if line.startswith("a ")][0]
    assert "—" in row_a
