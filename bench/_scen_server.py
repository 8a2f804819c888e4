"""w. The team server: MLflow's own client logging to `kiln server` vs `mlflow server`.

Code written for an MLflow tracking server runs unchanged against `kiln server` (it
speaks MLflow's tracking REST API). Each repetition starts each server afresh over a
fresh store and drives it with the same MLflow client code from MLflow's env
(bench/scenarios/server_bench.py): fluent runs with params and metrics, `log_metric`
one call at a time, `log_batch`, 8 concurrent writers, a filtered search and a metric's
history.
"""

from __future__ import annotations

import os

from _harness import KILN_CLI, MLFLOW_ENV, MLFLOW_PY, BenchError, run
from _scenarios import FULL, Context, Figures, Row, Scenario, Stats, _cell, _mb, _rate, _sec

TOOLS = ("kiln", "mlflow")


def _ms(v: float) -> str:
    return f"{v:.1f}" if v < 100 else f"{v:,.0f}"


class TeamServer(Scenario):
    key, title = "w", "the team server: MLflow's client logging to kiln server vs mlflow server"
    steps = 2

    def __init__(self) -> None:
        self.procs: dict[str, int] = {}
        self.loads: list[float] = []

    def _sizes(self, ctx: Context) -> tuple[int, int, int]:
        """Runs created, log_metric calls in one run, log_batch calls of 1,000 points."""
        return (200, 1_000, 20) if ctx.sizes == FULL else (50, 200, 5)

    def prepare(self, ctx: Context) -> None:
        if not MLFLOW_PY.exists():
            raise BenchError(
                f"No MLflow env at {MLFLOW_ENV}: run "
                "KILN_BENCH_ANCHORS=mlflow bash bench/setup_anchors.sh."
            )

    def _server(self, ctx: Context, tool: str) -> dict[str, float]:
        label = f"{self.key}. {tool} server"
        ctx.step(label)
        self.loads.append(os.getloadavg()[0])
        with ctx.ws.fresh(f"{self.key}-{tool}") as wd:
            cmd = [
                str(MLFLOW_PY),
                ctx.ws.script("server_bench.py"),
                str(wd),
                tool,
                str(KILN_CLI),
                str(MLFLOW_ENV),
                *map(str, self._sizes(ctx)),
            ]
            return run(label, cmd, cwd=wd, timeout=ctx.timeout).data

    def rep(self, ctx: Context) -> Figures:
        out: Figures = {}
        for tool in TOOLS:
            got = self._server(ctx, tool)
            self.procs[tool] = int(got["server_procs"])
            for name in (
                "start_s",
                "runs_rate",
                "metric_rate",
                "metric_p50",
                "metric_p95",
                "batch_rate",
                "concurrent_rate",
                "search_ms",
                "history_ms",
                "server_rss",
                "answer_rss",
            ):
                out[f"{tool}_{name}"] = float(got[name])
        return out

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        n_runs, calls, batches = self._sizes(ctx)

        def med(name: str) -> float:
            return s[name][0]

        def faster(name: str, measure: str, fmt: object = _rate, goal: float | None = None) -> Row:
            """A rate: kiln's ÷ MLflow's."""
            ratio = med(f"kiln_{name}") / med(f"mlflow_{name}")
            return Row(
                measure,
                _cell(s, f"kiln_{name}", fmt),  # type: ignore[arg-type]
                "MLflow " + _cell(s, f"mlflow_{name}", fmt),  # type: ignore[arg-type]
                ratio,
                "" if goal is None else f"≥ {goal:g}x",
                None if goal is None else ratio >= goal,
            )

        def quicker(name: str, measure: str) -> Row:
            """A time: MLflow's ÷ kiln's."""
            return Row(
                measure,
                _cell(s, f"kiln_{name}", _ms),
                "MLflow " + _cell(s, f"mlflow_{name}", _ms),
                med(f"mlflow_{name}") / med(f"kiln_{name}"),
            )

        return [
            faster(
                "runs_rate",
                f"runs/s: {n_runs} fluent runs (`start_run`, `log_params` 5, `log_metrics` 5, end)",
                goal=2,
            ),
            faster(
                "metric_rate",
                f"`mlflow.log_metric` calls/s, {calls:,} in one run, one at a time",
                goal=2,
            ),
            quicker("metric_p50", "  one `log_metric` call, p50, ms"),
            quicker("metric_p95", "  one `log_metric` call, p95, ms"),
            faster("batch_rate", f"metric points/s through `log_batch` ({batches} x 1,000 points)"),
            faster("concurrent_rate", "`log_metric` calls/s from 8 threads at once, each its run"),
            quicker(
                "search_ms",
                f"`search_runs` with a filter, by a metric, 100 a page, over {n_runs} runs, ms",
            ),
            quicker("history_ms", f"`get_metric_history` of {calls:,} points, ms"),
            Row(
                "server start to its first health answer, s",
                _cell(s, "kiln_start_s", _sec),
                "MLflow " + _cell(s, "mlflow_start_s", _sec),
                med("mlflow_start_s") / med("kiln_start_s"),
            ),
            Row(
                "server RSS after the workload (its whole process tree), MB",
                _cell(s, "kiln_server_rss", _mb),
                "MLflow " + _cell(s, "mlflow_server_rss", _mb),
                med("mlflow_server_rss") / med("kiln_server_rss"),
            ),
            Row(
                "  of which the process answering requests (MLflow: its uvicorn worker), MB",
                _cell(s, "kiln_answer_rss", _mb),
                "MLflow " + _cell(s, "mlflow_answer_rss", _mb),
                med("mlflow_answer_rss") / med("kiln_answer_rss"),
            ),
        ]

    def describe(self, ctx: Context) -> list[str]:
        n_runs, calls, batches = self._sizes(ctx)
        cores = os.cpu_count() or 1
        loads = sorted(self.loads) or [os.getloadavg()[0]]
        notes = [
            "Servers, one process tree each, started fresh each repetition on a free "
            "loopback port over a fresh store: `kiln --store <dir> server --port 0` (the "
            "embedded SQLite store; Starlette on uvicorn with httptools) and `mlflow server "
            "--backend-store-uri sqlite:///<db> --workers 1` (mlflow==3.17.2, with httptools "
            "and uvloop in its env). No token on loopback for either. Process trees at the "
            f"end: kiln {self.procs.get('kiln', 0)}, MLflow {self.procs.get('mlflow', 0)} "
            "processes (MLflow's: the `mlflow server` launcher, its uvicorn worker, and a job "
            "runner with its huey consumers).",
            "Client: the same script in MLflow's env for both (bench/scenarios/"
            "server_bench.py), `MLFLOW_TRACKING_URI=http://127.0.0.1:<port>`: "
            f"{n_runs} `mlflow.start_run` blocks with the search scenario's seeded 5 params "
            f"and 5 metrics (a run is created, two log-batch calls, the run updated); "
            f"{calls:,} `mlflow.log_metric` calls in one run, each timed; {batches} "
            "`MlflowClient.log_batch` calls of 1,000 points; 8 threads, each its own run, "
            f"{max(1, calls // 4):,} `log_metric` calls each, all at once; `search_runs` "
            "with `metrics.acc > 0.5 and params.model = 'rf'`, ordered by `metrics.auc DESC`, "
            "100 a page, 10 times (the count and the order checked); `get_metric_history` "
            f"of the {calls:,} points, 5 times. Each call answers only once its write is "
            "committed, on both servers.",
            f"Load: the 1-minute load average before each server ranged {loads[0]:.1f}-"
            f"{loads[-1]:.1f} on {cores} cores; client and server share them.",
        ]
        return notes
