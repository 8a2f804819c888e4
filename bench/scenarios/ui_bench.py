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

A request still unanswered after CAP seconds is counted as CAP (a lower bound) and the
server is restarted (its one worker would still be busy with it), then warmed up again.

Usage: ui_bench.py WORKDIR TOOL PREPARED KILN_CLI MLFLOW_ENV LONG_ID CHROMIUM QUERIES CAP
"""

import contextlib
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
asked = [int(i) for i in sys.argv[8].split(",")]  # indexes into QUERIES
cap = float(sys.argv[9])  # seconds: a request that takes longer is counted as this
SERIES_REPS = 5
CHART_REPS = 3
# Where the page's time went, from the browser's own timings (ms since navigation):
# the HTML's last byte, plotly.min.js's last byte, when the page asked for the series,
# its last byte, and now.
BREAKDOWN = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const end = (part) => Math.max(0, ...res.filter((r) => r.name.includes(part))
                                          .map((r) => r.responseEnd));
  const asked = res.filter((r) => r.name.includes("/metrics/")).map((r) => r.startTime);
  return {html: nav.responseEnd, plotly: end("plotly.min.js"),
          asked: asked.length ? Math.min(...asked) : 0, series: end("/metrics/"),
          drawn: performance.now()};
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


env = dict(os.environ)
port_file = os.path.join(workdir, "port")
if tool == "kiln":
    env["KILN_HOME"] = os.path.join(workdir, ".kiln")
    ready = "/ready"
else:
    env["PATH"] = os.path.join(mlflow_env, "bin") + os.pathsep + env["PATH"]
    ready = "/health"


def command(port: int) -> list[str]:
    if tool == "kiln":
        store = kiln_store(prepared)
        return [kiln_cli, "--store", store, "ui", "--port", "0", "--port-file", port_file]
    return [
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


class Server:
    """The server as a real process; `restart` after a request ran past the cap (its
    one worker would still be busy with it)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.start()

    def start(self) -> None:
        self.starts += 1
        self.log_path = os.path.join(workdir, f"{tool}-server-{self.starts}.log")
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        with contextlib.suppress(FileNotFoundError):
            os.remove(port_file)
        self.port = 0 if tool == "kiln" else free_port()
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            command(self.port), env=env, stdout=self.log, stderr=self.log, start_new_session=True
        )
        self.wait_ready(t0)
        self.start_s = time.perf_counter() - t0
        self.client = Client(self.port)

    def tail(self) -> str:
        with open(self.log_path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")[-2000:]

    def wait_ready(self, t0: float) -> None:
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"{tool} server exited {self.proc.returncode}: {self.tail()}")
            if time.perf_counter() - t0 > 180:
                sys.exit(f"{tool} server not ready in 180 s: {self.tail()}")
            if tool == "kiln":
                try:
                    with open(port_file) as fh:
                        self.port = int(fh.read().strip())
                except (OSError, ValueError):
                    time.sleep(0.01)
                    continue
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", ready)
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                pass
            time.sleep(0.01)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.log.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class Client:
    """One keep-alive connection; each request timed from send to the last body byte."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=cap)
        self.server_ms: float | None = None

    def call(self, method: str, path: str, body: object = None) -> tuple[float, int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if data is not None else {}
        s = time.perf_counter()
        self.conn.request(method, path, data, headers)
        response = self.conn.getresponse()
        payload = response.read()
        self.server_ms = server_time(response.getheader("server-timing") or "")
        return 1000 * (time.perf_counter() - s), response.status, payload


def server_time(header: str) -> float | None:
    """The `app;dur=<ms>` a kiln answer carries (its own time); None without one."""
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name == "app" and params.startswith("dur="):
            return float(params[4:])
    return None


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


server = Server()
try:
    start_s = server.start_s
    experiment_id = ""
    if tool == "mlflow":
        path = "/ajax-api/2.0/mlflow/experiments/get-by-name?" + urlencode(
            {"experiment_name": EXPERIMENT}
        )
        _, status, payload = server.client.call("GET", path)
        experiment_id = json.loads(payload)["experiment"]["experiment_id"]

    def warm_up() -> None:
        """The untimed first query; a server that cannot answer it within the cap is
        restarted once more and measured cold."""
        try:
            ask(server.client, WARM_UP, experiment_id)
        except TimeoutError:
            server.restart()

    warm_up()
    times, pages, sizes, capped = [], [], [], []
    server_ms: list[float] = []
    for i in asked:
        try:
            ms, page, size = ask(server.client, QUERIES[i], experiment_id)
            if server.client.server_ms is not None:
                server_ms.append(server.client.server_ms)
        except TimeoutError:  # past the cap: counted as the cap, server restarted
            ms, page, size = 1000 * cap, None, 0
            capped.append(i)
            server.restart()
            warm_up()
        times.append(ms)
        pages.append(page)
        sizes.append(size)
    port = server.port
    html = []
    if tool == "kiln":
        for i in asked:
            ms, status, payload = server.client.call("GET", kiln_path(QUERIES[i], "/runs"))
            if status != 200 or b"<table" not in payload:
                sys.exit(f"kiln /runs for {QUERIES[i]} answered {status}: {payload[:300]!r}")
            html.append(ms)

    series = []
    series_capped = False
    payload = b"{}"
    if tool == "kiln":
        path = f"/api/runs/{long_id}/metrics/{quote(LONG_KEY)}?points=1000"
    else:
        path = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?" + urlencode(
            {"run_ids": long_id, "metric_key": LONG_KEY, "max_results": 1000}
        )
    for _ in range(SERIES_REPS):
        try:
            ms, status, payload = server.client.call("GET", path)
        except TimeoutError:  # counted as the cap; not asked again
            series.append(1000 * cap)
            series_capped = True
            server.restart()
            port = server.port
            break
        if status != 200:
            sys.exit(f"{tool}: {path} answered {status}: {payload[:500]!r}")
        series.append(ms)
    got = json.loads(payload) if not series_capped else {}
    if tool == "kiln":
        values, total = got.get("value", []), got.get("total")
    else:
        values, total = [m["value"] for m in got.get("metrics", [])], None
    shown = {
        "points": len(values),
        "total": total,
        "spike": bool(values) and max(values) == SPIKE,
        "capped": series_capped,
    }

    chart: list[float] = []
    problems: list[str] = []
    parts: list[dict] = []
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
                    parts.append(page.evaluate(BREAKDOWN))
                    context.close()
            finally:
                browser.close()
finally:
    server.stop()

emit(
    start_s=start_s,
    asked=asked,
    capped=capped,
    restarts=server.starts - 1,
    times_ms=times,
    server_ms=server_ms,
    html_ms=html,
    pages=pages,
    bytes=sizes,
    series_ms=series,
    series=shown,
    chart_ms=chart,
    chart_problems=problems[:5],
    chart_parts=parts,
)
