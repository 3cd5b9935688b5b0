"""The published site in a real browser: Debian's Chromium driven by Playwright, offline.

`python -m harness publish` turns the suite's ci-profile results (the asv run shared with
tests/test_asv_suite.py) into results/html; a server on 127.0.0.1 serves it; every request
that would leave 127.0.0.1 is aborted and counted, so a page that needs a CDN fails here as it
would on an air-gapped cluster. Screenshots go to each test's temporary directory, and also to
$HARNESS_SCREENSHOT_DIR when set (the README's picture comes from there).

Without Chromium the module is skipped with the reason; `.ci/run` installs it.
"""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def base_url(site):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


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
    keep = os.environ.get("HARNESS_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    assert path.stat().st_size > 10_000  # a rendered page, not an empty image
    return path


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
