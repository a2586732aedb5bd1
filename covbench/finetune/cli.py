"""``covbench finetune``: train the LoRA family of SmolLM2, and evaluate it.

    covbench finetune train [--preset shipped|tiny] [--out DIR] [--seed S] [--set SECTION.FIELD=VALUE ...]
                            [--log FILE] [--work DIR]
    covbench finetune eval  --results DIR [--adapters DIR] [--json FILE] [--markdown FILE]
                            [--n-tournament N]

``--set`` overrides one config field (e.g. ``--set train.lr=1e-4``), validated by the pydantic config; a
bad value is a one-line error naming the field. ``train`` prints (and appends to ``--log``) one JSON object
per line. ``eval`` scores the base model (step 0) and every adapter under ``--adapters`` on ``arith_ll``
and ``arith_sample`` through covbench's runner, storing results under ``--results``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from covbench.cliset import apply_set
from covbench.finetune.config import FinetuneConfig, preset

ADAPTERS = Path(__file__).resolve().parent / "adapters"


def _train(args: argparse.Namespace) -> int:
    from covbench.finetune.trainer import train

    cfg: FinetuneConfig = apply_set(preset(args.preset), args.set)
    if args.seed is not None:
        cfg = cfg.model_copy(update={"seed": args.seed})
    sink = open(args.log, "a", encoding="utf-8") if args.log else None  # noqa: SIM115

    def log(record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True)
        print(line, flush=True)
        if sink:
            sink.write(line + "\n")
            sink.flush()

    log({"event": "config", "preset": args.preset, "out": str(args.out),
         "config": cfg.model_dump(mode="json")})
    train(cfg, args.out, log, work_dir=args.work)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from covbench.finetune.evaluate import evaluate_family, render_markdown

    report = evaluate_family(args.adapters, args.results, n_tournament=args.n_tournament,
                             progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    text = render_markdown(report)
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="covbench finetune", description=(__doc__ or "").split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the LoRA adapter family")
    t.add_argument("--preset", default="shipped")
    t.add_argument("--out", type=Path, default=ADAPTERS)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    t.add_argument("--log", type=Path, default=None)
    t.add_argument("--work", type=Path, default=None, help="folder for a built tiny base model")
    e = sub.add_parser("eval", help="score the base model and every adapter on arith_ll and arith_sample")
    e.add_argument("--adapters", type=Path, default=ADAPTERS)
    e.add_argument("--results", type=Path, required=True)
    e.add_argument("--n-tournament", type=float, default=4.0)
    e.add_argument("--json", type=Path, default=None)
    e.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    from covbench.registry import RegistryError

    try:
        return _train(args) if args.cmd == "train" else _eval(args)
    except (ValueError, FileNotFoundError, RegistryError) as err:
        print(f"covbench finetune {args.cmd}: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
