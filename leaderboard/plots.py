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
# labels, the task legend) drawn by matplotlib once per site, and per model a transparent *lines*
# layer. Matplotlib spends ~50 ms on any figure it writes, so the lines layer is not drawn by it:
# each curve is stamped as an SVG <path> whose coordinates come from the frame's own data→display
# transform (``ax.transData``) followed by the y-flip of matplotlib's SVG backend
# (``RendererSVG._make_flip_transform``: y_svg = height − y_display, at 72 dpi so display units
# are the SVG's points). The lines therefore land exactly where matplotlib would draw them
# (tests/test_leaderboard_plots.py overlays the two), at microseconds per model.
_MODEL_SIZE = (7.2, 2.8)
_MODEL_AXES = ((0.08, 0.16, 0.36, 0.72), (0.58, 0.16, 0.36, 0.72))
_SVG_DPI = 72.0  # matplotlib's SVG backend always draws at 72 dpi: one display unit = one pt
_LINE_WIDTH = 1.2
_DOT_RADIUS = 1.1  # the former scatter's s=5 pt² dots: r = √5 / 2
# matplotlib's dash patterns (rcParams lines.dashed_pattern / lines.dotted_pattern) scaled by the
# line width (lines.scale_dashes), so the stamped styles match the frame's legend.
_DASHES = {"solid": None,
           "dashed": " ".join(f"{v * _LINE_WIDTH:g}" for v in matplotlib.rcParamsDefault["lines.dashed_pattern"]),
           "dotted": " ".join(f"{v * _LINE_WIDTH:g}" for v in matplotlib.rcParamsDefault["lines.dotted_pattern"])}


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
        fig = Figure(figsize=_MODEL_SIZE, dpi=_SVG_DPI)
        axes = tuple(fig.add_axes(rect) for rect in _MODEL_AXES)
        for ax, (lo, hi) in zip(axes, (geom.cov_range, geom.pass_range)):
            ax.set_xscale("log", base=2)
            # Plain tick labels ("16", not "2^4"): mathtext is off, so LogFormatter's TeX would show raw.
            ax.xaxis.set_major_formatter(_PLAIN)
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(lo / 1.15, hi * 1.15)
            ax.set_ylim(-0.02, 1.02)
    return fig, axes


def _draw_frame(fig: Figure, geom: ModelAxes, ax_cov, ax_pass) -> None:
    with matplotlib.rc_context(_RC):
        for task in geom.tasks[:_MAX_LEGEND]:
            ax_cov.plot([], [], color=geom.color(task), lw=_LINE_WIDTH, marker="o", ms=2.5, label=task)
        for style, label in (("-", "measured"), ("--", "exact"), (":", "predicted")):
            ax_pass.plot([], [], color="#555555", ls=style, lw=_LINE_WIDTH, label=label)
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


def _num(v: float) -> str:
    # 3 decimals of a point (as every coordinate here): well inside the 0.01 px the overlay test allows.
    return f"{v:.3f}"


