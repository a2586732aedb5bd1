"""``covbench select``: which checkpoint of a family to hand to Best-of-N or RL (docs/selection.md).

Scores every checkpoint of ``--family`` on ``--task`` (reusing stored results), prints each one's CE,
KL, Cov_N over a grid and exact Pass@N, and the picks at threshold ``--n``:

- **min CE** (and min KL) on the held-out reference responses;
- the **coverage tournament** (paper Eq. 29, :func:`covbench.selection.tournament`), which reads only the
  [checkpoints × held-out prompts] matrix of log π̂(y|x) of the task's reference responses y ~ π_D;
- with ``--method offset``, also the **offset tournament** (paper Eq. 32,
  :func:`covbench.selection.offset_tournament`), which needs ``--m`` on-policy samples per prompt from
  every checkpoint, scored by every checkpoint (:mod:`covbench.onpolicy`: K·n·m generations and K²·n·m
  scores, stored beside the results and reused).

Is a pick's advantage real? For each tournament pick that differs from the min-CE pick, the paired
difference of their per-prompt Pass@N on the same prompts (exact where the task stores the correct set's
mass, else the unbiased estimator from the paired sampling task), with its 95% t interval
(:func:`covbench.selection.paired_difference`).

    covbench select --family graph-ft --task graph_fig1 --n 4 [--method offset --m 4 --gamma 1] [--json]

``--json`` prints one object::

    {"checkpoints": [{"name", "step", "ce", "kl", "cov": {"<N>": v}, "pass_at": {"<N>": v}}],
     "min_ce_pick": name, "min_kl_pick": name | null, "tournament_pick": name, "tournament_n": N,
     "n_prompts": n, "tournament_scores": {name: worst-case Ĉov_N},
     "paired_difference": {"tournament" | "offset": {"<N>": {"value", "lo", "hi", "stderr", "n_prompts",
                           "source", "level", "pick", "baseline"}}},
     "offset": null | {"pick", "n", "gamma", "guarantee_holds", "m", "n_prompts", "scores": {name: v},
                       "on_policy_worst": {name: v}, "generations", "scores_computed", "drawn", "scored",
                       "reused", "seconds"}}

Missing values are ``null`` in JSON and "—" in the table, never 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from covbench import metrics, selection
from covbench.records import RankNs, Run, RunRecord, format_n, metric_key
from covbench.registry import RegistryError, load_registry

TABLE_COV_NS = (2.0, 4.0, 8.0, 16.0)
TABLE_PASS_NS = (4.0, 8.0, 12.0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="covbench select", description=__doc__.split("\n\n")[0])
    p.add_argument("--family", required=True, help="family name in the registry")
    p.add_argument("--task", required=True, help="a scoring task with reference responses, e.g. graph_fig1")
    p.add_argument("--n", type=float, default=4.0, help="tournament threshold N ≥ 1 (default 4 = N/2 for Pass@8)")
    p.add_argument("--method", choices=("simple", "offset"), default="simple",
                   help="simple: min-CE and the tournament (Eq. 29); offset: also the offset tournament (Eq. 32)")
    p.add_argument("--m", type=int, default=4, help="offset: on-policy samples per prompt and checkpoint (default 4)")
    p.add_argument("--gamma", type=float, default=1.0, help="offset: the weight γ > 0 of the on-policy term (default 1)")
    p.add_argument("--seed", type=int, default=None, help="offset: seed of the on-policy samples (default: the runner's)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--models-file", default="models.yaml", help="registry YAML (default: models.yaml)")
    p.add_argument("--results-dir", default="results", help="results store (default: results/)")
    p.add_argument("--tasks-dir", default=None, help="lm-eval task folder (default: the project's tasks/)")
    return p


def _fail(message: str) -> int:
    print(f"covbench select: {' '.join(message.split())}", file=sys.stderr)
    return 2


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if not args.n >= 1 or math.isinf(args.n):
        return _fail(f"--n must be a real number ≥ 1, got {args.n}")
    if args.m < 1:
        return _fail(f"--m must be an integer ≥ 1, got {args.m}")
    if not (math.isfinite(args.gamma) and args.gamma > 0):
        return _fail(f"--gamma must be a real number > 0, got {args.gamma}")
    try:
        family = load_registry(args.models_file).families.get(args.family)
    except RegistryError as e:
        return _fail(str(e))
    if not family:
        return _fail(f"no family '{args.family}' in {args.models_file}")
    tasks_dir = Path(args.tasks_dir) if args.tasks_dir else None
    runs = _score(family, args.task, Path(args.results_dir), tasks_dir)
    if runs is None:
        return 2
    onp = None
    if args.method == "offset":
        from covbench.onpolicy import OnPolicyError, onpolicy_logp
        from covbench.runner import RunError, TaskError

        try:
            onp = onpolicy_logp(family, args.task, Path(args.results_dir), m=args.m, seed=args.seed,
                                tasks_dir=tasks_dir, say=lambda line: print(line, file=sys.stderr))
        except (OnPolicyError, TaskError, RunError) as e:
            return _fail(str(e))
        for problem in onp.problems:
            print(f"covbench select: skipped {problem}", file=sys.stderr)
    samplers = _Samplers(family, args.task, Path(args.results_dir), tasks_dir)
    try:
        result = compare(runs, args.n, samplers=samplers, onpolicy=onp, gamma=args.gamma)
    except ValueError as e:
        return _fail(str(e))
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


def _score(family: list, task: str, results_dir: Path, tasks_dir: Path | None) -> list[Run] | None:
    from covbench.backends import BackendError
    from covbench.runner import TASKS_DIR, RunError, TaskError, run_job

    records = []
    for spec in family:
        try:
            out = run_job(spec, task, results_dir, tasks_dir=tasks_dir or TASKS_DIR)
        except (BackendError, RunError, TaskError) as e:
            _fail(str(e))
            return None
        print(out.message, file=sys.stderr)
        if out.run.docs is None:
            _fail(f"task '{task}' stores no per-doc log-probs; use a scoring task")
            return None
        records.append(out.run)
    return records


class _Samplers:
    """Runs of the paired sampling task, drawn (or read from the store) only for the checkpoints whose
    per-prompt Pass@N is needed and only when the scoring run has no exact Pass@N (docs/selection.md#pass)."""

    def __init__(self, family: list, task: str, results_dir: Path, tasks_dir: Path | None) -> None:
        self.specs = {s.name: s for s in family}
        self.task, self.results_dir, self.tasks_dir = task, results_dir, tasks_dir
        self._paired: list[str] | None = None
        self._runs: dict[str, Run | None] = {}

    def paired(self) -> str | None:
        if self._paired is None:
            from covbench import taskmeta
            from covbench.runner import TASKS_DIR, suite_tasks

            folder = self.tasks_dir or TASKS_DIR
            self._paired = [t for t in suite_tasks(folder) if (d := taskmeta.descriptor_for(t, folder)) is not None
                            and d.kind == "sample" and d.pairs_with == self.task]
        return self._paired[0] if self._paired else None

    def __call__(self, name: str) -> Run | None:
        if name not in self._runs:
            self._runs[name] = self._run(name)
        return self._runs[name]

    def _run(self, name: str) -> Run | None:
        from covbench.backends import BackendError
        from covbench.runner import TASKS_DIR, RunError, TaskError, run_job

        task = self.paired()
        if task is None:
            return None
        try:
            got = run_job(self.specs[name], task, self.results_dir, tasks_dir=self.tasks_dir or TASKS_DIR)
        except (BackendError, RunError, TaskError) as e:
            print(f"covbench select: no sampled Pass@N for '{name}': {' '.join(str(e).split())}", file=sys.stderr)
            return None
        print(got.message, file=sys.stderr)
        return got.run


def _value(rec: RunRecord, key: str) -> float | None:
    est = rec.metrics.get(key)
    return None if est is None or math.isnan(est.value) else est.value


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _differences(runs: list[Run], samplers: Callable[[str], Run | None], pick: str, baseline: str,
                 n: float) -> dict[str, Any]:
    """Pass@N of ``pick`` minus ``baseline`` at every N of the table (same prompts, paired t interval)."""
    from covbench.summarize import vectors_of
    from covbench.views.vectors import pass_vector

    by_name = {r.record.model: r for r in runs}
    exact = all(by_name[name].docs is not None and by_name[name].docs.logp_correct is not None
                for name in (pick, baseline))
    out: dict[str, Any] = {}
    for big_n in TABLE_PASS_NS:
        rank = RankNs(pass_n=big_n, cov_n=n)
        vec = []
        for name in (pick, baseline):
            run, smp = by_name[name], (None if exact else samplers(name))
            vec.append(pass_vector(vectors_of((run.docs, run.samples), rank),
                                   None if smp is None else vectors_of((smp.docs, smp.samples), rank), big_n))
        a, b = vec
        if a is None or b is None:
            continue
        d = selection.paired_difference(a.doc_id, a.values, b.doc_id, b.values, a.weight, a.doc_id)
        out[format_n(big_n)] = {"value": _num(d.value), "lo": _num(d.lo), "hi": _num(d.hi),
                                "stderr": _num(d.stderr), "n_prompts": d.n_prompts, "level": d.level,
                                "source": a.source if a.source == b.source else f"{a.source} − {b.source}",
                                "pick": pick, "baseline": baseline}
    return out


def _offset(runs: list[Run], onp: Any, n: float, gamma: float) -> tuple[dict[str, Any], str]:
    names = [r.record.model for r in runs]
    if list(onp.names) != names:
        raise ValueError(f"on-policy candidates {list(onp.names)} differ from the scored checkpoints {names}")
    first = runs[0].docs
    assert first is not None
    picks = selection.offset_picks(names, [r.docs.doc_id for r in runs], [r.docs.logp_model for r in runs],
                                   onp.doc_id, onp.gen_logp, n, gamma, first.weight, first.doc_id)
    k, n_on, m = len(names), onp.doc_id.size, onp.m
    info = {"pick": names[picks.offset.pick], "n": n, "gamma": gamma, "guarantee_holds": picks.guarantee_holds,
            "m": m, "n_prompts": picks.n_prompts, "scores": {a: float(s) for a, s in zip(names, picks.offset.scores)},
            "on_policy_worst": {a: float(s) for a, s in zip(names, picks.offset.on_policy.max(axis=0))},
            "generations": k * n_on * m, "scores_computed": k * k * n_on * m, "drawn": list(onp.drawn),
            "scored": onp.scored, "reused": onp.reused, "seconds": round(onp.seconds, 3)}
    return info, names[picks.offset.pick]


def compare(runs: list[Run], n: float, *, samplers: Callable[[str], Run | None] | None = None, onpolicy: Any = None,
            gamma: float = 1.0) -> dict:
    """Per-checkpoint metrics, the picks (min CE, min KL, tournament at ``n``; offset tournament when
    ``onpolicy`` (:class:`covbench.onpolicy.OnPolicy`) is given) on the prompts every checkpoint was scored on
    (:func:`covbench.selection.family_picks`), and each tournament pick's paired Pass@N difference to the
    min-CE pick (``samplers(name)``: that checkpoint's run on the paired sampling task, asked for only when
    the scoring runs have no exact Pass@N)."""
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
    min_ce = None if picks.min_ce is None else names[picks.min_ce]
    tour = None if picks.tournament is None else names[picks.tournament]
    result = {"checkpoints": rows, "min_ce_pick": min_ce, "min_kl_pick": min_kl, "tournament_pick": tour,
              "tournament_n": n, "n_prompts": picks.n_prompts,
              "tournament_scores": {name: float(s) for name, s in zip(names, picks.scores)},
              "paired_difference": {}, "offset": None}
    chosen = {"tournament": tour}
    if onpolicy is not None:
        result["offset"], chosen["offset"] = _offset(runs, onpolicy, n, gamma)
    for label, pick in chosen.items():
        if pick is not None and min_ce is not None and pick != min_ce:
            result["paired_difference"][label] = _differences(runs, samplers or (lambda _name: None), pick, min_ce, n)
    return result


def _signed(v: float | None) -> str:
    return "—" if v is None else f"{v:+.3f}"


def render(result: dict) -> str:
    """The comparison as an aligned text table with the picks marked, then the paired differences."""
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    offset = result.get("offset") or {}
    marks: dict[str, str] = {}
    for key, mark in (("min_ce_pick", "C"), ("min_kl_pick", "K"), ("tournament_pick", "T")):
        if result.get(key):
            marks[result[key]] = marks.get(result[key], "") + mark
    if offset:
        marks[offset["pick"]] = marks.get(offset["pick"], "") + "O"
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
    picked = (f"picked: C = min CE ({result['min_ce_pick']}), K = min KL ({result['min_kl_pick'] or '—'}), "
              f"T = coverage tournament at N = {n} ({result['tournament_pick']})")
    if offset:
        picked += f", O = offset tournament at N = {n}, γ = {offset['gamma']:g} ({offset['pick']})"
    text.append(picked)
    for label, letter in (("tournament", "T"), ("offset", "O")):
        diffs = result["paired_difference"].get(label)
        if not diffs:
            continue
        first = next(iter(diffs.values()))
        parts = [f"Pass@{k} {_signed(d['value'])} [{_signed(d['lo'])}, {_signed(d['hi'])}]" for k, d in diffs.items()]
        text.append(f"{letter} − C ({first['pick']} − {first['baseline']}, same {first['n_prompts']} prompts, "
                    f"{first['source']}, paired t {first['level']:.0%}): " + "; ".join(parts))
    if offset:
        holds = "met" if offset["guarantee_holds"] else "not met"
        text.append(f"offset tournament: m = {offset['m']} on-policy samples per prompt and checkpoint on "
                    f"{offset['n_prompts']} prompts ({offset['generations']:,} generations, {offset['scores_computed']:,} "
                    f"scores; this run drew {len(offset['drawn'])} checkpoints' samples, scored {offset['scored']} and "
                    f"reused {offset['reused']} (scorer, sampler) pairs); N ≥ 8γ² (Thm 6.4): {holds}")
    return "\n".join(text)
