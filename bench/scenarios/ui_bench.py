"""u. One dashboard server over the prepared store: its runs pages, a long metric, a chart.

Starts one server as a real process on a free loopback port: `kiln ui` (port 0 with
--port-file) or `mlflow server --workers 1`, over the prepared store. After one untimed
warm-up query it asks, one request at a time on one keep-alive connection, for the
runs page and the 20 filtered/sorted pages of `_uidata.QUERIES` (kiln: `GET /api/runs`;
MLflow: its UI's `POST /ajax-api/2.0/mlflow/runs/search`, the same filter and order,
max_results = the dashboard's page size), each timed on the client from sending the
request to reading the whole body (loopback; neither server reports its own time).
kiln then also answers the same 21 queries as server-rendered HTML (`GET /runs`).
Then the long run's metric, downsampled for a chart, 5 times: kiln's
`/api/runs/{id}/metrics/loss?points=1000`, MLflow's UI's
`GET /ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?max_results=1000`. With
`chromium`, kiln's run page of the long run in headless Chromium (Playwright), a fresh
browser context each time: from navigation to `.plot .main-svg` present.

Usage: ui_bench.py WORKDIR TOOL PREPARED KILN_CLI MLFLOW_ENV LONG_ID CHROMIUM
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import quote, urlencode

from _child import emit, kiln_store, mlflow_uri
from _uidata import EXPERIMENT, LONG_KEY, PAGE, QUERIES, SPIKE, WARM_UP, Query

workdir, tool, prepared, kiln_cli, mlflow_env, long_id = sys.argv[1:7]
use_chromium = sys.argv[7] == "1"
SERIES_REPS = 5
CHART_REPS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


env = dict(os.environ)
log_path = os.path.join(workdir, f"{tool}-server.log")
port_file = os.path.join(workdir, "port")
if tool == "kiln":
    env["KILN_HOME"] = os.path.join(workdir, ".kiln")
    cmd = [
        kiln_cli,
        "--store",
        kiln_store(prepared),
        "ui",
        "--port",
        "0",
        "--port-file",
        port_file,
    ]
    ready = "/ready"
else:
    port = free_port()
    env["PATH"] = os.path.join(mlflow_env, "bin") + os.pathsep + env["PATH"]
    cmd = [
        os.path.join(mlflow_env, "bin", "mlflow"),
        "server",
        "--backend-store-uri",
        mlflow_uri(prepared),
        "--default-artifact-root",
        os.path.join(workdir, "mlartifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    ready = "/health"


def tail() -> str:
    with open(log_path, "rb") as fh:
        return fh.read().decode("utf-8", "replace")[-2000:]


log = open(log_path, "wb")  # noqa: SIM115 - closed below
t0 = time.perf_counter()
proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)


def wait_ready() -> int:
    global port
    while True:
        if proc.poll() is not None:
            sys.exit(f"{tool} server exited {proc.returncode}: {tail()}")
        if time.perf_counter() - t0 > 180:
            sys.exit(f"{tool} server not ready in 180 s: {tail()}")
        if tool == "kiln":
            try:
                with open(port_file) as fh:
                    port = int(fh.read().strip())
            except (OSError, ValueError):
                time.sleep(0.01)
                continue
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", ready)
            if c.getresponse().status == 200:
                c.close()
                return port
        except OSError:
            pass
        time.sleep(0.01)


class Client:
    """One keep-alive connection; each request timed from send to the last body byte."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: object = None) -> tuple[float, int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if data is not None else {}
        s = time.perf_counter()
        self.conn.request(method, path, data, headers)
        response = self.conn.getresponse()
        payload = response.read()
        return 1000 * (time.perf_counter() - s), response.status, payload


def kiln_path(q: Query, page: str = "/api/runs") -> str:
    items = {"experiment": EXPERIMENT, "filter": q.kiln_filter, "order": q.kiln_order}
    return page + "?" + urlencode({k: v for k, v in items.items() if v})


def kiln_page(payload: bytes) -> dict:
    runs = json.loads(payload)["runs"]
    return {"names": [r["name"] for r in runs], "times": [r["start_time"] for r in runs]}


