"""``covbench leaderboard build --results DIR --out DIR``: the static site, a pure function of the store.

One process, top to bottom (docs/site.md):

1. **store** → the catalog of the latest run of every (model, task), through the store's index;
2. **views** (pure): per-task boards, families, model pages (:func:`covbench.views.build`), with the
   per-prompt vectors and the expensive results (τ, tournaments) taken from the published site's build
   state where their input runs are unchanged;
3. **render** (pure): every output file with its input key, the hash of exactly the runs it shows; a file
   whose key is unchanged is reused from the published site, any other is rendered;
4. **publish**: the new site is built beside ``--out`` and swapped in by one atomic rename
   (:mod:`covbench.site.publish`).

Nothing on the site depends on the clock or on the order files were found in, so the same store gives the
same bytes, whether the build is cold or incremental.

>>> main(["build", "--results", "no-such-store", "--out", "no-such-site"])  # a missing store: exit 2
2
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from covbench import metrics, store, views
from covbench.records import TaskDescriptor
from covbench.store import Catalog, slug

from . import cells, export, plots, state
from .publish import Publisher, PublishError
from .render import render

STATIC = Path(__file__).resolve().parent / "static"


class BuildError(Exception):
    """A problem with the command's arguments; one line."""


@dataclass
class Report:
    """What a build did (for the command's summary line and the tests)."""

    n_models: int = 0
    n_tasks: int = 0
    errors: tuple[str, ...] = ()
    rendered: list[str] = field(default_factory=list)  # the pieces made again (pages, plots, CSVs)
    kept: list[str] = field(default_factory=list)  # the pieces reused from the published site
    seconds: float = 0.0


class _Keys:
    """Input keys: each a hash of the run files (immutable) and descriptors a piece of the site shows."""

    def __init__(self, cat: Catalog) -> None:
        self.cat = cat

    def rel(self, i: int | None) -> str | None:
        return None if i is None else self.cat.rels[i]

    def group(self, g: views.TaskGroup) -> str:
        runs = [(self.cat.model(i), self.rel(i), self.rel(g.samplers.get(self.cat.model(i)))) for i in g.entries]
        return state.key("task", g.task, g.descriptor.model_dump(mode="json"), runs)

    def model(self, name: str, entries: Sequence[int]) -> str:
        family = self.cat.smalls[entries[0]].get("family") if entries else None
        return state.key("model", name, family, [self.rel(i) for i in entries])

    def family(self, name: str, members: dict[str, list[int]], groups: dict[str, views.TaskGroup]) -> str:
        return state.key("family", name, [(t, groups[t].descriptor.rank.model_dump(), [self.rel(i) for i in idx])
                                          for t, idx in members.items()])


def _agreement_json(a: views.Agreement) -> dict:
    return {"ci": vars(a.ci), "n_ranked": a.n_ranked, "source": a.source}


def _agreement(d: dict) -> views.Agreement:
    return views.Agreement(metrics.TauCI(**d["ci"]), d["n_ranked"], d["source"])


def _family_series(fam: views.Family) -> list[plots.FamilySeries]:
    out = []
    for t in fam.tasks:
        xs = [x if x is not None else float(i) for i, x in enumerate(t.xs)]
        by_model = dict(zip((r.model for r in t.rows), xs))
        out.append(plots.FamilySeries(
            task=t.task, pass_n=t.rank.pass_n, cov_n=t.rank.cov_n,
            points=tuple(plots.FamilyPoint(x=x, ce=r.ce.value, cov=r.cov.value, pass_n=r.pass_used.value,
                                           kl=r.kl.value) for x, r in zip(xs, t.rows)),
            min_ce_x=by_model.get(t.min_ce or ""), tournament_x=by_model.get(t.tournament or "")))
    return out


@dataclass(frozen=True)
class BoardSummary:
    """What the index shows of a task board (kept in the build state, so an unchanged task's board is
    not computed again)."""

    task: str
    slug: str
    descriptor: TaskDescriptor
    sampler_task: str | None
    n_models: int
    tau_ce: views.Agreement
    tau_cov: views.Agreement
    headline: str


def _summary(b: views.Board) -> BoardSummary:
    return BoardSummary(b.task, b.slug, b.descriptor, b.sampler_task, b.n_models, b.tau_ce, b.tau_cov, b.headline)


def _summary_json(s: BoardSummary) -> dict:
    return {"task": s.task, "slug": s.slug, "descriptor": s.descriptor.model_dump(mode="json"),
            "sampler_task": s.sampler_task, "n_models": s.n_models, "tau": [_agreement_json(a) for a in (s.tau_ce, s.tau_cov)],
            "headline": s.headline}


