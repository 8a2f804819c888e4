"""v. One notebook served as an app: `kiln notebook app` or Voilà, timed from the client.

Starts one server as a real process on a free loopback port over a copy of
sales_report.ipynb (10 code cells: a `parameters` cell, pandas, a matplotlib plot) and
asks it, one request at a time unless said otherwise:

kiln (`kiln --store <wd>/kiln notebook app NB --port 0 --port-file F`):
- warm-up, untimed: one submit with another seed, polled to its result page;
- first visit, FIRST times, GAP seconds apart: `POST /api/n/<nb>/runs {"parameters": {}, "again": true}`
  (the defaults, a fresh execution forced), `GET /api/jobs/<job>` every 10 ms until it
  is finished, then `GET /r/<run>/output` (the rendered result), timed from sending the
  POST to the last byte of the output page;
- repeated visit, REPEATS times: the same POST without `again` (200, cached) and the
  output page; wall time and the server's own time (the two answers' `Server-Timing:
  app;dur=` added up);
- VIEWERS concurrent viewers of that cached result for SECONDS each, closed loop on
  keep-alive connections: `GET /r/<run>/output` (the shareable result), then the full
  repeated visit (POST, cached, + output page); requests/s and latencies.

Voilà (`voila NB --no-browser --port P`, voila's default: the server executes the
notebook in a new kernel and streams the page, which ends once the last cell's outputs
are in it):
- warm-up, untimed: one `GET /`;
- first and repeated visit: `GET /`, timed from sending it to the page's last byte (and
  its first byte); every page must hold the last cell's output and the plot;
- with CONCURRENT > 0: that many viewers `GET /` at once, once each.
After each page its kernel is shut down as the browser does when the page is closed
(`POST /voila/api/shutdown/<kernel id>`), untimed.

Kernels are counted, not assumed: a thread lists the server's descendant processes
every 20 ms (/proc/<pid>/task/*/children) and each phase reports how many kernels
appeared that were not there when it began (kiln's fork server is there before; each
execution forks a kernel from it; Voilà starts one kernel process per page; see
`Kernels`).

Usage: app_bench.py WORKDIR TOOL NOTEBOOK KILN_CLI VOILA_ENV FIRST REPEATS VIEWERS SECONDS
       CONCURRENT
"""

import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from _child import emit, kiln_store
from loadgen import _Conn

workdir, tool, notebook, kiln_cli, voila_env = sys.argv[1:6]
first_n, repeats, viewers = (int(x) for x in sys.argv[6:9])
seconds = float(sys.argv[9])
concurrent = int(sys.argv[10])
CHECK = b"total revenue"  # the last cell's output
PLOT = b"image/png"  # the matplotlib figure, inline
SLUG = "sales_report"
TIMEOUT = 120.0  # seconds for any one answer: a hung server fails the repetition
GAP = 2.0  # seconds between first visits, for both servers (a viewer's pace at least)
CROWD_TIMEOUT = 300.0  # seconds for all of Voilà's concurrent pages together

nb = os.path.join(workdir, os.path.basename(notebook))
shutil.copy(notebook, nb)
env = dict(os.environ)
env["JUPYTER_CONFIG_DIR"] = os.path.join(workdir, ".jupyter")
env["JUPYTER_RUNTIME_DIR"] = os.path.join(workdir, ".jupyter-runtime")
port_file = os.path.join(workdir, "port")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, their children...)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    kids = [int(c) for c in fh.read().split()]
            except OSError:
                continue
            for k in kids:
                if k not in found:
                    found.add(k)
                    todo.append(k)
    return found


KERNEL = (b"ipykernel", b"kiln.notebooks._zygote")
"""What a kernel's command line holds: Voilà's are `python -m ipykernel_launcher -f ...`;
kiln's are forked from its fork server (`python -m kiln.notebooks._zygote`) and keep
its command line."""


