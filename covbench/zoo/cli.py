"""``covbench zoo``: train the checkpoint families, and evaluate them.

    covbench zoo train [--preset shipped|tiny] [--out DIR] [--seed S] [--phase all|pretrain|pretrain-more|finetune]
                       [--set SECTION.FIELD=VALUE ...] [--log FILE]
    covbench zoo train --preset fig2|fig2-tiny [--out DIR] [--phase all|base|runs] [--method M ...]
                       [--h H ...] [--seed S ...] [--set ...] [--log FILE]
    covbench zoo eval  [--dir DIR] [--n-prompts N] [--seed S] [--json FILE] [--markdown FILE]
    covbench zoo fig2-table [--dir DIR] [--rescore] [--n-per-class N] [--json FILE] [--markdown FILE]

``--set`` overrides one config field (e.g. ``--set finetune.lr=1e-4``), validated by the pydantic
config; a bad value is a one-line error naming the field. ``train`` logs one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from covbench.cliset import apply_set

from .config import PRESETS, preset
from .fig2_config import FIG2_PRESETS, Fig2Config

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
FIG2_CHECKPOINTS = CHECKPOINTS / "fig2"


def _logger(path: Path | None):  # type: ignore[no-untyped-def]
    sink = open(path, "a") if path else None  # noqa: SIM115

    def log(record: dict[str, Any]) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        if sink:
            sink.write(line + "\n")
            sink.flush()

    return log


def _train_fig2(args: argparse.Namespace) -> int:
    from .fig2_train import grid, train_base, train_grid

    cfg = apply_set(FIG2_PRESETS[args.preset], args.set)
    assert isinstance(cfg, Fig2Config)
    phase = args.phase
    if phase not in ("all", "base", "runs"):
        raise ValueError(f"--phase {phase!r}: a Fig. 2 preset has the phases all, base, runs")
    grid(cfg, args.method, args.h, args.seed)  # a bad selection fails before anything trains
    out = args.out or FIG2_CHECKPOINTS
    log = _logger(args.log)
    log({"event": "start", "preset": args.preset, "out": str(out), "config": cfg.model_dump(mode="json")})
    if phase in ("all", "base") and cfg.base is not None:
        train_base(cfg, out, log)
    if phase in ("all", "runs"):
        train_grid(cfg, out, log, methods=args.method, hs=args.h, seeds=args.seed)
    log({"event": "done"})
    return 0


def _train(args: argparse.Namespace) -> int:
    from .trainer import train

    if args.preset in FIG2_PRESETS:
        return _train_fig2(args)
    if args.preset not in PRESETS:
        known = sorted(PRESETS) + sorted(FIG2_PRESETS)
        raise ValueError(f"unknown zoo preset {args.preset!r}; expected one of {known}")
    if args.method or args.h or (args.seed and len(args.seed) > 1) or args.phase in ("base", "runs"):
        raise ValueError("--method, --h, several --seed and --phase base|runs belong to the Fig. 2 presets "
                         f"({', '.join(sorted(FIG2_PRESETS))})")
    cfg = apply_set(preset(args.preset), args.set)
    if args.seed:
        cfg = cfg.model_copy(update={"seed": args.seed[0]})
    log = _logger(args.log)
    args.out = args.out or CHECKPOINTS
    phases = ("pretrain", "finetune") if args.phase == "all" else (args.phase,)
    log({"event": "start", "preset": args.preset, "out": str(args.out), "config": cfg.model_dump()})
    train(cfg, args.out, log, phases)
    log({"event": "done"})
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_family, render_markdown

    report = evaluate_family(args.dir, n_prompts=args.n_prompts, seed=args.seed)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    text = render_markdown(report)
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(text)
    return 0


def _fig2_table(args: argparse.Namespace) -> int:
    from .fig2_table import base_rows, group_rows, render_markdown, run_rows

    rows = run_rows(args.dir, rescore=args.rescore, n_per_class=args.n_per_class)
    text = render_markdown(group_rows(rows), base_rows(args.dir))
    if args.json:
        from .fig2_table import table

        data = table(args.dir, args.rescore, args.n_per_class)
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="covbench zoo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a checkpoint family")
    t.add_argument("--preset", default="shipped")
    t.add_argument("--out", type=Path, default=None,
                   help=f"default {CHECKPOINTS} (Fig. 2 presets: {FIG2_CHECKPOINTS})")
    t.add_argument("--seed", type=int, action="append", default=None,
                   help="the run's seed (Fig. 2: train only these seeds; repeatable)")
    t.add_argument("--phase", choices=("all", "pretrain", "pretrain-more", "finetune", "base", "runs"),
                   default="all")
    t.add_argument("--method", action="append", default=None,
                   help="Fig. 2: train only this method (repeatable)")
    t.add_argument("--h", type=int, action="append", default=None,
                   help="Fig. 2: train only this H (repeatable)")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    t.add_argument("--log", type=Path, default=None)
    e = sub.add_parser("eval", help="evaluate a checkpoint family on held-out fine-tuning prompts")
    e.add_argument("--dir", type=Path, default=CHECKPOINTS)
    e.add_argument("--n-prompts", type=int, default=2048)
    e.add_argument("--seed", type=int, default=20260)
    e.add_argument("--json", type=Path, default=None)
    e.add_argument("--markdown", type=Path, default=None)
    f = sub.add_parser("fig2-table",
                       help="the Fig. 2 table: KL, Cov_16, KL/Cov_16 per (method, H) across seeds")
    f.add_argument("--dir", type=Path, default=FIG2_CHECKPOINTS)
    f.add_argument("--rescore", action="store_true", help="re-measure from the stored weights")
    f.add_argument("--n-per-class", type=int, default=None, help="with --rescore: prompts per class")
    f.add_argument("--json", type=Path, default=None)
    f.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    handlers = {"train": _train, "eval": _eval, "fig2-table": _fig2_table}
    try:
        return handlers[args.cmd](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"covbench zoo {args.cmd}: {err}", file=sys.stderr)
        return 2
