"""The Fig. 2 table: per (method, H), the median and spread across seeds of KL, Cov_16 and KL/Cov_16.

Each run's numbers are its validation metrics (µ-weighted over per-class sets, :mod:`covbench.zoo.fig2_eval`)
as stored in its ``covbench_train.json`` at training time, or re-measured from the stored weights
(``rescore=True``, optionally on another number of prompts per class). The spread is the 1/16–15/16
quantile band when there are 16 or more seeds (the paper's), else min–max (docs/zoo.md).

>>> band([1.0, 3.0, 2.0])
(2.0, 1.0, 3.0)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from covbench.graphs.tokenizer import PAD, vocabulary

from .fig2_config import Fig2Config
from .fig2_eval import Fig2Metrics, evaluate_docs, ratio
from .fig2_train import BASE_NAME, validation_docs
from .model import TRAIN_INFO, load_checkpoint

QUANTILE_SEEDS = 16  # from this many seeds on, the band is the 1/16–15/16 quantiles (the paper's Fig. 2)


@dataclass(frozen=True)
class RunRow:
    run: str
    method: str
    h: int
    seed: int
    kl: float
    cov16: float
    ratio: float
    train_cpu_s: float
    per_class: dict[str, dict[str, float]]
    diverged: bool = False


@dataclass(frozen=True)
class GroupRow:
    """One (method, H): (median, low, high) of each number across its seeds."""

    method: str
    h: int
    n_seeds: int
    kl: tuple[float, float, float]
    cov16: tuple[float, float, float]
    ratio: tuple[float, float, float]
    train_cpu_s: float  # summed over the seeds
    class_kl: dict[str, tuple[float, float, float]]  # per class: (median, low, high) of the class mean KL
    n_diverged: int = 0  # seeds whose weights stopped being finite (their numbers are NaN, left out of bands)


def band(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, low, high): 1/16 and 15/16 quantiles from 16 values on, else min and max; NaN if empty."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    if v.size >= QUANTILE_SEEDS:
        lo, hi = np.quantile(v, [1 / 16, 15 / 16])
    else:
        lo, hi = v.min(), v.max()
    return (float(np.median(v)), float(lo), float(hi))


def run_rows(root: str | Path, rescore: bool = False, n_per_class: int | None = None) -> list[RunRow]:
    """Every finished stage-2 run under ``root`` (folders ``fig2-<method>-h<H>-s<seed>``), by method, H, seed.

    A run whose ``covbench_train.json`` has no validation numbers yet (still training) is left out; a
    file that cannot be read raises a one-line ``ValueError`` naming the file and the field.
    """
    rows = []
    for path in sorted(Path(root).glob("fig2-*-h*-s*")):
        info_path = path / TRAIN_INFO
        if not info_path.exists():
            continue
        info = _read_info(info_path)
        if "validation" not in info:
            continue
        try:
            if rescore:
                cfg = Fig2Config.model_validate(info["config"])
                metrics = evaluate_docs(load_checkpoint(path), validation_docs(cfg, info["H"], n_per_class),
                                        cfg.m, vocabulary(cfg.m)[PAD])
            else:
                metrics = Fig2Metrics.from_dict(info["validation"])
            cov16 = metrics.cov["cov@16"]
            rows.append(RunRow(run=info["run"], method=info["method"], h=int(info["H"]), seed=int(info["seed"]),
                               kl=metrics.kl, cov16=cov16, ratio=ratio(metrics.kl, cov16),
                               train_cpu_s=float(info["train_cpu_s"]), per_class=metrics.per_class,
                               diverged=bool(info.get("diverged", False))))
        except KeyError as e:
            raise ValueError(f"{info_path}: field {e.args[0]!r} is missing") from None
    if not rows:
        raise FileNotFoundError(f"{root}: no finished Fig. 2 runs (folders fig2-<method>-h<H>-s<seed> "
                                f"whose {TRAIN_INFO} has validation numbers)")
    return sorted(rows, key=lambda r: (r.method, r.h, r.seed))


def _read_info(path: Path) -> dict:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not readable JSON ({type(e).__name__})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: expected a JSON object")  # noqa: TRY004 (bad input: one-line ValueError)
    return info


def group_rows(rows: Sequence[RunRow]) -> list[GroupRow]:
    keys = sorted({(r.method, r.h) for r in rows})
    out = []
    for method, h in keys:
        mine = [r for r in rows if r.method == method and r.h == h]
        out.append(GroupRow(method=method, h=h, n_seeds=len(mine), kl=band([r.kl for r in mine]),
                            cov16=band([r.cov16 for r in mine]), ratio=band([r.ratio for r in mine]),
                            train_cpu_s=sum(r.train_cpu_s for r in mine),
                            class_kl={c: band([r.per_class[c]["kl"] for r in mine if c in r.per_class])
                                      for c in sorted({c for r in mine for c in r.per_class})},
                            n_diverged=sum(r.diverged for r in mine)))
    return out


def base_rows(root: str | Path) -> dict[int, Fig2Metrics]:
    """The stage-1 model's validation metrics per H (empty when the grid has no base)."""
    path = Path(root) / BASE_NAME / TRAIN_INFO
    if not path.exists():
        return {}
    info = _read_info(path)
    if "validation_by_H" not in info:
        return {}
    return {int(h): Fig2Metrics.from_dict(v) for h, v in info["validation_by_H"].items()}


def _fmt(x: float, digits: int = 3) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞"
    return f"{x:.{digits}f}"


def _cell(t: tuple[float, float, float], digits: int = 3) -> str:
    return f"{_fmt(t[0], digits)} [{_fmt(t[1], digits)}, {_fmt(t[2], digits)}]"


def render_markdown(groups: Sequence[GroupRow], base: dict[int, Fig2Metrics]) -> str:
    """The report table: median [low, high] across seeds per (method, H), then the stage-1 model per H."""
    head = ("| method | H | seeds | KL | Cov_16 | KL/Cov_16 | KL of G1 / G2 / G3 (medians) "
            "| train CPU s (all seeds) |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for g in groups:
        by_class = " / ".join(_fmt(g.class_kl[c][0], 2) for c in ("G1", "G2", "G3") if c in g.class_kl)
        seeds = f"{g.n_seeds} ({g.n_diverged} diverged)" if g.n_diverged else str(g.n_seeds)
        lines.append(f"| {g.method} | {g.h} | {seeds} | {_cell(g.kl)} | {_cell(g.cov16, 4)} | "
                     f"{_cell(g.ratio, 1)} | {by_class} | {g.train_cpu_s:.0f} |")
    for h, v in sorted(base.items()):
        c16 = v.cov["cov@16"]
        by_class = " / ".join(_fmt(v.per_class[c]["kl"], 2) for c in ("G1", "G2", "G3") if c in v.per_class)
        lines.append(f"| {BASE_NAME} (stage 1) | {h} | 1 | {_fmt(v.kl)} | {_fmt(c16, 4)} | "
                     f"{_fmt(ratio(v.kl, c16), 1)} | {by_class} | |")
    return "\n".join(lines) + "\n"


def table(root: str | Path, rescore: bool = False, n_per_class: int | None = None) -> dict:
    """Runs, groups and the stage-1 rows as one JSON-ready dict."""
    rows = run_rows(root, rescore, n_per_class)
    return {"runs": [asdict(r) for r in rows], "groups": [asdict(g) for g in group_rows(rows)],
            "base": {h: v.to_dict() for h, v in base_rows(root).items()}}
