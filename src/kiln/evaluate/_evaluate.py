"""`kiln.evaluate(model, X, y)`: metrics, the standard plots, fairness and a report."""

from __future__ import annotations

import functools
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kiln._exceptions import EvaluationError, ModelError
from kiln.evaluate._estimator import inner_estimator
from kiln.evaluate._metrics import TASKS, _array, detect_task, metrics

__all__ = ["Evaluation", "evaluate"]

_PERMUTATION_ROWS = 2000
_PERMUTATION_REPEATS = 3


@dataclass
class Evaluation:
    """What `kiln.evaluate` found.

    Attributes:
        task: "binary", "multiclass" or "regression".
        metrics: Metric name -> value, computed exactly on every row (plus the fairness
            gaps when `segments` were given).
        figures: Plot name -> `kiln.plots.Figure` ("roc", "confusion_matrix", ...).
        groups: With `segments`, a DataFrame of metrics per group (else None).
        fairness: With `segments`, the gaps between groups (else an empty dict).
        importance: Feature -> importance, and how it was measured (`importance_kind`).
        report: The `kiln.report.Report`; `save_report(path)` writes it.
        run_id: The run the results were logged to, or None.
        seconds: How long the evaluation took.
    """

    task: str
    metrics: dict[str, float]
    figures: dict[str, Any] = field(default_factory=dict)
    groups: Any = None
    fairness: dict[str, float] = field(default_factory=dict)
    importance: dict[str, float] = field(default_factory=dict)
    importance_kind: str = ""
    report: Any = None
    run_id: str | None = None
    seconds: float = 0.0

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in list(self.metrics.items())[:4])
        return f"<kiln.Evaluation {self.task}: {shown}, {len(self.figures)} plots>"

    def save_report(self, path: Any) -> Path:
        """Write the HTML report to `path` (one file that opens offline)."""
        if self.report is None:
            raise EvaluationError(
                "This evaluation was made with report=False, so it has no report to save: "
                "call kiln.evaluate(..., report=True)."
            )
        return Path(self.report.save(path))


