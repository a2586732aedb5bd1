"""``covbench leaderboard build --results DIR --out DIR``: the static site, a pure function of the store.

Steps: scan the store (latest record per (model, task), one-line errors for unreadable files) →
per-task boards (ranks, τ with bootstrap CIs) → family views (min-CE vs tournament) → model
pages → plots → data downloads → write. Nothing on the site depends on the clock or on the
order files were found in, so the same store always gives the same bytes.

>>> main(["build", "--results", "no-such-store", "--out", "no-such-site"])  # a missing store: exit 2
2
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from covbench import metrics
from covbench.records import Provenance, RunRecord, split_key
from covbench.store import StoreScan, scan, slug

from . import export, plots
from .board import BOOTSTRAP_B, Row, TaskBoard, build_boards
from .defaults import PAIRS, TABLE
from .families import Family, build_families
from .render import render

MARKER = ".covbench-site"  # a folder holding this file was built by us and may be replaced


@dataclass(frozen=True)
class ModelPage:
    name: str
    slug: str
    family: str | None
    family_slug: str
    step: int | None
    description: str
    rows: tuple[tuple[TaskBoard, Row], ...]
    provenance: tuple[tuple[str, Provenance], ...]
    plot: str


class BuildError(Exception):
    """A problem with the command's arguments or the output folder; one line."""


def _model_curves(record: RunRecord, sampler: RunRecord | None = None) -> plots.ModelCurves:
    """A model's curves on one task; ``sampler``: its paired sampling task's record (measured Pass@k)."""
    # One pass over the metric keys, grouping curve points by base name ("cov@4" → cov, 4.0).
    points: dict[str, list[tuple[float, float]]] = {}
    for key, e in record.metrics.items():
        base, n = split_key(key)
        if n is not None and not (sampler is not None and base == "pass_sampled"):
            points.setdefault(base, []).append((n, e.value))
    for key, e in (sampler.metrics.items() if sampler is not None else ()):
        base, n = split_key(key)
        if n is not None and base == "pass_sampled":
            points.setdefault(base, []).append((n, e.value))

    def curve(name: str) -> plots.Curve:
        pts = sorted(points.get(name, ()))
        return plots.Curve(label=name, x=tuple(p[0] for p in pts), y=tuple(p[1] for p in pts))

    return plots.ModelCurves(task=record.task, coverage=curve("cov"), pass_measured=curve("pass_sampled"),
                             pass_exact=curve("pass_exact"), pass_predicted=curve("pass_pred"))


def _model_axes(records: Sequence[RunRecord], boards: Sequence[TaskBoard]) -> plots.ModelAxes:
    cov_ns, pass_ns = set(), set()
    for r in records:
        for key in r.metrics:
            base, n = split_key(key)
            if n is not None:
                (cov_ns if base == "cov" else pass_ns).add(n)
    cov = (min(cov_ns), max(cov_ns)) if cov_ns else (1.0, 1024.0)
    pas = (min(pass_ns), max(pass_ns)) if pass_ns else (1.0, 32.0)
    return plots.ModelAxes(tasks=tuple(b.task for b in boards), cov_range=cov, pass_range=pas)


def _model_pages(records: Sequence[RunRecord], boards: Sequence[TaskBoard],
                 frame: plots.ModelFrame, csv_rows: dict[int, str], out: dict[str, str]) -> list[ModelPage]:
    rows = {(b.task, row.model): (b, row) for b in boards for row in b.rows}
    by_model: dict[str, list[RunRecord]] = {}
    for r in records:
        by_model.setdefault(r.model, []).append(r)
    pages = []
    for name in sorted(by_model):
        recs = sorted(by_model[name], key=lambda r: r.task)
        boarded = [r for r in recs if (r.task, name) in rows]
        # A paired sampling task has no board: its measured Pass@k joins its scoring task's curves.
        samplers = {PAIRS[r.task]: r for r in recs if r.task in PAIRS and (r.task, name) not in rows}
        first = recs[0]
        page = ModelPage(name=name, slug=slug(name), family=first.family,
                         family_slug=slug(first.family) if first.family else "", step=first.step,
                         description=first.description, rows=tuple(rows[(r.task, name)] for r in boarded),
                         provenance=tuple((r.task, r.provenance) for r in recs), plot=f"m-{slug(name)}.svg")
        out[f"plots/{page.plot}"] = frame.lines_svg([_model_curves(r, samplers.get(r.task)) for r in boarded])
        out[f"data/models/{page.slug}.json"] = export.records_json(recs, with_arrays=True)
        out[f"data/models/{page.slug}.csv"] = export.metrics_csv(recs, csv_rows)
        pages.append(page)
    return pages