class Kernels:
    """Counts the kernels started below the server while a phase runs.

    Every 20 ms it lists the server's descendants; a new one is a kernel when its
    command line (read again while it lives: a child seen between fork and exec still
    shows its parent's) says so and its parent is not itself a new kernel (a kernel's
    own children are not kernels). Other children (`git`, `uname`) are not counted.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before: set[int] = set()
        self.parent: dict[int, int] = {}
        self.cmdline: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Kernels":
        self.before = descendants(self.pid)
        self.parent, self.cmdline = {}, {}
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _look(self) -> None:
        for pid in descendants(self.pid) - self.before:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmdline = fh.read()
                if pid not in self.parent:
                    with open(f"/proc/{pid}/stat") as fh:
                        self.parent[pid] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone already
            if cmdline:  # empty for a process on its way out
                self.cmdline[pid] = cmdline

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self._look()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._look()

    @property
    def new(self) -> int:
        kernels = {p for p, c in self.cmdline.items() if any(k in c for k in KERNEL)}
        return sum(1 for p in kernels if self.parent.get(p) not in kernels)


def _die_with_parent() -> None:
    """In the server's process before exec: SIGKILL it when this script exits."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Server:
    def __init__(self) -> None:
        self.log_path = os.path.join(workdir, f"{tool}-server.log")
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        if tool == "kiln":
            env["KILN_HOME"] = os.path.join(workdir, ".kiln")
            self.port = 0
            cmd = [kiln_cli, "--store", kiln_store(workdir), "notebook", "app", nb]
            cmd += ["--port", "0", "--port-file", port_file]
        else:
            self.port = free_port()
            cmd = [os.path.join(voila_env, "bin", "voila"), nb, "--no-browser"]
            cmd += ["--port", str(self.port), "--Voila.ip=127.0.0.1"]
        t0 = time.perf_counter()
        # A session of its own (stopped as a group), killed by the kernel if this script
        # dies first (the harness's timeout): no server, no kernel outlives the bench.
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=workdir, stdout=self.log, stderr=self.log,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        self.wait_ready(t0)
        self.start_s = time.perf_counter() - t0

    def tail(self) -> str:
        with open(self.log_path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")[-3000:]

    def wait_ready(self, t0: float) -> None:
        # kiln: /ready; Voilà: any answer from a URL that starts no kernel (a 404).
        path = "/ready" if tool == "kiln" else "/voila/files/not-there"
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"{tool} server exited {self.proc.returncode}:\n{self.tail()}")
            if time.perf_counter() - t0 > 180:
                sys.exit(f"{tool} server not ready in 180 s:\n{self.tail()}")
            if tool == "kiln":
                try:
                    with open(port_file) as fh:
                        self.port = int(fh.read().strip())
                except (OSError, ValueError):
                    time.sleep(0.02)
                    continue
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", path)
                status = c.getresponse().status
                c.close()
                if status < 500:
                    return
            except OSError:
                pass
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM the server's group, SIGKILL it after 20 s, then kill every process it
        left below it (kernels run in sessions of their own)."""
        family = descendants(self.proc.pid)
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        for pid in family:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.log.close()


class Client:
    """One keep-alive connection; each call timed from sending to the body's last byte."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)

    def call(
        self, method: str, path: str, body: object = None, headers: dict | None = None
    ) -> tuple[float, int, dict[str, str], bytes, float]:
        """(ms to the last byte, status, headers, body, ms to the first body byte)."""
        data = None if body is None else json.dumps(body).encode()
        hdrs = dict(headers or {})
        if data is not None:
            hdrs["content-type"] = "application/json"
        s = time.perf_counter()
        self.conn.request(method, path, data, hdrs)
        response = self.conn.getresponse()
        payload = response.read(1)
        first = time.perf_counter()
        payload += response.read()
        end = time.perf_counter()
        got = {k.lower(): v for k, v in response.getheaders()}
        return 1000 * (end - s), response.status, got, payload, 1000 * (first - s)


def server_ms(headers: dict[str, str]) -> float:
    m = re.search(r"app;dur=([0-9.]+)", headers.get("server-timing", ""))
    if m is None:
        sys.exit(f"no `Server-Timing: app;dur=` header in kiln's answer: {headers}")
    return float(m.group(1))


def fail(what: str, status: int, body: bytes) -> None:
    sys.exit(f"{tool}: {what} answered {status}: {body[:500]!r}\n{server.tail()}")


# ---------------------------------------------------------------- kiln ---------------


