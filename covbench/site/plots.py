"""SVG figures drawn by matplotlib: a family's view over its axis (training step, temperature, bits, ...)
and a task's curves (Cov_N over N, Pass@k over k) for tasks with few models (docs/site.md#plots).

Every figure is a pure function of its inputs: the SVG backend's ids are salted with a fixed string, the
date metadata is dropped and text stays text (``svg.fonttype: none``), so the same inputs give the same
bytes; the site keys each figure by the hash of its inputs and redraws it only when they change.
Mathtext is off, so a ``$`` in a model name is drawn as a dollar sign. The figures use
:class:`matplotlib.figure.Figure` directly (no pyplot state).
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
    "svg.hashsalt": "covbench-site",
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
MAX_CURVES = 20  # a task's curve figure is drawn only up to this many models (more are unreadable)


def _to_svg(fig: Figure) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _figure(width: float, height: float, ncols: int) -> tuple[Figure, list]:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height))
        left, gap = 0.07, 0.09
        w = (1 - left - 0.02 - gap * (ncols - 1)) / ncols
        axes = [fig.add_axes((left + i * (w + gap), 0.17, w, 0.66)) for i in range(ncols)]
    return fig, axes


def _n(n: float) -> str:
    return str(int(n)) if n == int(n) else f"{n:g}"


@dataclass(frozen=True)
class FamilyPoint:
    """One member of a family on one task, at its position on the family's axis."""

    x: float
    ce: float
    cov: float
    pass_n: float
    kl: float = math.nan  # NaN where the task's π_ref is not known


@dataclass(frozen=True)
class FamilySeries:
    """A family's members on one task, with the two picks (x positions) to mark."""

    task: str
    points: tuple[FamilyPoint, ...]
    pass_n: float
    cov_n: float
    min_ce_x: float | None
    tournament_x: float | None


def replicated(series: Sequence[FamilySeries]) -> bool:
    """Whether several members share a position on the axis (seeds of one setting, as in the Fig. 2 families):
    such a family is drawn as bands over the axis, not as one line per task.

    >>> p = lambda x: FamilyPoint(x=x, ce=1.0, cov=0.1, pass_n=0.5)
    >>> s = lambda *xs: FamilySeries("t", tuple(p(x) for x in xs), 8, 4, None, None)
    >>> replicated([s(1, 2, 3)]), replicated([s(8, 8), s(16)]), replicated([s(8), s(8)])
    (False, True, True)
    """
    xs = [p.x for s in series for p in s.points]
    return len(set(xs)) < len(xs)


def family_svg(family: str, axis: str, series: Sequence[FamilySeries]) -> str:
    """A family's plot over its axis: the Fig. 1 view (:func:`_lines_svg`), or bands where members share a
    position (:func:`_bands_svg`, the Fig. 2 view)."""
    return _bands_svg(family, axis, series) if replicated(series) else _lines_svg(family, axis, series)


@dataclass(frozen=True)
class Bands:
    """Per position on the axis: the median of the members' values there, and their minimum and maximum."""

    x: tuple[float, ...]
    median: tuple[float, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]


def bands(xs: Sequence[float], values: Sequence[float]) -> Bands:
    """Group ``values`` by their ``xs`` (ascending); NaN values are left out, and a position left with none
    is dropped.

    >>> bands([16, 8, 8, 8, 16], [4.0, 1.0, 3.0, 2.0, float("nan")])
    Bands(x=(8, 16), median=(2.0, 4.0), lo=(1.0, 4.0), hi=(3.0, 4.0))
    """
    at = {x: [v for xi, v in zip(xs, values) if xi == x and math.isfinite(v)] for x in sorted(set(xs))}
    kept = {x: np.array(v) for x, v in at.items() if v}
    return Bands(x=tuple(kept), median=tuple(float(np.median(v)) for v in kept.values()),
                 lo=tuple(float(v.min()) for v in kept.values()), hi=tuple(float(v.max()) for v in kept.values()))


def _bands_svg(family: str, axis: str, series: Sequence[FamilySeries]) -> str:
    """The paper's Fig. 2 view: KL (CE where π_ref is unknown), Cov_N at N/2 and their ratio over the axis,
    pooled over the family's tasks; at each position the median of the members there and the band from
    their minimum to their maximum (docs/zoo.md, Figure 2: with 3 seeds the band is min–max)."""
    points = [p for s in series for p in s.points]
    use_kl = all(math.isfinite(p.kl) for p in points)
    first = [p.kl if use_kl else p.ce for p in points]
    name = "KL" if use_kl else "CE"
    covs = sorted({s.cov_n for s in series})
    cov_name = f"Cov_{_n(covs[0])}" if len(covs) == 1 else "Cov_N at N/2"
    ratio = [a / p.cov if p.cov > 0 else math.nan for a, p in zip(first, points)]
    panels = ((first, f"{name} (nats/seq, lower is better)"), ([p.cov for p in points], f"{cov_name} (lower is better)"),
              (ratio, f"{name} / {cov_name}"))
    fig, axes = _figure(7.6, 2.7, 3)
    with matplotlib.rc_context(_RC):
        for ax, (values, title) in zip(axes, panels):
            b = bands([p.x for p in points], values)
            ax.fill_between(b.x, b.lo, b.hi, color=_PALETTE[0], alpha=0.25, lw=0, label="min–max over members")
            ax.plot(b.x, b.median, marker="o", ms=3, lw=1.2, color=_PALETTE[0], label="median")
            ax.set_ylim(bottom=0)  # all three are ≥ 0; from 0, a flat Cov_N looks flat
            ax.set_title(title, loc="left")
            ax.set_xlabel(axis)
        axes[0].legend(fontsize=7)
        xs = sorted({p.x for p in points})
        counts = sorted({sum(p.x == x for p in points) for x in xs})
        fig.suptitle(f"{family} ({'–'.join(map(str, counts))} members at each {axis})", x=0.01, ha="left", fontsize=9)
    return _to_svg(fig)


