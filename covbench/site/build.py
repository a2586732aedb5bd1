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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from covbench import metrics, selection, store, views
from covbench.records import RankNs
from covbench.store import Catalog, slug

from . import cells, export, plots, state
from .publish import Publisher, PublishError
from .render import render

STATIC = Path(__file__).resolve().parent / "static"


class BuildError(Exception):
    """A problem with the command's arguments; one line."""


@dataclass(frozen=True)
class Output:
    """One file of the site: its path, the key of its inputs (None: always rendered) and how to render it."""

    rel: str
    key: str | None
    render: Callable[[], bytes] | None
    source: Path | None = None  # a store file published as it is (hard-linked), instead of rendered


@dataclass
class Report:
    """What a build did (for the command's summary line and the tests)."""

    n_models: int = 0
    n_tasks: int = 0
    errors: tuple[str, ...] = ()
    rendered: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
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

    def model(self, page: views.ModelPage) -> str:
        return state.key("model", page.name, page.family, [self.rel(i) for i in page.entries])

    def family(self, fam: views.Family) -> str:
        return state.key("family", fam.name, [(t.task, t.rank.model_dump(), t.axis, [self.rel(i) for i in t.entries])
                                              for t in fam.tasks])


def _agreement_json(a: views.Agreement) -> dict:
    return {"ci": vars(a.ci), "n_ranked": a.n_ranked, "source": a.source}


def _agreement(d: dict) -> views.Agreement:
    return views.Agreement(metrics.TauCI(**d["ci"]), d["n_ranked"], d["source"])


class _Memo:
    """τ and tournament results by input key: from the previous state, else computed (and remembered)."""

    def __init__(self, cat: Catalog, keys: _Keys, old: dict, get: views.GetVectors) -> None:
        self.cat, self.keys, self.old, self.get = cat, keys, old, get
        self.memo: dict = {}

    def tau(self, g: views.TaskGroup, rows: tuple[views.Row, ...]) -> tuple[views.Agreement, views.Agreement]:
        k = self.keys.group(g)
        if k not in self.old:
            pair = views.agreements(rows, views.tau_inputs(g, rows, self.cat, self.get))
            self.old[k] = [_agreement_json(a) for a in pair]
        self.memo[k] = self.old[k]
        ce, cov = (_agreement(d) for d in self.old[k])
        return ce, cov

    def picks(self, cat: Catalog, order: Sequence[int], rank: RankNs) -> selection.FamilyPicks:
        k = state.key("picks", [self.keys.rel(i) for i in order], rank.model_dump())
        if k not in self.old:
            p = views.picks_of(cat, order, self.get, rank)
            self.old[k] = {"names": list(p.names), "scores": p.scores.tolist(), "tournament": p.tournament,
                           "min_ce": p.min_ce, "n_prompts": p.n_prompts, "n_threshold": p.n_threshold}
        self.memo[k] = self.old[k]
        d = self.old[k]
        import numpy as np

        return selection.FamilyPicks(tuple(d["names"]), np.asarray(d["scores"], dtype=float), d["tournament"],
                                     d["min_ce"], d["n_prompts"], d["n_threshold"])


def _family_series(fam: views.Family) -> list[plots.FamilySeries]:
    out = []
    for t in fam.tasks:
        xs = [x if x is not None else float(i) for i, x in enumerate(t.xs)]
        by_model = dict(zip((r.model for r in t.rows), xs))
        out.append(plots.FamilySeries(
            task=t.task, pass_n=t.rank.pass_n, cov_n=t.rank.cov_n,
            points=tuple(plots.FamilyPoint(x=x, ce=r.ce.value, cov=r.cov.value, pass_n=r.pass_used.value)
                         for x, r in zip(xs, t.rows)),
            min_ce_x=by_model.get(t.min_ce or ""), tournament_x=by_model.get(t.tournament or "")))
    return out


def _task_curves(cat: Catalog, v: views.Views, b: views.Board) -> list[plots.ModelCurves]:
    pages = {p.name: p for p in v.models}
    out = []
    for r in b.rows:
        task = next(t for t in pages[r.model].tasks if t.task == b.task)
        pts = {name: tuple(zip(task.ns, task.curves[:, j, 0].tolist()))
               for j, name in enumerate(("cov", "pass_sampled", "pass_exact", "pass_pred"))}
        out.append(plots.ModelCurves(r.model, pts["cov"], pts["pass_sampled"], pts["pass_exact"], pts["pass_pred"]))
    return out


