"""``covbench data``: write the graph tasks' YAMLs and export their docs (or any generator sample) as JSONL.

    covbench data yaml [--tasks-dir DIR]          regenerate tasks/graph/graph_*.yaml from lmeval.TASKS
    covbench data write [--out DIR] [TASK ...]    export each task's docs to DIR/TASK.jsonl
    covbench data sample --family fig1 --mixture fig1_pretrain --n 1000 --seed 0 --out FILE
                         [--n-layers L] [--m M] [--edge-order layered|shuffled] [--stratified]

The lm-eval tasks do not read these JSONL files: they regenerate the same docs in memory from the seed
in their YAML (``custom_dataset``), so the exports are for inspection and for training other models.
Errors are one line naming the offending argument.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from covbench.graphs import lmeval

DEFAULT_TASKS_DIR = Path(__file__).resolve().parents[1] / "tasks" / "graph"


def write_yamls(tasks_dir: Path) -> list[Path]:
    """Write one YAML per task in :data:`lmeval.TASKS`; returns the paths."""
    tasks_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in lmeval.TASKS.values():
        path = tasks_dir / f"{spec.name}.yaml"
        path.write_text(lmeval.task_yaml(spec), encoding="utf-8")
        paths.append(path)
    return paths


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="covbench data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    yml = sub.add_parser("yaml", help="regenerate the graph task YAMLs")
    yml.add_argument("--tasks-dir", type=Path, default=DEFAULT_TASKS_DIR)
    wr = sub.add_parser("write", help="export task docs as JSONL")
    wr.add_argument("--out", type=Path, default=Path("graph_data"))
    wr.add_argument("tasks", nargs="*", default=list(lmeval.TASKS))
    sm = sub.add_parser("sample", help="write generator docs for any size/mixture as JSONL")
    sm.add_argument("--family", choices=["fig1", "fig2"], default="fig1")
    sm.add_argument("--mixture", choices=sorted(lmeval.MIXTURES), default="fig1_pretrain")
    sm.add_argument("--n", type=int, required=True, help="docs (per class with --stratified)")
    sm.add_argument("--seed", type=int, required=True)
    sm.add_argument("--n-layers", type=int, default=4)
    sm.add_argument("--m", type=int, default=None, help="node ids (default 32 for fig1, 128 for fig2)")
    sm.add_argument("--edge-order", choices=["layered", "shuffled"], default="layered")
    sm.add_argument("--stratified", action="store_true")
    sm.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "yaml":
            for path in write_yamls(args.tasks_dir):
                print(path)
        elif args.cmd == "write":
            for name in args.tasks:
                if name not in lmeval.TASKS:
                    raise ValueError(f"task: unknown {name!r}; expected one of {sorted(lmeval.TASKS)}")
                print(write_jsonl(args.out / f"{name}.jsonl", lmeval.task_rows(lmeval.TASKS[name])))
        else:
            m = args.m if args.m is not None else (32 if args.family == "fig1" else 128)
            spec = lmeval.DataSpec(family=args.family, n_layers=args.n_layers, m=m, mixture=args.mixture,
                                   seed=args.seed, edge_order=args.edge_order,
                                   **({"n_per_class": args.n} if args.stratified else {"n": args.n}))
            print(write_jsonl(args.out, [d.to_row() for d in spec.docs()]))
    except ValueError as e:
        print(f"covbench data: {e}", file=sys.stderr)
        return 2
    return 0


__all__ = ["main", "write_jsonl", "write_yamls"]