def kiln_visit(c: Client, parameters: dict, again: bool) -> dict:
    """Submit, poll the job if one was queued, read the output page: the timings."""
    t0 = time.perf_counter()
    _, status, hdrs, body, _ = c.call(
        "POST", f"/api/n/{SLUG}/runs", {"parameters": parameters, "again": again}
    )
    server = server_ms(hdrs)
    data = json.loads(body)
    polls = 0
    # When the client first saw: the answer to the submit, the first code cell done,
    # every code cell done (the job goes on to store the run and its result page), the
    # job finished (ms after sending the submit).
    marks = {"submitted": 1000 * (time.perf_counter() - t0)}
    if status == 202:
        job_id = data["job"]["id"]
        while True:
            _, st, _, body, _ = c.call("GET", f"/api/jobs/{job_id}")
            polls += 1
            job = json.loads(body)
            now = 1000 * (time.perf_counter() - t0)
            if job.get("done", 0) >= 1:
                marks.setdefault("first_cell", now)
            if job.get("total") and job.get("done") == job["total"]:
                marks.setdefault("cells", now)
            if st != 200 or job["state"] not in ("queued", "running"):
                marks["finished"] = now
                break
            if time.perf_counter() - t0 > TIMEOUT:
                sys.exit(f"kiln: job {job_id} still {job['state']} after {TIMEOUT:.0f} s")
            time.sleep(0.01)
        if job.get("state") != "finished":
            fail("the job", st, body)
        run_id = job["run_id"]
    elif status == 200:
        run_id = data["run_id"]
    else:
        fail("the submit", status, body)
    _, status, hdrs, page, _ = c.call("GET", f"/r/{run_id}/output")
    wall = 1000 * (time.perf_counter() - t0)
    if status != 200 or CHECK not in page or PLOT not in page:
        fail(f"/r/{run_id}/output (no {CHECK!r} or no plot)", status, page)
    return {
        "wall_ms": wall,
        "server_ms": server + server_ms(hdrs),
        "cached": data.get("cached", False),
        "run_id": run_id,
        "polls": polls,
        "marks": marks,
        "bytes": len(page),
    }


