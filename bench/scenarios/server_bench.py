"""w. One tracking server, driven by MLflow's own client: `kiln server` or `mlflow server`.

Runs in MLflow's env (its `mlflow` client is the one users have). Starts the server as a
real process in its own session on a free loopback port, over a fresh store: kiln
(`kiln --store <dir> server --port 0 --port-file <file>`) or MLflow (`mlflow server
--backend-store-uri sqlite:///<db> --workers 1`). Then, with MLFLOW_TRACKING_URI pointing
at it, the same client code for both:

1. runs: RUNS fluent runs (`mlflow.start_run`, `log_params` of 5, `log_metrics` of 5,
   the run ended), the search scenario's seeded values;
2. log_metric: CALLS calls of `mlflow.log_metric` in one run, each timed;
3. log_batch: BATCHES calls of `MlflowClient.log_batch` with 1,000 metric points each;
4. concurrent: 8 threads, each its own run and CALLS // 4 `log_metric` calls;
5. search: `MlflowClient.search_runs` with the search scenario's filter, ordered by a
   metric, 100 a page, 10 times (the count checked against the seeded data);
6. history: `get_metric_history` of the log_metric run's CALLS points, 5 times.

Prints the rates, latencies, the server's start time, its process tree's RSS and that
of the process answering requests.

Usage: server_bench.py WORKDIR TOOL KILN_CLI MLFLOW_ENV RUNS CALLS BATCHES
"""

import contextlib
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from _child import SEARCH_FILTER, emit, expected_search, search_dataset