def _summary_of(d: dict) -> BoardSummary:
    ce, cov = (_agreement(a) for a in d["tau"])
    return BoardSummary(d["task"], d["slug"], TaskDescriptor.model_validate(d["descriptor"]), d["sampler_task"],
                        d["n_models"], ce, cov, d["headline"])


class _Site:
    """The build of one site: which pieces changed (by input key), the views of those, and their files.

    Pieces whose key is unchanged since the published site are not computed again: their files are reused
    and the index shows their board's summary from the build state (``summary:<key>``)."""

    def __init__(self, cat: Catalog, old: state.State, pub: Publisher, report: Report) -> None:
        self.cat, self.old, self.pub, self.report = cat, old, pub, report
        self.keys = _Keys(cat)
        self.get = cat.vectors.__getitem__  # the per-prompt vectors the store's index keeps
        self.new = state.State()
        self.groups = views.groups(cat)
        self.by_task = {g.task: g for g in self.groups}
        self._rows: dict[str, tuple[views.Row, ...]] = {}
        self._row_maps: dict[str, dict[str, views.Row]] = {}
        self._boards: dict[str, views.Board] = {}
        self.model_csv: dict[str, bytes] = {}

    # -- views, made only when needed ----------------------------------------------------------------

    def rows(self, g: views.TaskGroup) -> tuple[views.Row, ...]:
        if g.task not in self._rows:
            self._rows[g.task] = views.rows(self.cat, g)
        return self._rows[g.task]

    def board(self, g: views.TaskGroup) -> views.Board:
        if g.task not in self._boards:
            self._boards[g.task] = views.board(self.cat, g, self.get, None, self.rows(g))
        return self._boards[g.task]

    def row_map(self, g: views.TaskGroup) -> dict[str, views.Row]:
        if g.task not in self._row_maps:
            self._row_maps[g.task] = {r.model: r for r in self.rows(g)}
        return self._row_maps[g.task]

    # -- files -----------------------------------------------------------------------------------------

    def _unchanged(self, rels: Sequence[str], key: str) -> bool:
        """Record ``rels``' key; True when the published site has them all under the same key."""
        for rel in rels:
            self.new.files[rel] = key
        return all(self.old.files.get(rel) == key for rel in rels) and all(self.pub.has(rel) for rel in rels)

    def _keep(self, rels: Sequence[str]) -> None:
        for rel in rels:
            self.pub.keep(rel)
            self.report.kept.append(rel)

    def _put(self, rel: str, data: bytes) -> None:
        self.pub.write(rel, data)
        self.report.rendered.append(rel)

    def task_files(self) -> list[BoardSummary]:
        summaries = []
        for g in self.groups:
            k = self.keys.group(g)
            slug_ = slug(g.task)
            plot = f"plots/t-{slug_}.svg" if len(g.entries) <= plots.MAX_CURVES else None
            rels = [f"tasks/{slug_}.html", f"data/tasks/{slug_}.csv"] + ([plot] if plot else [])
            memo_key = f"summary:{k}"
            if self._unchanged(rels, k) and memo_key in self.old.memo:
                self._keep(rels)
                self.new.memo[memo_key] = self.old.memo[memo_key]
                summaries.append(_summary_of(self.old.memo[memo_key]))
                continue
            b = self.board(g)
            self._put(rels[0], render("task.html.jinja", root="../", b=b, cells=[cells.row_cells(r) for r in b.rows],
                                      plot=plot.split("/")[1] if plot else "", family_slug=slug).encode())
            self._put(rels[1], export.board_csv(b).encode())
            if plot:
                self._put(plot, plots.task_curves_svg(b.task, self._curves(g, b)).encode())
            summary = _summary(b)
            self.new.memo[memo_key] = _summary_json(summary)
            summaries.append(summary)
        return summaries

    def _curves(self, g: views.TaskGroup, b: views.Board) -> list[plots.ModelCurves]:
        pairs = views.model_entries(self.cat, [g])
        out = []
        for r in b.rows:
            task = views.model_page(self.cat, r.model, pairs[r.model], lambda _g: self.row_map(g)).tasks[0]
            pts = {name: tuple(zip(task.ns, task.curves[:, j, 0].tolist()))
                   for j, name in enumerate(("cov", "pass_sampled", "pass_exact", "pass_pred"))}
            out.append(plots.ModelCurves(r.model, pts["cov"], pts["pass_sampled"], pts["pass_exact"], pts["pass_pred"]))
        return out

    def model_files(self) -> list[dict]:
        """Each model's page, metrics CSV and run files; returns the models list's rows."""
        listing = []
        for name, pairs in views.model_entries(self.cat, self.groups).items():
            entries = views.page_entries(pairs, self.cat)
            k = self.keys.model(name, entries)
            mslug = slug(name)
            html, csv_rel = f"models/{mslug}.html", f"data/models/{mslug}.csv"
            s = self.cat.smalls[pairs[0][1]]
            listing.append({"name": name, "slug": mslug, "family": s.get("family"),
                            "family_slug": slug(s["family"]) if s.get("family") else "", "step": s.get("step"),
                            "description": s.get("description", ""), "n_tasks": len(pairs)})
            if self._unchanged([html, csv_rel], k):
                self._keep([html, csv_rel])
                self.model_csv[name] = self.pub.read_published(csv_rel)
            else:
                page = views.model_page(self.cat, name, pairs, self.row_map, lambda g: self.board(g).classes)
                self._put(html, render("model.html.jinja", root="../", model=page).encode())
                self.model_csv[name] = export.model_csv(self.cat, entries).encode()
                self._put(csv_rel, self.model_csv[name])
        return listing

    def family_files(self) -> list[tuple[str, str, int]]:
        """Each family's page, plot and CSV; returns (name, slug, number of tasks) for the index."""
        out = []
        members = views.family_members(self.cat, [g.task for g in self.groups])
        for name, by_task in members.items():
            k = self.keys.family(name, by_task, self.by_task)
            fslug = slug(name)
            rels = [f"families/{fslug}.html", f"data/families/{fslug}.csv", f"plots/f-{fslug}.svg"]
            out.append((name, fslug, len(by_task)))
            if self._unchanged(rels, k):
                self._keep(rels)
                continue
            fam = views.family(name, by_task, {t: self.board(self.by_task[t]) for t in by_task}, self.cat, self.get)
            series = _family_series(fam)
            self._put(rels[0], render("family.html.jinja", root="../", family=fam, plot=rels[2].split("/")[1],
                                      bands=plots.replicated(series)).encode())
            self._put(rels[1], export.family_csv(fam.tasks).encode())
            axis = " / ".join(sorted({t.axis for t in fam.tasks}))
            self._put(rels[2], plots.family_svg(fam.name, axis, series).encode())
        return out


