"""Regression plots, feature importance and the fairness plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kiln._exceptions import PlotError
from kiln.plots._figure import Figure, Trace

__all__ = ["fairness", "feature_importance", "predicted_vs_actual", "residuals"]


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        y = np.asarray(y_true, dtype=float).ravel()
        p = np.asarray(y_pred, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise PlotError(
            f"A regression plot needs numeric targets and predictions: {exc}. For class "
            "labels, use confusion_matrix."
        ) from exc
    if len(y) != len(p):
        raise PlotError(
            f"y_true has {len(y)} rows but y_pred has {len(p)}: pass predictions for the same rows."
        )
    if len(y) == 0:
        raise PlotError("A regression plot needs at least one row; got none.")
    return y, p


def _sample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def residuals(
    y_true: Any, y_pred: Any, *, max_points: int = 2000, title: str = "Residuals"
) -> Figure:
    """Residual (actual - predicted) against the prediction, with the zero line.

    At most `max_points` rows are drawn (a fixed random sample); `values` hold the
    residuals' `mean` and `std` over all rows.
    """
    y, p = _pair(y_true, y_pred)
    resid = y - p
    keep = _sample(len(y), max_points)
    fig = Figure("residuals", title, "Predicted value", "Residual (actual - predicted)")
    fig.traces.append(Trace("scatter", p[keep].tolist(), resid[keep].tolist(), name=""))
    low, high = float(p.min()), float(p.max())
    fig.traces.append(Trace("line", [low, high], [0.0, 0.0], name="zero", dash=True))
    fig.values.update({"mean": float(resid.mean()), "std": float(resid.std())})
    return fig


def predicted_vs_actual(
    y_true: Any, y_pred: Any, *, max_points: int = 2000, title: str = "Predicted vs actual"
) -> Figure:
    """Each row's prediction against its actual value, with the identity line.

    At most `max_points` rows are drawn; `values["r2"]` is R² over all rows.
    """
    y, p = _pair(y_true, y_pred)
    keep = _sample(len(y), max_points)
    fig = Figure("predicted_vs_actual", title, "Actual value", "Predicted value", square=True)
    fig.traces.append(Trace("scatter", y[keep].tolist(), p[keep].tolist(), name=""))
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    fig.traces.append(Trace("line", [low, high], [low, high], name="perfect", dash=True))
    total = float(((y - y.mean()) ** 2).sum())
    fig.values["r2"] = 1.0 - float(((y - p) ** 2).sum()) / total if total else float("nan")
    return fig


def feature_importance(
    importances: Mapping[str, float] | Sequence[float],
    names: Sequence[str] | None = None,
    *,
    errors: Sequence[float] | None = None,
    top: int = 20,
    title: str = "Feature importance",
    x_label: str = "Importance",
) -> Figure:
    """Horizontal bars of the `top` most important features, largest first.

    Args:
        importances: A dict of feature -> importance, or values in the order of `names`.
        names: The feature names, when `importances` is a sequence.
        errors: An error bar per feature (e.g. the permutation importance's std).
        top: How many features to show.
        title: The title.
        x_label: What the importance measures.

    Returns:
        A `Figure`; `values` hold every shown feature's importance.
    """
    if isinstance(importances, Mapping):
        names = [str(k) for k in importances]
        values = [float(v) for v in importances.values()]
    else:
        values = [float(v) for v in importances]
        names = (
            [str(n) for n in names] if names is not None else [f"x{i}" for i in range(len(values))]
        )
    if len(names) != len(values):
        raise PlotError(
            f"{len(names)} feature names for {len(values)} importances: pass one name per "
            "importance (or a dict of name -> importance)."
        )
    order = sorted(range(len(values)), key=lambda i: -abs(values[i]))[:top]
    fig = Figure("feature_importance", title, x_label, "Feature")
    err = [float(errors[i]) for i in order] if errors is not None else None
    fig.traces.append(
        Trace("barh", [values[i] for i in order], [names[i] for i in order], error=err)
    )
    fig.values.update({names[i]: values[i] for i in order})
    return fig


def fairness(
    groups: Any,
    *,
    metrics: Sequence[str] | None = None,
    title: str = "Metrics by group",
) -> Figure:
    """Grouped bars: each metric for each group (the table from `kiln.evaluate`).

    Args:
        groups: A DataFrame indexed by group with one column per metric (as
            `Evaluation.groups`), or a dict of group -> {metric: value}.
        metrics: The metric columns to draw (default: selection rate, true and false
            positive rates when present, else accuracy, else every column but `count`).
        title: The title.
    """
    import pandas as pd

    frame = groups if isinstance(groups, pd.DataFrame) else pd.DataFrame(groups).T
    if metrics is None:
        preferred = [c for c in ("selection_rate", "tpr", "fpr") if c in frame.columns]
        fallback = [c for c in frame.columns if c not in ("count", "positives")]
        metrics = preferred or (["accuracy"] if "accuracy" in frame.columns else fallback)
    if frame.empty or not len(metrics):
        raise PlotError(
            "Nothing to plot: the group table has no groups or no metric columns. Pass "
            "`Evaluation.groups` from kiln.evaluate(..., segments=...), or a dict of "
            "group -> {metric: value}."
        )
    missing = [m for m in metrics if m not in frame.columns]
    if missing:
        raise PlotError(
            f"No column {missing[0]!r} in the group table; it has {', '.join(map(str, frame.columns))}."
        )
    fig = Figure("fairness", title, "Group", "Value")
    labels = [str(g) for g in frame.index]
    for metric in metrics:
        fig.traces.append(Trace("bar", labels, frame[metric].astype(float).tolist(), name=metric))
    for metric in metrics:
        column = frame[metric].astype(float)
        fig.values[f"{metric}_gap"] = float(column.max() - column.min())
    return fig