workdir, tool, kiln_cli, mlflow_env = sys.argv[1:5]
n_runs, calls, batches = (int(v) for v in sys.argv[5:8])
THREADS = 8
SEARCH_REPS = 5 * 2
HISTORY_REPS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the server's process before exec: SIGKILL it when this script exits."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def tree_rss_mb(pid: int) -> tuple[float, int]:
    """The resident memory of a process and all its descendants, MB, and how many."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, todo, seen = 0, [pid], 0
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        seen += 1
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024, seen


def answering_rss_mb(pid: int) -> float:
    """The resident memory of the process that answers requests, MB: kiln's server
    itself; MLflow's uvicorn worker (its other processes run background jobs)."""
    for entry in [str(pid), *os.listdir("/proc")]:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        ours = int(entry) == pid if tool == "kiln" else parent == pid and b"uvicorn" in args
        if ours:
            with open(f"/proc/{entry}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
    return float("nan")


def start() -> tuple[subprocess.Popen, int, float]:
    env = dict(os.environ)
    port_file = os.path.join(workdir, "port")
    if tool == "kiln":
        env["KILN_HOME"] = os.path.join(workdir, ".kiln")
        store = os.path.join(workdir, "kiln")
        cmd = [kiln_cli, "--store", store, "server", "--port", "0", "--port-file", port_file]
        port = 0
    else:
        env["PATH"] = os.path.join(mlflow_env, "bin") + os.pathsep + env["PATH"]
        port = free_port()
        cmd = [
            os.path.join(mlflow_env, "bin", "mlflow"),
            "server",
            "--backend-store-uri",
            "sqlite:///" + os.path.join(os.path.abspath(workdir), "mlflow.db"),
            "--default-artifact-root",
            os.path.join(workdir, "mlartifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
    log = open(os.path.join(workdir, "server.log"), "wb")  # noqa: SIM115 - the process's
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=log,
        start_new_session=True, preexec_fn=_die_with_parent,
    )  # fmt: skip
    while True:
        if proc.poll() is not None:
            sys.exit(f"{tool} server exited {proc.returncode}: {tail()}")
        if time.perf_counter() - t0 > 180:
            stop(proc)
            sys.exit(f"{tool} server not ready in 180 s: {tail()}")
        if tool == "kiln" and not port:
            with contextlib.suppress(OSError, ValueError), open(port_file) as fh:
                port = int(fh.read().strip())
            if not port:
                time.sleep(0.01)
                continue
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                c.close()
                return proc, port, time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.01)


def tail() -> str:
    with open(os.path.join(workdir, "server.log"), "rb") as fh:
        return fh.read().decode("utf-8", "replace")[-2000:]


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def workload(url: str) -> dict[str, float]:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    mlflow.set_tracking_uri(url)
    client = MlflowClient(url)
    experiment = client.create_experiment("bench-w")
    out: dict[str, float] = {}

    t0 = time.perf_counter()
    for name, params, metrics in search_dataset(n_runs):
        with mlflow.start_run(experiment_id=experiment, run_name=name):
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
    out["runs_rate"] = n_runs / (time.perf_counter() - t0)

    latencies = []
    with mlflow.start_run(experiment_id=experiment, run_name="log-metric") as run:
        t0 = time.perf_counter()
        for step in range(calls):
            s = time.perf_counter()
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            latencies.append(1000 * (time.perf_counter() - s))
        out["metric_rate"] = calls / (time.perf_counter() - t0)
        history_run = run.info.run_id
    out["metric_p50"] = statistics.median(latencies)
    out["metric_p95"] = statistics.quantiles(latencies, n=20)[-1]

    with mlflow.start_run(experiment_id=experiment, run_name="log-batch") as run:
        now = int(time.time() * 1000)
        t0 = time.perf_counter()
        for b in range(batches):
            points = [Metric(f"m{i % 10}", float(i), now, b * 100 + i // 10) for i in range(1000)]
            client.log_batch(run.info.run_id, metrics=points)
        out["batch_rate"] = 1000 * batches / (time.perf_counter() - t0)

    per_thread = max(1, calls // 4)
    run_ids = [
        client.create_run(experiment, run_name=f"thread-{t}").info.run_id for t in range(THREADS)
    ]
    errors: list[BaseException] = []

    def writer(run_id: str) -> None:
        try:
            for step in range(per_thread):
                client.log_metric(run_id, "x", float(step), step=step)
        except Exception as exc:  # noqa: BLE001 - reported below, after the join
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(r,)) for r in run_ids]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["concurrent_rate"] = THREADS * per_thread / (time.perf_counter() - t0)
    if errors:
        sys.exit(f"{tool}: a concurrent writer failed: {errors[0]!r}")
    for r in run_ids:
        client.set_terminated(r)

    expected, _best = expected_search(n_runs)
    times = []
    for _ in range(SEARCH_REPS):
        s = time.perf_counter()
        found = client.search_runs(
            [experiment], SEARCH_FILTER, order_by=["metrics.auc DESC"], max_results=100
        )
        times.append(1000 * (time.perf_counter() - s))
        if len(found) != min(expected, 100):
            sys.exit(f"{tool}: search found {len(found)} runs; expected {min(expected, 100)}")
        aucs = [r.data.metrics["auc"] for r in found]
        if aucs != sorted(aucs, reverse=True):
            sys.exit(f"{tool}: search results are not ordered by auc")
    out["search_ms"] = statistics.median(times)

    times = []
    for _ in range(HISTORY_REPS):
        s = time.perf_counter()
        history = client.get_metric_history(history_run, "loss")
        times.append(1000 * (time.perf_counter() - s))
        if len(history) != calls:
            sys.exit(f"{tool}: the history has {len(history)} points; expected {calls}")
    out["history_ms"] = statistics.median(times)
    return out


proc, port, start_s = start()
try:
    figures = workload(f"http://127.0.0.1:{port}")
    figures["server_rss"], figures["server_procs"] = tree_rss_mb(proc.pid)
    figures["answer_rss"] = answering_rss_mb(proc.pid)
    if proc.poll() is not None:
        sys.exit(f"{tool} server died during the workload: {tail()}")
finally:
    stop(proc)
emit(tool=tool, start_s=start_s, **figures)
