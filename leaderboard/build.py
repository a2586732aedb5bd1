"""``covbench leaderboard build --results DIR --out DIR``: the static site, a pure function of the store.

Steps: scan the store (latest record per (model, task), one-line errors for unreadable files) →
per-task boards (ranks, τ with bootstrap CIs) → family views (min-CE vs tournament) → model
pages → plots → data downloads. Each file goes to a ``put(path, text)`` sink as soon as it is
made: a dict (:func:`site_files`) or :class:`~leaderboard.sitewriter.SiteWriter`, which writes in
a child process while the build goes on (:func:`build_site`). Nothing on the site depends on the
clock or on the order files were found in, so the same store always gives the same bytes.

>>> main(["build", "--results", "no-such-store", "--out", "no-such-site"])  # a missing store: exit 2
2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from markupsafe import Markup

from covbench import metrics
from covbench.gcpause import gc_paused
from covbench.records import Provenance, RunRecord, split_key
from covbench.store import StoreScan, scan, slug

from . import background, cells, export, plots
from .board import BOOTSTRAP_B, Agreement, Row, TaskBoard, plan_boards
from .defaults import PAIRS, TABLE
from .families import Family, build_families
from .render import render
from .sitewriter import MARKER, SiteWriteError, SiteWriter

Put = Callable[[str, str], None]  # (path relative to the site root, file text)
_CHUNK = 25  # models per chunk of per-model files (the unit the two build processes share out)


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
    drawn: tuple[tuple[RunRecord, RunRecord | None], ...]  # (record, its paired sampler's) per plotted task


class BuildError(SiteWriteError):
    """A problem with the command's arguments or the output folder; one line."""


_CURVES = ("cov", "pass_sampled", "pass_exact", "pass_pred")


@lru_cache(maxsize=1024)
def _curve_layout(keys: tuple[str, ...]) -> dict[str, tuple[tuple[int, ...], tuple[float, ...]]]:
    """For a record's metric keys (in order): per curve, the positions of its points sorted by N,
    and those N. Records of one task share their keys, so this runs once per task, not per record."""
    points: dict[str, list[tuple[float, int]]] = {}
    for i, key in enumerate(keys):
        base, n = split_key(key)
        if n is not None and base in _CURVES:
            points.setdefault(base, []).append((n, i))
    return {base: (tuple(i for _, i in sorted(pts)), tuple(n for n, _ in sorted(pts))) for base, pts in points.items()}


def _curve(record: RunRecord, name: str) -> plots.Curve:
    at, ns = _curve_layout(tuple(record.metrics)).get(name, ((), ()))
    values = list(record.metrics.values())
    return plots.Curve(label=name, x=ns, y=tuple(values[i].value for i in at))


def _model_curves(record: RunRecord, sampler: RunRecord | None = None) -> plots.ModelCurves:
    """A model's curves on one task; ``sampler``: its paired sampling task's record (measured Pass@k)."""
    return plots.ModelCurves(task=record.task, coverage=_curve(record, "cov"),
                             pass_measured=_curve(sampler or record, "pass_sampled"),
                             pass_exact=_curve(record, "pass_exact"), pass_predicted=_curve(record, "pass_pred"))


def _model_axes(records: Sequence[RunRecord], boards: Sequence[TaskBoard]) -> plots.ModelAxes:
    cov_ns, pass_ns = set(), set()
    for key in set().union(*(r.metrics for r in records)):  # each distinct key once
        base, n = split_key(key)
        if n is not None:
            (cov_ns if base == "cov" else pass_ns).add(n)
    cov = (min(cov_ns), max(cov_ns)) if cov_ns else (1.0, 1024.0)
    pas = (min(pass_ns), max(pass_ns)) if pass_ns else (1.0, 32.0)
    return plots.ModelAxes(tasks=tuple(b.task for b in boards), cov_range=cov, pass_range=pas)


