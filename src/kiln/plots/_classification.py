"""Classification plots: ROC, precision-recall, confusion matrix, calibration, lift, gain.

Curves are computed exactly on all the rows and thinned only for drawing (at most
`max_points` points, chosen evenly along the curve's length), so the AUC shown is the
AUC of the data, and a 1,000,000-row curve draws as fast as a 1,000-row one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kiln._exceptions import PlotError
from kiln.plots._figure import Figure, Trace

__all__ = [
    "binary_scores",
    "calibration",
    "confusion_matrix",
    "gain",
    "lift",
    "precision_recall",
    "roc",
    "thin",
]


def thin(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[list[float], list[float]]:
    """At most `max_points` points of the curve (x, y), evenly spaced along its length.

    The first and last points are always kept, so the curve keeps its ends.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) <= max_points:
        return x.tolist(), y.tolist()
    span_x = float(np.ptp(x)) or 1.0
    span_y = float(np.ptp(y)) or 1.0
    steps = np.hypot(np.diff(x) / span_x, np.diff(y) / span_y)
    length = np.concatenate([[0.0], np.cumsum(steps)])
    wanted = np.linspace(0.0, length[-1], max_points)
    index = np.unique(np.searchsorted(length, wanted).clip(0, len(x) - 1))
    index = np.unique(np.concatenate([[0], index, [len(x) - 1]]))
    return x[index].tolist(), y[index].tolist()


def _labels(y_true: Any) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise PlotError(f"y_true must be one-dimensional (one label per row); got shape {y.shape}.")
    return y


def binary_scores(
    y_true: Any, y_score: Any, pos_label: Any = None
) -> tuple[np.ndarray, np.ndarray, Any]:
    """(is_positive, score, pos_label) for a binary problem.

    Args:
        y_true: The true labels (two distinct values).
        y_score: The positive class's score or probability, or an (n, 2) probability array
            whose second column is the positive class.
        pos_label: The positive label; by default the larger of the two (scikit-learn's
            `classes_[1]`).
    """
    y = _labels(y_true)
    score = np.asarray(y_score, dtype=float)
    if score.ndim == 2:
        if score.shape[1] != 2:
            raise PlotError(
                f"A binary plot needs one score per row or 2 probability columns; got "
                f"{score.shape[1]} columns. For more classes, pass the class labels as `classes`."
            )
        score = score[:, 1]
    if len(score) != len(y):
        raise PlotError(
            f"y_true has {len(y)} rows but the scores have {len(score)}: they must match."
        )
    if pos_label is None:
        classes = np.unique(y)
        if len(classes) > 2:
            raise PlotError(
                f"y_true has {len(classes)} classes ({', '.join(map(str, classes[:5]))}...); a "
                "binary plot needs two. Pass an (n, k) probability array for one-vs-rest curves."
            )
        pos_label = classes[-1]
    positive = y == pos_label
    return positive, score, pos_label


def _one_vs_rest(y_true: Any, y_score: Any, classes: Any) -> list[tuple[str, np.ndarray, Any]]:
    y = _labels(y_true)
    score = np.asarray(y_score, dtype=float)
    if score.ndim == 2 and score.shape[1] > 2:
        names = list(classes) if classes is not None else list(np.unique(y))
        if len(names) != score.shape[1]:
            raise PlotError(
                f"The probabilities have {score.shape[1]} columns but there are {len(names)} "
                "classes: pass `classes` in the column order (the model's classes_)."
            )
        return [(str(c), y == c, score[:, i]) for i, c in enumerate(names)]
    positive, s, pos = binary_scores(y, score)
    return [(str(pos), positive, s)]


