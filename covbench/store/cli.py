"""``covbench store``: look after a results store.

    covbench store ls ROOT [--json]     the latest run of every (model, task), with its key metrics
    covbench store index ROOT           refresh the index (rebuild it from the run files with --rebuild)
    covbench store migrate ROOT         rewrite format-1 runs (run-*.json) in format 2 (docs/store.md#format-1)

``migrate`` writes each format-1 run as a format-2 file with the same time stamp in its name (so runs keep
their order), then moves the JSON file into ``ROOT/.covbench/format1/`` (nothing is deleted). A file it
cannot read is left where it is and reported in one line. Run it again at any time: it only touches
format-1 files still in place.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from covbench.records import format_n

from . import catalog, legacy, runfile
from .index import INDEX_DIR, INDEX_NAME, error_line, is_run_file
from .runfile import RunFileError


def migrate(root: Path) -> tuple[int, list[str]]:
    """Rewrite every format-1 run under ``root``; returns (runs migrated, one-line errors)."""
    root = Path(root)
    done, errors = 0, []
    backup = root / INDEX_DIR / "format1"
    for path in sorted(root.glob(f"*/*/run-*{legacy.SUFFIX}")):
        try:
            run = legacy.read(path)
        except (RunFileError, OSError, ValueError) as e:
            errors.append(error_line(path, e))
            continue
        target = path.with_name(path.name[: -len(legacy.SUFFIX)] + runfile.SUFFIX)
        if not target.exists():
            runfile.write_atomic(target, runfile.encode(run))
        dest = backup / path.parent.parent.name / path.parent.name / path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
        done += 1
    return done, errors


def _ls(root: Path, as_json: bool) -> int:
    cat = catalog(root)
    rows = []
    for i in range(len(cat)):
        rank = cat.descriptors[i].rank
        row = {"task": cat.task(i), "model": cat.model(i), "kind": cat.descriptors[i].kind, "file": cat.rels[i],
               "ce": cat.estimate(i, "ce").value, f"cov@{format_n(rank.cov_n)}": cat.estimate(i, f"cov@{format_n(rank.cov_n)}").value}
        rows.append(row)
    if as_json:
        print(json.dumps({"runs": rows, "errors": list(cat.errors)}, indent=1))
    else:
        for r in rows:
            print(f"{r['task']:<24} {r['model']:<32} {r['kind']:<13} {r['file']}")
        for e in cat.errors:
            print(f"unreadable: {e}", file=sys.stderr)
    return 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="covbench store", description="Look after a results store.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_ls = sub.add_parser("ls", help="the latest run of every (model, task)")
    p_ls.add_argument("root", type=Path)
    p_ls.add_argument("--json", action="store_true")
    p_ix = sub.add_parser("index", help="refresh the store's index")
    p_ix.add_argument("root", type=Path)
    p_ix.add_argument("--rebuild", action="store_true", help="drop the index and rebuild it from the run files")
    p_mg = sub.add_parser("migrate", help="rewrite format-1 runs in format 2")
    p_mg.add_argument("root", type=Path)
    args = parser.parse_args(list(argv))
    if not args.root.is_dir():
        print(f"covbench store: {args.root}: not a folder", file=sys.stderr)
        return 2
    if args.command == "ls":
        return _ls(args.root, args.json)
    if args.command == "index":
        if args.rebuild:
            shutil.rmtree(args.root / INDEX_DIR / INDEX_NAME, ignore_errors=True)
        cat = catalog(args.root)
        print(f"{args.root}: {len(cat)} latest runs indexed, {len(cat.errors)} unreadable files")
        for e in cat.errors:
            print(f"unreadable: {e}", file=sys.stderr)
        return 0
    done, errors = migrate(args.root)
    for e in errors:
        print(f"covbench store migrate: skipped {e}", file=sys.stderr)
    print(f"{args.root}: migrated {done} format-1 runs to format 2 ({len(errors)} unreadable, left in place)")
    return 0 if not errors else 1


__all__ = ["is_run_file", "main", "migrate"]
