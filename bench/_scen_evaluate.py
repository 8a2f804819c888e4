"""i. Evaluating a binary classifier on 100,000 test rows: kiln.evaluate vs mlflow.models.evaluate."""

from __future__ import annotations

from _harness import BenchError, run
from _scenarios import Context, Figures, Row, Scenario, Stats, _at_most, _cell, _rss_row, _sec

N_TEST_FULL = 100_000


class Evaluate(Scenario):
    key, title, steps = "i", "evaluate a binary classifier on 100,000 test rows", 2

    def _one_eval(self, ctx: Context, tool: str) -> dict[str, float]:
        label = f"{self.key}. {tool} evaluate"
        ctx.step(label)
        with ctx.ws.fresh(f"{self.key}-{tool}") as wd:
            child = run(
                label,
                [*ctx.script(tool, "evaluate"), str(wd), str(N_TEST_FULL)],
                cwd=wd,
                timeout=ctx.timeout,
            )
        return {**child.data, "wall": child.wall, "rss": child.rss_mb}

    def rep(self, ctx: Context) -> Figures:
        k = self._one_eval(ctx, "kiln")
        m = self._one_eval(ctx, "mlflow")
        for name in ("roc_auc", "accuracy"):
            if abs(k[name] - m[name]) > 1e-9:
                raise BenchError(
                    f"{self.key}: kiln found {name}={k[name]!r}, MLflow {m[name]!r}: the two "
                    "envs did not evaluate the same model on the same rows."
                )
        out: Figures = {}
        for tool, d in (("kiln", k), ("mlflow", m)):
            for name in ("seconds", "setup", "wall", "rss", "plots", "artifacts"):
                out[f"{tool}_{name}"] = float(d[name])
        return out

    def rows(self, ctx: Context, s: Stats) -> list[Row]:
        med = {k: v[0] for k, v in s.items()}

        def pair(name: str) -> tuple[str, str]:
            return _cell(s, f"kiln_{name}", _sec), _cell(s, f"mlflow_{name}", _sec)

        return [
            _at_most(
                "the evaluate call (metrics, plots, logged to the run), s",
                *pair("seconds"),
                med["kiln_seconds"],
                med["mlflow_seconds"],
                0.5,
            ),
            Row(
                "fresh process, spawn to exit (imports, data, training, evaluate), wall s",
                *pair("wall"),
                med["mlflow_wall"] / med["kiln_wall"],
            ),
            Row(
                "plots made; artifacts logged",
                f"{med['kiln_plots']:.0f}; {med['kiln_artifacts']:.0f}",
                f"{med['mlflow_plots']:.0f}; {med['mlflow_artifacts']:.0f}",
            ),
            _rss_row(s, "kiln_rss", "mlflow_rss"),
        ]

    def describe(self, ctx: Context) -> list[str]:
        return [
            "The model: scikit-learn `LogisticRegression(max_iter=1000)` trained on 5,000 rows "
            "of 20 numeric features, evaluated on 100,000 further rows, all generated with "
            "numpy's seeded PCG64 (bench/scenarios/_evaldata.py), trained in each tool's env; "
            "the harness checks both tools report the same ROC AUC and accuracy. --quick "
            "changes only the number of repetitions.",
            "kiln: `kiln.Model(LogisticRegression(), validation='off').fit(...)`, then, timed, "
            "`kiln.evaluate(model, X_test, y_test)` with its defaults inside `kiln.start_run()`: "
            "binary metrics (exact, on every row), 8 plots (ROC, precision-recall, confusion "
            "matrix counts and normalised, calibration, gain, lift, feature importance) each as "
            "PNG and Plotly JSON, the one-file HTML report (plotly.js inlined), all logged to "
            "the run.",
            "MLflow: the model logged with `mlflow.sklearn.log_model` and loaded with "
            "`mlflow.pyfunc.load_model` (untimed: its evaluate takes a pyfunc), then, timed, "
            "`mlflow.models.evaluate(pyfunc, data, targets='label', model_type='classifier', "
            "evaluators=['default'])` inside a run on a SQLite store: its default classifier "
            "metrics and plots (matplotlib PNGs), logged to the run. shap is not installed in "
            "its env, so it makes no explainability plots (as a plain `pip install mlflow`).",
        ]
