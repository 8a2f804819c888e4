"""The dashboard's core pages over HTTP, against a real `kiln ui` process: experiments,
the runs table (filter, sort, columns, keyset pages, CSV), a run, downsampled metric
series, compare; user text escaped everywhere."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_helpers import KILN, server_env, serving
from ui_store import N_POINTS, XSS

pytestmark = pytest.mark.slow


def make_store(folder: Path) -> tuple[str, dict[str, Any]]:
    """A store populated by `ui_store.populate` in a process of its own."""
    store = f"sqlite:///{folder / 'store' / 'kiln.db'}"
    (folder / "store").mkdir(parents=True)
    code = (
        "import json, pathlib, sys; from ui_store import populate; "
        "print(json.dumps(populate(sys.argv[1], pathlib.Path(sys.argv[2]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, store, str(folder)],
        env=server_env(folder),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return store, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("ui-runs")
    store, ids = make_store(folder)
    with (
        serving([KILN, "--store", store, "ui"], server_env(folder)) as (url, _proc),
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield http, ids


def test_experiments_list_run_counts_activity_and_the_best_value_of_a_metric(dash: Any) -> None:
    http, _ids = dash
    data = http.get("/api/experiments", params={"metric": "acc"}).json()
    by_name = {e["name"]: e for e in data["experiments"]}
    assert set(by_name) == {"churn", "fraud", "tuning", "toy"}
    assert by_name["churn"]["runs"] == 13  # top-level runs only
    assert by_name["tuning"]["runs"] == 1  # the sweep run, not its trials
    assert data["direction"] == "max"
    assert by_name["churn"]["best"] == pytest.approx(0.5 + 0.04 * 11 + 0.04, abs=2e-3)
    lowest = http.get("/api/experiments", params={"metric": "loss"}).json()
    assert lowest["direction"] == "min"
    assert {e["name"]: e["best"] for e in lowest["experiments"]}["churn"] == pytest.approx(1 / 16)
    page = http.get("/experiments", params={"metric": "acc"})
    assert page.status_code == 200
    assert "/runs?experiment=churn" in page.text
    assert all(e["last_activity"] for e in data["experiments"])
    bad = http.get("/api/experiments", params={"metric": "acc", "direction": "up"})
    assert bad.status_code == 400
    assert "direction is 'max' or 'min'" in bad.json()["error"]


def test_the_runs_table_filters_sorts_and_hides_child_runs(dash: Any) -> None:
    http, ids = dash
    everything = http.get("/api/runs", params={"limit": 1000}).json()
    names = {r["name"] for r in everything["runs"]}
    assert "trial 0" not in names  # sweep trials are child runs
    assert {"churn-00", "broken", "long", f"xss {XSS}"} <= names
    with_children = http.get("/api/runs", params={"limit": 1000, "children": 1}).json()
    assert {r["id"] for r in with_children["runs"]} >= set(ids["trials"])

    query = {"experiment": "churn", "filter": "params.model = 'rf'", "order": "metrics.acc desc"}
    data = http.get("/api/runs", params=query).json()
    accs = [r["values"]["metrics.acc"] for r in data["runs"]]
    assert len(accs) == 4
    assert accs == sorted(accs, reverse=True)
    assert {"params.alpha", "params.model", "metrics.acc", "metrics.loss"} <= set(data["columns"])
    assert not any(c.startswith("metrics.system/") for c in data["columns"])

    page = http.get("/runs", params=query)
    assert page.status_code == 200
    assert page.text.count('class="run-link"') == 4
    assert "metrics.acc ▼" in page.text  # the header says how the table is sorted

    chosen = http.get(
        "/api/runs", params={**query, "columns": "params.alpha,tags.team", "order": ""}
    ).json()
    assert chosen["columns"] == ["params.alpha", "tags.team"]
    assert {r["values"]["tags.team"] for r in chosen["runs"]} == {"core", "growth"}


def test_a_bad_filter_is_a_400_that_says_where_and_the_page_still_renders(dash: Any) -> None:
    http, _ids = dash
    broken = "metrics.acc > and params.model = 'rf'"
    answer = http.get("/api/runs", params={"filter": broken})
    assert answer.status_code == 400
    assert "(at position 14)" in answer.json()["error"]
    page = http.get("/runs", params={"filter": broken})
    assert page.status_code == 400
    assert 'id="filter-error"' in page.text
    assert "at position 14" in page.text
    assert 'value="metrics.acc &gt; and params.model = &#39;rf&#39;"' in page.text  # kept
    assert 'id="runs"' in page.text
    typo = http.get("/runs", params={"filter": "metrics.acu > 0.5"})
    assert typo.status_code == 200
    assert (
        "did you mean &#39;metrics.acc&#39;" in typo.text
    )  # the unknown key, with the closest one


def test_keyset_pages_walk_the_whole_ordering_without_repeats(dash: Any) -> None:
    http, _ids = dash
    for order in ("metrics.acc desc", "params.alpha", ""):
        query = {"order": order, "children": "1", "columns": "metrics.acc"}
        whole = [
            r["id"] for r in http.get("/api/runs", params={**query, "limit": 1000}).json()["runs"]
        ]
        seen: list[str] = []
        url: str | None = "/api/runs"
        params: dict[str, Any] | None = {**query, "limit": 4}
        while url:
            data = http.get(url, params=params).json()
            seen += [r["id"] for r in data["runs"]]
            url, params = data["next_url"], None
        assert seen == whole, order
        assert len(whole) > 20
    first = http.get("/runs", params={"limit": 5})
    assert 'id="next"' in first.text
    stale = http.get("/api/runs", params={"limit": 5, "after": "not-a-cursor"})
    assert stale.status_code == 400
    assert "is not a page cursor" in stale.json()["error"]


def test_the_csv_is_the_current_view_every_page_of_it(dash: Any) -> None:
    http, _ids = dash
    query = {"experiment": "churn", "order": "params.alpha", "columns": "params.alpha,metrics.acc"}
    got = http.get("/runs.csv", params=query)
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    table = http.get("/api/runs", params={**query, "limit": 1000}).json()["runs"]
    assert [r["run_id"] for r in rows] == [r["id"] for r in table]
    assert list(rows[0]) == [
        "run_id", "name", "experiment", "status", "start_time", "duration",
        "params.alpha", "metrics.acc",
    ]  # fmt: skip
    xss = next(r for r in rows if r["name"] == f"xss {XSS}")
    assert xss["params.alpha"] == "0.99"


def test_the_run_page_shows_a_failure_with_its_traceback(dash: Any) -> None:
    http, ids = dash
    page = http.get(f"/runs/{ids['failed']}")
    assert page.status_code == 200
    assert 'id="traceback"' in page.text
    assert "ValueError: the data had no rows" in page.text
    assert "status-failed" in page.text
    data = http.get(f"/api/runs/{ids['failed']}").json()
    assert data["run"]["status"] == "failed"
    assert "Traceback (most recent call last)" in data["run"]["error"]
    assert http.get("/runs/ffffffffffffffffffffffffffffffff").status_code == 404
    assert http.get("/api/runs/ffffffffffffffffffffffffffffffff").status_code == 404


def test_the_run_page_lists_params_charts_system_metrics_and_artifacts(dash: Any) -> None:
    http, ids = dash
    run_id = ids["churn"][3]
    data = http.get(f"/api/runs/{run_id}").json()
    assert data["metrics"] == ["acc", "loss"]
    assert data["system_metrics"] == ["system/cpu_percent"]
    page = http.get(f"/runs/{run_id}").text
    assert 'data-metric="acc"' in page
    assert 'class="plot system" data-metric="system/cpu_percent"' in page
    # A run's line charts use plotly.js's basic bundle, shipped in kiln (no CDN).
    assert "/static/plotly-basic.min.js" in page
    bundle = http.get("/static/plotly-basic.min.js")
    assert bundle.status_code == 200
    assert "plotly.js (basic - minified)" in bundle.text[:200]
    xss = http.get(f"/api/runs/{ids['xss']}").json()
    assert [a["url"] for a in xss["artifacts"]] == [f"/runs/{ids['xss']}/artifacts/report.txt"]
    assert f'href="/runs/{ids["xss"]}/artifacts/report.txt"' in http.get(f"/runs/{ids['xss']}").text


def test_a_sweep_page_lists_its_trials_best_first(dash: Any) -> None:
    http, ids = dash
    data = http.get(f"/api/runs/{ids['sweep']}").json()
    children = data["children"]
    assert children["kind"] == "sweep"
    assert children["objective"] == "acc"
    scores = [c["objective"] for c in children["runs"]]
    assert len(scores) == 6
    assert scores == sorted(scores, reverse=True)
    assert children["runs"][0]["params"] == {"alpha": "0.3", "depth": "5"}
    assert "Sweep trials" in http.get(f"/runs/{ids['sweep']}").text


def test_a_pipeline_page_lists_its_steps_with_their_cache_status(dash: Any) -> None:
    http, ids = dash
    data = http.get(f"/api/runs/{ids['pipeline']}").json()
    steps = data["children"]
    assert steps["kind"] == "pipeline"
    assert [(s["step"], s["cache"]) for s in steps["runs"]] == [("load", "hit"), ("train", "hit")]
    assert ["Pipeline graph", f"/pipelines/{ids['pipeline']}"] in data["links"]
    page = http.get(f"/runs/{ids['pipeline']}").text
    assert "Pipeline steps" in page
    assert 'class="cache-hit"' in page
    table = http.get("/api/runs", params={"experiment": "toy", "columns": "metrics.train.score"})
    assert [r["values"]["metrics.train.score"] for r in table.json()["runs"]] == [3.0, 3.0]


def test_a_long_metric_is_downsampled_with_its_spike_kept(dash: Any) -> None:
    http, ids = dash
    started = time.perf_counter()
    got = http.get(f"/api/runs/{ids['long']}/metrics/loss", params={"points": 300})
    took = time.perf_counter() - started
    assert got.status_code == 200
    data = got.json()
    assert data["total"] == N_POINTS
    assert data["downsampled"] is True
    assert 300 <= data["points"] <= 600  # min and max of each bucket, at most
    assert data["step"] == sorted(data["step"])
    assert max(data["value"]) == 100.0  # the one spike survives
    assert data["step"][data["value"].index(100.0)] == N_POINTS // 3
    assert data["value"][0] == pytest.approx(1.0)
    assert took < 1.0
    short = http.get(f"/api/runs/{ids['churn'][0]}/metrics/acc").json()
    assert short["total"] == short["points"] == 5  # a short series comes back whole
    assert short["step"] == [0, 1, 2, 3, 4]
    assert http.get(f"/api/runs/{ids['long']}/metrics/nope").status_code == 404
    assert http.get(f"/api/runs/{ids['long']}/metrics/loss?points=0").status_code == 400


def test_compare_highlights_differing_params_and_offers_parallel_coordinates(dash: Any) -> None:
    http, ids = dash
    two = http.get("/api/compare", params={"runs": f"{ids['churn'][0]},{ids['churn'][1][:12]}"})
    data = two.json()
    assert [r["id"] for r in data["runs"]] == ids["churn"][:2]
    assert set(data["differing_params"]) == {"alpha", "depth", "model"}
    assert data["best"]["acc"] == ids["churn"][1]
    assert data["parallel"]["show"] is False
    page = http.get("/compare", params={"runs": f"{ids['churn'][0]},{ids['churn'][1]}"}).text
    assert page.count('class="differs"') == 3
    trials = http.get("/api/compare", params={"runs": ",".join(ids["trials"])}).json()
    assert trials["parallel"] == {"show": True, "params": ["alpha", "depth"], "metrics": ["acc"]}
    assert http.get("/api/compare").status_code == 400


def test_user_text_is_escaped_on_every_page(dash: Any) -> None:
    http, ids = dash
    pages = [
        "/runs?limit=1000",
        "/runs?columns=params.note,tags.team",
        f"/runs/{ids['xss']}",
        f"/compare?runs={ids['xss']},{ids['churn'][0]}",
    ]
    for path in pages:
        text = http.get(path).text
        assert XSS not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path
    embedded = http.get(f"/compare?runs={ids['xss']},{ids['churn'][0]}").text
    assert "\\u003cscript\\u003ealert(1)" in embedded  # the JSON for the charts, inert