class ModelFrame:
    """The shared frame of every model figure and the stamp that places a model's lines on it.

    >>> frame = ModelFrame(ModelAxes(tasks=("t",), cov_range=(1.0, 64.0), pass_range=(1.0, 8.0)))
    >>> frame.svg.startswith("<?xml")
    True
    >>> frame.segments(0, [1.0, 2.0, float("nan"), 8.0], [0.5, 0.4, 0.3, 0.2]).count("M")  # NaN: a gap
    2
    """

    def __init__(self, geom: ModelAxes) -> None:
        self.geom = geom
        self.fig, self.axes = _model_figure(geom)
        _draw_frame(self.fig, geom, *self.axes)
        self.svg = _to_svg(self.fig)  # draws the figure once: the transforms below are final
        self.width, self.height = (float(v) * _SVG_DPI for v in self.fig.get_size_inches())
        # The data → display transforms, frozen now that the figure is drawn (a live transform
        # re-validates its tree on every call).
        self._transforms = [ax.transData.frozen() for ax in self.axes]
        # Each panel's clip box in SVG coordinates (matplotlib clips lines to the axes box).
        self._clips = []
        for ax in self.axes:
            (x0, y0), (x1, y1) = ax.bbox.get_points()
            self._clips.append((x0, self.height - y1, x1 - x0, y1 - y0))

    def points(self, panel: int, x: Sequence[float], y: Sequence[float]) -> np.ndarray:
        """``[n, 2]`` SVG coordinates of data points on ``panel`` (0: coverage, 1: Pass@k)."""
        xy = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
        if xy.size == 0:
            return np.zeros((0, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self._transforms[panel].transform(xy)
        out[:, 1] = self.height - out[:, 1]  # the SVG backend's flip: y grows downwards from the top
        out[~np.isfinite(xy).all(axis=1)] = np.nan  # a missing value stays missing, never 0
        return out

    def segments(self, panel: int, x: Sequence[float], y: Sequence[float]) -> str:
        """Path data of a curve: ``M``/``L`` runs over finite points; a NaN point breaks the line."""
        return _segments(_coords(self.points(panel, x, y)))

    def dots(self, panel: int, x: Sequence[float], y: Sequence[float]) -> str:
        """Path data of a filled dot (two arcs) at every finite point."""
        return _dots(_coords(self.points(panel, x, y)))

    def lines_svg(self, curves: Sequence[ModelCurves]) -> str:
        """The lines layer of one model: Cov_N over N and Pass@k over k for each task.

        Measured Pass@k solid, exact dashed, predicted dotted; dots on every coverage and Pass@k
        point; one colour per task (the frame's legend). Same size and viewBox as the frame.
        All of a panel's points go through one transform call (matplotlib's per-call overhead is
        ~50 µs, the points themselves cost nothing).
        """
        w, h = _num(self.width), _num(self.height)
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}pt" height="{h}pt" viewBox="0 0 {w} {h}">',
               "<defs>"]
        out += [f'<clipPath id="p{i}"><rect x="{_num(x)}" y="{_num(y)}" width="{_num(cw)}" height="{_num(ch)}"/>'
                "</clipPath>" for i, (x, y, cw, ch) in enumerate(self._clips)]
        out.append("</defs>")
        for panel in (0, 1):
            styled = [(self.geom.color(c.task), curve, style) for c in curves
                      for curve, style in ([(c.coverage, "solid")] if panel == 0 else
                                           [(c.pass_measured, "solid"), (c.pass_exact, "dashed"),
                                            (c.pass_predicted, "dotted")])]
            if not styled:
                continue
            pts = self.points(panel, [v for _, c, _ in styled for v in c.x], [v for _, c, _ in styled for v in c.y])
            out.append(f'<g clip-path="url(#p{panel})" fill="none" stroke-width="{_LINE_WIDTH:g}" '
                       'stroke-linejoin="round">')
            dots, at = [], 0
            for color, curve, style in styled:
                part, at = pts[at:at + len(curve.x)], at + len(curve.x)
                coords = _coords(part)
                d = _segments(coords)
                if not d:
                    continue
                dash = _DASHES[style]
                out.append(f'<path d="{d}" stroke="{color}"' +
                           (f' stroke-dasharray="{dash}"/>' if dash else ' stroke-linecap="square"/>'))
                dots.append(f'<path d="{_dots(coords)}" fill="{color}" stroke="none"/>')
            out += dots
            out.append("</g>")
        out.append("</svg>\n")
        return "\n".join(out)


def _coords(pts: np.ndarray) -> list[str | None]:
    """``"x y"`` of every point (3 decimals), None for a non-finite one; shared by lines and dots."""
    return [f"{px:.3f} {py:.3f}" if math.isfinite(px) and math.isfinite(py) else None for px, py in pts.tolist()]


def _segments(coords: Sequence[str | None]) -> str:
    """``M``/``L`` runs over the finite points; a missing point (None) lifts the pen."""
    parts, pen_down = [], False
    for c in coords:
        if c is not None:
            parts.append(("L" if pen_down else "M") + c)
        pen_down = c is not None
    return " ".join(parts)


# A dot: move to the point, step left by the radius, and draw two half-circle arcs (relative moves).
_DOT = (f"m-{_DOT_RADIUS:g} 0a{_DOT_RADIUS:g} {_DOT_RADIUS:g} 0 1 0 {2 * _DOT_RADIUS:g} 0"
        f"a{_DOT_RADIUS:g} {_DOT_RADIUS:g} 0 1 0 -{2 * _DOT_RADIUS:g} 0")


def _dots(coords: Sequence[str | None]) -> str:
    return " ".join(f"M{c}{_DOT}" for c in coords if c is not None)


def model_frame_svg(geom: ModelAxes) -> str:
    """The frame layer: axes, labels and a legend of task colours and line styles."""
    return ModelFrame(geom).svg


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
