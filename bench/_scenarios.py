"""The scenarios: what each repetition runs, and how its medians become a table.

Each scenario's `rep` runs one repetition of every case, kiln first then MLflow, each
case in a fresh folder with a fresh store, and returns its figures by name; the harness
calls it `reps` times and takes the median of each figure.
"""

from __future__ import annotations

import json
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
    g_calls: int = 2_000  # timed one-row predict calls per case and process
    g_warmup: int = 200  # untimed calls per case before them


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
    g_calls=500,
    g_warmup=100,
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
    anchor = "MLflow"  # the tool compared against, for table headers
    setup: tuple[str, ...] = ("mlflow",)  # bench/setup_anchors.sh sections it needs
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


def _ms(v: float) -> str:
    return f"{v:.3f}" if v < 1 else f"{v:.2f}"


def _at_most(measure: str, kiln: str, anchor: str, k: float, m: float, share: float) -> Row:
    """A goal of kiln taking at most `share` of MLflow's time; ratio as kiln's advantage."""
    return Row(measure, kiln, anchor, m / k, f"kiln ≤ {share:g}x MLflow", k <= share * m)


class Models(Scenario):
    key, title = "g", "model load and predict"
    steps = 10
    prepare_steps = 4
    tools = ("kiln", "mlflow")

    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}
        self.expected: list[int] = []

    def prepare(self, ctx: Context) -> None:
        """Train and save the pipeline with each tool, check both agree, load each once."""
        rows = {}
        for tool in self.tools:
            label = f"{self.key}. {tool} train and save the model"
            ctx.step(label)
            wd = ctx.ws.root / f"prepared-{self.key}-{tool}"
            wd.mkdir()
            child = run(
                label, [*ctx.script(tool, "model_save"), str(wd)], cwd=wd, timeout=ctx.timeout
            )
            ctx.prepared[f"{self.key}-{tool}"] = wd
            self.saved[tool] = child.data
            rows[tool] = json.loads((wd / "rows.json").read_text(encoding="utf-8"))
        if rows["kiln"] != rows["mlflow"]:
            raise BenchError(
                f"{self.key}: the two envs generated different held-out rows or predictions; "
                "the pipelines would not be the same model."
            )
        self.expected = rows["kiln"]["predictions"]
        for tool in self.tools:  # untimed: page cache and bytecode, as for the other tools
            self._load(ctx, tool, "store", label=f"{self.key}. warm-up: {tool} load and predict")

    def _target(self, tool: str, where: str) -> str:
        return self.saved[tool]["uri" if where == "store" else "folder"]

    def _load(self, ctx: Context, tool: str, where: str, label: str = "") -> Figures:
        """One fresh process: load (from the store, a folder, or bare) + one prediction.

        `tool` "kiln" or "mlflow"; `where` "store" or "folder" for the tools, "skops" or
        "pickle" for the floor run with that tool's env on that tool's files.
        """
        prepared = ctx.prepared[f"{self.key}-{tool}"]
        if where in ("store", "folder"):
            label = label or f"{self.key}. {tool} load from {where} + predict"
            cmd, args = ctx.script(tool, "load_predict"), [self._target(tool, where)]
        else:
            label = label or f"{self.key}. bare {where} load + predict ({tool} env)"
            python = KILN_PY if tool == "kiln" else MLFLOW_PY
            cmd = [str(python), ctx.ws.script("bare_load_predict.py")]
            model_file = Path(self._target(tool, "folder")) / "model.skops"
            args = [where, str(model_file if where == "skops" else prepared / "pipeline.pkl")]
        ctx.step(label)
        with ctx.ws.fresh(f"{self.key}-{tool}-{where}") as wd:
            child = run(label, [*cmd, str(wd), str(prepared), *args], cwd=wd, timeout=ctx.timeout)
        got = child.data["prediction"]
        if got != self.expected[0]:
            raise BenchError(f"{label}: predicted {got!r}; expected {self.expected[0]!r}.")
        d = child.data
        return {
            "wall": child.wall,
            "rss": child.rss_mb,
            "start_exit": child.wall - d["script"],
            "imports": d["imports"],
            "load": d["load"],
            "predict": d["predict"],
        }

    def _latency(self, ctx: Context, tool: str) -> Figures:
        label = f"{self.key}. {tool} predict latency"
        ctx.step(label)
        z = ctx.sizes
        args = [
            ctx.prepared[f"{self.key}-{tool}"],
            self._target(tool, "store"),
            z.g_calls,
            z.g_warmup,
        ]
        with ctx.ws.fresh(f"{self.key}-{tool}-latency") as wd:
            cmd = [*ctx.script(tool, "predict_latency"), str(wd), *map(str, args)]
            child = run(label, cmd, cwd=wd, timeout=ctx.timeout)
        d = child.data
        return {
            "frame": d["frame_ms"],
            "record": d["record_ms"],
            "bare": d["bare_ms"],
            "frame_p90": d["frame_p90_ms"],
            "record_p90": d["record_p90_ms"],
            "lat_rss": child.rss_mb,
        }

    def rep(self, ctx: Context) -> Figures:
        out: Figures = {}
        for where in ("store", "folder", "skops", "pickle"):
            for tool in self.tools:
                for name, value in self._load(ctx, tool, where).items():
                    out[f"{tool}_{where}_{name}"] = value
        for tool in self.tools:
            for name, value in self._latency(ctx, tool).items():
                out[f"{tool}_{name}"] = value
        return out

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        def pair(name: str, fmt: Callable[[float], str]) -> tuple[str, str]:
            return _cell(s, f"kiln_{name}", fmt), _cell(s, f"mlflow_{name}", fmt)

        def ratio(name: str) -> float:
            return s[f"mlflow_{name}"][0] / s[f"kiln_{name}"][0]

        med = {k: v[0] for k, v in s.items()}
        rows = [
            _at_most(
                "fresh process: load from the store + first 1-row predict, wall s",
                *pair("store_wall", _sec),
                med["kiln_store_wall"],
                med["mlflow_store_wall"],
                0.25,
            )
        ]
        for part, what in (
            ("start_exit", "interpreter start and exit"),
            ("imports", "import pandas + the tool"),
            ("load", "load from the store"),
            ("predict", "first predict"),
        ):
            rows.append(
                Row(f"… of which {what}, s", *pair(f"store_{part}", _sec), ratio(f"store_{part}"))
            )
        rows += [
            Row(
                "fresh process: load from a folder + first 1-row predict, wall s",
                *pair("folder_wall", _sec),
                ratio("folder_wall"),
            ),
            Row(
                "floor, no tool: `skops.io.load` of the same model.skops + predict, wall s",
                *pair("skops_wall", _sec),
            ),
            Row(
                "floor, no tool: `pickle.load` of the pipeline + predict, wall s",
                *pair("pickle_wall", _sec),
            ),
            Row(
                "the tool's own share: store load + predict - the skops floor, s",
                _sec(med["kiln_store_wall"] - med["kiln_skops_wall"]),
                _sec(med["mlflow_store_wall"] - med["mlflow_skops_wall"]),
            ),
        ]
        n = ctx.sizes.g_calls
        rows += [
            _at_most(
                f"1-row DataFrame `predict` after loading, median of {n:,} calls, ms",
                *pair("frame", _ms),
                med["kiln_frame"],
                med["mlflow_frame"],
                0.5,
            ),
            Row("… 90th percentile, ms", *pair("frame_p90", _ms), ratio("frame_p90")),
            Row(
                "dict record `predict` (the serving path), median, ms",
                *pair("record", _ms),
                ratio("record"),
            ),
            Row("… 90th percentile, ms", *pair("record_p90", _ms), ratio("record_p90")),
            Row(
                "floor: bare scikit-learn `pipeline.predict`, 1-row DataFrame, ms",
                *pair("bare", _ms),
            ),
            Row(
                "overhead over the floor (DataFrame predict - bare), ms",
                _ms(med["kiln_frame"] - med["kiln_bare"]),
                _ms(med["mlflow_frame"] - med["mlflow_bare"]),
            ),
            _rss_row(
                s,
                "kiln_store_rss",
                "mlflow_store_rss",
                "peak RSS, load + first predict (store), MB",
            ),
            _rss_row(s, "kiln_lat_rss", "mlflow_lat_rss", "peak RSS, latency process, MB"),
        ]
        return rows

    def describe(self, ctx: Context) -> list[str]:
        k, m = self.saved.get("kiln", {}), self.saved.get("mlflow", {})
        z = ctx.sizes

        def files(d: dict[str, Any]) -> str:
            return ", ".join(f"{f} {b / 1024:,.0f} KB" for f, b in d.get("files", {}).items())

        same = all(k.get(p) == m.get(p) for p in ("sklearn", "skops", "pandas", "numpy"))
        return [
            "The model: a scikit-learn Pipeline of a ColumnTransformer (StandardScaler on 26 "
            "numeric columns, OneHotEncoder(handle_unknown='ignore') on 4 categorical string "
            "columns) and LogisticRegression, trained on 4,000 rows generated with numpy's "
            "seeded PCG64 (bench/scenarios/_modeldata.py). Each tool trains and saves it once "
            "per session in its own env (untimed); the harness checks both envs produce the "
            "same held-out rows and the same predictions for all 64 of them, and every timed "
            "process's predictions against those.",
            f"Versions: kiln env scikit-learn {k.get('sklearn')}, skops {k.get('skops')}, pandas "
            f"{k.get('pandas')}, numpy {k.get('numpy')}; MLflow env scikit-learn "
            f"{m.get('sklearn')}, skops {m.get('skops')}, pandas {m.get('pandas')}, numpy "
            f"{m.get('numpy')}" + (" (the same)." if same else " (**they differ**)."),
            "kiln: `kiln.Model(pipeline).fit(X, y)` and `model.save()` inside "
            "`kiln.start_run()` into a kiln store (`runs:/<run id>/model`); also `model.save(path)`. "
            f"Serialization: {k.get('serialization')}; files: {files(k)}.",
            'MLflow: its documented path, `mlflow.sklearn.log_model(pipeline, name="model", '
            "signature=infer_signature(X, y_pred), input_example=X.head(3))` inside a run on a "
            "SQLite tracking store, loaded with `mlflow.pyfunc.load_model(model_info.model_uri)` "
            "(a `models:/m-...` URI resolved through the store, artifacts under the store's "
            "`mlruns/`); the folder case loads a `mlflow.sklearn.save_model` folder. "
            f"Serialization: {m.get('serialization')} (MLflow 3.17's default for scikit-learn); "
            f"files: {files(m)}.",
            "Load + first predict: the wall time of a fresh process, spawn to exit: start the "
            "interpreter, `import pandas` and the tool, read one held-out record and make a "
            "1-row DataFrame of it, `kiln.configure(store=...)`; `kiln.load_model(uri)` "
            "(which copies the files out of the store and checks each against its recorded "
            "sha256) and `.predict(frame)` (validated against the training signature) vs "
            "`mlflow.set_tracking_uri(sqlite)`; `mlflow.pyfunc.load_model(uri).predict(frame)` "
            "(with MLflow's schema enforcement). The '… of which' rows split it with "
            "`time.perf_counter` inside the process; interpreter start and exit is the rest. "
            "Each tool loads once untimed before the repetitions.",
            "Floors: the same fresh-process script with no tool, in each env on that tool's "
            "files: `import pandas`, the record, then `skops.io.load(model.skops, "
            "trusted=get_untrusted_types(file=...))` (the deserializer both tools use) or "
            "`pickle.load` of the fitted pipeline (imports only the classes it holds), then "
            "`predict`. Since kiln saves this pipeline with compiled inference too "
            "(docs/model-format.md), kiln's load reads no skops file and imports no "
            "scikit-learn: the skops floor is MLflow's path only, and kiln's 'own share' and "
            "'overhead over the floor' rows come out negative.",
            f"Predict latency: in one process per tool, after loading from the store and "
            f"{z.g_warmup} untimed rounds, {z.g_calls:,} rounds of one call each to "
            "`predict(1-row DataFrame)`, `predict(dict record)` and the bare fitted Pipeline's "
            "`predict(1-row DataFrame)` (kiln: `model.estimator_`; MLflow: "
            "`get_raw_model()`), cycling through 64 held-out rows; each call timed alone with "
            "`time.perf_counter`. The figure is the median per call within the process, then "
            "the median over processes.",
        ]


from _scen_serve import Serving  # noqa: E402 - its module imports the classes above

SCENARIOS: list[Scenario] = [
    LogMetric(),
    Writers(),
    CreateRuns(),
    Search(),
    Help(),
    Hello(),
    Models(),
    Serving(),
]

from _scen_pipe import Pipelines  # noqa: E402 - it imports this module's helpers

SCENARIOS.append(Pipelines())
from _scen_notebooks import Notebooks  # noqa: E402

SCENARIOS.append(Notebooks())
from _scen_evaluate import Evaluate  # noqa: E402 - it imports this module's helpers

SCENARIOS.append(Evaluate())
from _scen_monitor import Monitor  # noqa: E402 - it imports this module's helpers

SCENARIOS.append(Monitor())
from _scen_ui import Dashboard  # noqa: E402 - it imports this module's helpers

SCENARIOS.append(Dashboard())
from _scen_app import NotebookApp  # noqa: E402 - it imports this module's helpers

SCENARIOS.append(NotebookApp())

from _scen_server import TeamServer  # noqa: E402 - it imports this module's helpers

SCENARIOS.append(TeamServer())
