"""Scenario j: serving one-row requests. kiln serve vs `mlflow models serve` vs FastAPI.

One breast-cancer pipeline (StandardScaler + LogisticRegression, 30 numeric features),
trained once in kiln's env and pickled; MLflow's env saves the same fitted pipeline
with `mlflow.sklearn.save_model`, and the plain FastAPI endpoint unpickles it. Each
repetition starts each server fresh (one worker process each), in turn.
"""

from __future__ import annotations

from _harness import KILN_CLI, KILN_PY, MLFLOW_ENV, MLFLOW_PY, BenchError, run
from _scenarios import QUICK, Context, Figures, Row, Scenario, Stats, _cell, _mb, _ms, _rate

TOOLS = ("kiln", "mlflow", "fastapi")
CLIENTS = 64


class Serving(Scenario):
    key, title = "j", "serving one-row requests (kiln serve, mlflow models serve, FastAPI)"
    steps = 3
    prepare_steps = 2

    def prepare(self, ctx: Context) -> None:
        wd = ctx.ws.root / f"prepared-{self.key}"
        wd.mkdir()
        label = f"{self.key}. kiln: train and save the pipeline"
        ctx.step(label)
        kiln = run(
            label,
            [str(KILN_PY), ctx.ws.script("kiln_serve_prepare.py"), str(wd)],
            cwd=wd,
            timeout=ctx.timeout,
        )
        label = f"{self.key}. mlflow: save the same pipeline"
        ctx.step(label)
        script = ctx.ws.script("mlflow_serve_prepare.py")
        mlf = run(label, [str(MLFLOW_PY), script, str(wd), str(wd)], cwd=wd, timeout=ctx.timeout)
        if kiln.data["prediction"] != mlf.data["prediction"]:
            raise BenchError(f"{self.key}: the two envs' pipelines predict differently.")
        ctx.prepared[self.key] = wd
        self.expected = kiln.data["prediction"]

    def _seconds(self, ctx: Context) -> float:
        return 3.0 if ctx.sizes == QUICK else 8.0

    def rep(self, ctx: Context) -> Figures:
        out: Figures = {}
        for tool in TOOLS:
            label = f"{self.key}. {tool} server"
            ctx.step(label)
            args = [
                ctx.prepared[self.key],
                tool,
                self._seconds(ctx),
                CLIENTS,
                KILN_CLI,
                MLFLOW_ENV,
            ]
            with ctx.ws.fresh(f"{self.key}-{tool}") as wd:
                cmd = [str(KILN_PY), ctx.ws.script("serve_bench.py"), str(wd), *map(str, args)]
                d = run(label, cmd, cwd=wd, timeout=ctx.timeout).data
            if d["prediction"] != self.expected or set(d["statuses"]) != {"200"}:
                raise BenchError(
                    f"{label}: predicted {d['prediction']!r} (expected {self.expected!r}); "
                    f"statuses {d['statuses']}."
                )
            for name in ("start_s", "lat1_ms", "rps", "p50_ms", "p99_ms", "rss_mb", "cpu_ms"):
                out[f"{tool}_{name}"] = d[name]
            out[f"{tool}_floor_ms"] = d["predict_ms"]
        return out

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        def m(name: str) -> float:
            return s[name][0]

        rows = []
        for anchor, goal in (("mlflow", 20.0), ("fastapi", 3.0)):
            ratio = m("kiln_rps") / m(f"{anchor}_rps")
            rows.append(
                Row(
                    f"requests/s at {CLIENTS} clients vs {anchor}",
                    _cell(s, "kiln_rps", _rate),
                    _cell(s, f"{anchor}_rps", _rate),
                    ratio,
                    f"≥ {goal:g}x",
                    ratio >= goal,
                )
            )
        for anchor in ("mlflow", "fastapi"):
            rows.append(
                Row(
                    f"p50 / p99 ms at {CLIENTS} clients vs {anchor}",
                    f"{_ms(m('kiln_p50_ms'))} / {_ms(m('kiln_p99_ms'))}",
                    f"{_ms(m(f'{anchor}_p50_ms'))} / {_ms(m(f'{anchor}_p99_ms'))}",
                )
            )
        floor = m("kiln_floor_ms")
        lat = m("kiln_lat1_ms")
        rows.append(
            Row(
                "1-client median latency, ms (anchor: bare `predict(1-row DataFrame)` in-process)",
                _cell(s, "kiln_lat1_ms", _ms),
                _cell(s, "kiln_floor_ms", _ms),
                None,
                "≤ floor + 1 ms",
                lat <= floor + 1.0,
            )
        )
        for anchor in ("mlflow", "fastapi"):
            rows.append(
                Row(
                    f"1-client median latency, ms vs {anchor}",
                    _cell(s, "kiln_lat1_ms", _ms),
                    _cell(s, f"{anchor}_lat1_ms", _ms),
                    m(f"{anchor}_lat1_ms") / lat,
                )
            )
        start = m("kiln_start_s") / m("mlflow_start_s")
        rows.append(
            Row(
                "start to first ready answer, s vs mlflow",
                _cell(s, "kiln_start_s", _ms),
                _cell(s, "mlflow_start_s", _ms),
                1 / start,
                "kiln ≤ 0.25x MLflow",
                start <= 0.25,
            )
        )
        mem = m("kiln_rss_mb") / m("mlflow_rss_mb")
        rows.append(
            Row(
                "RSS of the server process tree after load, MB vs mlflow",
                _cell(s, "kiln_rss_mb", _mb),
                _cell(s, "mlflow_rss_mb", _mb),
                1 / mem,
                "kiln ≤ 0.25x MLflow",
                mem <= 0.25,
            )
        )
        rows.append(
            Row(
                "RSS, MB vs fastapi",
                _cell(s, "kiln_rss_mb", _mb),
                _cell(s, "fastapi_rss_mb", _mb),
                m("fastapi_rss_mb") / m("kiln_rss_mb"),
            )
        )
        for anchor in ("mlflow", "fastapi"):
            rows.append(
                Row(
                    f"server CPU ms per request at {CLIENTS} clients vs {anchor}",
                    _cell(s, "kiln_cpu_ms", _ms),
                    _cell(s, f"{anchor}_cpu_ms", _ms),
                    m(f"{anchor}_cpu_ms") / m("kiln_cpu_ms"),
                )
            )
        return rows

    def describe(self, ctx: Context) -> list[str]:
        secs = self._seconds(ctx)
        return [
            "One fitted pipeline (load_breast_cancer: StandardScaler + LogisticRegression, 30 "
            "numeric features), served three ways, one worker process each, on loopback: "
            "`kiln serve <folder>` (Starlette on uvicorn with httptools and uvloop, "
            "micro-batching); `mlflow models serve -m <folder> --env-manager local -w 1` "
            "(mlflow==3.17.2, `dataframe_split` bodies on `/invocations`); and the FastAPI "
            "endpoint a tutorial would write (a pydantic model of the 30 features, a one-row "
            "DataFrame, `model.predict`; `bench/scenarios/fastapi_app.py`) under the same "
            "uvicorn (httptools and uvloop installed in MLflow's env too).",
            f"Load: `bench/scenarios/loadgen.py`, raw keep-alive sockets; after a 1 s warm-up "
            f"at 8 clients, {secs:g} s at 1 client (median latency) then {secs:g} s at "
            f"{CLIENTS} closed-loop clients (requests/s, p50, p99). Start: spawn to the first "
            "200 from `/ready` (kiln), `/ping` (MLflow) or `/health` (FastAPI). RSS: the "
            "server's whole process tree after the load (psutil). Floor: the bare pipeline's "
            "`predict(1-row DataFrame)` median in the orchestrating process. The load "
            "generator shares the machine's two cores with the server.",
        ]