def mlflow_body(q: Query, experiment_id: str) -> dict:
    body = {
        "experiment_ids": [experiment_id],
        "filter": q.mlflow_filter,
        "run_view_type": "ACTIVE_ONLY",
        "max_results": PAGE,
        "order_by": q.mlflow_order,
    }
    return body


def mlflow_page(payload: bytes) -> dict:
    runs = json.loads(payload).get("runs", [])
    return {
        "names": [r["info"]["run_name"] for r in runs],
        "times": [int(r["info"]["start_time"]) for r in runs],
    }


def ask(client: Client, q: Query, experiment_id: str) -> tuple[float, dict, int]:
    if tool == "kiln":
        ms, status, payload = client.call("GET", kiln_path(q))
        page = kiln_page(payload) if status == 200 else {}
    else:
        path = "/ajax-api/2.0/mlflow/runs/search"
        ms, status, payload = client.call("POST", path, mlflow_body(q, experiment_id))
        page = mlflow_page(payload) if status == 200 else {}
    if status != 200:
        sys.exit(f"{tool}: {q} answered {status}: {payload[:500]!r}")
    return ms, page, len(payload)


try:
    port = wait_ready()
    start_s = time.perf_counter() - t0
    client = Client(port)
    experiment_id = ""
    if tool == "mlflow":
        path = "/ajax-api/2.0/mlflow/experiments/get-by-name?" + urlencode(
            {"experiment_name": EXPERIMENT}
        )
        _, status, payload = client.call("GET", path)
        experiment_id = json.loads(payload)["experiment"]["experiment_id"]
    ask(client, WARM_UP, experiment_id)  # untimed
    times, pages, sizes = [], [], []
    for q in QUERIES:
        ms, page, size = ask(client, q, experiment_id)
        times.append(ms)
        pages.append(page)
        sizes.append(size)
    html = []
    if tool == "kiln":
        for q in QUERIES:
            ms, status, payload = client.call("GET", kiln_path(q, "/runs"))
            if status != 200 or b"<table" not in payload:
                sys.exit(f"kiln /runs for {q} answered {status}: {payload[:300]!r}")
            html.append(ms)

    series = []
    if tool == "kiln":
        path = f"/api/runs/{long_id}/metrics/{quote(LONG_KEY)}?points=1000"
    else:
        path = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?" + urlencode(
            {"run_ids": long_id, "metric_key": LONG_KEY, "max_results": 1000}
        )
    for _ in range(SERIES_REPS):
        ms, status, payload = client.call("GET", path)
        if status != 200:
            sys.exit(f"{tool}: {path} answered {status}: {payload[:500]!r}")
        series.append(ms)
    got = json.loads(payload)
    if tool == "kiln":
        values, total = got["value"], got["total"]
    else:
        values, total = [m["value"] for m in got.get("metrics", [])], None
    shown = {"points": len(values), "total": total, "spike": max(values) == SPIKE}

    chart: list[float] = []
    problems: list[str] = []
    if tool == "kiln" and use_chromium:
        from playwright.sync_api import sync_playwright

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
            try:
                for _ in range(CHART_REPS):
                    context = browser.new_context()
                    page = context.new_page()
                    page.on(
                        "console",
                        lambda m: problems.append(m.text) if m.type == "error" else None,
                    )
                    page.on("pageerror", lambda e: problems.append(str(e)))
                    s = time.perf_counter()
                    page.goto(f"http://127.0.0.1:{port}/runs/{long_id}", wait_until="commit")
                    page.wait_for_selector(".plot .main-svg", state="attached", timeout=60_000)
                    chart.append(1000 * (time.perf_counter() - s))
                    context.close()
            finally:
                browser.close()
finally:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    log.close()

emit(
    start_s=start_s,
    times_ms=times,
    html_ms=html,
    pages=pages,
    bytes=sizes,
    series_ms=series,
    series=shown,
    chart_ms=chart,
    chart_problems=problems[:5],
)