def roc(
    y_true: Any,
    y_score: Any,
    *,
    classes: Any = None,
    max_points: int = 500,
    title: str = "ROC curve",
) -> Figure:
    """Receiver operating characteristic: true vs false positive rate, with the AUC.

    Args:
        y_true: The true labels.
        y_score: Positive-class scores (binary), or an (n, k) probability array for one
            curve per class (one-vs-rest).
        classes: The class label of each probability column (the model's `classes_`).
        max_points: Points drawn per curve (the AUC always uses every row).
        title: The title.

    Returns:
        A `Figure` whose `values` hold `auc` (binary) or `auc_<class>` per class.
    """
    from sklearn.metrics import auc, roc_curve

    fig = Figure(
        "roc",
        title,
        "False positive rate",
        "True positive rate",
        x_range=(0.0, 1.0),
        y_range=(0.0, 1.0),
        square=True,
    )
    curves = _one_vs_rest(y_true, y_score, classes)
    for name, positive, score in curves:
        _need_both(positive, "ROC curve")
        fpr, tpr, _ = roc_curve(positive, score)
        area = float(auc(fpr, tpr))
        key = "auc" if len(curves) == 1 else f"auc_{name}"
        fig.values[key] = area
        x, y = thin(fpr, tpr, max_points)
        label = f"AUC = {area:.3f}" if len(curves) == 1 else f"{name} (AUC = {area:.3f})"
        fig.traces.append(Trace("line", x, y, name=label))
    fig.traces.append(Trace("line", [0.0, 1.0], [0.0, 1.0], name="chance", dash=True))
    return fig


