"""The site against its store: numbers, ranks, τ, picks, escaping, determinism, incremental builds, errors."""

from __future__ import annotations

import html
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from covbench import synthetic
from covbench.records import Run
from covbench.site import build, fmt, state
from covbench.store import catalog, slug, write_run
from covbench.views import build as build_views
from covbench.views.board import headline
from site_helpers import files, rows

HOSTILE = '<script>alert("x")</script>'
HOSTILE_DESC = '<img src=x onerror=alert(1)> "quoted" & more'


def _runs() -> list[Run]:
    runs = synthetic.synthetic_records(n_models=5, n_tasks=2, n_docs=40, families={"fam-a": 5, "fam-b": 4},
                                       names=[HOSTILE], descriptions={HOSTILE: HOSTILE_DESC})
    # One model with missing metrics (no KL, no sampled Pass@N) and no per-doc arrays: shown as —.
    first = runs[0].record
    sparse = first.model_copy(update={"model": "sparse", "metrics": {
        k: v for k, v in first.metrics.items() if k != "kl" and not k.startswith("pass_sampled")}})
    return [*runs, Run(sparse)]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store")
    synthetic.write_store(root, _runs())
    bad = root / "synth-0-x" / "junk-y" / "run-99990101T000000000000Z-1-deadbeef.safetensors"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a run")
    return root


