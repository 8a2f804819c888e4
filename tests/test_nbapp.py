"""`kiln notebook app`: a real app process over tiny notebooks, driven over HTTP and from
headless Chromium (typed form, server-side checks, progress, cache, queue, failures)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from browser_helpers import CHROMIUM, FLAGS, skip_or_fail
from serve_helpers import KILN, server_env, serving

pytest.importorskip("starlette")
pytest.importorskip("ipykernel")

PARAMS = """from typing import Literal
n: int = 3  # how many rows; range: 1..10
title = "Report"  # the page title
flag = True  # show the footer
day = "2024-01-31"  # the report day
mode: Literal["fast", "slow"] = "fast"  # speed
delay = 0.2  # seconds per step
"""


def _notebook(path: Path, params: str, *cells: str, markdown: str = "") -> None:
    p = new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    body = [new_markdown_cell(markdown)] if markdown else []
    nb = new_notebook(cells=[*body, p, *(new_code_cell(c) for c in cells)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))


def _store(folder: Path) -> str:
    return f"sqlite:///{folder / 'store' / 'kiln.db'}"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One app over three notebooks: --workers 1, --timeout 3 s."""
    tmp = tmp_path_factory.mktemp("nbapp")
    books = tmp / "books"
    books.mkdir()
    _notebook(
        books / "report.ipynb",
        PARAMS,
        "import time\ntime.sleep(delay)\nprint('rows', n, 'for', title)",
        "time.sleep(delay)\nresult = n * 2\nresult",
        "time.sleep(delay)\nprint('mode', mode, day, flag)",
        markdown="# The weekly report",
    )
    _notebook(books / "boom.ipynb", "x = 1  # a number", "y = x + 1", "raise ValueError('bad x')")
    _notebook(books / "slow.ipynb", "seconds = 30  # how long", "import time\ntime.sleep(seconds)")
    store = _store(tmp)
    cmd = [
        KILN,
        "--store",
        store,
        "notebook",
        "app",
        str(books),
        "--workers",
        "1",
        "--timeout",
        "3",
    ]
    with serving(cmd, server_env(tmp)) as (url, _proc):
        yield url, store


def _runs(store: str) -> list[Any]:
    from kiln.tracking import TrackingClient

    return TrackingClient(store).search_runs()


