"""h. One server under load: start time, one-row latency and throughput, memory.

Starts one server (kiln serve, mlflow models serve, or the plain FastAPI endpoint under
uvicorn), each with one worker process on a free loopback port, and measures: seconds
from spawn to the first 200 answer of its readiness endpoint; the median latency of
one-row requests from 1 client; requests/s, p50 and p99 at CLIENTS closed-loop clients
(raw keep-alive sockets, loadgen.py); the RSS of the server's whole process tree and
its CPU seconds per request under load. Also times the bare fitted pipeline's
`predict(1-row DataFrame)` in this process, as the floor for the 1-client latency.

Usage: serve_bench.py WORKDIR PREPARED TOOL SECONDS CLIENTS KILN_CLI MLFLOW_ENV
"""

import asyncio
import http.client
import json
import os
import pickle
import signal
import socket
import statistics
import subprocess
import sys
import time

import psutil
from _child import emit
from loadgen import closed_loop, summary

workdir, prepared, tool = sys.argv[1], sys.argv[2], sys.argv[3]
seconds, clients = float(sys.argv[4]), int(sys.argv[5])
kiln_cli, mlflow_env = sys.argv[6], sys.argv[7]
here = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
url = f"http://127.0.0.1:{port}"
env = dict(os.environ)


def read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


record = read(os.path.join(prepared, "record.json"))
if tool == "kiln":
    cmd = [kiln_cli, "serve", os.path.join(prepared, "kiln-model"), "--port", str(port)]
    env["KILN_HOME"] = os.path.join(workdir, ".kiln")
    ready, path, body = "/ready", "/predict", record
elif tool == "mlflow":
    cmd = [
        os.path.join(mlflow_env, "bin", "mlflow"),
        "models",
        "serve",
        "-m",
        os.path.join(prepared, "mlflow-model"),
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    env["PATH"] = os.path.join(mlflow_env, "bin") + os.pathsep + env["PATH"]
    ready, path = "/ping", "/invocations"
    body = read(os.path.join(prepared, "split.json"))
elif tool == "fastapi":
    cmd = [
        os.path.join(mlflow_env, "bin", "python"),
        "-m",
        "uvicorn",
        "fastapi_app:app",
        "--app-dir",
        here,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    env["BENCH_PIPELINE"] = os.path.join(prepared, "pipeline.pkl")
    ready, path, body = "/health", "/predict", record
else:
    sys.exit(f"unknown tool {tool}")


def get(p: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", p)
        return conn.getresponse().status
    finally:
        conn.close()


def tree(pid: int) -> list:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def rss_mb(pid: int) -> float:
    return sum(p.memory_info().rss for p in tree(pid)) / 2**20


def cpu(pid: int) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in tree(pid))


log = open(os.path.join(workdir, f"{tool}-server.log"), "wb")  # noqa: SIM115 - closed below
t0 = time.perf_counter()
proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
try:
    while True:
        if proc.poll() is not None:
            log.close()
            tail = read(log.name).decode("utf-8", "replace")[-2000:]
            sys.exit(f"{tool} server exited {proc.returncode}: {tail}")
        try:
            if get(ready) == 200:
                break
        except OSError:
            pass
        if time.perf_counter() - t0 > 120:
            sys.exit(f"{tool} server not ready in 120 s")
        time.sleep(0.005)
    start_s = time.perf_counter() - t0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, body, {"content-type": "application/json"})
    answer = json.loads(conn.getresponse().read())
    conn.close()
    prediction = (answer.get("predictions") or [answer.get("prediction")])[0]
    asyncio.run(closed_loop(url, path, body, clients=8, seconds=1.0))  # warm-up
    one = summary(asyncio.run(closed_loop(url, path, body, clients=1, seconds=seconds)), seconds)
    c0 = cpu(proc.pid)
    results = asyncio.run(closed_loop(url, path, body, clients=clients, seconds=seconds))
    cpu_s = cpu(proc.pid) - c0
    many = summary(results, seconds)
    rss = rss_mb(proc.pid)
finally:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    log.close()

# The floor: the fitted pipeline's own predict on a one-row DataFrame, in this process.
import pandas as pd  # noqa: E402

with open(os.path.join(prepared, "pipeline.pkl"), "rb") as fh:
    pipeline = pickle.load(fh)
frame = pd.DataFrame([json.loads(record)])
times = []
for i in range(600):
    s = time.perf_counter()
    pipeline.predict(frame)
    if i >= 100:
        times.append(time.perf_counter() - s)

emit(
    prediction=prediction,
    start_s=start_s,
    lat1_ms=one["p50_ms"],
    rps=many["rps"],
    p50_ms=many["p50_ms"],
    p99_ms=many["p99_ms"],
    statuses=many["statuses"],
    rss_mb=rss,
    cpu_ms=1000 * cpu_s / max(many["requests"], 1),
    predict_ms=1000 * statistics.median(times),
)