def _by_model(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    """Each model's records, by task; models in name order."""
    by_model: dict[str, list[RunRecord]] = {}
    for r in records:
        by_model.setdefault(r.model, []).append(r)
    return {name: sorted(by_model[name], key=lambda r: r.task) for name in sorted(by_model)}


def _model_pages(by_model: dict[str, list[RunRecord]], boards: Sequence[TaskBoard]) -> list[ModelPage]:
    rows = {(b.task, row.model): (b, row) for b in boards for row in b.rows}
    pages = []
    for name, recs in by_model.items():
        boarded = [r for r in recs if (r.task, name) in rows]
        # A paired sampling task has no board: its measured Pass@k joins its scoring task's curves.
        samplers = {PAIRS[r.task]: r for r in recs if r.task in PAIRS and (r.task, name) not in rows}
        first = recs[0]
        pages.append(ModelPage(
            name=name, slug=slug(name), family=first.family, family_slug=slug(first.family) if first.family else "",
            step=first.step, description=first.description, rows=tuple(rows[(r.task, name)] for r in boarded),
            provenance=tuple((r.task, r.provenance) for r in recs), plot=f"m-{slug(name)}.svg",
            drawn=tuple((r, samplers.get(r.task)) for r in boarded)))
    return pages


def _family_series(f: Family) -> list[plots.FamilySeries]:
    return [plots.FamilySeries(
        task=t.task, pass_n=t.ns.pass_n, cov_n=t.ns.cov_n,
        points=tuple(plots.FamilyPoint(step=float(r.step) if r.step is not None else float(i),
                                       ce=r.ce.value, cov=r.cov.value, pass_n=r.pass_used.value)
                     for i, r in enumerate(t.rows)),
        min_ce_step=next((float(r.step) for r in t.rows if r.model == t.min_ce and r.step is not None), None),
        tournament_step=next((float(r.step) for r in t.rows if r.model == t.tournament and r.step is not None),
                             None)) for t in f.tasks]


def _family_files(families: Sequence[Family], put: Put) -> None:
    for f in families:
        put(f"plots/f-{f.slug}.svg", plots.family_svg(f.name, _family_series(f)))
        put(f"families/{f.slug}.html", render("family.html.jinja", root="../", family=f, plot=f"f-{f.slug}.svg"))
        rows = [[t.task, r.model, "" if r.step is None else r.step, export._f(r.ce.value), export._f(r.cov.value),
                 export._f(r.pass_used.value), export._f(t.scores[i]), int(r.model == t.min_ce),
                 int(r.model == t.tournament)] for t in f.tasks for i, r in enumerate(t.rows)]
        put(f"data/families/{f.slug}.csv", export._csv(
            ["task", "model", "step", "ce", "cov_at_n_over_2", "pass_at_n", "tournament_worst_case",
             "min_ce_pick", "tournament_pick"], rows))


def emit_site(store: StoreScan, put: Put, B: int = BOOTSTRAP_B, put_direct: Put | None = None) -> None:
    """Make every file of the site for a scanned store and hand each to ``put`` as it is made.

    ``put_direct``: a sink that any process may call (it writes the file at once, e.g.
    :meth:`SiteWriter.write_direct`). Given one, a forked child (:mod:`leaderboard.background`)
    computes the τ bootstrap (its result comes back for the index) while this process makes the
    tables, then both make the per-model files (page, plot, store records), chunk by chunk from a
    shared queue, the child handing its files to ``put_direct``. The files are the same either way.
    """
    records = store.records
    by_model = _by_model(records)
    plan = plan_boards(records, B)
    families = build_families(plan.boards, records)
    frame = plots.ModelFrame(_model_axes(records, plan.boards))
    pages = _model_pages(by_model, plan.boards)
    texts = {id(r): store.text(i) for i, r in enumerate(records)}
    row_cells: dict[int, Markup] = {}  # a row's cells, on its model's page and on the index

    def cells_of(row: Row) -> Markup:
        if (html := row_cells.get(id(row))) is None:
            html = row_cells[id(row)] = cells.row_cells(row)
        return html

    size = max(_CHUNK, -(-len(pages) // 8192))
    chunks = [pages[i:i + size] for i in range(0, len(pages), size)]
    claims = background.Claims(len(chunks))

    def model_files(sink: Put) -> None:
        """Each model's page, plot and store records (JSON, verbatim), for the chunks claimed."""
        for i in claims:
            for page in chunks[i]:
                sink(f"models/{page.slug}.html", render("model.html.jinja", root="../", model=page,
                                                        cells=[cells_of(row) for _, row in page.rows]))
                sink(f"plots/{page.plot}", frame.lines_svg([_model_curves(r, s) for r, s in page.drawn]))
                sink(f"data/models/{page.slug}.json",
                     export.stored_json([texts[id(r)] for r in by_model[page.name]]))

    def tau_then_model_files() -> list[tuple[Agreement, Agreement]]:
        taus = plan.agreements()
        model_files(put_direct or put)
        return taus

    pending = background.start(tau_then_model_files, parallel=put_direct is not None)
    try:
        # Every stored metric as CSV: a record's lines, in its model's CSV and in results.csv.
        csv_rows = {id(r): export.metrics_rows(r) for r in records}
        for page in pages:
            put(f"data/models/{page.slug}.csv", export.metrics_csv(by_model[page.name], csv_rows))
        put("data/results.csv", export.metrics_csv(records, csv_rows))
        put("data/results.json", export.records_json(records))
        put("plots/model-frame.svg", frame.svg)
        _family_files(families, put)
        for b in plan.boards:
            put(f"data/tasks/{b.slug}.csv", export.board_csv(b))
        put("models.html", render("models.html.jinja", root="", models=pages))
        model_files(put)  # the chunks the child has not claimed
        boards = plan.complete(pending.result())
    except BaseException:
        pending.cancel()  # a failed build must not leave its child writing
        raise
    finally:
        claims.close()
    put("index.html", render("index.html.jinja", root="", boards=boards, families=families,
                             row_cells={b.slug: [cells_of(r) for r in b.rows] for b in boards},
                             families_by_name={f.name: f.slug for f in families}, errors=store.errors,
                             cards=list(metrics.METRICS.values()), table=sorted(TABLE.items()), B=B))
    static = Path(__file__).resolve().parent / "static"
    for name in ("style.css", "sort.js"):
        put(f"static/{name}", (static / name).read_text(encoding="utf-8"))
    put(MARKER, "covbench leaderboard site; `covbench leaderboard build` replaces this folder\n")


def site_files(store: StoreScan, B: int = BOOTSTRAP_B) -> dict[str, str]:
    """Every file of the site (relative path → text) for a scanned store."""
    files: dict[str, str] = {}
    with gc_paused():
        emit_site(store, files.__setitem__, B)
    return files


def build_site(store: StoreScan, out_dir: Path, B: int = BOOTSTRAP_B, parallel: bool = True) -> None:
    """Build the site of ``store`` into ``out_dir``: files are written while the build goes on, and
    with ``parallel`` the τ bootstrap and the plots are computed in a forked child meanwhile."""
    with SiteWriter(Path(out_dir)) as writer, gc_paused():  # collections would visit the whole store
        emit_site(store, writer.put, B, writer.write_direct if parallel else None)


def build(results: Path, out_dir: Path, B: int = BOOTSTRAP_B) -> StoreScan:
    """Scan ``results`` and write the site to ``out_dir``; returns the scan (for its errors)."""
    results = Path(results)
    if not results.is_dir():
        raise BuildError(f"{results}: --results is not a folder")
    store = scan(results)
    build_site(store, out_dir, B)
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
    except SiteWriteError as e:  # BuildError too
        print(f"covbench leaderboard: {e}", file=sys.stderr)
        return 2
    for err in store.errors:
        print(f"covbench leaderboard: skipped {err}", file=sys.stderr)
    n_models = len({r.model for r in store.records})
    n_tasks = len({r.task for r in store.records})
    print(f"wrote {args.out}/index.html: {n_models} models, {n_tasks} tasks, {len(store.errors)} unreadable files")
    return 0
