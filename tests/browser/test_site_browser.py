"""The built site in real headless Chromium: no console errors, no request leaves the site, columns
sort, permalinks land on their row, and HTML/JS payloads in names and descriptions stay text.

Screenshots are kept under ``artifacts/`` at the repository root (gitignored) for a human to look at.
"""

from __future__ import annotations

import functools
import http.server
import math
import threading
from pathlib import Path

import pytest

from covbench.store import slug
from covbench import synthetic
from covbench.site import build

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">'
HOSTILE_DESC = "<script>window.__pwned=2</script> & <b>bold</b>"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    records = synthetic.synthetic_records(n_models=6, n_tasks=2, n_docs=32, families={"fig1": 5},
                                          names=[HOSTILE_NAME], descriptions={HOSTILE_NAME: HOSTILE_DESC})
    synthetic.write_store(root, records)
    bad = root / "synth-0-x" / "broken-model-x" / "run-99990101T000000000000Z-1-deadbeef.safetensors"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b'{"model": "broken"')
    out = tmp_path_factory.mktemp("site") / "site"
    assert build.main(["build", "--results", str(root), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def server(site: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: install Debian's chromium (`apt-get install -y chromium`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM),
                               args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


class Watch:
    """Console errors, page errors, dialogs and every request a page makes."""

    def __init__(self, page, base: str) -> None:
        self.base, self.errors, self.outside, self.requests, self.dialogs = base, [], [], [], []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

        def route(r):
            self.requests.append(r.request.url)
            if r.request.url.startswith(base):
                r.continue_()
            else:
                self.outside.append(r.request.url)
                r.abort()

        page.route("**/*", route)

    def clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.outside == [], self.outside
        assert self.dialogs == [], self.dialogs


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.watch = Watch(p, server)
    yield p
    context.close()


def _column_values(page, table, col: int) -> list[float]:
    raw = table.locator("tbody tr").evaluate_all(
        f"rows => rows.map(r => r.cells[{col}].getAttribute('data-v'))")
    return [math.nan if v == "" else float(v.replace("Infinity", "inf")) for v in raw]


def test_index_and_task_pages_load_clean_and_sort(page, server):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(server + "index.html")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "site-index.png"), full_page=False)
    assert page.locator("#store-errors li").count() == 1  # the corrupt file is listed, not fatal
    page.locator("article.task h3 a").first.click()
    page.wait_for_load_state("networkidle")
    assert "/tasks/" in page.url
    table = page.locator("table.board").first
    ce_col = 2
    table.locator("thead th").nth(ce_col).locator("button").click()
    asc = _column_values(page, table, ce_col)
    finite = [v for v in asc if not math.isnan(v)]
    assert finite == sorted(finite) and len(finite) >= 5
    table.locator("thead th").nth(ce_col).locator("button").click()
    desc = [v for v in _column_values(page, table, ce_col) if not math.isnan(v)]
    assert desc == sorted(desc, reverse=True)
    assert table.locator("thead th").nth(ce_col).get_attribute("aria-sort") == "descending"
    page.screenshot(path=str(ARTIFACTS / "site-task-sorted.png"))
    page.watch.clean()
    assert all(u.startswith(server) for u in page.watch.requests)


def test_permalink_lands_on_row(page, server):
    row_id = slug("fig1/step-3000")
    task_page = server + f"tasks/{slug('synth-1')}.html"
    page.goto(task_page)
    page.locator(f"#{row_id} a.anchor").click()
    assert page.url.endswith("#" + row_id)
    assert page.evaluate("document.querySelector(':target').id") == row_id
    row = page.locator(f"#{row_id}")
    assert row.is_visible() and row.bounding_box()["y"] < 900
    # Follow the model link, then the model page's task link back to the task table's row.
    row.locator("td").nth(1).locator("a").first.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"models/{slug('fig1/step-3000')}.html")
    page.screenshot(path=str(ARTIFACTS / "site-model.png"), full_page=True)
    page.locator(f"#task-{slug('synth-1')} h2 a").nth(1).click()
    page.wait_for_url(f"**/tasks/{slug('synth-1')}.html#{row_id}")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.querySelector(':target').id") == row_id
    page.goto(server + f"families/{slug('fig1')}.html")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "site-family.png"), full_page=True)
    assert page.locator("figure.plot img").evaluate("i => i.complete && i.naturalWidth > 0")
    assert page.locator(".pick.tour").count() >= 2
    page.watch.clean()


def test_payloads_in_names_are_text(page, server):
    page.goto(server + f"models/{slug(HOSTILE_NAME)}.html")
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == HOSTILE_NAME
    assert page.locator("p.description").inner_text() == HOSTILE_DESC
    for task in ("synth-0", "synth-1"):
        page.goto(server + f"tasks/{slug(task)}.html")
        page.wait_for_load_state("networkidle")
        assert page.get_by_text(HOSTILE_NAME, exact=True).count() == 1
    assert page.evaluate("window.__pwned === undefined")
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("main script").count() == 0
    page.screenshot(path=str(ARTIFACTS / "site-hostile.png"))
    page.watch.clean()
