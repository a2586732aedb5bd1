"""Stamped model plots against matplotlib itself, sampling-task pairing, and the hand-written CSV."""

from __future__ import annotations

import csv
import io
import math
import re

import matplotlib
import numpy as np
import pytest

from leaderboard import build, export, plots, synthetic
from leaderboard.board import build_boards
from leaderboard.defaults import PAIRS, task_ns

GEOM = plots.ModelAxes(tasks=("a", "b"), cov_range=(1.5, 256.0), pass_range=(1.0, 8.0))


def _matplotlib_path(frame: plots.ModelFrame, panel: int, x, y) -> np.ndarray:
    """The vertices matplotlib's SVG backend writes for a line on the frame's own axes."""
    ax = frame.axes[panel]
    (line,) = ax.plot(x, y, gid="probe", lw=1.2)
    try:
        svg = plots._to_svg(frame.fig)
    finally:
        line.remove()
    d = re.search(r'<g id="probe">\s*<path d="([^"]*)"', svg).group(1)
    return np.array([[float(v) for v in pair.split()] for pair in re.split(r"\s*[ML]\s*", d) if pair.strip()])


@pytest.mark.parametrize("panel", [0, 1])
def test_stamped_path_coincides_with_matplotlib_line(panel):
    frame = plots.ModelFrame(GEOM)
    x = [1.5, 2.0, 4.0, 5.7, 8.0, 16.0, 64.0, 256.0] if panel == 0 else [1.0, 2.0, 4.0, 8.0]
    y = np.linspace(0.95, 0.03, len(x))
    expected = _matplotlib_path(frame, panel, x, y)
    stamped = np.array([[float(v) for v in p.split()] for p in re.split(r"[ML]", frame.segments(panel, x, y)) if p.strip()])
    assert stamped.shape == expected.shape == (len(x), 2)
    np.testing.assert_allclose(stamped, expected, atol=0.01)  # within 0.01 px


def test_missing_values_break_the_line_never_zero():
    frame = plots.ModelFrame(GEOM)
    d = frame.segments(0, [2.0, 4.0, 8.0, 16.0, 64.0], [0.5, math.nan, 0.3, 0.2, math.inf])
    runs = [r for r in d.split("M") if r.strip()]
    assert len(runs) == 2 and runs[0].count("L") == 0 and runs[1].count("L") == 1
    zero_y = frame.points(0, [2.0], [0.0])[0, 1]
    assert f"{zero_y:.3f}" not in d  # the NaN point was not drawn at 0
    assert frame.dots(0, [2.0, 4.0], [math.nan, math.nan]) == ""


def test_lines_layer_matches_frame_geometry_and_styles():
    recs = synthetic.synthetic_records(n_models=1, n_tasks=2, n_docs=8)
    frame = plots.ModelFrame(plots.ModelAxes(tasks=("synth-0", "synth-1"), cov_range=(1.5, 256.0),
                                             pass_range=(1.0, 8.0)))
    svg = frame.lines_svg([build._model_curves(r) for r in recs])
    size = re.search(r'<svg[^>]*width="([\d.]+)pt" height="([\d.]+)pt" viewBox="0 0 ([\d.]+) ([\d.]+)"', frame.svg)
    mine = re.search(r'<svg[^>]*width="([\d.]+)pt" height="([\d.]+)pt" viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
    assert [float(v) for v in size.groups()] == [float(v) for v in mine.groups()]
    dashed = " ".join(f"{v * 1.2:g}" for v in matplotlib.rcParamsDefault["lines.dashed_pattern"])
    assert svg.count(f'stroke-dasharray="{dashed}"') == 2  # exact Pass@k, one per task
    assert svg.count('stroke="#1f5fa8"') == 4 and svg.count('stroke="#c2410c"') == 4
    assert "<script" not in svg and "style=" not in svg


def test_sampling_task_fills_its_scoring_task_row(tmp_path):
    sampler, scorer = next(iter(PAIRS.items()))
    base = synthetic.synthetic_records(n_models=4, n_tasks=1, n_docs=24, seed=3)
    scoring = [r.model_copy(update={"task": scorer, "samples": None,
                                    "metrics": {k: v for k, v in r.metrics.items() if not k.startswith("pass_sampled")}})
               for r in base]
    sampling = [r.model_copy(update={"task": sampler, "docs": None,
                                     "metrics": {k: v for k, v in r.metrics.items() if k.startswith("pass_sampled")}})
                for r in base]
    boards = build_boards(scoring + sampling, B=30)
    assert [b.task for b in boards] == [scorer]  # the sampling task has no table of its own
    n = task_ns(scorer).pass_n
    for row, rec in zip(boards[0].rows, sorted(base, key=lambda r: r.model)):
        assert row.pass_source == "measured"
        assert row.pass_measured.value == rec.metrics[f"pass_sampled@{n:g}"].value
    assert boards[0].tau_ce.source == "per-prompt" and boards[0].tau_ce.n_models == 4
    files = build.site_files(build.StoreScan(records=scoring + sampling, errors=[]), B=20)
    assert any(p.startswith("models/") for p in files)


def test_hand_written_csv_equals_csv_writer():
    names = ['comma, "quote"', "new\nline", "plain"]
    recs = synthetic.synthetic_records(n_models=1, n_tasks=1, n_docs=8, names=names, families={'f,"x"': 2})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(export._METRIC_COLUMNS)
    writer.writerows([[r.task, r.model, r.family or "", "" if r.step is None else r.step, r.reference, key,
                       export._f(e.value), export._f(e.lo), export._f(e.hi), export._f(e.stderr)]
                      for r in recs for key, e in sorted(r.metrics.items())])
    assert export.metrics_csv(recs) == buf.getvalue()
    names.append("cr\rhere")  # csv.writer leaves a lone CR bare, unreadable; we quote it
    recs = synthetic.synthetic_records(n_models=1, n_tasks=1, n_docs=8, names=names)
    back = list(csv.reader(io.StringIO(export.metrics_csv(recs), newline="")))
    assert {row[1] for row in back[1:]} == {"model-000", *names}
