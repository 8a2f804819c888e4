"""The scenarios: what each repetition runs, and how its medians become a table.

Each scenario's `rep` runs one repetition of every case, kiln first then MLflow, each
case in a fresh folder with a fresh store, and returns its figures by name; the harness
calls it `reps` times and takes the median of each figure.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _harness import (
    KILN_CLI,
    KILN_PY,
    MLFLOW_CLI,
    MLFLOW_PY,
    BenchError,
    Workspace,
    run,
    run_together,
)

sys.path.insert(0, str(Path(__file__).resolve().parent / "scenarios"))
from _child import expected_search


@dataclass(frozen=True)
class Sizes:
    """How much work each case does. MLflow cases are smaller where MLflow is slow."""

    a_kiln: int = 10_000  # kiln.log_metric calls in one run
    a_mlflow: int = 1_000  # mlflow.log_metric calls (10,000 would take about a minute)
    a_batch: int = 10_000  # metric values through MlflowClient.log_batch ...
    batch_size: int = 1_000  # ... this many per call
    writers: int = 8
    b_kiln: int = 5_000  # log_metric calls per kiln writer
    b_mlflow: int = 100  # log_metric calls per MLflow writer
    c_kiln: int = 1_000  # runs created, 5 params + 5 metrics each
    c_mlflow: int = 200
    d_runs: int = 10_000  # runs in the searched store


FULL = Sizes()
QUICK = Sizes(
    a_kiln=2_000,
    a_mlflow=200,
    a_batch=5_000,
    b_kiln=1_000,
    b_mlflow=30,
    c_kiln=200,
    c_mlflow=40,
    d_runs=2_000,
)


@dataclass
class Context:
    """What scenarios share: the workspace, sizes, timeout and a progress callback."""

    ws: Workspace
    sizes: Sizes
    timeout: float
    step: Callable[[str], None]
    prepared: dict[str, Path] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def script(self, tool: str, name: str) -> list[str]:
        """The command that runs a scenario script with its tool's interpreter."""
        python = KILN_PY if tool == "kiln" else MLFLOW_PY
        return [str(python), self.ws.script(f"{tool}_{name}.py")]


@dataclass
class Row:
    """One line of a scenario's table.

    Attributes:
        measure: What is measured.
        kiln: kiln's figure, formatted.
        anchor: MLflow's figure, formatted.
        ratio: kiln's advantage: its rate ÷ MLflow's, or MLflow's time ÷ kiln's.
        target: The goal, as text; empty when the row has none.
        met: Whether the goal is met; None when the row has none.
    """

    measure: str
    kiln: str
    anchor: str
    ratio: float | None = None
    target: str = ""
    met: bool | None = None


def _goal(
    measure: str, kiln: str, anchor: str, ratio: float, minimum: float, unit: str = "x"
) -> Row:
    return Row(measure, kiln, anchor, ratio, f"≥ {minimum:g}{unit}", ratio >= minimum)


