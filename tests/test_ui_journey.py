"""The dashboard end to end in real headless Chromium, as one visit: experiments -> runs
table -> filter -> sort -> a run page whose metric chart renders -> an artifact preview
-> compare two runs -> a model page with aliases -> a pipeline graph -> the monitoring
page. No console error, failed request or dialog on any page; a screenshot of each."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser_helpers import chromium
from serve_helpers import KILN, server_env, serving
from test_ui_browser import Tab
from ui_helpers import MODEL, fill

pytestmark = pytest.mark.slow


def test_one_visit_through_every_area_of_the_dashboard(tmp_path: Path) -> None:
    filled = fill(tmp_path / "store")
    from kiln.tracking import TrackingClient

    client = TrackingClient(filled.store)
    training = client.create_run(experiment="ui-pages", name="training")
    client.log_metrics(training, [("loss", 1.0 / (1 + step), step, None) for step in range(50)])
    client.end_run(training)
    client.flush()
    shots = tmp_path / "shots"
    shots.mkdir()
    cmd = [KILN, "--store", filled.store, "ui"]
    with serving(cmd, server_env(tmp_path)) as (url, _proc), chromium() as browser:
        tab = Tab(browser, url, shots)
        page = tab.page

        tab.go("/experiments")
        tab.shot("1-experiments")
        page.click("#experiments >> text=ui-models")
        page.wait_for_url("**/runs?experiment=ui-models")
        assert page.locator("#runs tbody tr").count() == 2

        page.fill("#filter", "params.C > 0.5")
        page.click("#filter-form button[type=submit]")
        page.wait_for_url("**filter=params.C*")
        assert page.locator("#runs tbody tr").count() == 1
        tab.shot("2-filtered")

        tab.go("/runs?experiment=monitoring")
        page.click("th a[data-column='metrics.alerts']")
        page.wait_for_url("**order=metrics.alerts*")
        assert page.locator("#runs tbody tr").count() == 2
        tab.shot("3-sorted")
        table = page.url

        tab.go(f"/runs/{training}")
        tab.charts_drawn(1)
        assert page.locator(".plot").count() == 1  # the loss's 50 steps
        assert page.locator(".plot[data-metric=loss] .main-svg").count() >= 1
        tab.shot("4-run")

        page.goto(table)
        page.locator("a.run-link").first.click()
        page.wait_for_url("**/runs/*")
        assert page.locator(".plot").count() == 0  # single values: in the table only
        page.click("#artifacts >> text=monitor.html")
        page.wait_for_url("**/artifacts/monitor.html")
        page.frame_locator("iframe.report").locator("h1").first.wait_for(timeout=30_000)
        tab.shot("5-artifact")

        page.goto(table)
        boxes = page.locator("#runs tbody input[type=checkbox]")
        boxes.nth(0).check()
        boxes.nth(1).check()
        page.click("#compare-form button[type=submit]")
        page.wait_for_url("**/compare?runs=*")
        tab.charts_drawn(1)
        tab.shot("6-compare")

        tab.go(f"/models/{MODEL}")
        aliases = page.locator("table.aliases td.alias").all_inner_texts()
        assert aliases == ["candidate", "production"]
        tab.shot("7-model")

        tab.go(f"/pipelines/{filled.pipeline_run}")
        assert page.locator("svg.dag g.node").count() >= 2
        tab.shot("8-pipeline")

        tab.go(f"/monitoring/{MODEL}")
        page.wait_for_selector("#drift-heatmap .main-svg", timeout=30_000)
        tab.shot("9-monitoring")

        assert tab.problems == []
        assert tab.dialogs == []
    assert len(list(shots.glob("*.png"))) == 9