def _lines_svg(family: str, axis: str, series: Sequence[FamilySeries]) -> str:
    """The paper's Fig. 1 view: CE, Cov_N and Pass@N over the family's axis, one colour per task.

    The min-CE member is marked with a red square and the tournament pick (docs/coverage-principle.md
    #tournament, Eq. 29) with a black diamond, on every panel, so one reads off the Pass@N each pick gets.
    """
    fig, axes = _figure(7.6, 2.7, 3)
    with matplotlib.rc_context(_RC):
        for i, s in enumerate(series):
            color = _PALETTE[i % len(_PALETTE)]
            xs = [p.x for p in s.points]
            label = f"{s.task} (Pass@{_n(s.pass_n)}, Cov_{_n(s.cov_n)})"
            for ax, ys in zip(axes, ([p.ce for p in s.points], [p.cov for p in s.points],
                                     [p.pass_n for p in s.points])):
                ax.plot(xs, ys, marker="o", ms=3, lw=1.2, color=color, label=label if ax is axes[2] else None)
                for pick, marker, mcolor in ((s.min_ce_x, "s", "#dc2626"), (s.tournament_x, "D", "#111111")):
                    if pick is not None and pick in xs:
                        ax.plot([pick], [ys[xs.index(pick)]], marker=marker, ms=8, mfc="none", mew=1.6,
                                color=mcolor, ls="none")
        for ax, title in zip(axes, ("CE (nats/seq, lower is better)", "Cov_N at N/2 (lower is better)",
                                    "Pass@N (higher is better)")):
            ax.set_title(title, loc="left")
            ax.set_xlabel(axis)
        axes[0].plot([], [], marker="s", mfc="none", mew=1.6, color="#dc2626", ls="none", label="min-CE pick")
        axes[0].plot([], [], marker="D", mfc="none", mew=1.6, color="#111111", ls="none", label="tournament pick")
        axes[0].legend(fontsize=7)
        axes[2].legend(fontsize=6)
        fig.suptitle(family, x=0.01, ha="left", fontsize=9)
    return _to_svg(fig)


@dataclass(frozen=True)
class ModelCurves:
    """One model's curves on a task: Cov_N over N, and Pass@k (measured, exact, predicted) over k."""

    model: str
    cov: tuple[tuple[float, float], ...]
    pass_measured: tuple[tuple[float, float], ...]
    pass_exact: tuple[tuple[float, float], ...]
    pass_pred: tuple[tuple[float, float], ...]


def _xy(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    kept = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
    return [x for x, _ in kept], [y for _, y in kept]


def task_curves_svg(task: str, curves: Sequence[ModelCurves]) -> str:
    """Cov_N over N (left) and Pass@k over k (right), one colour per model (measured solid, exact dashed,
    predicted dotted)."""
    fig, axes = _figure(7.6, 2.9, 2)
    with matplotlib.rc_context(_RC):
        for i, c in enumerate(curves):
            color = _PALETTE[i % len(_PALETTE)]
            axes[0].plot(*_xy(c.cov), marker="o", ms=2.5, lw=1.2, color=color, label=c.model)
            for pts, style in ((c.pass_measured, "-"), (c.pass_exact, "--"), (c.pass_pred, ":")):
                axes[1].plot(*_xy(pts), ls=style, lw=1.2, color=color)
        for style, label in (("-", "measured"), ("--", "exact"), (":", "predicted")):
            axes[1].plot([], [], color="#555555", ls=style, lw=1.2, label=label)
        for ax in axes:
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(_PLAIN)
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_ylim(-0.02, 1.02)
        axes[0].set_title("Cov_N (lower is better)", loc="left")
        axes[0].set_xlabel("N")
        axes[1].set_title("Pass@k (higher is better)", loc="left")
        axes[1].set_xlabel("k")
        axes[0].legend(fontsize=6, loc="upper right")
        axes[1].legend(fontsize=6, loc="lower right")
        fig.suptitle(task, x=0.01, ha="left", fontsize=9)
    return _to_svg(fig)