def _without_drift_warnings(fn: Any) -> Any:
    """Run `fn` in `kiln.models.quiet_drift()`: evaluate's many predictions (permutation
    importance calls predict once per feature and repeat) warn of no drift."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from kiln.models import quiet_drift

        with quiet_drift():
            return fn(*args, **kwargs)

    return wrapper


@_without_drift_warnings
def evaluate(
    model: Any,
    X: Any,
    y: Any,
    segments: Any = None,
    *,
    task: str | None = None,
    pos_label: Any = None,
    plots: bool = True,
    importance: str | None = "auto",
    report: bool = True,
    interactive: bool = True,
    log: bool | None = None,
    prefix: str = "",
    artifact_path: str = "evaluation",
    title: str | None = None,
    trust_pickle: bool = False,
) -> Evaluation:
    """Evaluate a model on held-out data: metrics, the standard plots, fairness, a report.

    ```python
    result = kiln.evaluate(model, X_test, y_test, segments="region")
    result.metrics["roc_auc"], result.fairness["equalized_odds_difference"]
    result.save_report("evaluation.html")
    ```

    Inside a run everything is logged to it: the metrics, each plot as PNG and Plotly
    JSON, the metrics per group, and the HTML report (under `artifact_path`).

    Args:
        model: A `kiln.Model`, a model URI (`runs:/...`, `models:/name@alias`), or any
            fitted object with `predict` (and `predict_proba` for probabilities).
        X: The features (a DataFrame, or what the model accepts).
        y: The true targets.
        segments: Groups to compare for fairness: a column name of X, a list of them,
            or one group label per row. Adds metrics per group and the gaps.
        task: "binary", "multiclass" or "regression"; detected when None.
        pos_label: The positive class of a binary task (default: the last class).
        plots: Draw the standard plots.
        importance: "auto" (the model's own importances, else permutation importance),
            "permutation", or None to skip.
        report: Build the HTML report.
        interactive: Plotly charts in the report (else PNG images, a smaller file).
        log: Log to the active run; by default, when a run is active.
        prefix: Put before every logged metric name (e.g. "test_").
        artifact_path: The run's artifact folder for plots and report.
        title: The report's title.
        trust_pickle: For a model URI: load a model whose files run code when loaded
            (see `kiln.load_model`); refused without it.

    Returns:
        An `Evaluation`.

    Raises:
        EvaluationError: `task` or `importance` is not a known value, `X` and `y` have
            different numbers of rows, or `segments` names no column of `X`.
        ModelError: `model` has no `predict`.
        NoActiveRunError: `log=True` and no run is active.
    """
    from kiln.tracking import active_run

    start = time.perf_counter()
    if task is not None and task not in TASKS:
        raise EvaluationError(
            f"task={task!r} is not a task kiln evaluates: expected one of {', '.join(TASKS)}, "
            "or None to detect it from the target."
        )
    if importance not in (None, "auto", "permutation"):
        raise EvaluationError(f"importance={importance!r}: expected 'auto', 'permutation' or None.")
    if isinstance(model, str):
        from kiln.models import load_model

        model = load_model(model, trust_pickle=trust_pickle)
    if not hasattr(model, "predict"):
        raise ModelError(
            f"kiln.evaluate needs a fitted model with predict(); got {type(model).__name__}."
        )
    y_true = _array(y, "y")
    n_rows = _rows(X)
    if n_rows != len(y_true):
        raise EvaluationError(
            f"X has {n_rows} rows but y has {len(y_true)}: pass one target per row of X."
        )
    model_task = getattr(model, "task_", None) or getattr(model, "task", None)
    classes = getattr(model, "classes_", None)
    if task is None and model_task == "regression":
        task = "regression"
    y_pred = _array(model.predict(X), "predictions")
    y_proba = None
    classify = task in ("binary", "multiclass") or (task is None and model_task != "regression")
    if classify and hasattr(model, "predict_proba") and model_task != "regression":
        try:
            y_proba = np.asarray(model.predict_proba(X), dtype=float)
        except (AttributeError, NotImplementedError, ModelError):
            y_proba = None  # e.g. an SVC without probability=True
    if task is None:
        task = detect_task(y_true, y_pred, y_proba=y_proba, classes=classes)
        if task == "regression":
            y_proba = None
    result = Evaluation(
        task, metrics(y_true, y_pred, y_proba, task, classes=classes, pos_label=pos_label)
    )
    if segments is not None:
        from kiln.evaluate._fairness import by_group, resolve_segments

        name, groups = resolve_segments(segments, X, n_rows)
        result.groups, result.fairness = by_group(
            y_true, y_pred, y_proba, groups, task, classes, pos_label
        )
        result.groups.index.name = name
        result.metrics.update(result.fairness)
    if importance is not None:
        found = _importance(model, X, y_true, task, importance)
        if found:
            result.importance, result.importance_kind = found
    if plots:
        result.figures = _figures(result, y_true, y_pred, y_proba, classes, pos_label)
    if report:
        from kiln.evaluate._report import build_report

        result.report = build_report(result, model, n_rows, title, interactive)
    run = active_run()
    if log is None:
        log = run is not None
    if log:
        if run is None:
            from kiln._exceptions import NoActiveRunError

            raise NoActiveRunError(
                "kiln.evaluate(log=True) logs to the active run, and no run is active. "
                "Use `with kiln.start_run(): kiln.evaluate(...)`, or log=False."
            )
        _log(run, result, prefix, artifact_path)
        result.run_id = run.id
    result.seconds = time.perf_counter() - start
    return result


def _rows(X: Any) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None:
        return int(shape[0])
    try:
        return len(X)
    except TypeError as exc:
        raise EvaluationError(
            f"X must be a table of rows (a DataFrame, an array, a list of rows); "
            f"got {type(X).__name__}."
        ) from exc


def _figures(
    result: Evaluation,
    y: np.ndarray,
    y_pred: np.ndarray,
    y_proba: np.ndarray | None,
    classes: Any,
    pos_label: Any,
) -> dict[str, Any]:
    import kiln.plots as plots

    figs: dict[str, Any] = {}
    if result.task == "regression":
        figs["predicted_vs_actual"] = plots.predicted_vs_actual(y, y_pred)
        figs["residuals"] = plots.residuals(y, y_pred)
    else:
        labels = list(classes) if classes is not None else None
        figs["confusion_matrix"] = plots.confusion_matrix(y, y_pred, labels=labels)
        figs["confusion_matrix_normalized"] = plots.confusion_matrix(
            y, y_pred, labels=labels, normalize=True
        )
        if y_proba is not None and result.task == "binary":
            names = (
                np.asarray(classes)
                if classes is not None
                else np.unique(np.concatenate([y, y_pred]))
            )
            pos = pos_label if pos_label is not None else names[-1]
            score = y_proba
            if y_proba.ndim == 2:
                score = y_proba[
                    :, int(np.flatnonzero(names == pos)[0]) if y_proba.shape[1] == len(names) else 1
                ]
            truth = y == pos
            if 0 < truth.sum() < len(truth):
                figs["roc"] = plots.roc(truth, score)
                figs["precision_recall"] = plots.precision_recall(truth, score)
                figs["gain"] = plots.gain(truth, score)
                figs["lift"] = plots.lift(truth, score)
            if np.all((score >= 0) & (score <= 1)):
                figs["calibration"] = plots.calibration(truth, score)
        elif y_proba is not None and y_proba.ndim == 2 and y_proba.shape[1] > 2:
            present = set(np.unique(y).tolist())
            order = list(classes) if classes is not None else sorted(present)
            if len(order) == y_proba.shape[1] and all(c in present for c in order):
                figs["roc"] = plots.roc(y, y_proba, classes=order)
                figs["precision_recall"] = plots.precision_recall(y, y_proba, classes=order)
    if result.importance:
        figs["feature_importance"] = plots.feature_importance(
            result.importance, x_label=result.importance_kind
        )
    if result.groups is not None:
        figs["fairness"] = plots.fairness(
            result.groups, title=f"Metrics by {result.groups.index.name}"
        )
    return figs


def _importance(
    model: Any, X: Any, y: np.ndarray, task: str, how: str
) -> tuple[dict[str, float], str] | None:
    columns = [str(c) for c in getattr(X, "columns", [])]
    if how == "auto":
        own = _own_importance(model, columns)
        if own is not None:
            return own
    if not columns:
        return None
    return _permutation(model, X, y, task), "Permutation importance (drop in score)"


def _own_importance(model: Any, columns: list[str]) -> tuple[dict[str, float], str] | None:
    est = inner_estimator(model)
    names: list[str] | None = columns or None
    final = est
    if hasattr(est, "steps"):  # a scikit-learn Pipeline: the last step's view of the columns
        final = est.steps[-1][1]
        try:
            names = [str(n) for n in est[:-1].get_feature_names_out()]
        except Exception:  # noqa: BLE001 - a step without feature names
            names = None
    values = getattr(final, "feature_importances_", None)
    kind = "Importance (the model's own)"
    if values is None:
        coef = getattr(final, "coef_", None)
        if coef is None:
            return None
        values = np.abs(np.atleast_2d(np.asarray(coef, dtype=float))).mean(axis=0)
        kind = "|coefficient|"
    values = np.asarray(values, dtype=float).ravel()
    if names is None or len(names) != len(values):
        return None
    return {n: float(v) for n, v in zip(names, values, strict=True)}, kind


def _permutation(model: Any, X: Any, y: np.ndarray, task: str) -> dict[str, float]:
    """Drop in accuracy (or R²) when one column's values are shuffled, on a sample."""
    rng = np.random.default_rng(0)
    n = len(y)
    rows = (
        np.sort(rng.choice(n, _PERMUTATION_ROWS, replace=False))
        if n > _PERMUTATION_ROWS
        else np.arange(n)
    )
    sample = X.iloc[rows].reset_index(drop=True)
    target = y[rows]

    def score(frame: Any) -> float:
        pred = _array(model.predict(frame), "predictions")
        if task == "regression":
            found = metrics(target, pred, task="regression")["r2"]
            return 0.0 if math.isnan(found) else found
        return float(np.mean(pred == target))

    base = score(sample)
    out: dict[str, float] = {}
    for column in sample.columns:
        drops = []
        for _ in range(_PERMUTATION_REPEATS):
            shuffled = sample.copy()
            shuffled[column] = shuffled[column].to_numpy()[rng.permutation(len(shuffled))]
            drops.append(base - score(shuffled))
        out[str(column)] = float(np.mean(drops))
    return out


def _log(run: Any, result: Evaluation, prefix: str, folder: str) -> None:
    finite = {f"{prefix}{k}": v for k, v in result.metrics.items() if math.isfinite(v)}
    if finite:
        run.log_metrics(finite)
    with tempfile.TemporaryDirectory(prefix="kiln-eval-") as tmp:
        out = Path(tmp)
        summary = {
            "task": result.task,
            "metrics": {k: (v if math.isfinite(v) else None) for k, v in result.metrics.items()},
            "fairness": {k: (v if math.isfinite(v) else None) for k, v in result.fairness.items()},
            "importance": result.importance,
        }
        (out / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        for name, fig in result.figures.items():
            (out / f"{name}.png").write_bytes(fig.to_png())
            (out / f"{name}.json").write_text(fig.to_json(), encoding="utf-8")
        if result.groups is not None:
            result.groups.reset_index().to_csv(out / "groups.csv", index=False)
        if result.report is not None:
            result.report.save(out / "report.html")
        run.log_artifact(out, name=folder)