@pytest.fixture(scope="module")
def site(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "site"
    assert build.main(["build", "--results", str(store), "--out", str(out)]) == 0
    return out


def test_numbers_on_task_pages_match_store(store, site):
    cat = catalog(store)
    for task in sorted({cat.task(i) for i in range(len(cat))}):
        entries = [i for i in range(len(cat)) if cat.task(i) == task]
        ce = np.array([cat.estimate(i, "ce").value for i in entries])
        used = [cat.estimate(i, "pass_sampled@8") if not math.isnan(cat.estimate(i, "pass_sampled@8").value)
                else cat.estimate(i, "pass_exact@8") for i in entries]
        pas = np.array([e.value for e in used])
        cov = np.array([cat.estimate(i, "cov@4").value for i in entries])
        table = rows(site / "tasks" / f"{slug(task)}.html")
        for j, i in enumerate(entries):
            cells = table[slug(cat.model(i))]
            assert cells[1][0].startswith(cat.model(i))
            assert cells[2][1] == repr(cat.estimate(i, "ce").value)
            assert cells[2][0].startswith(fmt.num(cat.estimate(i, "ce").value))
            kl = cat.estimate(i, "kl").value
            assert cells[3][0] == "—" if math.isnan(kl) else cells[3][0] == fmt.num(kl)
            assert cells[4][1] == repr(cat.estimate(i, "cov@4").value)
            measured = cat.estimate(i, "pass_sampled@8").value
            assert cells[5][0].startswith("—") if math.isnan(measured) else cells[5][1] == repr(measured)
            assert cells[6][1] == repr(cat.estimate(i, "pass_exact@8").value)
            # Independent reference: competition ranks (ties share the best rank) with scipy.
            assert float(cells[8][1]) == stats.rankdata(ce, method="min")[j]
            assert float(cells[9][1]) == stats.rankdata(cov, method="min")[j]
            assert float(cells[10][1]) == stats.rankdata(-pas, method="min")[j]
            assert ("⇅" in cells[8][0]) == (stats.rankdata(ce, method="min")[j] != stats.rankdata(-pas, method="min")[j])


def test_tau_point_matches_scipy_and_interval_contains_it(store, site):
    cat = catalog(store)
    views = build_views(cat)
    index = (site / "index.html").read_text(encoding="utf-8")
    for b in views.boards:
        with_arrays = [r for r in b.rows if r.model != "sparse"]
        runs = {cat.model(i): cat.load(i) for i in range(len(cat)) if cat.task(i) == b.task and cat.model(i) != "sparse"}
        ce = np.array([np.mean(-runs[r.model].docs.logp_model) for r in with_arrays])
        pas = np.array([np.mean([1 - math.comb(len(c) - int(sum(c)), 8) / math.comb(len(c), 8)
                                 for c in runs[r.model].samples.correct.rows()]) for r in with_arrays])
        assert b.tau_ce.ci.tau == pytest.approx(stats.kendalltau(-ce, pas).statistic, abs=1e-12)
        for a in (b.tau_ce, b.tau_cov):
            assert -1 <= a.ci.lo <= a.ci.tau <= a.ci.hi <= 1
            assert a.source == "per-prompt" and a.ci.n_prompts == 40 and 0 <= a.ci.resolved <= a.ci.pairs
        assert b.tau_ce.ci.n_models == len(with_arrays) and b.tau_ce.n_ranked == len(b.rows)
        assert f"{b.tau_cov.ci.tau:.2f}" in index
    assert "(of 16 ranked)" in index  # synth-0 holds "sparse"


def test_tau_without_arrays_falls_back_to_stored_metrics(tmp_path):
    runs = [Run(r.record) for r in synthetic.synthetic_records(n_models=4, n_tasks=1, n_docs=10)]
    synthetic.write_store(tmp_path, runs)
    b = build_views(catalog(tmp_path)).boards[0]
    ce = np.array([r.ce.value for r in b.rows])
    pas = np.array([r.pass_used.value for r in b.rows])
    assert b.tau_ce.source == "stored" and math.isnan(b.tau_ce.ci.lo)
    assert b.tau_ce.ci.tau == pytest.approx(stats.kendalltau(-ce, pas).statistic)


def test_family_picks_match_brute_force_tournament(store, site):
    cat = catalog(store)
    members = sorted((i for i in range(len(cat)) if cat.smalls[i].get("family") == "fam-a" and cat.task(i) == "synth-0"),
                     key=lambda i: cat.smalls[i]["step"])
    logp = np.array([cat.load(i).docs.logp_model for i in members])
    # Paper Eq. 29 by brute force: argmin_k max_j mean[log π_j − log π_k ≥ log 4].
    worst = [max(np.mean(logp[j] - logp[k] >= math.log(4.0)) for j in range(len(members)) if j != k)
             for k in range(len(members))]
    best = min(range(len(members)), key=lambda k: (worst[k], -logp[k].mean()))
    min_ce = int(np.argmin(-logp.mean(axis=1)))
    table = rows(site / "families" / f"{slug('fam-a')}.html")
    for k, i in enumerate(members):
        cells = table[f"{slug('synth-0')}--{slug(cat.model(i))}"]
        assert float(cells[6][1]) == pytest.approx(worst[k])
        assert ("tournament" in cells[7][0]) == (k == best)
        assert ("min-CE" in cells[7][0]) == (k == min_ce)


def test_escaping_and_csp(site):
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert HOSTILE not in text and "<img src=x" not in text, page
        csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', text)
        assert csp and "script-src 'self'" in html.unescape(csp.group(1)) and "default-src 'self'" in html.unescape(csp.group(1))
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), "inline script"
        assert " style=" not in text and " onclick=" not in text
        assert not re.search(r"(src|href)=\"(https?:)?//", text), "external resource"
    model_page = (site / "models" / f"{slug(HOSTILE)}.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in model_page
    assert "&lt;img src=x onerror=alert(1)&gt; &#34;quoted&#34; &amp; more" in model_page


def test_every_model_has_its_page_naming_its_run_files(store, site):
    cat = catalog(store)
    for i in range(len(cat)):
        page = (site / "models" / f"{slug(cat.model(i))}.html").read_text(encoding="utf-8")
        assert cat.rels[i] in page


def test_store_errors_shown_not_fatal(store, tmp_path, capsys):
    assert build.main(["build", "--results", str(store), "--out", str(tmp_path / "s")]) == 0
    err = capsys.readouterr().err
    assert "junk-y" in err and len(err.strip().splitlines()) == 1
    assert "junk-y" in (tmp_path / "s" / "index.html").read_text(encoding="utf-8")


def test_same_store_same_bytes(store, tmp_path):
    build.build(store, tmp_path / "a")
    build.build(store, tmp_path / "b")
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert a == b and len(a) > 40


def test_incremental_rebuild_renders_only_what_changed_and_equals_a_cold_build(tmp_path):
    runs = synthetic.synthetic_records(n_models=6, n_tasks=3, n_docs=24, families={"fam": 4})
    newcomer = [r for r in runs if r.record.model == "model-002"]
    synthetic.write_store(tmp_path / "store", [r for r in runs if r.record.model != "model-002"])
    first = build.build(tmp_path / "store", tmp_path / "site")
    assert first.kept == []
    again = build.build(tmp_path / "store", tmp_path / "site")  # nothing changed: everything is reused
    assert set(again.rendered) <= {"index.html", "models.html", "data/results.csv", ".covbench-state/state.json"}
    synthetic.write_store(tmp_path / "store", newcomer)
    inc = build.build(tmp_path / "store", tmp_path / "site")
    rendered = set(inc.rendered)
    assert f"models/{slug('model-002')}.html" in rendered
    assert all(f"tasks/{slug(f'synth-{t}')}.html" in rendered for t in range(3))
    assert not any(r.startswith("models/") and "model-002" not in r for r in rendered)  # other models: reused
    assert not any(r.startswith("families/") for r in rendered)
    build.build(tmp_path / "store", tmp_path / "cold")
    assert files(tmp_path / "site") == files(tmp_path / "cold")


def test_changed_page_code_renders_every_page_again(tmp_path, monkeypatch):
    # The keys cover the code that makes the pages (covbench.site.state.code), not only the version number:
    # an edited template or view under the same version must not leave a stale page in place.
    synthetic.write_store(tmp_path / "store", synthetic.synthetic_records(n_models=3, n_tasks=1, n_docs=16))
    build.build(tmp_path / "store", tmp_path / "site")
    assert build.build(tmp_path / "store", tmp_path / "site").kept
    monkeypatch.setattr(state, "code", lambda: "0.0.0+edited")
    again = build.build(tmp_path / "store", tmp_path / "site")
    assert again.kept == [] and f"models/{slug('model-000')}.html" in again.rendered


def test_downloads_round_trip(store, site):
    import csv

    cat = catalog(store)
    lines = list(csv.reader((site / "data" / "results.csv").read_text(encoding="utf-8").splitlines()))
    assert len(lines) == 1 + int(cat.present.sum())
    by_key = {(r[0], r[1], r[5]): r for r in lines[1:]}
    for i in range(len(cat)):
        for k, key in enumerate(cat.keys):
            if cat.present[i, k]:
                row = by_key[(cat.task(i), cat.model(i), key)]
                value = cat.values[i, k, 0]
                assert (row[6] == "" and math.isnan(value)) or float(row[6]) == value
    assert not any(r[1] == "sparse" and r[5] == "kl" for r in lines[1:])  # a metric not stored is not invented


def test_bad_arguments_one_line_and_foreign_folder_kept(tmp_path, capsys):
    assert build.main(["build", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("user data")
    (tmp_path / "store").mkdir()
    assert build.main(["build", "--results", str(tmp_path / "store"), "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine" / "keep.txt").read_text() == "user data"
    assert "refusing" in capsys.readouterr().err


def test_empty_store_builds(tmp_path):
    (tmp_path / "store").mkdir()
    build.build(tmp_path / "store", tmp_path / "site")
    assert "no readable results" in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")


def test_single_model_has_no_tau(tmp_path):
    write_run(tmp_path / "store", synthetic.synthetic_records(n_models=1, n_tasks=1, n_docs=8)[0])
    b = build_views(catalog(tmp_path / "store")).boards[0]
    assert math.isnan(b.tau_ce.ci.tau) and math.isnan(b.tau_ce.ci.lo)
    assert b.rows[0].rank_ce == 1.0


def test_a_failed_build_keeps_the_old_site(store, tmp_path, monkeypatch):
    out = tmp_path / "site"
    build.build(store, out)
    before = files(out)

    def boom(*a, **k):
        raise RuntimeError("render failed")

    monkeypatch.setattr(build, "render", boom)
    shutil.rmtree(out / ".covbench-state")  # force every page to render again
    before = files(out)
    with pytest.raises(RuntimeError):
        build.build(store, out)
    assert files(out) == before
    assert not list(tmp_path.glob(".site.new-*"))


@pytest.mark.parametrize(("ce", "cov", "pas", "word"), [
    (("a",), ("b",), ("b",), "follows coverage"), (("a",), ("b",), ("a",), "follows CE"),
    (("a",), ("b",), ("c",), "follows neither"), ((), (), (), "not stored")])
def test_headline(ce, cov, pas, word):
    assert word in headline(ce, cov, pas, 8.0, 4.0)


def test_fmt_missing_is_dash_not_zero():
    assert fmt.num(math.nan) == "—" and fmt.rank(math.nan) == "—" and fmt.sort_key(math.nan) == ""
    assert fmt.num(-0.0001) == "0.000" and fmt.num(math.inf) == "∞"


def test_a_family_whose_members_share_positions_is_drawn_as_bands(tmp_path):
    # Seeds of one setting share a position (the Fig. 2 families: x = H, 2 members at each): the family page
    # says so and draws median and min–max bands of KL, Cov and their ratio; a family without shared
    # positions keeps the Fig. 1 view.
    runs = synthetic.synthetic_records(n_models=1, n_tasks=1, n_docs=30, families={"seeds": 4, "steps": 3})
    positions = iter([8.0, 8.0, 16.0, 16.0])
    runs = [Run(r.record.model_copy(update={"axis": "H", "x": next(positions)}), r.docs, r.samples)
            if r.record.family == "seeds" else r for r in runs]
    store = synthetic.write_store(tmp_path / "store", runs)
    out = tmp_path / "site"
    assert build.main(["build", "--results", str(store), "--out", str(out)]) == 0
    seeds = (out / "families" / f"{slug('seeds')}.html").read_text()
    steps = (out / "families" / f"{slug('steps')}.html").read_text()
    assert "Fig. 2 view" in seeds and "Fig. 1 view" not in seeds
    assert "Fig. 1 view" in steps and "Fig. 2 view" not in steps
    svg = (out / "plots" / f"f-{slug('seeds')}.svg").read_text()
    assert "2 members at each H" in svg and "KL / Cov_4" in svg
    again = tmp_path / "again"
    assert build.main(["build", "--results", str(store), "--out", str(again)]) == 0
    assert (again / "plots" / f"f-{slug('seeds')}.svg").read_bytes() == svg.encode()
