"""The dashboard's artifacts, models, pipelines and monitoring pages, on a real `kiln ui`.

One store, filled through kiln's public API (tests/ui_helpers.py): a run with artifacts
of every previewed kind, a model with two versions and an alias moved twice, a pipeline
run twice (the second all cache hits), and two monitoring windows. One real server
answers every test of the module; one headless-Chromium test opens the pages.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from browser_helpers import chromium
from serve_helpers import KILN, server_env, serving
from ui_helpers import MARKUP, MODEL, PIPELINE_STEPS, Filled, fill

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Filled]]:
    tmp = tmp_path_factory.mktemp("ui-pages")
    filled = fill(tmp)
    with serving([KILN, "--store", filled.store, "ui"], server_env(tmp)) as (url, _proc):
        yield url, filled


def _get(url: str, path: str, status: int = 200) -> httpx.Response:
    answer = httpx.get(url + path, timeout=30)
    assert answer.status_code == status, (path, answer.status_code, answer.text[:500])
    return answer


# ------------------------------------------------------------------------ artifacts


def test_the_artifact_browser_lists_folders_with_sizes_and_files(ui: tuple[str, Filled]) -> None:
    url, f = ui
    top = _get(url, f"/runs/{f.run_id}/artifacts").text
    for folder in ("data/", "evaluation/", "notebook/", "plots/"):
        assert folder in top
    assert "summary.json" in top
    assert "notes.txt" in top
    listing = _get(url, f"/api/runs/{f.run_id}/artifacts?path=data").json()
    assert [x["name"] for x in listing["files"]] == ["frame.parquet", "head.csv"]
    assert all(x["size"] > 0 and len(x["sha256"]) == 64 for x in listing["files"])
    folders = {x["name"]: x for x in _get(url, f"/api/runs/{f.run_id}/artifacts").json()["folders"]}
    assert folders["data"]["files"] == 2
    assert folders["data"]["size"] == sum(x["size"] for x in listing["files"])
    _get(url, f"/runs/{f.run_id}/artifacts?path=nothing-here", 404)


def test_previews_show_each_kind(ui: tuple[str, Filled]) -> None:
    url, f = ui
    base = f"/runs/{f.run_id}/artifacts/"
    image = _get(url, base + "plots/curve.png").text
    assert f'<img src="/runs/{f.run_id}/raw/plots/curve.png"' in image
    csv = _get(url, base + "data/head.csv").text
    assert csv.count("<tr><td>") == 50
    assert "The first 50 rows" in csv
    parquet = _get(url, base + "data/frame.parquet").text
    assert "The first 50 of 120 rows" in parquet
    assert parquet.count("<tr><td>") == 50
    assert "&#34;nested&#34;: {\n    &#34;ok&#34;: true" in _get(url, base + "summary.json").text
    notebook = _get(url, base + "notebook/analysis.ipynb").text
    assert "hello from the notebook" in notebook
    assert "&lt;b&gt;title&lt;/b&gt;" in notebook  # markdown source shown, not rendered raw
    report = _get(url, base + "evaluation/report.html").text
    assert (
        f'<iframe class="report" src="/runs/{f.run_id}/raw/evaluation/report.html" '
        'sandbox="allow-scripts"' in report
    )
    assert "second line" in _get(url, base + "notes.txt").text
    executed = _get(url, f"/runs/{f.notebook_run}/artifacts/notebook/analysis.ipynb").text
    page = f"/runs/{f.notebook_run}/raw/notebook/analysis.html"
    assert f'<iframe class="report" src="{page}" sandbox="allow-scripts"' in executed
    assert "hello from a kernel 42" in _get(url, page).text


def test_raw_bytes_are_the_logged_ones_sandboxed(ui: tuple[str, Filled]) -> None:
    url, f = ui
    parquet = _get(url, f"/runs/{f.run_id}/raw/data/frame.parquet?download=1")
    assert pd.read_parquet(io.BytesIO(parquet.content)).shape == (120, 2)
    assert parquet.headers["content-disposition"].startswith("attachment")
    report = _get(url, f"/runs/{f.run_id}/raw/evaluation/report.html")
    assert report.headers["content-type"].startswith("text/html")
    assert report.headers["content-security-policy"] == "sandbox allow-scripts"
    assert report.headers["x-content-type-options"] == "nosniff"
    png = _get(url, f"/runs/{f.run_id}/raw/plots/curve.png")
    assert png.content.startswith(b"\x89PNG")
    assert png.headers["content-type"] == "image/png"
    assert png.headers["content-security-policy"] == "sandbox"


# ------------------------------------------------------------------------ models


def test_the_model_page_shows_versions_aliases_history_lineage_and_serving(
    ui: tuple[str, Filled],
) -> None:
    url, f = ui
    listing = _get(url, "/api/models").json()["models"]
    assert [m["name"] for m in listing] == [MODEL]
    assert listing[0]["aliases"] == {"candidate": 2, "production": 1}
    page = _get(url, f"/models/{MODEL}").text
    assert 'production</td><td><a href="#v1">v1</a>' in page
    data = _get(url, f"/api/models/{MODEL}").json()
    assert [v["version"] for v in data["versions"]] == [2, 1]
    moves = [
        (h["alias"], h["action"], h["old_version"], h["new_version"])
        for h in reversed(data["history"])
    ]
    assert moves == [
        ("production", "set", None, 1),
        ("production", "move", 1, 2),
        ("production", "move", 2, 1),
        ("candidate", "set", None, 2),
    ]
    v1 = data["versions"][1]
    assert v1["run_id"] == f.model_runs[0]
    assert v1["datasets"][0]["name"] == "breast_cancer"
    assert v1["datasets"][0]["shape"] == [569, 30]
    assert v1["report_url"] == f"/runs/{f.model_runs[0]}/artifacts/evaluation/report.html"
    assert v1["report_url"] in page
    assert [(s["uri"], s["status"]) for s in v1["served_by"]] == [
        (f"models:/{MODEL}@production", "finished")
    ]
    assert data["versions"][0]["served_by"] == []
    _get(url, "/models/no-such-model", 404)
    assert "no-such-model" in _get(url, "/api/models/no-such-model", 404).json()["error"]


# ------------------------------------------------------------------------ pipelines


def test_the_pipeline_graph_has_a_node_per_step_with_status_and_cache(
    ui: tuple[str, Filled],
) -> None:
    url, f = ui
    runs = _get(url, "/api/pipelines").json()["pipelines"]
    assert {r["run_id"] for r in runs} == {f.pipeline_run, f.cached_pipeline_run}
    newest = _get(url, "/api/pipelines?limit=1").json()
    assert [r["run_id"] for r in newest["pipelines"]] == [f.cached_pipeline_run]
    older = _get(url, f"/api/pipelines?limit=1&before={newest['before']}").json()
    assert [r["run_id"] for r in older["pipelines"]] == [f.pipeline_run]
    assert older["before"] is None
    first = _get(url, f"/api/pipelines/{f.pipeline_run}").json()
    assert sorted(s["name"] for s in first["steps"]) == sorted(PIPELINE_STEPS)
    assert {(e["from"], e["to"]) for e in first["edges"]} == {
        ("raw", "doubled"),
        ("raw", "other"),
        ("doubled", "total"),
        ("other", "after_other"),
        ("total", "after_other"),
        ("total", "<b>marked</b>"),
    }
    assert first["layers"][0] == ["raw"]
    assert first["layers"][2] == ["total"]
    assert first["crossings"] == 0
    assert {s["cache"] for s in first["steps"]} == {"miss"}
    cached = _get(url, f"/api/pipelines/{f.cached_pipeline_run}").json()
    assert {s["cache"] for s in cached["steps"]} == {"hit"}
    page = _get(url, f"/pipelines/{f.cached_pipeline_run}").text
    assert page.count('<g class="node status-finished cache-hit"') == len(PIPELINE_STEPS)
    for s in cached["steps"]:
        assert f'<a href="/runs/{s["run_id"]}"><g class="node' in page
    _get(url, f"/pipelines/{f.run_id}", 404)  # not a pipeline run


def test_the_layout_orders_layers_by_barycenter() -> None:
    from kiln.ui._pages_pipelines import layout

    # Listed so that the naive order crosses: a feeds y, b feeds x.
    nodes = ["a", "b", "x", "y", "z"]
    edges = [("a", "y"), ("b", "x"), ("x", "z"), ("y", "z")]
    naive = layout(nodes, [])
    naive.layers = [["a", "b"], ["x", "y"], ["z"]]
    assert naive.crossings(edges) == 1
    placed = layout(nodes, edges)
    assert placed.crossings(edges) == 0
    assert [len(layer) for layer in placed.layers] == [2, 2, 1]
    assert placed.position["z"][0] > placed.position["x"][0] > placed.position["a"][0]


def test_an_edge_over_several_layers_bends_around_the_nodes_between() -> None:
    from kiln.ui._pages_pipelines import layout

    # s -> m1 -> m2 -> t, and s -> t directly: the long edge passes layers 1 and 2.
    nodes = ["s", "m1", "m2", "t", "u"]
    edges = [("s", "m1"), ("m1", "m2"), ("m2", "t"), ("s", "t"), ("s", "u"), ("u", "t")]
    placed = layout(nodes, edges)
    assert [len(layer) for layer in placed.layers] == [1, 2, 1, 1]
    bends = placed.bends[("s", "t")]
    assert len(bends) == 2  # one virtual node in each layer between
    for layer, (x, y) in zip(placed.layers[1:3], bends, strict=True):
        for node in layer:
            nx, ny = placed.position[node]
            assert nx == x
            assert not ny <= y <= ny + 54  # it does not run through a node
    assert placed.crossings(edges) == 0


# ------------------------------------------------------------------------ monitoring


def test_monitoring_shows_drift_per_window_performance_quality_and_the_report(
    ui: tuple[str, Filled],
) -> None:
    url, f = ui
    models = _get(url, "/api/monitoring").json()["models"]
    assert [(m["model"], m["windows"], m["drifted"]) for m in models] == [(MODEL, 2, True)]
    data = _get(url, f"/api/monitoring/{MODEL}").json()
    assert [w["run_id"] for w in data["windows"]] == f.monitoring_runs
    assert len(set(data["drift"]["windows"])) == 2
    features = data["drift"]["features"]
    assert "mean radius" in features
    assert len(data["drift"]["z"]) == len(features)
    radius = data["drift"]["z"][features.index("mean radius")]
    assert radius[1] > radius[0]  # the shifted window drifted
    assert [w["drifted"] for w in data["windows"]] == [False, True]
    assert set(data["performance"]["series"]) >= {"accuracy", "f1"}
    assert all(0.5 < v <= 1 for v in data["performance"]["series"]["accuracy"])
    assert any(q["check"] == "out_of_range" for q in data["quality"])
    assert data["report_url"] == f"/runs/{f.monitoring_runs[1]}/raw/monitor.html"
    page = _get(url, f"/monitoring/{MODEL}").text
    assert '<div class="plot" id="drift-heatmap"' in page
    assert f'src="{data["report_url"]}" sandbox="allow-scripts"' in page
    assert "out_of_range" in page
    _get(url, "/monitoring/no-such-model", 404)


# ------------------------------------------------------------------------ escaping


def test_markup_in_names_is_rendered_inert(ui: tuple[str, Filled]) -> None:
    url, f = ui
    pages = [
        f"/runs/{f.run_id}/artifacts",
        f"/runs/{f.run_id}/artifacts?path=%3Cscript%3Ealert(1)%3C",
        f"/runs/{f.run_id}/artifacts/{MARKUP}.txt",
        "/models",
        f"/models/{MODEL}",
        "/pipelines",
        f"/pipelines/{f.pipeline_run}",
    ]
    for path in pages:
        text = _get(url, path).text
        assert "<script>alert" not in text, path
        assert "<b>marked" not in text, path
    assert "&lt;b&gt;marked&lt;/b&gt;" in _get(url, f"/pipelines/{f.pipeline_run}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in _get(url, "/pipelines").text


# ------------------------------------------------------------------------ browser


def _open(browser: Any, url: str, problems: list[str]) -> Any:
    page = browser.new_page()
    page.on(
        "console",
        lambda m: problems.append(f"{url}: {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"{url}: pageerror: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"{url}: request failed: {r.url}"))
    page.goto(url, wait_until="load", timeout=60_000)
    return page


def test_the_pages_render_in_chromium(ui: tuple[str, Filled], tmp_path: Path) -> None:
    url, f = ui
    problems: list[str] = []
    with chromium() as browser:
        page = _open(browser, f"{url}/models/{MODEL}", problems)
        assert page.locator("table.aliases td.alias").all_inner_texts() == [
            "candidate",
            "production",
        ]
        page.screenshot(path=str(tmp_path / "model.png"), full_page=True)

        page = _open(browser, f"{url}/pipelines/{f.pipeline_run}", problems)
        assert page.locator("svg.dag g.node").count() == len(PIPELINE_STEPS)
        assert page.locator("svg.dag path.edge").count() == 6
        page.screenshot(path=str(tmp_path / "pipeline.png"), full_page=True)

        page = _open(browser, f"{url}/monitoring/{MODEL}", problems)
        page.wait_for_selector("#drift-heatmap .main-svg", timeout=30_000)
        assert page.locator(".plot .main-svg").count() >= 2  # heatmap and performance
        assert page.locator("#drift-heatmap .heatmaplayer image, #drift-heatmap .hm").count() >= 1
        page.screenshot(path=str(tmp_path / "monitoring.png"), full_page=True)

        page = _open(browser, f"{url}/runs/{f.run_id}/artifacts/evaluation/report.html", problems)
        frame = page.frame_locator("iframe.report")
        heading = frame.locator("h1#r")
        heading.wait_for(timeout=30_000)
        assert heading.get_attribute("data-ran") == "yes"  # its script ran, sandboxed
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

        page = _open(browser, f"{url}/runs/{f.run_id}/artifacts/plots/curve.png", problems)
        assert page.eval_on_selector(".preview img", "img => img.naturalWidth") > 0
        page.screenshot(path=str(tmp_path / "image.png"), full_page=True)
    assert problems == []
    assert len(list(tmp_path.glob("*.png"))) == 5