def _family_files(families: Sequence[Family], out: dict[str, str]) -> None:
    for f in families:
        series = [plots.FamilySeries(
            task=t.task, pass_n=t.ns.pass_n, cov_n=t.ns.cov_n,
            points=tuple(plots.FamilyPoint(step=float(r.step) if r.step is not None else float(i),
                                           ce=r.ce.value, cov=r.cov.value, pass_n=r.pass_used.value)
                         for i, r in enumerate(t.rows)),
            min_ce_step=next((float(r.step) for r in t.rows if r.model == t.min_ce and r.step is not None), None),
            tournament_step=next((float(r.step) for r in t.rows if r.model == t.tournament and r.step is not None),
                                 None)) for t in f.tasks]
        out[f"plots/f-{f.slug}.svg"] = plots.family_svg(f.name, series)
        out[f"families/{f.slug}.html"] = render("family.html.jinja", root="../", family=f, plot=f"f-{f.slug}.svg")
        rows = [[t.task, r.model, "" if r.step is None else r.step, export._f(r.ce.value), export._f(r.cov.value),
                 export._f(r.pass_used.value), export._f(t.scores[i]), int(r.model == t.min_ce),
                 int(r.model == t.tournament)] for t in f.tasks for i, r in enumerate(t.rows)]
        out[f"data/families/{f.slug}.csv"] = export._csv(
            ["task", "model", "step", "ce", "cov_at_n_over_2", "pass_at_n", "tournament_worst_case",
             "min_ce_pick", "tournament_pick"], rows)


def site_files(store: StoreScan, B: int = BOOTSTRAP_B) -> dict[str, str]:
    """Every file of the site (relative path → text) for a scanned store."""
    records = store.records
    boards = build_boards(records, B)
    families = build_families(boards, records)
    out: dict[str, str] = {}
    geom = _model_axes(records, boards)
    frame = plots.ModelFrame(geom)
    out["plots/model-frame.svg"] = frame.svg
    csv_rows = {id(r): export.metrics_rows(r) for r in records}
    models = _model_pages(records, boards, frame, csv_rows, out)
    for page in models:
        out[f"models/{page.slug}.html"] = render("model.html.jinja", root="../", model=page)
    _family_files(families, out)
    for b in boards:
        out[f"data/tasks/{b.slug}.csv"] = export.board_csv(b)
    out["data/results.csv"] = export.metrics_csv(records, csv_rows)
    out["data/results.json"] = export.records_json(records, with_arrays=False)
    out["models.html"] = render("models.html.jinja", root="", models=models)
    out["index.html"] = render("index.html.jinja", root="", boards=boards, families=families,
                               families_by_name={f.name: f.slug for f in families}, errors=store.errors,
                               cards=list(metrics.METRICS.values()), table=sorted(TABLE.items()), B=B)
    static = Path(__file__).resolve().parent / "static"
    for name in ("style.css", "sort.js"):
        out[f"static/{name}"] = (static / name).read_text(encoding="utf-8")
    out[MARKER] = "covbench leaderboard site; `covbench leaderboard build` replaces this folder\n"
    return out


def write_site(out_dir: Path, files: dict[str, str]) -> None:
    """Replace ``out_dir`` with ``files``; refuse a non-empty folder that we did not build."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise BuildError(f"{out_dir}: --out exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
            raise BuildError(f"{out_dir}: --out is a non-empty folder not built by covbench; refusing to replace it")
        shutil.rmtree(out_dir)
    for rel in sorted(files):
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel], encoding="utf-8", newline="\n")


def build(results: Path, out_dir: Path, B: int = BOOTSTRAP_B) -> StoreScan:
    """Scan ``results`` and write the site to ``out_dir``; returns the scan (for its errors)."""
    results = Path(results)
    if not results.is_dir():
        raise BuildError(f"{results}: --results is not a folder")
    store = scan(results)
    write_site(out_dir, site_files(store, B))
    return store


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="covbench leaderboard", description="Build the static leaderboard site.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="render the site from a results store")
    b.add_argument("--results", type=Path, required=True, help="results store folder")
    b.add_argument("--out", type=Path, required=True, help="output folder (replaced if built before)")
    b.add_argument("--bootstrap", type=int, default=BOOTSTRAP_B, metavar="B",
                   help=f"bootstrap resamples for the τ intervals (default {BOOTSTRAP_B})")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.bootstrap < 1:
        print("covbench leaderboard: --bootstrap must be >= 1", file=sys.stderr)
        return 2
    try:
        store = build(args.results, args.out, args.bootstrap)
    except BuildError as e:
        print(f"covbench leaderboard: {e}", file=sys.stderr)
        return 2
    for err in store.errors:
        print(f"covbench leaderboard: skipped {err}", file=sys.stderr)
    n_models = len({r.model for r in store.records})
    n_tasks = len({r.task for r in store.records})
    print(f"wrote {args.out}/index.html: {n_models} models, {n_tasks} tasks, {len(store.errors)} unreadable files")
    return 0