def run_link(cat: Catalog, i: int) -> str:
    """Where the site publishes entry ``i``'s run file: ``data/runs/<model>--<task>.safetensors``."""
    task, model, _ = cat.rels[i].split("/")
    return f"data/runs/{model}--{task}.safetensors"


def outputs(cat: Catalog, v: views.Views, keys: _Keys) -> list[Output]:
    """Every file of the site except ``data/results.csv`` and the state, with its input key."""
    enc = str.encode
    out: list[Output] = []
    fam_slug = lambda name: slug(name)  # noqa: E731 (a family's page, linked from the task tables)
    for g, b in zip(v.groups, v.boards):
        k = keys.group(g)
        plot = f"t-{b.slug}.svg" if len(b.rows) <= plots.MAX_CURVES else ""
        out.append(Output(f"tasks/{b.slug}.html", k, lambda b=b, plot=plot: enc(render(
            "task.html.jinja", root="../", b=b, cells=[cells.row_cells(r) for r in b.rows], plot=plot,
            family_slug=fam_slug))))
        out.append(Output(f"data/tasks/{b.slug}.csv", k, lambda b=b: enc(export.board_csv(b))))
        if plot:
            out.append(Output(f"plots/{plot}", k, lambda b=b: enc(plots.task_curves_svg(b.task, _task_curves(cat, v, b)))))
    for page in v.models:
        k = keys.model(page)
        out.append(Output(f"models/{page.slug}.html", k, lambda p=page: enc(render(
            "model.html.jinja", root="../", model=p, run_link=lambda i: run_link(cat, i)))))
        out.append(Output(f"data/models/{page.slug}.csv", k, lambda p=page: enc(export.model_csv(cat, p.entries))))
        for i in page.entries:
            out.append(Output(run_link(cat, i), keys.rel(i), None, cat.path(i)))
    for fam in v.families:
        k = keys.family(fam)
        plot = f"f-{fam.slug}.svg" if fam.tasks else ""
        out.append(Output(f"families/{fam.slug}.html", k, lambda f=fam, plot=plot: enc(render(
            "family.html.jinja", root="../", family=f, plot=plot))))
        out.append(Output(f"data/families/{fam.slug}.csv", k, lambda f=fam: enc(export.family_csv(f.tasks))))
        if plot:
            axis = " / ".join(sorted({t.axis for t in fam.tasks}))
            out.append(Output(f"plots/{plot}", k, lambda f=fam, axis=axis: enc(plots.family_svg(f.name, axis, _family_series(f)))))
    out.append(Output("index.html", None, lambda: enc(render(
        "index.html.jinja", root="", boards=v.boards, families=v.families, errors=cat.errors,
        cards=list(metrics.METRICS.values())))))
    out.append(Output("models.html", None, lambda: enc(render("models.html.jinja", root="", models=v.models))))
    for name in ("style.css", "sort.js"):
        data = (STATIC / name).read_bytes()
        out.append(Output(f"static/{name}", state.key("static", data.decode()), lambda data=data: data))
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
        old = state.load(pub.out)
        keys = _Keys(cat)
        get = cat.vectors.__getitem__  # the per-prompt vectors the store's index keeps
        memo = _Memo(cat, keys, dict(old.memo), get)
        v = views.build(cat, get, memo.tau, memo.picks)  # 2. views
        new = state.State(memo=memo.memo)
        model_csv: dict[str, bytes] = {}
        for o in outputs(cat, v, keys):  # 3. render (or reuse)
            if o.key is not None:
                new.files[o.rel] = o.key
                if old.files.get(o.rel) == o.key and pub.keep(o.rel):
                    report.kept.append(o.rel)
                    if o.rel.startswith("data/models/") and o.rel.endswith(".csv"):
                        model_csv[o.rel] = (pub.out / o.rel).read_bytes()
                    continue
            if o.source is not None:
                pub.publish(o.rel, o.source)
                report.rendered.append(o.rel)
                continue
            data = o.render()  # type: ignore[misc]
            pub.write(o.rel, data)
            report.rendered.append(o.rel)
            if o.rel.startswith("data/models/") and o.rel.endswith(".csv"):
                model_csv[o.rel] = data
        header = export.METRICS_HEADER.encode()
        pub.write("data/results.csv", header + b"".join(model_csv[f"data/models/{p.slug}.csv"][len(header):]
                                                       for p in v.models))
        for rel, data in state.dump(new).items():
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
