"""u. The dashboard: `kiln ui` vs `mlflow server` answering runs pages over 100,000 runs.

Once per session (untimed), the same seeded runs (10 params, 10 metrics, 5 tags each)
go into a kiln store through one `TrackingClient` (kiln has no bulk-import API; its
background writer batches many runs per transaction) and into an MLflow SQLite store
through MLflow's own SQLAlchemy models in one transaction, plus one run with 1,000,000
values of one metric in each. Each repetition then starts each tool's server over its
store, fresh (bench/scenarios/ui_bench.py), and asks it for the runs page and 20
filtered/sorted pages (bench/scenarios/_uidata.py), the long metric downsampled for a
chart, and (kiln, with Chromium) the long run's page until its chart has rendered.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
from pathlib import Path
from typing import Any

from _harness import KILN_CLI, KILN_PY, MLFLOW_ENV, MLFLOW_PY, BenchError, run
from _scenarios import FULL, Context, Figures, Row, Scenario, Stats, _cell, _sec
from _uidata import PAGE, QUERIES  # bench/scenarios is on sys.path (see _scenarios)

CHROMIUM = Path("/usr/bin/chromium")
TOOLS = ("kiln", "mlflow")
CAP = {"kiln": 60.0, "mlflow": 20.0}
"""Seconds after which a request is counted as this long (a lower bound) and its server
restarted: MLflow takes minutes for some searches over 100,000 runs."""


def _msf(v: float) -> str:
    return f"{v:.1f}" if v < 100 else f"{v:,.0f}"


def _p95(values: list[float]) -> float:
    """The 95th percentile, interpolated between the two nearest ranks."""
    xs = sorted(values)
    pos = 0.95 * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _query_text(i: int) -> str:
    q = QUERIES[i]
    return f"`{q.kiln_filter or '(no filter)'}` by `{q.kiln_order or 'start_time desc'}`"


class Dashboard(Scenario):
    key, title = "u", "the dashboard: runs pages over many runs (kiln ui vs mlflow server)"
    steps = 2
    prepare_steps = 2

    def __init__(self) -> None:
        self.populated: dict[str, dict[str, Any]] = {}
        self.per_query: dict[str, dict[int, list[float]]] = {t: {} for t in TOOLS}
        self.capped: dict[str, list[int]] = {t: [] for t in TOOLS}
        self.reps = 0
        self.loads: list[float] = []
        self.spikes: dict[str, bool] = {}
        self.series_points: dict[str, int] = {}
        self.chart_problems: list[str] = []
        self.chart_parts: list[dict[str, float]] = []
        self.page_bytes: dict[str, float] = {}
        self.chromium = False

    def _sizes(self, ctx: Context) -> tuple[int, int]:
        """Runs in the store, and values of the long run's metric."""
        return (100_000, 1_000_000) if ctx.sizes == FULL else (10_000, 100_000)

    def prepare(self, ctx: Context) -> None:
        if not MLFLOW_PY.exists():
            raise BenchError(
                f"No MLflow env at {MLFLOW_ENV}: run "
                "KILN_BENCH_ANCHORS=mlflow bash bench/setup_anchors.sh."
            )
        self.chromium = CHROMIUM.exists() and importlib.util.find_spec("playwright") is not None
        n, points = self._sizes(ctx)
        wd = ctx.ws.root / f"prepared-{self.key}"
        wd.mkdir()
        ctx.prepared[self.key] = wd
        label = f"{self.key}. kiln populate {n:,} runs + {points:,} points"
        ctx.step(label)
        script = ctx.ws.script("kiln_ui_populate.py")
        child = run(
            label,
            [str(KILN_PY), script, str(wd), str(n), str(points)],
            cwd=wd,
            timeout=ctx.timeout * 3,
        )
        self.populated["kiln"] = child.data
        label = f"{self.key}. mlflow populate {n:,} runs + {points:,} points"
        ctx.step(label)
        script = ctx.ws.script("mlflow_ui_populate.py")
        times = wd / "times.json"
        cmd = [str(MLFLOW_PY), script, str(wd), str(n), str(points), str(times)]
        child = run(label, cmd, cwd=wd, timeout=ctx.timeout * 3)
        self.populated["mlflow"] = child.data

    def _asked(self, ctx: Context, tool: str) -> list[int]:
        """The queries a tool answers this repetition: kiln all 21 every time; at full
        size MLflow the runs page and a third of the 20 others (each once in 3
        repetitions), since it takes up to minutes per search there."""
        if tool == "kiln" or ctx.sizes != FULL:
            return list(range(len(QUERIES)))
        part = self.reps % 3
        return [0] + [i for i in range(1, len(QUERIES)) if (i - 1) % 3 == part]

    def _server(self, ctx: Context, tool: str) -> dict[str, Any]:
        label = f"{self.key}. {tool} server"
        ctx.step(label)
        self.loads.append(os.getloadavg()[0])
        with ctx.ws.fresh(f"{self.key}-{tool}") as wd:
            cmd = [
                str(KILN_PY),
                ctx.ws.script("ui_bench.py"),
                str(wd),
                tool,
                str(ctx.prepared[self.key]),
                str(KILN_CLI),
                str(MLFLOW_ENV),
                str(self.populated[tool]["long_id"]),
                "1" if self.chromium and tool == "kiln" else "0",
                ",".join(map(str, self._asked(ctx, tool))),
                str(CAP[tool]),
            ]
            # MLflow takes up to minutes per search over 100,000 runs.
            return run(label, cmd, cwd=wd, timeout=ctx.timeout * 3).data

    def rep(self, ctx: Context) -> Figures:
        got = {tool: self._server(ctx, tool) for tool in TOOLS}
        self.reps += 1
        kiln = dict(zip(got["kiln"]["asked"], got["kiln"]["pages"], strict=True))
        for i, b in zip(got["mlflow"]["asked"], got["mlflow"]["pages"], strict=True):
            a = kiln[i]
            if a is None or b is None:  # past the cap: nothing to compare
                continue
            same = a["times"] == b["times"] if QUERIES[i].by_time else a["names"] == b["names"]
            if not same or len(a["names"]) != len(b["names"]):
                raise BenchError(
                    f"{self.key}: query {i} ({_query_text(i)}) gave different pages: kiln "
                    f"{a['names'][:5]}... ({len(a['names'])} runs), MLflow {b['names'][:5]}... "
                    f"({len(b['names'])} runs)."
                )
        out: Figures = {}
        for tool, d in got.items():
            times = d["times_ms"]
            for i, ms in zip(d["asked"], times, strict=True):
                self.per_query[tool].setdefault(i, []).append(ms)
            self.capped[tool] += d["capped"]
            out[f"{tool}_median"] = statistics.median(times)
            out[f"{tool}_p95"] = _p95(times)
            out[f"{tool}_max"] = max(times)
            out[f"{tool}_first"] = times[0]
            out[f"{tool}_series"] = statistics.median(d["series_ms"])
            out[f"{tool}_start"] = d["start_s"]
            self.spikes[tool] = bool(d["series"]["spike"])
            if d["series"].get("capped"):
                self.capped[tool].append(-1)  # -1: the long metric's series
            self.series_points[tool] = int(d["series"]["points"])
            answered = [b for b in d["bytes"] if b]
            if answered:
                self.page_bytes[tool] = statistics.median(answered)
        if got["kiln"].get("server_ms"):
            own = got["kiln"]["server_ms"]
            out["kiln_own_median"] = statistics.median(own)
            out["kiln_own_p95"] = _p95(own)
        html = got["kiln"]["html_ms"]
        out["kiln_html_median"] = statistics.median(html)
        out["kiln_html_p95"] = _p95(html)
        if got["kiln"]["chart_ms"]:
            out["kiln_chart"] = statistics.median(got["kiln"]["chart_ms"])
            self.chart_parts += got["kiln"]["chart_parts"]
        self.chart_problems += got["kiln"]["chart_problems"]
        return out

    def _pooled(self, tool: str) -> list[float]:
        """Every answer of the session: MLflow's queries are spread over repetitions."""
        return [ms for values in self.per_query[tool].values() for ms in values]

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        n, points = self._sizes(ctx)

        def med(name: str) -> float:
            return s[name][0]

        def pair(name: str) -> tuple[str, str]:
            return _cell(s, f"kiln_{name}", _msf), "MLflow " + _cell(s, f"mlflow_{name}", _msf)

        goal = n == 100_000
        pooled = self._pooled("mlflow")
        capped = bool(self.capped["mlflow"])
        at_least = "≥ " if capped else ""

        def anchor(value: float) -> str:
            return f"MLflow {at_least}{_msf(value)}"

        m_median, m_p95, m_max = statistics.median(pooled), _p95(pooled), max(pooled)
        rows = [
            Row(
                f"runs page + 20 filtered/sorted pages over {n:,} runs ({PAGE} a page), "
                "median of the 21, ms",
                _cell(s, "kiln_median", _msf),
                anchor(m_median),
                m_median / med("kiln_median"),
                "kiln < 100 ms",
                med("kiln_median") < 100 if goal else None,
            ),
            Row(
                "the same 21 pages: p95, ms",
                _cell(s, "kiln_p95", _msf),
                anchor(m_p95),
                m_p95 / med("kiln_p95"),
                "kiln < 300 ms",
                med("kiln_p95") < 300 if goal else None,
            ),
            Row(
                "the same 21 pages: the slowest, ms",
                _cell(s, "kiln_max", _msf),
                anchor(m_max),
                m_max / med("kiln_max"),
            ),
            Row(
                "the runs page as it opens (no filter, newest first), ms",
                *pair("first"),
                med("mlflow_first") / med("kiln_first"),
            ),
            *(
                [
                    Row(
                        "the same 21 pages, kiln's own time (its `Server-Timing: app;dur`), "
                        "median / p95, ms",
                        f"{_msf(med('kiln_own_median'))} / {_msf(med('kiln_own_p95'))}",
                        "—",
                    )
                ]
                if "kiln_own_median" in s
                else []
            ),
            Row(
                "the same 21 pages as server-rendered HTML (`/runs`), median / p95, ms",
                f"{_msf(med('kiln_html_median'))} / {_msf(med('kiln_html_p95'))}",
                "—",
            ),
            Row(
                f"a run's metric with {points:,} values, downsampled for a chart "
                "(1,000 buckets), ms",
                _cell(s, "kiln_series", _msf),
                ("MLflow ≥ " if -1 in self.capped["mlflow"] else "MLflow ")
                + _cell(s, "mlflow_series", _msf),
                med("mlflow_series") / med("kiln_series"),
            ),
        ]
        if "kiln_chart" in s:
            rows.append(
                Row(
                    "that run's page in Chromium: navigation to its chart drawn, ms",
                    _cell(s, "kiln_chart", _msf),
                    "—",
                    None,
                    "< 1 s",
                    med("kiln_chart") < 1000 if points == 1_000_000 else None,
                )
            )
        rows.append(
            Row(
                "server start to its first ready answer, s",
                _cell(s, "kiln_start", _sec),
                "MLflow " + _cell(s, "mlflow_start", _sec),
                med("mlflow_start") / med("kiln_start"),
            )
        )
        return rows

    def _slowest(self, tool: str, top: int = 3) -> str:
        got = self.per_query[tool]
        if not got:
            return "none"
        medians = {i: statistics.median(v) for i, v in got.items()}
        order = sorted(medians, key=lambda i: -medians[i])[:top]
        return "; ".join(f"{_query_text(i)} {_msf(medians[i])} ms" for i in order)

    def _capped(self, tool: str) -> str:
        hits = self.capped[tool]
        if not hits:
            return "none"
        named = ["the long metric" if i < 0 else str(i) for i in sorted(set(hits))]
        return f"{len(hits)} answers (queries {', '.join(named)})"

    def _breakdown(self) -> str:
        parts = self.chart_parts
        if not parts:
            return ""

        def at(name: str) -> str:
            return _msf(statistics.median(p[name] for p in parts))

        return (
            "Where its time went (browser timings, ms after navigation, medians): the "
            f"HTML's last byte {at('html')}, plotly.min.js's {at('plotly')}, the series "
            f"asked for at {at('asked')} (after Plotly has run), its last byte "
            f"{at('series')}, chart drawn {at('drawn')}."
        )

    def _each(self, tool: str) -> str:
        got = self.per_query[tool]
        return ", ".join(f"{i}: {_msf(statistics.median(got[i]))}" for i in sorted(got))

    def describe(self, ctx: Context) -> list[str]:
        n, points = self._sizes(ctx)
        k, m = self.populated.get("kiln", {}), self.populated.get("mlflow", {})
        notes = [
            f"Store: {n:,} runs in experiment `bench`, each with 10 params, 10 metrics (one "
            "value each) and 5 tags, the same seeded values for both tools "
            "(bench/scenarios/_uidata.py), and one run in `bench-long` with "
            f"{points:,} values of `loss` (one spike of 1000 at two thirds). kiln: "
            "populated through one `TrackingClient` in one process (create_run with tags, "
            "log_params, log_metrics, end_run per run; kiln has no bulk-import API, and its "
            "background writer commits many runs per transaction): "
            f"{k.get('rate', 0):,.0f} runs/s ({k.get('seconds', 0):.0f} s; the long run "
            f"{k.get('long_seconds', 0):.1f} s; kiln.db {k.get('db_mb', 0):,.0f} MB). "
            "MLflow: the rows its `create_run` + `log_batch` + `set_terminated` write, "
            "through its own SQLAlchemy models in one transaction, with kiln's start and "
            f"end times ({m.get('rate', 0):,.0f} runs/s; its client makes ~35 runs/s). "
            "Populated once per session; the servers read the same files every repetition.",
            "Servers, one process each, started fresh each repetition on a free loopback "
            "port: `kiln --store <store> ui --port 0 --port-file <file>` (Starlette on "
            "uvicorn); `mlflow server --backend-store-uri sqlite:///<mlflow.db> --workers 1` "
            "(mlflow==3.17.2). One untimed warm-up query each (not among the 21), then each "
            "query once, one at a time on one keep-alive connection. kiln answers all 21 "
            "every repetition"
            + (
                "; MLflow, which takes up to minutes per search at this size, the runs page "
                "every repetition and a third of the other 20 (each once in 3 repetitions): "
                "its median, p95 and slowest are over all its answers of the session, kiln's "
                "are medians over repetitions"
                if ctx.sizes == FULL
                else ", and so does MLflow"
            )
            + f". A request unanswered after {CAP['mlflow']:.0f} s (MLflow; kiln "
            f"{CAP['kiln']:.0f} s) counts as that long, a lower bound (marked ≥), and its "
            "server is restarted and warmed up again. Past the cap: MLflow "
            + self._capped("mlflow")
            + "; kiln "
            + self._capped("kiln")
            + ".",
            "Queries: the runs page as it opens (no filter, newest first), then 20 "
            "different filters on params, metrics, tags and the name, ordered by metrics, "
            "params and start_time; kiln: `GET /api/runs?experiment=bench&filter=..&order=..` "
            f"(its page size, {PAGE}); MLflow: its UI's `POST "
            "/ajax-api/2.0/mlflow/runs/search` with the same filter and order_by, "
            f"`max_results: {PAGE}`, `run_view_type: ACTIVE_ONLY`. MLflow's filter has no "
            "`or`, and no `in` for params or tags, so the queries use `=`, `!=`, `like` and "
            "numeric comparisons only. The harness checks both tools return the same page "
            "for every query (the same runs in the same order; by start times where the "
            "order is start_time, whose millisecond ties each tool breaks its own way). "
            f"Median response body: kiln {self.page_bytes.get('kiln', 0) / 1024:,.0f} KiB "
            "(the page's default columns: 5 params, 6 metrics), MLflow "
            f"{self.page_bytes.get('mlflow', 0) / 1024:,.0f} KiB (every param, metric and "
            "tag of each run).",
            "Time: each figure is the client's wall time on loopback, from sending the "
            "request to reading the whole body (`http.client`); the client, the server and "
            "the load share the 2 cores. The targets are checked on it, which is stricter "
            "than server time; kiln's own time per answer (its `Server-Timing` header, from "
            "the request reaching the app to the body sent) is listed too; MLflow sends none. "
            "The HTML row repeats the 21 queries as `GET /runs` pages right after the JSON "
            "ones (so the database pages they read are warm).",
            "Slowest pages (median over repetitions): kiln: "
            + self._slowest("kiln")
            + ". MLflow: "
            + self._slowest("mlflow")
            + ". Each query's median, ms (0 = the runs page; the list in "
            "bench/scenarios/_uidata.py): kiln "
            + self._each("kiln")
            + "; MLflow "
            + self._each("mlflow")
            + ".",
            f"Long metric: kiln `GET /api/runs/<id>/metrics/loss?points=1000` (each of 1,000 "
            f"step buckets keeps its min and max: {self.series_points.get('kiln', 0):,} "
            f"points, spike {'kept' if self.spikes.get('kiln') else 'LOST'}) vs the call "
            "MLflow's UI charts with, `GET /ajax-api/2.0/mlflow/metrics/"
            "get-history-bulk-interval?run_ids=<id>&metric_key=loss&max_results=1000` "
            f"({self.series_points.get('mlflow', 0):,} evenly spaced steps, spike "
            f"{'kept' if self.spikes.get('mlflow') else 'not shown'}); median of 5 calls.",
        ]
        if self.chromium:
            problems = sorted(set(self.chart_problems))
            notes.append(
                "Chart: kiln's run page of the long run in headless Chromium "
                "(/usr/bin/chromium, Playwright), a fresh browser context each time (no "
                "cached Plotly), from `page.goto` to `.plot .main-svg` attached; median of "
                "3 per repetition. "
                + self._breakdown()
                + " MLflow's React UI was not driven. Console errors: "
                + ("; ".join(problems[:3]) if problems else "none")
                + "."
            )
        else:
            notes.append("Chart: not measured (no /usr/bin/chromium or Playwright here).")
        cores = os.cpu_count() or 1
        loads = sorted(self.loads) or [os.getloadavg()[0]]
        spread = (
            f"the 1-minute load average before the servers ranged {loads[0]:.1f}-"
            f"{loads[-1]:.1f} (median {loads[len(loads) // 2]:.1f}) on {cores} cores"
        )
        if loads[-1] > 0.75 * cores:
            notes.append(
                f"The machine was shared with other work during this run: {spread}, so "
                "absolute figures are noisy. Re-run `.venv/bin/python bench/run.py --only u "
                "--reps 3` on a quiet machine for clean ones."
            )
        else:
            notes.append(f"Load during this run: {spread}.")
        return notes
