"""``covbench zoo``: train the checkpoint family, and evaluate it.

    covbench zoo train [--preset shipped|tiny] [--out DIR] [--seed S] [--phase all|pretrain|pretrain-more|finetune]
                       [--set SECTION.FIELD=VALUE ...] [--log FILE]
    covbench zoo eval  [--dir DIR] [--n-prompts N] [--seed S] [--json FILE] [--markdown FILE]

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

from pydantic import ValidationError

from .config import ZooConfig, preset

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"


def _override(cfg: ZooConfig, items: list[str]) -> ZooConfig:
    data: dict[str, Any] = cfg.model_dump()
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected SECTION.FIELD=VALUE")
        *sections, field = key.split(".")
        node = data
        for s in sections:
            if not isinstance(node.get(s), dict):
                raise ValueError(f"--set {item!r}: no config section {s!r}")  # noqa: TRY004 (user input)
            node = node[s]
        if field not in node:
            raise ValueError(f"--set {item!r}: no config field {key!r}")
        node[field] = json.loads(value) if value[:1] in "0123456789-[{tf\"" and value not in ("-",) else value
    try:
        return ZooConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise ValueError(f"--set: field '{'.'.join(map(str, err['loc']))}': {err['msg']}") from None


def _train(args: argparse.Namespace) -> int:
    from .trainer import train

    cfg = _override(preset(args.preset), args.set)
    if args.seed is not None:
        cfg = cfg.model_copy(update={"seed": args.seed})
    sink = open(args.log, "a") if args.log else None  # noqa: SIM115

    def log(record: dict[str, Any]) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        if sink:
            sink.write(line + "\n")
            sink.flush()

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


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="covbench zoo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a checkpoint family")
    t.add_argument("--preset", default="shipped")
    t.add_argument("--out", type=Path, default=CHECKPOINTS)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--phase", choices=("all", "pretrain", "pretrain-more", "finetune"), default="all")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    t.add_argument("--log", type=Path, default=None)
    e = sub.add_parser("eval", help="evaluate a checkpoint family on held-out fine-tuning prompts")
    e.add_argument("--dir", type=Path, default=CHECKPOINTS)
    e.add_argument("--n-prompts", type=int, default=2048)
    e.add_argument("--seed", type=int, default=20260)
    e.add_argument("--json", type=Path, default=None)
    e.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        return _train(args) if args.cmd == "train" else _eval(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"covbench zoo {args.cmd}: {err}", file=sys.stderr)
        return 2