def _wait(url: str, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = httpx.get(f"{url}/api/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['state']}"
        time.sleep(0.1)


def test_the_form_has_a_typed_field_per_parameter_with_default_and_help(
    app: tuple[str, str],
) -> None:
    url, _ = app
    index = httpx.get(f"{url}/")
    assert index.status_code == 200
    assert "/n/report" in index.text
    assert "/n/boom" in index.text
    fields = {f["name"]: f for f in httpx.get(f"{url}/api/n/report").json()["fields"]}
    kinds = {name: f["kind"] for name, f in fields.items()}
    assert kinds == {
        "n": "int", "title": "str", "flag": "bool", "day": "date", "mode": "select",
        "delay": "float",
    }  # fmt: skip
    assert fields["n"]["default"] == 3
    assert fields["n"]["help"] == "how many rows"
    assert (fields["n"]["low"], fields["n"]["high"]) == (1, 10)
    assert fields["mode"]["choices"] == ["fast", "slow"]
    page = httpx.get(f"{url}/n/report").text
    assert 'type="number" id="f-n" name="n" value="3"' in page
    assert 'type="date" id="f-day" name="day" value="2024-01-31"' in page
    assert 'type="checkbox" id="f-flag" name="flag" checked' in page
    assert "the page title" in page
    assert "<!doctype html>" in page
    assert "/static/app.js" in page
    assert httpx.get(f"{url}/static/app.js").status_code == 200
    assert httpx.get(f"{url}/health").text == "ok"


def test_an_invalid_value_is_refused_next_to_its_field_and_shown_escaped(
    app: tuple[str, str],
) -> None:
    url, store = app
    before = len(_runs(store))
    form = {"n": "12", "title": "<script>alert(1)</script>", "day": "31/01/2024", "mode": "x"}
    page = httpx.post(f"{url}/n/report", data=form)
    assert page.status_code == 200
    assert 'id="form-error"' in page.text
    assert "n: 12 is out of range; expected a value in 1..10." in page.text
    assert "is not a date; expected YYYY-MM-DD" in page.text
    assert "is not one of the choices (fast, slow)" in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in page.text
    assert "Traceback" not in page.text
    bad = httpx.post(f"{url}/api/n/report/runs", json={"parameters": {"n": "three"}})
    assert bad.status_code == 400
    assert bad.json()["errors"] == {"n": "n: 'three' is not a whole number, e.g. 3."}
    unknown = httpx.post(f"{url}/api/n/report/runs", json={"parameters": {"m": 1}})
    assert unknown.status_code == 400
    assert "'m' is not a parameter of report" in unknown.text
    assert len(_runs(store)) == before  # nothing ran


def test_a_submit_runs_a_tracked_run_and_the_same_values_come_from_the_cache(
    app: tuple[str, str],
) -> None:
    from kiln.tracking import TrackingClient

    url, store = app
    values = {"n": 4, "title": "<b>cached</b>", "delay": 0.0}
    first = httpx.post(f"{url}/api/n/report/runs", json={"parameters": values})
    assert first.status_code == 202, first.text
    job = _wait(url, first.json()["job"]["id"])
    assert job["state"] == "finished"
    assert job["done"] == job["total"] > 0
    run = TrackingClient(store).get_run(job["run_id"])
    assert run.status == "finished"
    assert run.params["n"] == "4"
    output = httpx.get(f"{url}/r/{run.id}/output")
    assert "rows 4 for &lt;b&gt;cached&lt;/b&gt;" in output.text
    assert "<h1>The weekly report" in output.text
    assert "time.sleep" not in output.text
    assert "print(" not in output.text
    assert "sandbox" in output.headers["content-security-policy"]
    result = httpx.get(f"{url}/r/{run.id}")
    assert "&lt;b&gt;cached&lt;/b&gt;" in result.text
    assert "<b>cached</b>" not in result.text
    count = len(_runs(store))
    again = httpx.post(f"{url}/api/n/report/runs", json={"parameters": values})
    assert again.status_code == 200
    assert again.json() == {
        "cached": True,
        "run_id": run.id,
        "url": f"/r/{run.id}",
    }
    form = httpx.post(f"{url}/n/report", data={**values, "flag": "on", "mode": "fast",
                                               "day": "2024-01-31"})  # fmt: skip
    assert form.status_code == 303
    assert form.headers["location"] == f"/r/{run.id}"
    assert len(_runs(store)) == count  # no new execution
    fresh = httpx.post(f"{url}/api/n/report/runs", json={"parameters": values, "again": True})
    assert fresh.status_code == 202
    assert _wait(url, fresh.json()["job"]["id"])["run_id"] != run.id
    assert len(_runs(store)) == count + 1


def test_a_raising_notebook_says_which_cell_failed_and_the_run_is_failed(
    app: tuple[str, str],
) -> None:
    from kiln.tracking import TrackingClient

    url, store = app
    submitted = httpx.post(f"{url}/api/n/boom/runs", json={"parameters": {"x": 2}}).json()
    job = _wait(url, submitted["job"]["id"])
    assert job["state"] == "failed"
    assert job["failed_cell"] == 2
    assert job["error"] == "The notebook failed at code cell 2: ValueError: bad x"
    assert TrackingClient(store).get_run(job["run_id"]).status == "failed"
    page = httpx.get(f"{url}/r/{job['run_id']}").text
    assert "failed at code cell 2" in page
    assert "ValueError: bad x" in page


def test_a_run_past_the_timeout_is_stopped_and_failed_saying_so_and_a_queued_one_cancels(
    app: tuple[str, str],
) -> None:
    from kiln.tracking import TrackingClient

    url, store = app
    slow = httpx.post(f"{url}/api/n/slow/runs", json={"parameters": {}}).json()["job"]
    while httpx.get(f"{url}/api/jobs/{slow['id']}").json()["state"] == "queued":
        time.sleep(0.02)  # the worker takes it
    queued = httpx.post(f"{url}/api/n/report/runs", json={"parameters": {"n": 9}}).json()["job"]
    waiting = httpx.get(f"{url}/api/jobs/{queued['id']}").json()
    assert waiting["state"] == "queued"
    assert waiting["position"] == 1
    cancelled = httpx.post(f"{url}/api/jobs/{queued['id']}/cancel").json()
    assert cancelled["state"] == "cancelled"
    assert cancelled["run_id"] is None
    begin = time.monotonic()
    job = _wait(url, slow["id"])
    assert time.monotonic() - begin < 15
    assert job["state"] == "failed"
    assert "longer than the app's time limit of 3 seconds" in job["error"]
    run = TrackingClient(store).get_run(job["run_id"])
    assert run.status == "failed"
    assert run.tags["kiln.app.stopped"] == "timeout"
    assert "Stopped: the run took longer" in httpx.get(f"{url}/r/{run.id}").text
    # A running job cancels too: its cell is interrupted, the run saved as failed.
    other = httpx.post(f"{url}/api/n/slow/runs", json={"parameters": {"seconds": 20}}).json()
    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/api/jobs/{other['job']['id']}").json()["done"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    httpx.post(f"{url}/api/jobs/{other['job']['id']}/cancel")
    stopped = _wait(url, other["job"]["id"], timeout=10)
    assert stopped["state"] == "cancelled"
    assert stopped["error"].startswith("Stopped (cancelled) at code cell 1")
    assert TrackingClient(store).get_run(stopped["run_id"]).tags["kiln.app.stopped"] == "cancelled"


def test_the_form_reads_types_from_values_annotations_and_comments(tmp_path: Path) -> None:
    from kiln._exceptions import ParameterError
    from kiln.notebooks import notebook_form

    cell = """from datetime import datetime
from typing import Literal
%matplotlib inline
start: datetime = "2024-01-31T09:30"  # when
tags: list[Literal["a", "b", "c"]] = ["a"]  # which tags
ratio: float = 1  # a share; range: 0..
level: int = 2
path = Path.home() / "data"
name: str = "x"
"""
    _notebook(tmp_path / "t.ipynb", cell)
    fields = {f.name: f for f in notebook_form(tmp_path / "t.ipynb")}
    assert list(fields) == ["start", "tags", "ratio", "level", "name"]  # path is computed
    assert fields["start"].kind == "datetime"
    assert (fields["tags"].kind, fields["tags"].choices) == ("multi", ["a", "b", "c"])
    assert (fields["ratio"].kind, fields["ratio"].low, fields["ratio"].high) == ("float", 0, None)
    assert fields["ratio"].help == "a share"
    assert fields["tags"].parse(["c", "a"]) == ["c", "a"]
    assert fields["ratio"].parse("2.5") == 2.5
    assert fields["level"].parse("7") == 7
    assert fields["start"].parse("2024-02-01T10:00") == "2024-02-01T10:00"
    for name, raw, message in [
        ("tags", ["d"], "tags: 'd' is not one of the choices (a, b, c)."),
        ("ratio", "-1", "ratio: -1 is out of range; expected a value in 0..."),
        ("level", "2.5", "level: '2.5' is not a whole number, e.g. 3."),
        ("ratio", "nan", "ratio: 'nan' is not a finite number; expected a number, e.g. 0.5."),
        ("start", "soon", "start: 'soon' is not a date and time; expected YYYY-MM-DDTHH:MM"),
    ]:
        with pytest.raises(ParameterError) as caught:
            fields[name].parse(raw)
        assert str(caught.value).startswith(message)


def _open(browser: Any, url: str) -> tuple[Any, list[str]]:
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(url, wait_until="load", timeout=60_000)
    return page, problems


def test_in_chromium_a_viewer_fills_the_form_watches_progress_and_gets_the_result(
    app: tuple[str, str],
) -> None:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Playwright is not installed (it is in kiln-ml[dev])")
    url, store = app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, timeout=60_000)
        try:
            page, problems = _open(browser, f"{url}/n/report")
            assert page.input_value("#f-n") == "3"
            assert page.input_value("#f-title") == "Report"
            assert page.is_checked("#f-flag")
            assert "how many rows" in page.inner_text(".app-field[data-name=n]")
            page.fill("#f-n", "-1")
            page.click("#submit")
            error = page.locator(".app-field[data-name=n] .field-error")
            assert "out of range" in error.inner_text()
            page.fill("#f-n", "7")
            page.fill("#f-title", "Seen <i>by</i> Chromium")
            page.fill("#f-delay", "0.6")  # three steps of 0.6 s: progress to watch
            page.click("#submit")
            page.wait_for_url("**/j/**")
            page.locator("#job-state").filter(has_text="Running: cell").wait_for(timeout=20_000)
            page.wait_for_url("**/r/**", timeout=30_000)
            run_id = page.url.rsplit("/", 1)[1]
            frame = page.frame_locator("#result")
            text = frame.locator("body").inner_text()
            assert "rows 7 for Seen <i>by</i> Chromium" in text
            assert "print(" not in text
            assert page.inner_text("#run-status") == "finished"
            count = len(_runs(store))
            page.goto(f"{url}/n/report")
            page.fill("#f-n", "7")
            page.fill("#f-title", "Seen <i>by</i> Chromium")
            page.fill("#f-delay", "0.6")
            page.click("#submit")
            page.wait_for_url(f"**/r/{run_id}")  # straight to the stored result
            assert len(_runs(store)) == count
            # Two viewers at once, one worker: both get their result, one after the other.
            a, more = _open(browser, f"{url}/n/report")
            b, still = _open(browser, f"{url}/n/report")
            for viewer, n in ((a, "5"), (b, "6")):
                viewer.fill("#f-n", n)
                viewer.fill("#f-title", "together")
            a.click("#submit")
            b.click("#submit")
            for viewer, n in ((a, "5"), (b, "6")):
                viewer.wait_for_url("**/r/**", timeout=30_000)
                shown = viewer.frame_locator("#result").locator("body").inner_text()
                assert f"rows {n} for together" in shown
            runs = [r for r in _runs(store) if r.params.get("title") == "together"]
            assert len(runs) == 2
            assert all(r.status == "finished" for r in runs)
            assert problems == []
            assert more == []
            assert still == []
        finally:
            browser.close()


def test_off_loopback_the_app_needs_a_token_and_every_page_asks_for_it(tmp_path: Path) -> None:
    import subprocess

    _notebook(tmp_path / "one.ipynb", "x = 1  # a number", "print(x)")
    base = [KILN, "--store", _store(tmp_path), "notebook", "app", str(tmp_path / "one.ipynb")]
    refused = subprocess.run(
        [*base, "--host", "0.0.0.0", "--port", "0"],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "needs a token: pass --token TOKEN" in refused.stderr
    assert "Traceback" not in refused.stderr
    cmd = [*base, "--host", "0.0.0.0", "--token", "s3cret"]
    with serving(cmd, server_env(tmp_path)) as (url, _proc):
        assert httpx.get(f"{url}/ready").status_code == 200  # the probe stays open
        assert httpx.get(f"{url}/n/one").status_code == 401
        assert httpx.post(f"{url}/api/n/one/runs", json={}).status_code == 401
        auth = {"authorization": "Bearer s3cret"}
        assert httpx.get(f"{url}/api/n/one", headers=auth).json()["fields"][0]["name"] == "x"
        with httpx.Client(base_url=url) as browser:
            first = browser.get("/n/one?token=s3cret", follow_redirects=False)
            assert first.status_code == 303
            assert browser.get("/n/one").status_code == 200


def _export_notebook(path: Path, body: str) -> None:
    helper = new_code_cell(body)
    helper.metadata["tags"] = ["export"]
    nb = new_notebook(
        cells=[
            new_code_cell("import math"),
            helper,
            new_code_cell("#| export\ndef area(r: float) -> float:\n    return math.pi * r * r"),
            new_code_cell("%timeit double(2)\ndouble(21)"),
        ]
    )
    nbformat.write(nb, str(path))


def test_exported_cells_make_a_module_that_imports_and_check_warns_when_it_is_stale(
    tmp_path: Path,
) -> None:
    import importlib.util
    import json
    import subprocess

    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "p"\n', encoding="utf-8")
    nb_path = project / "analysis.ipynb"
    _export_notebook(nb_path, "import math\n\n\ndef double(x: int) -> int:\n    return 2 * x")
    module = project / "src" / "shapes.py"
    env = server_env(tmp_path)
    done = subprocess.run(
        [KILN, "notebook", "export", str(nb_path), "-o", str(module)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = module.read_text(encoding="utf-8")
    assert text.startswith("# Exported from ../analysis.ipynb by `kiln notebook export` (")
    assert "not in a git repository" in text.splitlines()[0]
    assert "%timeit" not in text
    assert "#| export" not in text
    spec = importlib.util.spec_from_file_location("shapes", module)
    assert spec is not None
    assert spec.loader is not None
    shapes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shapes)
    assert shapes.double(21) == 42
    assert abs(shapes.area(2.0) - 12.566370614359172) < 1e-12

    def check() -> list[dict[str, Any]]:
        out = subprocess.run(
            [KILN, "notebook", "check", str(nb_path), "--json", "--no-imports"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        findings: list[dict[str, Any]] = json.loads(out.stdout)["findings"]
        return [f for f in findings if f["kind"] == "stale-export"]

    assert check() == []
    _export_notebook(nb_path, "import math\n\n\ndef double(x: int) -> int:\n    return x + x")
    stale = check()
    assert len(stale) == 1
    assert stale[0]["severity"] == "warning"
    assert "shapes.py" in stale[0]["message"]
    assert "export again" in stale[0]["message"]
