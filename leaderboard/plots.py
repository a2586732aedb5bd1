"""SVG figures drawn with matplotlib: a model's coverage profile and Pass@k, and a family's Fig. 1 view.

Every figure is a pure function of its inputs: the SVG backend's ids are salted with a fixed string
(``svg.hashsalt``), the date metadata is dropped, and text is kept as text (``svg.fonttype: none``)
so names stay selectable and the files stay small. Mathtext is off, so a ``$`` in a model name is
drawn as a dollar sign, never parsed. The figures use :class:`matplotlib.figure.Figure` directly
(no pyplot state), so building a site never opens a window or leaks figures.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

_RC = {
    "svg.hashsalt": "covbench-leaderboard",
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "DejaVu Sans",
    "font.size": 8.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "path.simplify": False,
}
_PALETTE = ("#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#a16207", "#0e7490", "#be123c", "#4d7c0f")
_PLAIN = FuncFormatter(lambda v, _pos: f"{v:g}")
_MAX_LEGEND = 8  # more series than this: draw them all, label the first few ("+k more")


@dataclass(frozen=True)
class Curve:
    """One line: y over x, both finite-or-NaN floats (NaN points are gaps)."""

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]


@dataclass(frozen=True)
class ModelCurves:
    """A model's curves on one task: Cov_N over N and Pass@k (measured, exact, predicted) over k."""

    task: str
    coverage: Curve
    pass_measured: Curve
    pass_exact: Curve
    pass_predicted: Curve


@dataclass(frozen=True)
class FamilyPoint:
    """One checkpoint of a family on one task (the x axis of the Fig. 1 view is the step)."""

    step: float
    ce: float
    cov: float
    pass_n: float


def _to_svg(fig: Figure, transparent: bool = False) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None}, transparent=transparent)
    return buf.getvalue()


def _finite(curve: Curve) -> bool:
    return any(math.isfinite(v) for v in curve.y)


# The model figure is two layers stacked by CSS at identical geometry: a *frame* (axes, ticks,
# labels, the task legend) drawn once per site, and per model a transparent *lines* layer with
# the axes switched off. Matplotlib spends ~90% of a figure's time on text and ticks, so sharing
# the frame makes 1,000 model plots affordable. Fixed axes rectangles (no layout engine) and fixed
# limits keep the two layers aligned to the pixel.
_MODEL_SIZE = (7.2, 2.8)
_MODEL_AXES = ((0.08, 0.16, 0.36, 0.72), (0.58, 0.16, 0.36, 0.72))


@dataclass(frozen=True)
class ModelAxes:
    """The shared geometry of every model figure: tasks (colour order) and the x ranges."""

    tasks: tuple[str, ...]
    cov_range: tuple[float, float]
    pass_range: tuple[float, float]

    def color(self, task: str) -> str:
        return _PALETTE[self.tasks.index(task) % len(_PALETTE)]


def _model_figure(geom: ModelAxes) -> tuple[Figure, tuple]:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=_MODEL_SIZE)
        axes = tuple(fig.add_axes(rect) for rect in _MODEL_AXES)
        for ax, (lo, hi) in zip(axes, (geom.cov_range, geom.pass_range)):
            ax.set_xscale("log", base=2)
            # Plain tick labels ("16", not "2^4"): mathtext is off, so LogFormatter's TeX would show raw.
            ax.xaxis.set_major_formatter(_PLAIN)
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(lo / 1.15, hi * 1.15)
            ax.set_ylim(-0.02, 1.02)
    return fig, axes


def model_frame_svg(geom: ModelAxes) -> str:
    """The frame layer: axes, labels and a legend of task colours and line styles."""
    fig, (ax_cov, ax_pass) = _model_figure(geom)
    with matplotlib.rc_context(_RC):
        for i, task in enumerate(geom.tasks[:_MAX_LEGEND]):
            ax_cov.plot([], [], color=geom.color(task), lw=1.2, marker="o", ms=2.5, label=task)
        for style, label in (("-", "measured"), ("--", "exact"), (":", "predicted")):
            ax_pass.plot([], [], color="#555555", ls=style, lw=1.2, label=label)
        extra = len(geom.tasks) - _MAX_LEGEND
        if geom.tasks:
            ax_cov.legend(title=f"+{extra} more tasks" if extra > 0 else None, fontsize=7, loc="upper right")
        ax_pass.legend(fontsize=7, loc="lower right")
        ax_cov.set_xlabel("N (log scale)")
        ax_cov.set_ylabel("Cov_N = P[X ≥ log N]")
        ax_cov.set_title("Coverage profile (lower is better)", loc="left")
        ax_pass.set_xlabel("k (log scale)")
        ax_pass.set_ylabel("Pass@k")
        ax_pass.set_title("Pass@k (higher is better)", loc="left")
    return _to_svg(fig)


