"""The leaderboard site against its store: numbers, ranks, τ, picks, escaping, determinism, errors."""

from __future__ import annotations

import html
import html.parser
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from covbench.records import Estimate, RunRecord
from covbench.store import scan, slug, write_run
from leaderboard import build, fmt, synthetic
from leaderboard.board import build_boards, headline

HOSTILE = '<script>alert("x")</script>'
HOSTILE_DESC = '<img src=x onerror=alert(1)> "quoted" & more'


class Rows(html.parser.HTMLParser):
    """Every <tr id=...>: its cells' text and data-v attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[tuple[str, str | None]]] = {}
        self._row: str | None = None
        self._cell: list[str] | None = None
        self._v: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "id" in a:
            self._row = a["id"]
            self.rows[self._row] = []
        elif tag == "td" and self._row:
            self._cell, self._v = [], a.get("data-v")

    def handle_endtag(self, tag):
        if tag == "td" and self._row and self._cell is not None:
            self.rows[self._row].append(("".join(self._cell).strip(), self._v))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _rows(path: Path) -> dict[str, list[tuple[str, str | None]]]:
    parser = Rows()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.rows


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store")
    recs = synthetic.synthetic_records(n_models=5, n_tasks=2, n_docs=40, families={"fam-a": 5, "fam-b": 4},
                                       names=[HOSTILE], descriptions={HOSTILE: HOSTILE_DESC})
    # One model with missing metrics (no KL, no sampled Pass@N, no per-doc arrays): shown as —.
    sparse = recs[0].model_copy(update={"model": "sparse", "docs": None, "samples": None, "metrics": {
        k: v for k, v in recs[0].metrics.items() if k != "kl" and not k.startswith("pass_sampled")}})
    synthetic.write_store(root, [*recs, sparse])
    bad = root / "synth-0-x" / "junk-y" / "run-99990101T000000000000Z-1-deadbeef.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    return root


@pytest.fixture(scope="module")
def site(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "site"
    assert build.main(["build", "--results", str(store), "--out", str(out), "--bootstrap", "60"]) == 0
    return out


def test_numbers_on_index_match_store(store, site):
    records = scan(store).records
    rows = _rows(site / "index.html")
    for task in sorted({r.task for r in records}):
        recs = [r for r in records if r.task == task]
        ce = np.array([r.metrics["ce"].value for r in recs])
        used = [r.metrics["pass_sampled@8"] if "pass_sampled@8" in r.metrics else r.metrics["pass_exact@8"]
                for r in recs]
        pas = np.array([e.value for e in used])
        cov = np.array([r.metrics["cov@4"].value for r in recs])
        for i, r in enumerate(recs):
            cells = rows[f"{slug(task)}--{slug(r.model)}"]
            assert cells[1][0].startswith(r.model)
            assert cells[2][1] == repr(r.metrics["ce"].value)
            assert cells[2][0].startswith(fmt.num(r.metrics["ce"].value))
            kl = r.metrics.get("kl", Estimate(value=math.nan)).value
            assert cells[3][0] == "—" if math.isnan(kl) else cells[3][0] == fmt.num(kl)
            assert cells[4][1] == repr(r.metrics["cov@4"].value)
            measured = r.metrics.get("pass_sampled@8")
            assert cells[5][0].startswith("—") if measured is None else cells[5][1] == repr(measured.value)
            assert cells[6][1] == repr(r.metrics["pass_exact@8"].value)
            assert cells[7][1] == repr(r.metrics["pass_pred@8"].value)
            # Independent reference: competition ranks (ties share the best rank) with scipy.
            assert float(cells[8][1]) == stats.rankdata(ce, method="min")[i]
            assert float(cells[9][1]) == stats.rankdata(cov, method="min")[i]
            assert float(cells[10][1]) == stats.rankdata(-pas, method="min")[i]
            assert ("⇅" in cells[8][0]) == (stats.rankdata(ce, method="min")[i] != stats.rankdata(-pas, method="min")[i])


def test_tau_matches_scipy_and_has_interval(store, site):
    records = scan(store).records
    text = (site / "index.html").read_text(encoding="utf-8")
    for board in build_boards(records, B=60):
        # The point comes from the per-prompt arrays (the models that have them: not "sparse"):
        # recompute their means independently and compare with scipy's τ on them.
        recs = {r.model: r for r in records if r.task == board.task and r.docs is not None}
        rows = [r for r in board.rows if r.model in recs]
        ce = np.array([np.mean(-np.asarray(recs[r.model].docs.logp_model)) for r in rows])
        pas = np.array([np.mean([1 - math.comb(len(c) - sum(c), 8) / math.comb(len(c), 8)
                                 for c in recs[r.model].samples.correct]) for r in rows])
        assert board.tau_ce.tau == pytest.approx(stats.kendalltau(-ce, pas).statistic, abs=1e-12)
        # For these synthetic records the per-prompt means are the stored metrics.
        stored = np.array([r.ce.value for r in rows])
        assert board.tau_ce.tau == pytest.approx(stats.kendalltau(-stored, [r.pass_used.value for r in rows]).statistic)
        for agreement in (board.tau_ce, board.tau_cov):
            assert -1 <= agreement.lo <= agreement.tau <= agreement.hi <= 1  # re-centred on the point
            assert agreement.source == "per-prompt" and agreement.n_prompts == 40
        has_sparse = any(r.model == "sparse" for r in board.rows)  # no per-doc arrays: not in τ
        assert board.tau_ce.n_models == len(board.rows) - has_sparse
        assert board.tau_ce.n_ranked == len(board.rows)
        assert f"{board.tau_cov.tau:.2f}" in text
    assert "(of 16 ranked)" in text  # synth-0 holds "sparse"


def test_tau_without_arrays_falls_back_to_stored_metrics(store):
    records = [r.model_copy(update={"docs": None}) for r in scan(store).records if r.task == "synth-0"]
    board = build_boards(records, B=20)[0]
    ce = np.array([r.ce.value for r in board.rows])
    pas = np.array([r.pass_used.value for r in board.rows])
    assert board.tau_ce.source == "stored" and math.isnan(board.tau_ce.lo)
    assert board.tau_ce.tau == pytest.approx(stats.kendalltau(-ce, pas).statistic)


def test_infinite_log_prob_gives_infinite_resampled_ce():
    from leaderboard.board import _resampled_means
    values = np.array([[1.0, np.inf, 3.0], [1.0, 2.0, 3.0]])
    counts = np.array([[1.0, 1.0, 1.0], [2.0, 0.0, 1.0]])
    means = _resampled_means(values, counts, counts.sum(axis=1))
    assert means[0, 0] == np.inf and means[0, 1] == pytest.approx(5 / 3)  # not inf·0 = NaN
    assert means[1].tolist() == pytest.approx([2.0, 5 / 3])


def test_family_picks_match_brute_force_tournament(store, site):
    records = [r for r in scan(store).records if r.family == "fam-a" and r.task == "synth-0"]
    records.sort(key=lambda r: r.step)
    logp = np.array([r.docs.logp_model for r in records])
    # Paper Eq. 29 by brute force: argmin_k max_j mean[log π_j − log π_k ≥ log 4].
    worst = [max(np.mean(logp[j] - logp[k] >= math.log(4.0)) for j in range(len(records)) if j != k)
             for k in range(len(records))]
    best = min(range(len(records)), key=lambda k: (worst[k], -logp[k].mean()))
    min_ce = int(np.argmin(-logp.mean(axis=1)))
    rows = _rows(site / "families" / f"{slug('fam-a')}.html")
    for k, r in enumerate(records):
        cells = rows[f"{slug('synth-0')}--{slug(r.model)}"]
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


def test_store_errors_shown_not_fatal(store, tmp_path, capsys):
    rc = build.main(["build", "--results", str(store), "--out", str(tmp_path / "s")])
    assert rc == 0
    err = capsys.readouterr().err
    assert "junk-y" in err and len(err.strip().splitlines()) == 1
    assert "junk-y" in (tmp_path / "s" / "index.html").read_text(encoding="utf-8")


def test_deterministic_bytes(store, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build.build(store, a, B=30)
    build.build(store, b, B=30)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 20
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_downloads_round_trip(store, site):
    records = {(r.task, r.model): r for r in scan(store).records}
    text = (site / "data" / "models" / f"{slug(HOSTILE)}.json").read_text(encoding="utf-8")
    import json
    back = [RunRecord.model_validate(d) for d in json.loads(text)]
    # Compare the JSON forms: NaN (missing) fields make == False on the records themselves.
    assert back and all(r.model_dump_json() == records[(r.task, r.model)].model_dump_json() for r in back)
    csv_text = (site / "data" / "results.csv").read_text(encoding="utf-8").splitlines()
    n_metrics = sum(len(r.metrics) for r in records.values())
    assert len(csv_text) == 1 + n_metrics
    sparse = [line for line in csv_text if line.startswith("synth-0,sparse,") and ",kl," in line]
    assert sparse == []  # a metric that is not stored is not invented


def test_bad_arguments_one_line(tmp_path, capsys):
    assert build.main(["build", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("user data")
    (tmp_path / "store").mkdir()
    assert build.main(["build", "--results", str(tmp_path / "store"), "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine" / "keep.txt").exists()
    assert "refusing" in capsys.readouterr().err


def test_empty_store_builds(tmp_path):
    (tmp_path / "store").mkdir()
    build.build(tmp_path / "store", tmp_path / "site")
    assert "no readable results" in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")


def test_single_model_has_no_tau(tmp_path):
    rec = synthetic.synthetic_records(n_models=1, n_tasks=1, n_docs=8)[0]
    write_run(tmp_path / "store", rec)
    board = build_boards(scan(tmp_path / "store").records, B=20)[0]
    assert math.isnan(board.tau_ce.tau) and math.isnan(board.tau_ce.lo)
    assert board.rows[0].rank_ce == 1.0


@pytest.mark.parametrize(("ce", "cov", "pas", "word"), [
    (("a",), ("b",), ("b",), "follows coverage"), (("a",), ("b",), ("a",), "follows CE"),
    (("a",), ("b",), ("c",), "follows neither"), ((), (), (), "not stored")])
def test_headline(ce, cov, pas, word):
    assert word in headline(ce, cov, pas, 8.0, 4.0)


def test_fmt_missing_is_dash_not_zero():
    assert fmt.num(math.nan) == "—" and fmt.rank(math.nan) == "—" and fmt.sort_key(math.nan) == ""
    assert fmt.num(-0.0001) == "0.000" and fmt.num(math.inf) == "∞"
