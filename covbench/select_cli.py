"""``covbench select``: which checkpoint of a family to hand to Best-of-N or RL.

Scores every checkpoint of ``--family`` on ``--task`` (reusing stored results), prints each one's CE,
KL, Cov_N over a grid and exact Pass@N, and the min-CE pick next to the coverage tournament's pick
(paper Eq. 29, ``covbench.selection.tournament``) at threshold ``--n``. The tournament reads only the
[checkpoints × held-out prompts] matrix of log π̂(y|x) of the task's reference responses y ~ π_D.

    covbench select --family graph-ft --task graph_fig1 --n 4 [--json]

``--json`` prints one object::

    {"checkpoints": [{"name", "step", "ce", "kl", "cov": {"<N>": v}, "pass_at": {"<N>": v}}],
     "min_ce_pick": name, "min_kl_pick": name | null, "tournament_pick": name, "tournament_n": N,
     "tournament_scores": {name: worst-case Ĉov_N}}

Missing values are ``null`` in JSON and "—" in the table, never 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from covbench import metrics, selection
from covbench.records import Run, RunRecord, format_n, metric_key
from covbench.registry import RegistryError, load_registry

TABLE_COV_NS = (2.0, 4.0, 8.0, 16.0)
TABLE_PASS_NS = (4.0, 8.0, 12.0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="covbench select", description=__doc__.split("\n\n")[0])
    p.add_argument("--family", required=True, help="family name in the registry")
    p.add_argument("--task", required=True, help="a scoring task with reference responses, e.g. graph_fig1")
    p.add_argument("--n", type=float, default=4.0, help="tournament threshold N ≥ 1 (default 4 = N/2 for Pass@8)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--models-file", default="models.yaml", help="registry YAML (default: models.yaml)")
    p.add_argument("--results-dir", default="results", help="results store (default: results/)")
    p.add_argument("--tasks-dir", default=None, help="lm-eval task folder (default: the project's tasks/)")
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if not args.n >= 1:
        print(f"covbench select: --n must be a real number ≥ 1, got {args.n}", file=sys.stderr)
        return 2
    try:
        family = load_registry(args.models_file).families.get(args.family)
    except RegistryError as e:
        print(f"covbench select: {e}", file=sys.stderr)
        return 2
    if not family:
        print(f"covbench select: no family '{args.family}' in {args.models_file}", file=sys.stderr)
        return 2
    records = _score(family, args.task, Path(args.results_dir), args.tasks_dir)
    if records is None:
        return 2
    result = compare(records, args.n)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


def _score(family: list, task: str, results_dir: Path, tasks_dir: str | None) -> list[Run] | None:
    from covbench.backends import BackendError
    from covbench.runner import TASKS_DIR, RunError, TaskError, run_job

    records = []
    for spec in family:
        try:
            out = run_job(spec, task, results_dir, tasks_dir=Path(tasks_dir) if tasks_dir else TASKS_DIR)
        except (BackendError, RunError, TaskError) as e:
            print(f"covbench select: {e}", file=sys.stderr)
            return None
        print(out.message, file=sys.stderr)
        if out.run.docs is None:
            print(f"covbench select: task '{task}' stores no per-doc log-probs; use a scoring task",
                  file=sys.stderr)
            return None
        records.append(out.run)
    return records


def _value(rec: RunRecord, key: str) -> float | None:
    est = rec.metrics.get(key)
    return None if est is None or math.isnan(est.value) else est.value


def compare(runs: list[Run], n: float) -> dict:
    """Per-checkpoint metrics and the three picks (min CE, min KL, tournament at ``n``), the picks on the
    prompts every checkpoint was scored on (:func:`covbench.selection.family_picks`)."""
    names = [r.record.model for r in runs]
    first = runs[0].docs
    picks = selection.family_picks(names, [r.docs.doc_id for r in runs], [r.docs.logp_model for r in runs], n,
                                   None if first is None else first.weight, None if first is None else first.doc_id)
    rows = [{"name": r.record.model, "step": r.record.step, "ce": _value(r.record, "ce"), "kl": _value(r.record, "kl"),
             "cov": {format_n(x): _value(r.record, metric_key("cov", x)) for x in metrics.DEFAULT_COV_NS},
             "pass_at": {format_n(x): _value(r.record, metric_key("pass_exact", x)) for x in metrics.DEFAULT_PASS_NS}}
            for r in runs]
    kls = [row["kl"] for row in rows]
    min_kl = names[int(np.nanargmin([math.nan if k is None else k for k in kls]))] if any(
        k is not None for k in kls) else None
    return {"checkpoints": rows, "min_ce_pick": None if picks.min_ce is None else names[picks.min_ce],
            "min_kl_pick": min_kl, "tournament_pick": None if picks.tournament is None else names[picks.tournament],
            "tournament_n": n, "n_prompts": picks.n_prompts,
            "tournament_scores": {name: float(s) for name, s in zip(names, picks.scores)}}


def render(result: dict) -> str:
    """The comparison as an aligned text table with the picks marked."""
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    marks = {result["min_ce_pick"]: "", result["tournament_pick"]: ""}
    for key, mark in (("min_ce_pick", "C"), ("min_kl_pick", "K"), ("tournament_pick", "T")):
        if result.get(key):
            marks[result[key]] = marks.get(result[key], "") + mark
    header = (["checkpoint", "step", "CE", "KL"] + [f"Cov{x:g}" for x in TABLE_COV_NS]
              + [f"Pass@{x:g}" for x in TABLE_PASS_NS] + ["picked"])
    lines = [header]
    for row in result["checkpoints"]:
        lines.append([row["name"], "—" if row["step"] is None else str(row["step"]), fmt(row["ce"]),
                      fmt(row["kl"])] + [fmt(row["cov"].get(format_n(x))) for x in TABLE_COV_NS]
                     + [fmt(row["pass_at"].get(format_n(x))) for x in TABLE_PASS_NS] + [marks.get(row["name"], "")])
    widths = [max(len(line[j]) for line in lines) for j in range(len(header))]
    text = ["  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths)))
            for line in lines]
    n = format_n(result["tournament_n"])
    text.append("")
    text.append(f"picked: C = min CE ({result['min_ce_pick']}), K = min KL ({result['min_kl_pick'] or '—'}), "
                f"T = coverage tournament at N = {n} ({result['tournament_pick']})")
    return "\n".join(text)