def _get(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def _post(port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


async def crowd(port: int, requests: list[bytes], clients: int, secs: float) -> dict:
    """`clients` keep-alive connections in a closed loop, each sending `requests` in
    turn (one view) for `secs` seconds, after 0.5 s untimed."""
    views: list[float] = []
    server: list[float] = []
    statuses: dict[int, int] = {}
    counting = False

    async def viewer() -> None:
        conn = await _Conn.open("127.0.0.1", port)
        try:
            while not done.is_set():
                s = time.perf_counter()
                for raw in requests:
                    status, hdrs, body = await conn.request(raw)
                    if counting:
                        statuses[status] = statuses.get(status, 0) + 1
                        server.append(server_ms(hdrs))
                    if status != 200:
                        fail("a viewer's request", status, body)
                if counting:
                    views.append(time.perf_counter() - s)
        finally:
            conn.close()

    done = asyncio.Event()
    tasks = [asyncio.create_task(viewer()) for _ in range(clients)]
    await asyncio.sleep(0.5)
    counting = True
    t0 = time.perf_counter()
    await asyncio.sleep(secs)
    counting = False
    took = time.perf_counter() - t0
    done.set()
    await asyncio.gather(*tasks)
    lat = sorted(views)
    return {
        "views": len(views),
        "views_per_s": len(views) / took,
        "requests_per_s": len(views) * len(requests) / took,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "server_ms": statistics.median(server),
        "statuses": statuses,
    }


def runs_in_store() -> int:
    from kiln.tracking import TrackingClient

    client = TrackingClient(kiln_store(workdir))
    client.flush()
    return len(client.search_runs(limit=10_000))


def bench_kiln() -> dict:
    c = Client(server.port)
    kiln_visit(c, {"seed": 1}, again=True)  # warm-up: the fork server is up
    first, first_kernels = [], []
    for _ in range(first_n):
        time.sleep(GAP)
        with Kernels(server.proc.pid) as k:
            first.append(kiln_visit(c, {}, again=True))
        first_kernels.append(k.new)
    again = []
    with Kernels(server.proc.pid) as k:
        for _ in range(repeats):
            v = kiln_visit(c, {}, again=False)
            if not v["cached"]:
                sys.exit("kiln: the repeated visit was not answered from the cache")
            again.append(v)
    repeat_kernels = k.new
    run_id = first[-1]["run_id"]
    body = json.dumps({"parameters": {}}).encode()
    output = [_get(server.port, f"/r/{run_id}/output")]
    visit = [_post(server.port, f"/api/n/{SLUG}/runs", body), *output]
    runs_before = len(first) + 1
    with Kernels(server.proc.pid) as k:
        shared = asyncio.run(crowd(server.port, output, viewers, seconds))
        submits = asyncio.run(crowd(server.port, visit, viewers, seconds))
    crowd_kernels = k.new
    return {
        "first_ms": [v["wall_ms"] for v in first],
        "first_kernels": first_kernels,
        "first_polls": [v["polls"] for v in first],
        "first_marks": [v["marks"] for v in first],
        "again_ms": [v["wall_ms"] for v in again],
        "again_server_ms": [v["server_ms"] for v in again],
        "again_kernels": repeat_kernels,
        "page_bytes": first[-1]["bytes"],
        "shared": shared,
        "submits": submits,
        "crowd_kernels": crowd_kernels,
        "runs_expected": runs_before,
    }


# ---------------------------------------------------------------- Voilà --------------

XSRF = "0123456789abcdef"  # the same value as cookie and header, as Voilà's page sends it


def voila_page(c: Client) -> dict:
    with Kernels(server.proc.pid) as k:
        ms, status, _, page, ttfb = c.call("GET", "/")
    if status != 200 or CHECK not in page or PLOT not in page:
        fail("GET / (no last output or no plot)", status, page)
    shutdown(c, page)
    return {"ms": ms, "ttfb_ms": ttfb, "kernels": k.new, "bytes": len(page)}


def shutdown(c: Client, page: bytes) -> None:
    m = re.search(rb'"kernelId": "([0-9a-f-]+)"', page)
    if m is None:
        sys.exit("voila: no kernelId in the page; cannot shut its kernel down")
    headers = {"Cookie": f"_xsrf={XSRF}", "X-XSRFToken": XSRF}
    _, status, _, body, _ = c.call(
        "POST", f"/voila/api/shutdown/{m.group(1).decode()}", {}, headers
    )
    if status != 204:
        fail("the kernel shutdown", status, body)


def voila_crowd(n: int) -> dict:
    """`n` viewers open the page at once, once each: seconds until the last page."""
    out: list[dict] = []

    def one() -> None:
        c = Client(server.port)
        ms, status, _, page, _ = c.call("GET", "/")
        if status != 200 or CHECK not in page:
            fail("a concurrent GET /", status, page)
        out.append({"ms": ms, "page": page})

    with Kernels(server.proc.pid) as k:
        t0 = time.perf_counter()
        threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, CROWD_TIMEOUT - (time.perf_counter() - t0)))
        took = time.perf_counter() - t0
    if any(t.is_alive() for t in threads):
        sys.exit(
            f"voila: {sum(t.is_alive() for t in threads)} of {n} concurrent pages not done "
            f"after {CROWD_TIMEOUT:.0f} s"
        )
    closers = [
        threading.Thread(target=shutdown, args=(Client(server.port), o["page"])) for o in out
    ]
    for t in closers:
        t.start()
    for t in closers:
        t.join()
    if len(out) != n:
        sys.exit(f"voila: {n - len(out)} of {n} concurrent pages failed")
    lat = sorted(o["ms"] for o in out)
    return {
        "viewers": n,
        "seconds": took,
        "pages_per_s": n / took,
        "p50_ms": statistics.median(lat),
        "max_ms": lat[-1],
        "kernels": k.new,
    }


def bench_voila() -> dict:
    c = Client(server.port)
    voila_page(c)  # warm-up
    first = []
    for _ in range(first_n):
        time.sleep(GAP)
        first.append(voila_page(c))
    again = [voila_page(c) for _ in range(repeats)]
    got = {
        "first_ms": [p["ms"] for p in first],
        "first_ttfb_ms": [p["ttfb_ms"] for p in first],
        "first_kernels": [p["kernels"] for p in first],
        "again_ms": [p["ms"] for p in again],
        "again_kernels": sum(p["kernels"] for p in again),
        "page_bytes": first[-1]["bytes"],
    }
    if concurrent:
        got["crowd"] = voila_crowd(concurrent)
    return got


server = Server()
try:
    result = bench_kiln() if tool == "kiln" else bench_voila()
    result["start_s"] = server.start_s
finally:
    server.stop()
if tool == "kiln":
    result["runs_in_store"] = runs_in_store()
emit(**result)
