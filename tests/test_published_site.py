"""The published site in a real browser: Debian's Chromium driven by Playwright, offline.

`python -m harness publish` turns the suite's ci-profile results (the asv run shared with
tests/test_asv_suite.py) into results/html; a server on 127.0.0.1 serves it; every request
that would leave 127.0.0.1 is aborted and counted, so a page that needs a CDN fails here as it
would on an air-gapped cluster. Screenshots go to each test's temporary directory, and also to
$HARNESS_SCREENSHOT_DIR when set (the README's picture comes from there).

The report's own tests: every interactive figure draws and answers a hover of the mouse, the
results table sorts and filters, and on a fixture with known figures (tests/report_fixture.py)
the answer table names the right fastest strategy. The report's size and load time are
printed (pytest -s), never asserted.

Without Chromium the module is skipped with the reason; `.ci/run` installs it.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from report_fixture import known_suite, write_suite
from suite_asv import FAMILIES

CHROMIUM = os.environ.get("HARNESS_CHROMIUM") or shutil.which("chromium") \
    or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install "
                       "chromium; .ci/run does) or in $HARNESS_CHROMIUM"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                               "(pip install -e '.[test]')")

# As root, in a container, with no network: no sandbox, no GPU, none of Chromium's own calls
# home (each would be a refused connection).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ALL_FAMILIES = (*FAMILIES, "machine")
# JavaScript: how many pixels of the page's first canvas are painted (alpha > 0).
PAINTED_PIXELS = """() => {
    const canvas = document.querySelector('canvas');
    if (!canvas || !canvas.width || !canvas.height) return 0;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
    return painted;
}"""


# JavaScript: the centre (viewport pixels) of a figure's first visible mark a mouse can hover:
# a marker or a bar (.point) or a heatmap cell's label; null when there is none.
HOVER_TARGET = """div => {
    const area = div.querySelector('.nsewdrag').getBoundingClientRect();  // the plot area
    const marks = div.querySelectorAll('.scatterlayer .point, .barlayer .point, '
                                       + '.heatmaplayer text');
    for (const mark of marks) {
        if (mark.tagName === 'text' && !mark.textContent.trim()) continue;  // an empty cell
        // A bar on a log axis reaches far below the area: only its visible part counts.
        const box = mark.getBoundingClientRect();
        const left = Math.max(box.left, area.left), right = Math.min(box.right, area.right);
        const top = Math.max(box.top, area.top), bottom = Math.min(box.bottom, area.bottom);
        if (right - left >= 1 && bottom - top >= 1)
            return [(left + right) / 2, (top + bottom) / 2];
    }
    return null;
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test's output is for failures
        pass


@pytest.fixture(scope="module")
def site(suite_ci_run) -> Path:
    """`python -m harness publish` on the ci run; the html directory."""
    _, _, run_dir = suite_ci_run
    proc = subprocess.run([sys.executable, "-m", "harness", "publish", "--config",
                           str(run_dir / "asv.conf.json")], capture_output=True, text=True,
                          check=False, timeout=600, cwd=run_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "asv preview" in proc.stdout
    return run_dir / "html"


@contextlib.contextmanager
def _served(directory: Path):
    """A static server of ``directory`` on 127.0.0.1; yields its base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def base_url(site):
    with _served(site) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Watch:
    """What a page did wrong: console errors, uncaught exceptions, requests that left
    127.0.0.1 (aborted), responses with an error status."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        # The UI probes samples/<graph>.json for a per-sample distribution panel; asv publish
        # writes no such files and the UI says "No samples on this revision". That 404, and
        # the console line Chromium logs for it, are the only misses allowed.
        optional = [f for f in self.failed if f.startswith("404 ") and "/samples/" in f]
        missing_resource = "Failed to load resource: the server responded with a status of 404"
        console = [m for m in self.console_errors
                   if not (optional and m.startswith(missing_resource))]
        assert console == [], self.console_errors
        assert self.page_errors == [], self.page_errors
        assert self.external == [], self.external
        assert [f for f in self.failed if f not in optional] == [], self.failed
        assert self.console_errors.count(missing_resource + " (File not found)") <= len(optional)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    watch = Watch()

    def route(route):
        parts = urlsplit(route.request.url)
        if parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1":
            route.continue_()
        else:
            watch.external.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    browser_page = context.new_page()
    browser_page.on("console", lambda message: message.type == "error"
                    and watch.console_errors.append(message.text))
    browser_page.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    browser_page.on("response", lambda response: response.status >= 400
                    and watch.failed.append(f"{response.status} {response.url}"))
    yield browser_page, watch
    context.close()


def _screenshot(browser_page, tmp_path: Path, name: str, full_page: bool = False) -> Path:
    path = tmp_path / f"{name}.png"
    browser_page.screenshot(path=str(path), full_page=full_page)
    _keep(path)
    assert path.stat().st_size > 10_000  # a rendered page, not an empty image
    return path


def _keep(path: Path) -> None:
    """Copy a screenshot to $HARNESS_SCREENSHOT_DIR when set."""
    keep = os.environ.get("HARNESS_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def _open_explore(browser_page, base_url: str) -> None:
    browser_page.goto(base_url)
    browser_page.wait_for_load_state("networkidle")
    browser_page.get_by_text("Explore", exact=True).first.click()
    browser_page.wait_for_selector("text=dense.DenseMatvec.time_matvec")


def test_index_lists_every_benchmark_of_every_family(page, base_url, suite_ci_run, tmp_path):
    browser_page, watch = page
    frame, _, _ = suite_ci_run
    _open_explore(browser_page, base_url)
    listed = browser_page.inner_text("body")
    _screenshot(browser_page, tmp_path, "index-explore")

    benchmarks = sorted(frame["benchmark"].unique())
    missing = [name for name in benchmarks if name not in listed]
    assert missing == []
    for family in ALL_FAMILIES:
        assert any(name.startswith(family + ".") for name in benchmarks), family
    watch.assert_clean()


@pytest.mark.parametrize("family", FAMILIES)
def test_opening_a_benchmark_draws_its_graph(page, base_url, suite_ci_run, family, tmp_path):
    browser_page, watch = page
    frame, _, _ = suite_ci_run
    name = next(b for b in sorted(frame["benchmark"].unique())
                if b.startswith(family + ".") and b.endswith(".time_matvec"))
    _open_explore(browser_page, base_url)
    browser_page.get_by_text(name, exact=True).first.click()
    browser_page.wait_for_function(f"({PAINTED_PIXELS})() > 1000", timeout=15_000)
    _screenshot(browser_page, tmp_path, f"graph-{family}")

    assert f"bench={name}" in browser_page.url
    assert browser_page.evaluate(PAINTED_PIXELS) > 1000
    # The graph's legend names the combinations that have results: its data was loaded.
    text = browser_page.inner_text("body")
    ok = frame[(frame["benchmark"] == name) & (frame["status"] == "ok")]
    strategies = {params["strategy"] for params in ok["params"]}
    assert strategies and all(f"strategy='{s}'" in text for s in strategies), strategies
    watch.assert_clean()


def test_report_shows_its_tables_and_its_plots_load(page, base_url, tmp_path):
    browser_page, watch = page
    browser_page.goto(base_url + "report/index.html")
    browser_page.wait_for_load_state("networkidle")
    _screenshot(browser_page, tmp_path, "report")
    _screenshot(browser_page, tmp_path, "report-full", full_page=True)

    headings = browser_page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
    for family in ALL_FAMILIES:
        assert f"Family {family}" in headings
    assert browser_page.locator("table").count() >= len(ALL_FAMILIES)
    assert browser_page.locator("table tbody tr").count() > 50
    images = browser_page.eval_on_selector_all(
        "img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])")
    assert len(images) >= 2, images
    assert all(complete and width > 100 for _, complete, width in images), images
    watch.assert_clean()


def _hover_every_figure(browser_page) -> list[str]:
    """Scroll to each figure, wait until it is drawn, move the mouse onto its first mark and
    wait for Plotly's hover label; the figures' titles, in page order."""
    titles = []
    plots = browser_page.locator("div.plot")
    for k in range(plots.count()):
        plot = plots.nth(k)
        plot.scroll_into_view_if_needed()
        browser_page.wait_for_selector(f"#{plot.get_attribute('id')}[data-drawn=yes]",
                                       timeout=30_000)
        assert plot.locator(".main-svg").count() >= 1
        target = plot.evaluate(HOVER_TARGET)
        assert target is not None, plot.get_attribute("aria-label")
        browser_page.mouse.move(*target)
        plot.locator(".hoverlayer .hovertext").first.wait_for(timeout=10_000)
        assert plot.locator(".hoverlayer .hovertext").first.text_content().strip()
        titles.append(plot.get_attribute("aria-label"))
        browser_page.mouse.move(0, 0)
    return titles


def _load_report(browser_page, url: str) -> dict:
    browser_page.goto(url)
    browser_page.wait_for_load_state("load")
    return browser_page.evaluate("""() => {
        const n = performance.getEntriesByType('navigation')[0];
        const paint = performance.getEntriesByName('first-contentful-paint')[0];
        return {bytes: n.transferSize || n.encodedBodySize, load_ms: n.loadEventEnd,
                first_paint_ms: paint ? paint.startTime : null};
    }""")


def test_every_report_figure_draws_and_answers_hover(page, base_url, site, tmp_path):
    browser_page, watch = page
    timing = _load_report(browser_page, base_url + "report/index.html")
    size = (site / "report" / "index.html").stat().st_size
    print(f"\nreport: {size} bytes, load event after {timing['load_ms']:.0f} ms, first "
          f"paint after {timing['first_paint_ms']} ms")
    titles = _hover_every_figure(browser_page)
    # The ci results hold every kind but history (one commit): Pareto, ratio, heatmap, cold
    # against warm, roofline, memory split.
    for kind in ("Time against memory", "Time as a multiple of the in-RAM product",
                 "HDF5 chunk shape x chunk cache", "Cold page cache against warm",
                 "Bandwidth against the roofline", "Memory split"):
        assert any(title.startswith(kind) for title in titles), (kind, titles)
    plot = browser_page.locator("div.plot").first
    plot.scroll_into_view_if_needed()
    browser_page.mouse.move(*plot.evaluate(HOVER_TARGET))
    plot.locator(".hoverlayer .hovertext").first.wait_for()
    path = tmp_path / "report-figure.png"
    plot.screenshot(path=str(path))
    _keep(path)
    watch.assert_clean()


def test_the_results_table_sorts_and_filters(page, base_url):
    browser_page, watch = page
    _load_report(browser_page, base_url + "report/index.html")
    rows = browser_page.locator("#results-table tbody tr")
    total = rows.count()
    assert total > 50
    value_header = browser_page.locator("#results-table th", has_text="value").first
    column = "#results-table tbody tr td:nth-child(3)"
    keys = "els => els.map(e => parseFloat(e.getAttribute('data-sort')))"
    value_header.click()
    ascending = browser_page.eval_on_selector_all(column, keys)
    assert ascending == sorted(ascending) and ascending[0] < ascending[-1]
    value_header.click()
    assert browser_page.eval_on_selector_all(column, keys) == sorted(ascending, reverse=True)
    assert value_header.get_attribute("aria-sort") == "descending"

    browser_page.fill("#results-filter", "hdf5 time_matvec")
    visible = browser_page.eval_on_selector_all(
        "#results-table tbody tr:not([hidden])", "els => els.map(e => e.textContent)")
    assert 0 < len(visible) < total
    assert all("hdf5" in text and "time_matvec" in text for text in visible)
    assert browser_page.inner_text("#results-count") == f"{len(visible)} of {total} rows"
    browser_page.fill("#results-filter", "")
    assert browser_page.locator("#results-table tbody tr:not([hidden])").count() == total
    watch.assert_clean()


def test_the_answer_names_the_known_fastest_strategy(page, tmp_path):
    from harness.reporting.report import write_report
    from harness.reporting.results import load

    browser_page, watch = page
    write_suite(tmp_path / "results", known_suite())
    write_report(load(tmp_path / "results"), tmp_path / "html" / "index.html")
    with _served(tmp_path / "html") as url:
        _load_report(browser_page, url + "index.html")
        fastest = browser_page.eval_on_selector_all("#answer ~ .answers section", """
            sections => Object.fromEntries(sections.map(s => [
                s.querySelector('h3').textContent,
                Array.from(s.querySelectorAll('tbody tr')).map(
                    r => [r.cells[0].textContent, r.cells[1].textContent])]))""")
        assert fastest["100x1000 float32"][0] == ["fastest", "dense"]
        assert fastest["200x1000 float32"] == [
            ["fastest", "memmap-blocked"],
            ["within 1/10 of the matrix (78.1 KiB), least memory", "memmap-rows"]]
        reading = browser_page.locator(".answers .reading").nth(1).inner_text()
        assert reading.startswith("Fastest: memmap-blocked (12.0 ms, 0.8 x RAM).")
        assert len(_hover_every_figure(browser_page)) == 5
    watch.assert_clean()


def test_the_index_and_the_report_link_to_each_other(page, base_url):
    browser_page, watch = page
    browser_page.goto(base_url)
    browser_page.wait_for_load_state("networkidle")
    browser_page.click("#harness-report-link")
    browser_page.wait_for_load_state("networkidle")
    assert browser_page.url == base_url + "report/index.html"
    assert browser_page.inner_text("h1") == "Benchmark report"

    browser_page.get_by_text("Benchmark graphs (asv site)").click()
    browser_page.wait_for_selector("text=benchmarks")
    assert browser_page.url.startswith(base_url + "index.html")
    assert browser_page.locator("#root > *").count() >= 1
    watch.assert_clean()
