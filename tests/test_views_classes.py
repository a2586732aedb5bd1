"""Per-class views (CE, Cov_N, Pass@N within each class) and the family's paired Pass@N difference, against
brute force from the stored run files, on the terminal report and on the site."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from records_factory import descriptor, record
from scipy import stats
from site_helpers import rows

from covbench import report, synthetic
from covbench.records import DocArrays, Run, SampleArrays
from covbench.site import build
from covbench.store import catalog, slug, write_run
from covbench.views import build as build_views

N_DOCS = 60


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("classes")
    synthetic.write_store(root, synthetic.synthetic_records(n_models=3, n_tasks=2, n_docs=N_DOCS, families={"fam": 5}))
    return root


def _t(values: np.ndarray) -> tuple[float, float, float]:
    if values.size < 2 or np.all(values == values[0]):
        return float(values.mean()), float(values.mean()), float(values.mean())
    lo, hi = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    return float(values.mean()), float(lo), float(hi)


def test_per_class_numbers_equal_brute_force_from_the_run_files(store):
    cat = catalog(store)
    views = build_views(cat)
    clipped = 0
    for b in views.boards:
        table = b.classes
        assert table is not None and table.labels == ("majority", "minority")
        by_model = {r.model: r for r in table.rows}
        for i in (i for i in range(len(cat)) if cat.task(i) == b.task):
            run = cat.load(i)
            cls = np.array(run.docs.cls)
            logp = run.docs.logp_model
            per_prompt = {"ce": -logp, "cov": (-logp >= math.log(4.0)).astype(float),
                          "pass": 1 - (1 - np.exp(logp)) ** 8}  # gold, single answer: exact Pass@8
            row = by_model[cat.model(i)]
            assert row.pass_source == "exact"
            for c, label in enumerate(table.labels):
                for k, name in enumerate(("ce", "cov", "pass")):
                    value, lo, hi = _t(per_prompt[name][cls == label])
                    top = math.inf if name == "ce" else 1.0  # the interval stays inside the metric's range
                    clipped += hi > top or lo < 0
                    lo, hi = min(max(lo, 0.0), top), min(max(hi, 0.0), top)
                    assert row.values[k, c, 0] == pytest.approx(value, rel=1e-9, abs=1e-12)
                    assert row.values[k, c, 1] == pytest.approx(lo, rel=1e-6, abs=1e-12)
                    assert row.values[k, c, 2] == pytest.approx(hi, rel=1e-6, abs=1e-12)
                    assert row.n[k, c] == (cls == label).sum()
            assert row.share.sum() == pytest.approx(1.0)
            assert row.share[1] == pytest.approx((cls == "minority").mean())
    assert clipped > 0  # some t intervals of proportions near 0 or 1 reached past the range and were bounded
    # the mechanism the per-class view exists for: late checkpoints lose the minority class
    fam = [r for r in views.boards[0].classes.rows if r.model.startswith("fam/")]
    assert fam[-1].values[1, 1, 0] > fam[len(fam) // 2].values[1, 1, 0]  # minority Cov_4 rises again
    assert fam[-1].values[0, 0, 0] < fam[0].values[0, 0, 0]  # while majority CE keeps falling


def _graph_like(tmp_path: Path) -> Path:
    """A scoring task with classes G1/G2 (known π_D, exact Pass@N, weighted) and a paired sampling task
    on its first half of the prompts, whose measured Pass@N must be joined to the classes by doc id."""
    scoring = descriptor("g", "known", "loglikelihood", classes=("G1", "G2"))
    sampling = descriptor("g_s", "known", "sample", pairs_with="g", classes=("G1", "G2"))
    rng = np.random.default_rng(0)
    n = 40
    cls = np.where(np.arange(n) % 4 == 0, "G2", "G1")
    weight = np.where(cls == "G2", 0.1 / (cls == "G2").sum(), 0.9 / (cls == "G1").sum())
    for m in ("a", "b"):
        lp = np.log(rng.uniform(0.05, 0.95, n))
        docs = DocArrays(doc_id=np.arange(n), logp_model=lp, logp_ref=np.zeros(n), n_tokens=[2] * n,
                         n_bytes=[4] * n, cls=tuple(cls), weight=weight, logp_correct=lp)
        write_run(tmp_path, Run(record(m, "g", {"ce": 1.0, "cov@4": 0.1}, desc=scoring), docs))
        ids = np.arange(0, n, 2)[::-1]  # reversed order: joined by id, not by position
        verdicts = [list(rng.random(16) < 0.5) for _ in ids]
        samples = SampleArrays(doc_id=ids, generations=[["x"] * 16 for _ in ids], correct=verdicts, max_gen_toks=2)
        write_run(tmp_path, Run(record(m, "g_s", {"pass_sampled@8": 0.5}, desc=sampling), None, samples))
    return tmp_path


def test_weighted_classes_exact_pass_and_weight_shares(tmp_path):
    cat = catalog(_graph_like(tmp_path))
    table = build_views(cat).boards[0].classes
    i = cat.find("a", "g")
    docs = cat.load(i).docs
    cls = np.array(docs.cls)
    row = table.rows[0]
    assert row.model == "a" and row.pass_source == "exact"  # exact first: every prompt, no sampling noise
    exact = 1 - (1 - np.exp(docs.logp_model)) ** 8
    assert row.values[2, 1, 0] == pytest.approx(exact[cls == "G2"].mean())
    assert row.n[2].tolist() == [30, 10]
    assert row.share.tolist() == pytest.approx([0.9, 0.1])
    assert table.n_prompts == (30, 10) and table.share == pytest.approx((0.9, 0.1))


def test_measured_pass_is_joined_to_classes_by_prompt_id(tmp_path):
    root = _graph_like(tmp_path)
    cat = catalog(root)
    # drop the exact Pass@N: the view falls back to the paired sampling run's verdicts
    for i in range(len(cat)):
        run = cat.load(i)
        if run.docs is not None:
            d = run.docs
            write_run(root, Run(run.record, DocArrays(doc_id=d.doc_id, logp_model=d.logp_model, logp_ref=d.logp_ref,
                                                      n_tokens=d.n_tokens, n_bytes=d.n_bytes, cls=d.cls,
                                                      weight=d.weight)))
    cat = catalog(root)
    table = build_views(cat).boards[0].classes
    row = table.rows[1]
    assert row.model == "b" and row.pass_source == "measured"
    samples = cat.load(cat.find("b", "g_s")).samples
    cls_of = dict(zip(cat.load(cat.find("b", "g")).docs.doc_id.tolist(), cat.load(cat.find("b", "g")).docs.cls))
    per = {"G1": [], "G2": []}
    for doc, verdicts in zip(samples.doc_id.tolist(), samples.correct.rows()):
        per[cls_of[doc]].append(1 - math.comb(16 - int(verdicts.sum()), 8) / math.comb(16, 8))
    for c, label in enumerate(("G1", "G2")):
        value, lo, _ = _t(np.array(per[label]))
        assert row.values[2, c, 0] == pytest.approx(value) and row.values[2, c, 1] == pytest.approx(lo)
        assert row.n[2, c] == len(per[label])
    assert row.n[0].tolist() == [30, 10]  # CE and Cov still on every scored prompt


def test_unlisted_labels_and_tasks_without_classes():
    from covbench.summarize import class_codes

    assert class_codes(("x", "G1"), ("G1",)).tolist() == [-1, 0]
    assert class_codes(None, ("G1",)) is None and class_codes(("G1",), ()) is None


def test_sampling_task_alone_has_no_class_table(tmp_path):
    sampling = descriptor("s", "known", "sample", classes=("G1", "G2"))
    for m in ("a", "b"):
        samples = SampleArrays(doc_id=[0, 1], generations=[["x"] * 2] * 2, correct=[[True, False]] * 2, max_gen_toks=1)
        write_run(tmp_path, Run(record(m, "s", {"pass_sampled@1": 0.5}, desc=sampling), None, samples))
    assert build_views(catalog(tmp_path)).boards[0].classes is None


def test_no_classes_declared_no_table(tmp_path):
    for m in ("a", "b"):
        docs = DocArrays(doc_id=[0, 1], logp_model=[-0.1, -2.0], logp_ref=[0.0, 0.0], n_tokens=[1, 1],
                         n_bytes=[1, 1], cls=("x", "y"))
        write_run(tmp_path, Run(record(m, "t", {"ce": 1.0}), docs))
    assert build_views(catalog(tmp_path)).boards[0].classes is None
    assert "per class" not in report.render(catalog(tmp_path))


def test_terminal_report_prints_the_per_class_table(store):
    cat = catalog(store)
    text = report.render(cat)
    table = build_views(cat).boards[0].classes
    assert "per class (majority" in text and "minority:Cov4" in text
    line = next(x for x in text.splitlines() if x.startswith("fam/step-5000 ") and "minority" not in x
                and text.index(x) > text.index("per class"))
    cells = line.split()
    row = next(r for r in table.rows if r.model == "fam/step-5000")
    assert cells[1:] == [f"{row.values[k, c, 0]:.3f}" for c in range(2) for k in range(3)]


@pytest.fixture(scope="module")
def site(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build.build(store, out)
    return out


def test_task_and_model_pages_show_the_per_class_numbers(store, site):
    cat = catalog(store)
    b = build_views(cat).boards[0]
    page = rows(site / "tasks" / f"{slug(b.task)}.html")
    text = (site / "tasks" / f"{slug(b.task)}.html").read_text(encoding="utf-8")
    assert "majority CE" in text and "minority Pass@8" in text
    for r in b.classes.rows:
        cells = page[f"cls-{r.slug}"]
        assert cells[0][1] == r.model
        assert [float(v) for _, v in cells[1:]] == r.values[:, :, 0].T.reshape(-1).tolist()
        assert page[r.slug][2][1] == repr(cat.estimate(cat.find(r.model, b.task), "ce").value)  # main table intact
    model = (site / "models" / f"{slug('fam/step-5000')}.html").read_text(encoding="utf-8")
    row = next(r for r in b.classes.rows if r.model == "fam/step-5000")
    assert '<table class="board classes">' in model
    assert f'data-v="{float(row.values[1, 1, 0])!r}"' in model  # minority Cov_4 of this model


def test_family_page_shows_the_paired_difference(store, site):
    cat = catalog(store)
    fam = next(f for f in build_views(cat).families if f.name == "fam")
    t = fam.tasks[0]
    assert t.tournament != t.min_ce and t.difference is not None and t.difference_source == "exact"
    a, b = (cat.load(cat.find(name, t.task)).docs for name in (t.tournament, t.min_ce))
    d = (1 - (1 - np.exp(a.logp_model)) ** 8) - (1 - (1 - np.exp(b.logp_model)) ** 8)
    lo, hi = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert (t.difference.value, t.difference.lo, t.difference.hi) == (
        pytest.approx(d.mean()), pytest.approx(lo), pytest.approx(hi))
    page = (site / "families" / f"{fam.slug}.html").read_text(encoding="utf-8")
    assert f"tournament − min-CE = {d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] over {N_DOCS} prompts" in page


def test_class_codes_survive_the_index_and_an_old_index_is_rebuilt(tmp_path):
    import json
    import struct

    from covbench.store.index import INDEX_DIR, INDEX_NAME

    synthetic.write_store(tmp_path, synthetic.synthetic_records(n_models=2, n_tasks=1, n_docs=12))
    fresh = catalog(tmp_path)  # computes the vectors and writes the index
    again = catalog(tmp_path)  # reads them back from the index
    for i, (a, b) in enumerate(zip(fresh.vectors, again.vectors)):
        assert b.cls.dtype == np.int64 and np.array_equal(a.cls, b.cls)
        labels = np.array(again.load(i).docs.cls)  # codes into the descriptor's ("majority", "minority")
        assert np.array_equal(b.cls, np.where(labels == "minority", 1, 0))
    # an index written before Vectors had `cls` (no vec.cls column) is rebuilt from the run files
    for shard in (tmp_path / INDEX_DIR / INDEX_NAME).glob("shard-*.safetensors"):
        raw = shard.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        header.pop("vec.cls", None)
        head = json.dumps(header, separators=(",", ":")).encode()
        head += b" " * (-len(head) % 8)
        shard.write_bytes(struct.pack("<Q", len(head)) + head + raw[8 + n:])
    rebuilt = catalog(tmp_path)
    assert all(v.cls is not None for v in rebuilt.vectors)