def build(results: Path, out_dir: Path) -> Report:
    """Read the store at ``results`` and publish its site at ``out_dir`` (incrementally where possible)."""
    start = time.perf_counter()
    results = Path(results)
    if not results.is_dir():
        raise BuildError(f"{results}: --results is not a folder")
    cat = store.catalog(results)  # 1. store
    report = Report(n_models=len({cat.model(i) for i in range(len(cat))}),
                    n_tasks=len({cat.task(i) for i in range(len(cat))}), errors=cat.errors)
    with Publisher(Path(out_dir)) as pub:
        site = _Site(cat, state.load(pub.out), pub, report)  # 2.-3. the changed views, rendered
        summaries = site.task_files()
        listing = site.model_files()
        families = site.family_files()
        header = export.METRICS_HEADER.encode()
        pub.write("data/results.csv", header + b"".join(site.model_csv[m["name"]][len(header):] for m in listing))
        pub.write("index.html", render("index.html.jinja", root="", boards=summaries, families=families,
                                       errors=cat.errors, cards=list(metrics.METRICS.values())).encode())
        pub.write("models.html", render("models.html.jinja", root="", models=listing).encode())
        for name in ("style.css", "sort.js"):
            pub.write(f"static/{name}", (STATIC / name).read_bytes())
        for rel, data in state.dump(site.new).items():
            pub.write(rel, data)
    report.seconds = time.perf_counter() - start  # 4. published when the context closed
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="covbench leaderboard", description="Build the static leaderboard site.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="render the site from a results store")
    b.add_argument("--results", type=Path, required=True, help="results store folder")
    b.add_argument("--out", type=Path, required=True, help="output folder (replaced if covbench built it before)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        report = build(args.results, args.out)
    except (BuildError, PublishError) as e:
        print(f"covbench leaderboard: {e}", file=sys.stderr)
        return 2
    for err in report.errors:
        print(f"covbench leaderboard: skipped {err}", file=sys.stderr)
    print(f"wrote {args.out}/index.html: {report.n_models} models, {report.n_tasks} tasks, "
          f"{len(report.errors)} unreadable files; {len(report.rendered)} files rendered, {len(report.kept)} reused, "
          f"{report.seconds:.2f} s")
    return 0
