"""The dashboard's core journey in real headless Chromium: experiments -> runs table ->
filter -> sort -> run page with rendered charts -> compare; no console errors anywhere,
user text inert; screenshots saved under the test's tmp folder."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import chromium
from kiln.ui._pages_runs import series_url
from serve_helpers import KILN, server_env, serving
from test_ui_runs import make_store
from ui_store import XSS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any], Any]]:
    folder = tmp_path_factory.mktemp("ui-browser")
    store, ids = make_store(folder)
    with (
        serving([KILN, "--store", store, "ui"], server_env(folder)) as (url, _proc),
        chromium() as browser,
    ):
        yield url, ids, browser


class Tab:
    """A browser page that collects console errors, page errors, failed requests and
    dialogs (an alert() would mean a script got through)."""

    def __init__(self, browser: Any, base: str, shots: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.base = base
        self.shots = shots
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.on(
            "console",
            lambda m: self.problems.append(f"{m.type}: {m.text}") if m.type == "error" else None,
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path, wait_until="load", timeout=30_000)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def charts_drawn(self, at_least: int = 1) -> int:
        self.page.wait_for_selector(".plot .main-svg", timeout=15_000)
        self.page.wait_for_function(
            f"document.querySelectorAll('.plot .main-svg').length >= {at_least}", timeout=15_000
        )
        return int(self.page.evaluate("document.querySelectorAll('.plot .main-svg').length"))


def test_experiments_to_runs_to_filter_to_sort_to_run_to_compare(site: Any, tmp_path: Path) -> None:
    url, _ids, browser = site
    tab = Tab(browser, url, tmp_path)
    page = tab.page
    tab.go("/experiments?metric=acc")
    assert page.locator("#experiments tbody tr").count() == 4
    tab.shot("experiments")
    page.click("#experiments >> text=churn")
    page.wait_for_url("**/runs?experiment=churn")
    assert page.locator("#runs tbody tr").count() == 13

    page.fill("#filter", "params.model = 'rf'")
    page.click("#filter-form button[type=submit]")
    page.wait_for_url("**filter=params.model*")
    assert page.locator("#runs tbody tr").count() == 4
    tab.shot("runs-filtered")

    page.click("th a[data-column='metrics.acc']")
    page.wait_for_url("**order=metrics.acc+desc*")
    assert page.locator("#runs tbody tr").count() == 4  # the filter is kept
    shown = page.locator("#runs tbody tr td.num").all_inner_texts()
    assert shown  # sorted server-side; the order itself is checked over HTTP
    tab.shot("runs-sorted")
    table_url = page.url

    page.locator("a.run-link").first.click()
    page.wait_for_url("**/runs/*")
    assert tab.charts_drawn(2) >= 2  # acc and loss (and the system metric)
    page.fill("#smoothing", "0.6")
    page.dispatch_event("#smoothing", "input")
    page.check("#logy")
    page.wait_for_function(
        "document.querySelector('.plot[data-metric=loss]').layout.yaxis.type === 'log'"
    )
    tab.shot("run")

    page.goto(table_url)
    boxes = page.locator("#runs tbody input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#compare-form button[type=submit]")
    page.wait_for_url("**/compare?runs=*")
    tab.charts_drawn(1)
    traces = page.evaluate("document.querySelector('.plot[data-metric=acc]').data.length")
    assert traces == 2
    assert page.locator("tr.differs").count() >= 1
    tab.shot("compare")
    assert tab.problems == []


def test_sweep_trials_get_a_parallel_coordinates_plot(site: Any, tmp_path: Path) -> None:
    url, ids, browser = site
    tab = Tab(browser, url, tmp_path)
    tab.go(f"/runs/{ids['sweep']}")
    assert tab.page.locator("#children tbody tr").count() == 6
    tab.page.click("text=compare these runs")
    tab.page.wait_for_url("**/compare?runs=*")
    tab.page.wait_for_selector("#parallel .main-svg", timeout=15_000)
    tab.shot("sweep-compare")
    assert tab.problems == []


def test_a_long_series_charts_quickly_and_a_failed_run_shows_its_traceback(
    site: Any, tmp_path: Path
) -> None:
    url, ids, browser = site
    tab = Tab(browser, url, tmp_path)
    started = time.perf_counter()
    tab.go(f"/runs/{ids['long']}")
    tab.charts_drawn(1)
    took = time.perf_counter() - started
    drawn = tab.page.locator(".plot[data-metric=loss]")
    assert int(drawn.get_attribute("data-points") or 0) <= 2000
    assert took < 5  # 120,000 points, downsampled on the server
    # The page's head asks for each chart's series before any script runs; the request
    # kiln.js makes for it is that same one (each series fetched once, not twice).
    preloaded = tab.page.eval_on_selector_all(
        "link[rel=preload][as=fetch]", "links => links.map(l => l.href)"
    )
    asked = tab.page.evaluate(
        "performance.getEntriesByType('resource').map(r => r.name)"
        ".filter(n => n.includes('/metrics/'))"
    )
    assert preloaded
    assert sorted(asked) == sorted(preloaded)
    # ... for any key: the server writes the URL as JavaScript's encodeURIComponent does.
    keys = ["loss", "val/acc (top-1)!", "système/mém*", "a b/'c'~d"]
    in_js = tab.page.evaluate(
        "keys => keys.map(k => '/api/runs/r1/metrics/' + k.split('/')"
        ".map(encodeURIComponent).join('/') + '?points=1000')",
        keys,
    )
    assert in_js == [series_url("r1", k) for k in keys]
    tab.shot("long-run")
    tab.go(f"/runs/{ids['failed']}")
    assert "ValueError: the data had no rows" in tab.page.inner_text("#traceback")
    tab.shot("failed-run")
    assert tab.problems == []


def test_a_script_in_a_run_name_or_param_stays_text(site: Any, tmp_path: Path) -> None:
    url, ids, browser = site
    tab = Tab(browser, url, tmp_path)
    for path in (
        f"/runs/{ids['xss']}",
        "/runs?columns=params.note,tags.team&experiment=churn",
        f"/compare?runs={ids['xss']},{ids['churn'][0]}",
    ):
        tab.go(path)
        tab.page.wait_for_timeout(200)
        assert tab.page.get_by_text(XSS).first.is_visible(), path
    tab.shot("xss")
    assert tab.dialogs == []
    assert tab.problems == []