Figures = dict[str, float]
Stats = dict[str, tuple[float, float, float]]  # name -> (median, min, max)


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def _sec(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _mb(v: float) -> str:
    return f"{v:,.0f}"


def _cell(stats: Stats, name: str, fmt: Callable[[float], str]) -> str:
    med, lo, hi = stats[name]
    return fmt(med) if fmt(lo) == fmt(hi) else f"{fmt(med)} ({fmt(lo)}-{fmt(hi)})"


def _rss_row(stats: Stats, kiln: str, anchor: str, what: str = "peak RSS, MB") -> Row:
    return Row(what, _cell(stats, kiln, _mb), _cell(stats, anchor, _mb))


class Scenario:
    """Base: a key ("a"), a title, the children per repetition, and the three hooks."""

    key = ""
    title = ""
    steps = 1  # child processes per repetition
    prepare_steps = 0  # child processes of `prepare`

    def prepare(self, ctx: Context) -> None:
        """Untimed set-up done once per session."""

    def rep(self, ctx: Context) -> Figures:
        raise NotImplementedError

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        raise NotImplementedError

    def describe(self, ctx: Context) -> list[str]:
        return []

    def _one(self, ctx: Context, tool: str, name: str, *args: Any) -> dict[str, Any]:
        label = f"{self.key}. {tool} {name}"
        ctx.step(label)
        with ctx.ws.fresh(f"{self.key}-{tool}-{name}") as wd:
            child = run(
                label,
                [*ctx.script(tool, name), str(wd), *map(str, args)],
                cwd=wd,
                timeout=ctx.timeout,
            )
        return {**child.data, "rss": child.rss_mb, "wall": child.wall}


class LogMetric(Scenario):
    key, title, steps = "a", "log_metric rate: many calls in one run", 3

    def rep(self, ctx: Context) -> Figures:
        z = ctx.sizes
        k = self._one(ctx, "kiln", "log_metric", z.a_kiln)
        m = self._one(ctx, "mlflow", "log_metric", z.a_mlflow)
        b = self._one(ctx, "mlflow", "log_batch", z.a_batch, z.batch_size)
        return {
            "kiln": k["rate"],
            "mlflow": m["rate"],
            "batch": b["rate"],
            "kiln_rss": k["rss"],
            "mlflow_rss": m["rss"],
            "batch_rss": b["rss"],
        }

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        k = s["kiln"][0]
        return [
            _goal(
                "`log_metric` calls/s vs `mlflow.log_metric`",
                _cell(s, "kiln", _rate),
                _cell(s, "mlflow", _rate),
                k / s["mlflow"][0],
                500,
            ),
            _goal(
                "`log_metric` calls/s vs `MlflowClient().log_batch` metrics/s",
                _cell(s, "kiln", _rate),
                _cell(s, "batch", _rate),
                k / s["batch"][0],
                10,
            ),
            _rss_row(s, "kiln_rss", "mlflow_rss", "peak RSS of the log_metric process, MB"),
        ]

    def describe(self, ctx: Context) -> list[str]:
        z = ctx.sizes
        return [
            f"kiln: {z.a_kiln:,} `kiln.log_metric(key, value, step=i)` calls in one run. MLflow: "
            f"{z.a_mlflow:,} `mlflow.log_metric` calls (fewer, since MLflow is slow; the rate is "
            f"what is compared), and {z.a_batch:,} values through `MlflowClient().log_batch`, "
            f"{z.batch_size:,} per call.",
            "Timed inside the process from after the run has started until the values are in "
            "the store: for kiln, after `kiln.end_run()` and `kiln.flush()` (its end of run "
            "returns before its background writer has committed); MLflow's calls are "
            "synchronous. The store is created before timing.",
        ]


class Writers(Scenario):
    key, title = "b", "concurrent writers into one existing store"
    steps = 6

    def _group(self, ctx: Context, tool: str, writers: int, n: int) -> Figures:
        label = f"{self.key}. {tool} {writers} writer{'s' if writers > 1 else ''}"
        with ctx.ws.fresh(f"{self.key}-{tool}-{writers}") as wd:
            ctx.step(f"{label} (create store)")
            run(label, [*ctx.script(tool, "init"), str(wd)], cwd=wd, timeout=ctx.timeout)
            ctx.step(label)
            cmd = [*ctx.script(tool, "writer"), str(wd), str(n)]
            done = run_together(label, [cmd] * writers, cwd=wd, timeout=ctx.timeout)
        calls = sum(c.data["calls"] for c in done)
        span = max(c.data["end"] for c in done) - min(c.data["start"] for c in done)
        return {"rate": calls / span, "rss": max(c.rss_mb for c in done)}

    def rep(self, ctx: Context) -> Figures:
        z = ctx.sizes
        k8 = self._group(ctx, "kiln", z.writers, z.b_kiln)
        m8 = self._group(ctx, "mlflow", z.writers, z.b_mlflow)
        k1 = self._group(ctx, "kiln", 1, z.b_kiln)
        m1 = self._group(ctx, "mlflow", 1, z.b_mlflow)
        return {
            "kiln8": k8["rate"],
            "mlflow8": m8["rate"],
            "kiln1": k1["rate"],
            "mlflow1": m1["rate"],
            "kiln_rss": k8["rss"],
            "mlflow_rss": m8["rss"],
        }

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        w = ctx.sizes.writers
        k8, k1, m8, m1 = (s[n][0] for n in ("kiln8", "kiln1", "mlflow8", "mlflow1"))
        return [
            Row(
                f"{w} writers, total metrics/s",
                _cell(s, "kiln8", _rate),
                _cell(s, "mlflow8", _rate),
                k8 / m8,
                "reported",
            ),
            Row(
                "1 writer, metrics/s", _cell(s, "kiln1", _rate), _cell(s, "mlflow1", _rate), k1 / m1
            ),
            Row(
                f"{w}-writer total ÷ 1-writer rate",
                f"{k8 / k1:.2f}",
                f"{m8 / m1:.2f}",
                None,
                "kiln ≥ 1",
                k8 >= k1,
            ),
            _rss_row(s, "kiln_rss", "mlflow_rss", "peak RSS of one writer, MB"),
        ]

    def describe(self, ctx: Context) -> list[str]:
        z = ctx.sizes
        return [
            f"{z.writers} processes log into one store, each into its own run with `log_metric`: "
            f"{z.b_kiln:,} calls per kiln writer, {z.b_mlflow:,} per MLflow writer. The store and "
            "the experiment are created first by a separate process (MLflow's SQLite migration "
            "races otherwise).",
            "Each writer imports its tool and starts its run, says ready, and waits; all start "
            "logging together. Total rate = all calls ÷ (last writer's end - first writer's start, "
            "wall clock), where a kiln writer ends after `kiln.flush()`. The 1-writer case "
            "runs the same script alone.",
        ]


class CreateRuns(Scenario):
    key, title, steps = "c", "creating runs with 5 params and 5 metrics each", 2

    def rep(self, ctx: Context) -> Figures:
        k = self._one(ctx, "kiln", "create_runs", ctx.sizes.c_kiln)
        m = self._one(ctx, "mlflow", "create_runs", ctx.sizes.c_mlflow)
        return {
            "kiln": k["rate"],
            "mlflow": m["rate"],
            "kiln_rss": k["rss"],
            "mlflow_rss": m["rss"],
        }

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        return [
            _goal(
                "runs created per second",
                _cell(s, "kiln", _rate),
                _cell(s, "mlflow", _rate),
                s["kiln"][0] / s["mlflow"][0],
                50,
            ),
            _rss_row(s, "kiln_rss", "mlflow_rss"),
        ]

    def describe(self, ctx: Context) -> list[str]:
        z = ctx.sizes
        return [
            f"kiln creates {z.c_kiln:,} runs, MLflow {z.c_mlflow:,}: each `with start_run(): "
            "log_params({5 params}); log_metrics({5 metrics})` through the module-level API, "
            "with the store and experiment created before timing; kiln's timing ends after "
            "`kiln.flush()`.",
        ]


class Search(Scenario):
    key, title, steps = "d", "filtered, ordered search over many runs", 2
    prepare_steps = 2

    def prepare(self, ctx: Context) -> None:
        n = ctx.sizes.d_runs
        for tool in ("kiln", "mlflow"):
            label = f"{self.key}. {tool} populate {n:,} runs"
            ctx.step(label)
            wd = ctx.ws.root / f"prepared-{tool}"
            wd.mkdir()
            child = run(
                label,
                [*ctx.script(tool, "populate"), str(wd), str(n)],
                cwd=wd,
                timeout=ctx.timeout * 3,
            )
            ctx.prepared[tool] = wd
            ctx.notes.setdefault(self.key, []).append(
                f"{tool} store populated in {child.data['seconds']:.1f} s ({child.data['rate']:,.0f} runs/s)"
            )

    def _search(self, ctx: Context, tool: str) -> dict[str, Any]:
        label = f"{self.key}. {tool} search"
        ctx.step(label)
        with ctx.ws.fresh(f"{self.key}-{tool}") as wd:
            for item in ctx.prepared[tool].iterdir():
                if item.name in ("kiln", "mlflow.db"):
                    (shutil.copytree if item.is_dir() else shutil.copy2)(item, wd / item.name)
            child = run(label, [*ctx.script(tool, "search"), str(wd)], cwd=wd, timeout=ctx.timeout)
        rows, top = expected_search(ctx.sizes.d_runs)
        got = child.data
        if got["rows"] != rows or abs(got["top"] - top) > 1e-9:
            raise BenchError(
                f"{label}: returned {got['rows']} runs with best acc {got['top']}; "
                f"expected {rows} runs with best acc {top}."
            )
        return {**got, "rss": child.rss_mb}

    def rep(self, ctx: Context) -> Figures:
        k = self._search(ctx, "kiln")
        m = self._search(ctx, "mlflow")
        return {
            "kiln": k["seconds"],
            "mlflow": m["seconds"],
            "kiln_warm": k["warm_seconds"],
            "mlflow_warm": m["warm_seconds"],
            "kiln_rss": k["rss"],
            "mlflow_rss": m["rss"],
        }

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        rows, _ = expected_search(ctx.sizes.d_runs)
        return [
            _goal(
                f"search returning all {rows:,} matches, first call, s",
                _cell(s, "kiln", _sec),
                _cell(s, "mlflow", _sec),
                s["mlflow"][0] / s["kiln"][0],
                20,
                "x faster",
            ),
            Row(
                "the same search again in the same process, s",
                _cell(s, "kiln_warm", _sec),
                _cell(s, "mlflow_warm", _sec),
                s["mlflow_warm"][0] / s["kiln_warm"][0],
            ),
            _rss_row(s, "kiln_rss", "mlflow_rss"),
        ]

    def describe(self, ctx: Context) -> list[str]:
        n = ctx.sizes.d_runs
        return [
            f"{n:,} runs (5 params, 5 metrics each; the same seeded values for both tools), "
            "populated once per session and copied into each repetition's folder.",
            '`kiln.runs(filter="metrics.acc > 0.5 and params.model = \'rf\'", order_by="metrics.acc '
            'desc")` vs `mlflow.search_runs(experiment_names=["bench"], filter_string=<same>, '
            'order_by=["metrics.acc DESC"], max_results=100_000)`; both return a pandas DataFrame. '
            "Timed in the process after the store is opened and pandas imported. The harness "
            "checks both return the expected number of runs with the expected best acc.",
            "Populating (untimed): kiln through `TrackingClient` (create_run, log_params, "
            "log_metrics, end_run per run); MLflow by inserting the rows its `create_run` + "
            "`log_batch` would write through its own SQLAlchemy models in one transaction "
            "(its client manages ~35 runs/s).",
        ]


class Help(Scenario):
    key, title, steps = "e", "`--help` of the command line", 2

    def _help(self, ctx: Context, tool: str) -> tuple[float, float]:
        label = f"{self.key}. {tool} --help"
        ctx.step(label)
        cli = KILN_CLI if tool == "kiln" else MLFLOW_CLI
        with ctx.ws.fresh(f"{self.key}-{tool}") as wd:
            child = run(label, [str(cli), "--help"], cwd=wd, timeout=ctx.timeout, want_json=False)
        if "Usage" not in child.stdout:
            raise BenchError(f"{label}: printed no usage text:\n{child.stdout[:500]}")
        return child.wall, child.rss_mb

    def rep(self, ctx: Context) -> Figures:
        k, krss = self._help(ctx, "kiln")
        m, mrss = self._help(ctx, "mlflow")
        return {"kiln": k, "mlflow": m, "kiln_rss": krss, "mlflow_rss": mrss}

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        return [
            _goal(
                "`kiln --help` vs `mlflow --help`, wall time, s",
                _cell(s, "kiln", _sec),
                _cell(s, "mlflow", _sec),
                s["mlflow"][0] / s["kiln"][0],
                10,
                "x faster",
            ),
            _rss_row(s, "kiln_rss", "mlflow_rss"),
        ]

    def describe(self, ctx: Context) -> list[str]:
        return ["Wall time of a fresh process running each env's console script, spawn to exit."]


class Hello(Scenario):
    key, title, steps = "f", "hello world in a fresh process, then reading it back", 4

    def _pair(self, ctx: Context, tool: str) -> Figures:
        with ctx.ws.fresh(f"{self.key}-{tool}") as wd:
            label = f"{self.key}. {tool} hello"
            ctx.step(label)
            hello = run(label, [*ctx.script(tool, "hello"), str(wd)], cwd=wd, timeout=ctx.timeout)
            label = f"{self.key}. {tool} read back"
            ctx.step(label)
            cmd = [*ctx.script(tool, "read"), str(wd), hello.data["run_id"]]
            read = run(label, cmd, cwd=wd, timeout=ctx.timeout)
        if read.data.get("value") != 0.93:
            raise BenchError(f"{label}: read back acc={read.data.get('value')!r}; expected 0.93.")
        return {
            "hello": hello.wall,
            "read": read.wall,
            "hello_rss": hello.rss_mb,
            "read_rss": read.rss_mb,
        }

    def rep(self, ctx: Context) -> Figures:
        k = self._pair(ctx, "kiln")
        m = self._pair(ctx, "mlflow")
        return {
            **{f"kiln_{n}": v for n, v in k.items()},
            **{f"mlflow_{n}": v for n, v in m.items()},
        }

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        return [
            _goal(
                "import, new store, one run with one metric, exit; s",
                _cell(s, "kiln_hello", _sec),
                _cell(s, "mlflow_hello", _sec),
                s["mlflow_hello"][0] / s["kiln_hello"][0],
                10,
                "x faster",
            ),
            Row(
                "second process: import, read the run back, exit; s",
                _cell(s, "kiln_read", _sec),
                _cell(s, "mlflow_read", _sec),
                s["mlflow_read"][0] / s["kiln_read"][0],
            ),
            _rss_row(s, "kiln_hello_rss", "mlflow_hello_rss", "peak RSS (hello), MB"),
            _rss_row(s, "kiln_read_rss", "mlflow_read_rss", "peak RSS (read back), MB"),
        ]

    def describe(self, ctx: Context) -> list[str]:
        return [
            "Wall time of fresh processes, spawn to exit. kiln: `kiln.configure(store=<new folder>)`; "
            '`with kiln.start_run(experiment="hello"): kiln.log_metric("acc", 0.93)`. MLflow: a new '
            '`sqlite:///.../mlflow.db` tracking URI, `mlflow.set_experiment("hello")`, the same run. '
            "Neither calls flush: kiln writes what is queued at interpreter exit, inside the "
            "timed process. The second process reads the run by id and the harness checks "
            "acc == 0.93.",
        ]


SCENARIOS: list[Scenario] = [LogMetric(), Writers(), CreateRuns(), Search(), Help(), Hello()]
