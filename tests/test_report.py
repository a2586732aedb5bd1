"""The terminal summary: the boards of covbench.views as text."""

from __future__ import annotations

from covbench.report import render
from covbench.store import catalog, write_run
from records_factory import descriptor, run


def test_table_merges_paired_task_ranks_and_hides_empty_columns(tmp_path):
    sample = descriptor("graph_sample", "known", "sample", pairs_with="graph")
    for r in (run("late", "graph", {"ce": 0.3, "kl": 0.3, "cov@4": 0.10, "pass_exact@8": 0.95}, reference="known"),
              run("early", "graph", {"ce": 0.8, "kl": 0.8, "cov@4": 0.00, "pass_exact@8": 0.99}, reference="known"),
              run("late", "graph_sample", {"pass_sampled@8": 0.94}, desc=sample),
              run("early", "graph_sample", {"pass_sampled@8": 0.99}, desc=sample)):
        write_run(tmp_path, r)
    text = render(catalog(tmp_path))
    lines = text.splitlines()
    assert lines[0] == "graph (+ graph_sample)"
    header = lines[1].split()
    assert header[:4] == ["model", "CE", "KL", "Cov4"] and "Cov2" not in header
    rows = {line.split()[0]: line.split() for line in lines[3:5]}
    col = {h: i for i, h in enumerate(header)}
    # ranks (P@8 headers span two words, so index from the end): rCE, rCov4, rP@8 (measured where stored)
    assert rows["late"][-3:] == ["1", "2", "2"] and rows["early"][-3:] == ["2", "1", "1"]
    assert rows["late"][col["CE"]] == "0.300"
    assert "τ(CE, Pass@8) = -1.00" in text  # two models: from the stored metrics, no interval


def test_missing_cells_print_dash(tmp_path):
    write_run(tmp_path, run("a", "t", {"ce": 1.0, "kl": float("nan")}))
    write_run(tmp_path, run("b", "t", {"ce": 2.0, "kl": 0.5}))
    row_a = [line for line in render(catalog(tmp_path)).splitlines() if line.startswith("a ")][0]
    assert "—" in row_a