class ModelPlotter:
    """Draws the per-model lines layer on one reused figure (no axes, transparent background)."""

    def __init__(self, geom: ModelAxes) -> None:
        self.geom = geom
        self.fig, self.axes = _model_figure(geom)
        for ax in self.axes:
            ax.set_axis_off()

    def lines_svg(self, curves: Sequence[ModelCurves]) -> str:
        """Cov_N over N and Pass@k over k for each task: measured solid, exact dashed, predicted dotted.

        Each panel is one LineCollection plus one scatter (two artists, whatever the number of
        tasks): drawing 40 separate Line2D objects per model costs ~10x more in the SVG backend.
        """
        for ax in self.axes:
            for artist in list(ax.collections):
                artist.remove()
        cov_lines, cov_colors, pass_lines, pass_colors, pass_styles = [], [], [], [], []
        for c in curves:
            color = self.geom.color(c.task)
            cov_lines.append(_points(c.coverage))
            cov_colors.append(color)
            for curve, style in ((c.pass_measured, "solid"), (c.pass_exact, "dashed"), (c.pass_predicted, "dotted")):
                if _finite(curve):
                    pass_lines.append(_points(curve))
                    pass_colors.append(color)
                    pass_styles.append(style)
        with matplotlib.rc_context(_RC):
            for ax, lines, colors, styles in ((self.axes[0], cov_lines, cov_colors, ["solid"] * len(cov_lines)),
                                              (self.axes[1], pass_lines, pass_colors, pass_styles)):
                if not lines:
                    continue
                ax.add_collection(LineCollection(lines, colors=colors, linestyles=styles, linewidths=1.2),
                                  autolim=False)
                xy = np.concatenate([ln for ln in lines if len(ln)]) if any(len(ln) for ln in lines) else None
                if xy is not None:
                    dot_colors = [col for ln, col in zip(lines, colors) for _ in range(len(ln))]
                    ax.scatter(xy[:, 0], xy[:, 1], s=5, c=dot_colors, linewidths=0)
        return _to_svg(self.fig, transparent=True)


def _points(curve: Curve) -> np.ndarray:
    """``[n, 2]`` finite points of a curve (NaN or infinite values are gaps, dropped)."""
    xy = np.column_stack([np.asarray(curve.x, dtype=np.float64), np.asarray(curve.y, dtype=np.float64)])
    return xy[np.isfinite(xy).all(axis=1)] if xy.size else np.zeros((0, 2))


def _figure(width: float, height: float, ncols: int) -> tuple[Figure, list]:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height))
        left, gap = 0.06, 0.08
        w = (1 - left - 0.02 - gap * (ncols - 1)) / ncols
        axes = [fig.add_axes((left + i * (w + gap), 0.17, w, 0.66)) for i in range(ncols)]
    return fig, axes


@dataclass(frozen=True)
class FamilySeries:
    """A family's checkpoints on one task, with the two picks (steps) to mark."""

    task: str
    points: tuple[FamilyPoint, ...]
    pass_n: float
    cov_n: float
    min_ce_step: float | None
    tournament_step: float | None


def family_svg(family: str, series: Sequence[FamilySeries]) -> str:
    """The paper's Fig. 1 view: CE, Cov_N and Pass@N over training steps, one colour per task.

    The min-CE checkpoint is marked with a red square and the tournament pick (paper.md §3.1,
    Eq. 29) with a black diamond, on every panel, so one reads off the Pass@N each pick gets.
    """
    fig, axes = _figure(7.6, 2.7, 3)
    with matplotlib.rc_context(_RC):
        for i, s in enumerate(series):
            color = _PALETTE[i % len(_PALETTE)]
            steps = [p.step for p in s.points]
            label = f"{s.task} (Pass@{_n(s.pass_n)}, Cov_{_n(s.cov_n)})" if i < _MAX_LEGEND else None
            for ax, ys in zip(axes, ([p.ce for p in s.points], [p.cov for p in s.points],
                                     [p.pass_n for p in s.points])):
                ax.plot(steps, ys, marker="o", ms=3, lw=1.2, color=color, label=label if ax is axes[2] else None)
                for pick, marker, mcolor in ((s.min_ce_step, "s", "#dc2626"), (s.tournament_step, "D", "#111111")):
                    if pick is not None and pick in steps:
                        ax.plot([pick], [ys[steps.index(pick)]], marker=marker, ms=8, mfc="none", mew=1.6,
                                color=mcolor, ls="none")
        for ax, title in zip(axes, ("CE (nats/seq, lower is better)", "Cov_N at N/2 (lower is better)",
                                    "Pass@N (higher is better)")):
            ax.set_title(title, loc="left")
            ax.set_xlabel("training step")
        axes[0].plot([], [], marker="s", mfc="none", mew=1.6, color="#dc2626", ls="none", label="min-CE pick")
        axes[0].plot([], [], marker="D", mfc="none", mew=1.6, color="#111111", ls="none", label="tournament pick")
        axes[0].legend(fontsize=7)
        axes[2].legend(fontsize=6)
        fig.suptitle(family, x=0.01, ha="left", fontsize=9)
    return _to_svg(fig)


def _n(n: float) -> str:
    return str(int(n)) if n == int(n) else f"{n:g}"