def precision_recall(
    y_true: Any,
    y_score: Any,
    *,
    classes: Any = None,
    max_points: int = 500,
    title: str = "Precision-recall curve",
) -> Figure:
    """Precision against recall, with the average precision (AP) and the base rate.

    Args and thinning as for `roc`. `values` hold `average_precision` (or
    `average_precision_<class>`) and, for one curve, `base_rate`.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig = Figure(
        "precision_recall", title, "Recall", "Precision", x_range=(0.0, 1.0), y_range=(0.0, 1.05)
    )
    curves = _one_vs_rest(y_true, y_score, classes)
    for name, positive, score in curves:
        _need_both(positive, "precision-recall curve")
        precision, recall, _ = precision_recall_curve(positive, score)
        ap = float(average_precision_score(positive, score))
        key = "average_precision" if len(curves) == 1 else f"average_precision_{name}"
        fig.values[key] = ap
        x, y = thin(recall, precision, max_points)
        label = f"AP = {ap:.3f}" if len(curves) == 1 else f"{name} (AP = {ap:.3f})"
        fig.traces.append(Trace("line", x, y, name=label))
    if len(curves) == 1:
        rate = float(curves[0][1].mean())
        fig.values["base_rate"] = rate
        fig.traces.append(Trace("line", [0.0, 1.0], [rate, rate], name="base rate", dash=True))
    return fig


def confusion_matrix(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Any = None,
    normalize: bool = False,
    title: str | None = None,
) -> Figure:
    """A confusion matrix: true labels down, predicted across, counts (or row shares).

    Args:
        y_true: The true labels.
        y_pred: The predicted labels.
        labels: The labels in display order (default: every label seen, sorted).
        normalize: Show each true class's row as shares summing to 1 (recall on the
            diagonal) instead of counts.
        title: The title (a default names counts or normalised).

    Returns:
        A `Figure` with one heatmap trace; `values["accuracy"]` is the diagonal's share.
    """
    y = _labels(y_true)
    p = _labels(y_pred)
    if len(y) != len(p):
        raise PlotError(
            f"y_true has {len(y)} rows but y_pred has {len(p)}: pass predictions for the same rows."
        )
    names = np.asarray(labels) if labels is not None else np.unique(np.concatenate([y, p]))
    index = {v: i for i, v in enumerate(names.tolist())}
    k = len(names)
    yi = np.searchsorted(names, y) if labels is None else np.array([index[v] for v in y.tolist()])
    pi = np.searchsorted(names, p) if labels is None else np.array([index[v] for v in p.tolist()])
    counts = np.bincount(yi * k + pi, minlength=k * k).reshape(k, k)
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)
        z = shares.round(6).tolist()
        text = [["-" if np.isnan(v) else f"{v:.2f}" for v in row] for row in shares]
    else:
        z = counts.astype(float).tolist()
        text = [[str(int(v)) for v in row] for row in counts]
    fig = Figure(
        "confusion_matrix_normalized" if normalize else "confusion_matrix",
        title
        or ("Confusion matrix (normalised by true class)" if normalize else "Confusion matrix"),
        "Predicted label",
        "True label",
    )
    axis = [str(v) for v in names.tolist()]
    fig.traces.append(Trace("heatmap", axis, axis, z=z, text=text))
    fig.values["accuracy"] = float(np.trace(counts) / max(counts.sum(), 1))
    return fig


def calibration(
    y_true: Any,
    y_proba: Any,
    *,
    n_bins: int = 10,
    pos_label: Any = None,
    title: str = "Calibration",
) -> Figure:
    """Reliability diagram: the observed positive rate per bin of predicted probability.

    Args:
        y_true: The true labels (binary).
        y_proba: The positive class's probability (or an (n, 2) array).
        n_bins: Equal-width probability bins.
        pos_label: The positive label (default: the larger).
        title: The title.

    Returns:
        A `Figure`; `values["brier"]` is the Brier score.
    """
    positive, proba, _ = binary_scores(y_true, y_proba, pos_label)
    if np.any((proba < 0) | (proba > 1)):
        raise PlotError("Calibration needs probabilities in [0, 1]; got values outside.")
    bins = np.minimum((proba * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    hits = np.bincount(bins, weights=positive.astype(float), minlength=n_bins)
    mean_p = np.bincount(bins, weights=proba, minlength=n_bins)
    used = count > 0
    fig = Figure(
        "calibration",
        title,
        "Mean predicted probability",
        "Fraction of positives",
        x_range=(0.0, 1.0),
        y_range=(0.0, 1.0),
        square=True,
    )
    x = (mean_p[used] / count[used]).tolist()
    y = (hits[used] / count[used]).tolist()
    fig.traces.append(Trace("line", x, y, name="model"))
    fig.traces.append(Trace("line", [0.0, 1.0], [0.0, 1.0], name="perfectly calibrated", dash=True))
    fig.values["brier"] = float(np.mean((proba - positive) ** 2))
    return fig


def _gains(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-score, kind="stable")
    captured = np.cumsum(positive[order]) / max(int(positive.sum()), 1)
    share = np.arange(1, len(order) + 1) / len(order)
    return np.concatenate([[0.0], share]), np.concatenate([[0.0], captured])


def gain(
    y_true: Any,
    y_score: Any,
    *,
    pos_label: Any = None,
    max_points: int = 200,
    title: str = "Cumulative gain",
) -> Figure:
    """Cumulative gain: the share of positives found in the top-scored share of rows.

    `values["gain_at_10pct"]` is the share of positives in the top 10% of scores.
    """
    positive, score, _ = binary_scores(y_true, y_score, pos_label)
    _need_both(positive, "gain curve")
    share, captured = _gains(positive, score)
    x, y = thin(share, captured, max_points)
    fig = Figure(
        "gain",
        title,
        "Share of rows, highest scores first",
        "Share of positives found",
        x_range=(0.0, 1.0),
        y_range=(0.0, 1.0),
    )
    fig.traces.append(Trace("line", x, y, name="model"))
    fig.traces.append(Trace("line", [0.0, 1.0], [0.0, 1.0], name="random", dash=True))
    fig.values["gain_at_10pct"] = float(np.interp(0.1, share, captured))
    return fig


def lift(
    y_true: Any,
    y_score: Any,
    *,
    pos_label: Any = None,
    max_points: int = 200,
    title: str = "Lift",
) -> Figure:
    """Lift: how many times the base rate of positives the top-scored share of rows holds.

    `values["lift_at_10pct"]` is the lift in the top 10% of scores.
    """
    positive, score, _ = binary_scores(y_true, y_score, pos_label)
    _need_both(positive, "lift curve")
    share, captured = _gains(positive, score)
    share, captured = share[1:], captured[1:]
    lifts = captured / share
    start = min(len(share) - 1, max(0, int(0.01 * len(share))))  # skip the noisy first 1%
    x, y = thin(share[start:], lifts[start:], max_points)
    fig = Figure("lift", title, "Share of rows, highest scores first", "Lift", x_range=(0.0, 1.0))
    fig.traces.append(Trace("line", x, y, name="model"))
    fig.traces.append(Trace("line", [0.0, 1.0], [1.0, 1.0], name="random", dash=True))
    fig.values["lift_at_10pct"] = float(np.interp(0.1, share, lifts))
    return fig


def _need_both(positive: np.ndarray, what: str) -> None:
    n = int(positive.sum())
    if n == 0 or n == len(positive):
        raise PlotError(
            f"A {what} needs both positive and negative rows; y_true has only "
            f"{'negatives' if n == 0 else 'positives'} ({len(positive)} rows)."
        )
