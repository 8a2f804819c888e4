"""The metric dict for each task, computed exactly and without plotting."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kiln._exceptions import EvaluationError

__all__ = ["HIGHER_IS_BETTER", "TASKS", "detect_task", "metrics"]

TASKS = ("binary", "multiclass", "regression")

HIGHER_IS_BETTER: dict[str, bool] = {
    # classification
    "accuracy": True,
    "balanced_accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "precision_macro": True,
    "recall_macro": True,
    "f1_macro": True,
    "f1_weighted": True,
    "roc_auc": True,
    "roc_auc_ovr": True,
    "average_precision": True,
    "log_loss": False,
    "brier": False,
    # regression
    "mae": False,
    "mse": False,
    "rmse": False,
    "r2": True,
    "mape": False,
    "median_ae": False,
    # fairness gaps between groups (see kiln.evaluate's segments)
    "demographic_parity_difference": False,
    "equalized_odds_difference": False,
    "accuracy_gap": False,
    "mae_gap": False,
}
"""Each metric kiln.evaluate computes -> True when a higher value is better.

The one place a metric's direction is defined: `compare` decides which model is better
with it."""
_MAX_CLASSES_FOR_INTS = 20  # integer targets with more distinct values are a regression


def _array(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    out = np.asarray(values)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim != 1:
        raise EvaluationError(
            f"{name} must be one-dimensional (one value per row); got shape {out.shape}."
        )
    return out


def detect_task(
    y_true: Any, y_pred: Any = None, *, y_proba: Any = None, classes: Any = None
) -> str:
    """Guess the task from the target: "binary", "multiclass" or "regression".

    Strings, booleans and categories are classes; floats with a fractional part are a
    regression; integers are classes when there are at most 20 distinct values (or
    when probabilities or classes are given), else a regression.
    """
    y = _array(y_true, "y_true")
    if classes is None and y_proba is None:
        if y.dtype.kind == "f":
            finite = y[np.isfinite(y)]
            if len(finite) and not np.all(np.mod(finite, 1) == 0):
                return "regression"
        if y.dtype.kind in "iuf" and len(np.unique(y)) > _MAX_CLASSES_FOR_INTS:
            return "regression"
    seen = set(np.unique(y).tolist())
    if y_pred is not None:
        seen |= set(np.unique(_array(y_pred, "y_pred")).tolist())
    if classes is not None:
        seen |= set(np.asarray(classes).tolist())
    n_classes = len(seen)
    if y_proba is not None:
        proba = np.asarray(y_proba)
        if proba.ndim == 2:
            n_classes = max(n_classes, proba.shape[1])
    return "binary" if n_classes <= 2 else "multiclass"


def metrics(
    y_true: Any,
    y_pred: Any,
    y_proba: Any = None,
    task: str | None = None,
    *,
    classes: Any = None,
    pos_label: Any = None,
) -> dict[str, float]:
    """The standard metrics for a task, as a dict of name -> float (no plotting).

    - binary: accuracy, balanced_accuracy, precision, recall, f1 (of the positive
      class); with probabilities also roc_auc, average_precision, log_loss, brier.
    - multiclass: accuracy, balanced_accuracy, precision_macro, recall_macro,
      f1_macro, f1_weighted; with probabilities also roc_auc_ovr and log_loss.
    - regression: mae, mse, rmse, r2, mape (over rows whose actual value is not 0),
      median_ae.

    Args:
        y_true: The true targets.
        y_pred: The predicted labels (or values).
        y_proba: Class probabilities: an (n, k) array in the order of `classes`, or,
            for binary, the positive class's probability.
        task: "binary", "multiclass" or "regression"; detected when None.
        classes: The label of each probability column (a model's `classes_`); by
            default the sorted labels seen in `y_true` and `y_pred`.
        pos_label: The positive class for binary metrics (default: the last class).

    Returns:
        The metrics. A metric that is undefined for the data (an AUC with one class
        present) is NaN.
    """
    y = _array(y_true, "y_true")
    p = _array(y_pred, "y_pred")
    if len(y) != len(p):
        raise EvaluationError(
            f"y_true has {len(y)} rows but y_pred has {len(p)}: pass predictions for the same rows."
        )
    if len(y) == 0:
        raise EvaluationError("metrics() needs at least one row; got none.")
    task = task or detect_task(y, p, y_proba=y_proba, classes=classes)
    if task not in TASKS:
        raise EvaluationError(
            f"task={task!r} is not a task kiln evaluates: expected one of {', '.join(TASKS)}, "
            "or None to detect it from the target."
        )
    if task == "regression":
        return _regression(y, p)
    labels = np.asarray(classes) if classes is not None else np.unique(np.concatenate([y, p]))
    proba = None if y_proba is None else np.asarray(y_proba, dtype=float)
    if proba is not None and len(proba) != len(y):
        raise EvaluationError(
            f"y_proba has {len(proba)} rows but y_true has {len(y)}: pass probabilities "
            "for the same rows."
        )
    if task == "binary":
        return _binary(y, p, proba, labels, pos_label)
    return _multiclass(y, p, proba, labels)


def _safe(x: float) -> float:
    return float(x) if math.isfinite(x) else float("nan")


def _binary(
    y: np.ndarray, p: np.ndarray, proba: np.ndarray | None, labels: np.ndarray, pos_label: Any
) -> dict[str, float]:
    if len(labels) > 2:
        raise EvaluationError(
            f"task='binary' but there are {len(labels)} classes "
            f"({', '.join(map(str, labels[:5]))}); use task='multiclass'."
        )
    pos = pos_label if pos_label is not None else labels[-1]
    truth, guess = y == pos, p == pos
    tp = int(np.sum(truth & guess))
    fp = int(np.sum(~truth & guess))
    fn = int(np.sum(truth & ~guess))
    tn = len(y) - tp - fp - fn
    tpr = tp / (tp + fn) if tp + fn else float("nan")
    tnr = tn / (tn + fp) if tn + fp else float("nan")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tpr if tp + fn else 0.0
    out = {
        "accuracy": (tp + tn) / len(y),
        "balanced_accuracy": float(np.nanmean([tpr, tnr])) if tp + fn or tn + fp else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }
    if proba is not None:
        score = proba
        if proba.ndim == 2:
            column = int(np.flatnonzero(labels == pos)[0]) if proba.shape[1] == len(labels) else 1
            score = proba[:, column]
        out.update(_binary_proba(truth, score))
    return {k: _safe(v) for k, v in out.items()}


def _binary_proba(truth: np.ndarray, score: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    out: dict[str, float] = {}
    both = 0 < int(truth.sum()) < len(truth)
    out["roc_auc"] = float(roc_auc_score(truth, score)) if both else float("nan")
    out["average_precision"] = (
        float(average_precision_score(truth, score)) if both else float("nan")
    )
    if np.all((score >= 0) & (score <= 1)):
        eps = np.finfo(float).eps
        clipped = np.clip(score, eps, 1 - eps)
        out["log_loss"] = float(-np.mean(np.where(truth, np.log(clipped), np.log1p(-clipped))))
        out["brier"] = float(np.mean((score - truth) ** 2))
    return out


def _multiclass(
    y: np.ndarray, p: np.ndarray, proba: np.ndarray | None, labels: np.ndarray
) -> dict[str, float]:
    from sklearn.metrics import (
        balanced_accuracy_score,
        log_loss,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    present = np.unique(y)
    try:
        precision, recall, f1, support = precision_recall_fscore_support(
            y, p, labels=present, zero_division=0
        )
        balanced = float(balanced_accuracy_score(y, p))
    except ValueError as exc:  # e.g. continuous predictions for class labels
        raise EvaluationError(
            f"Cannot score {len(present)} classes against these predictions: {exc}. "
            "Predictions must be class labels; for numbers, pass task='regression'."
        ) from exc
    out = {
        "accuracy": float(np.mean(y == p)),
        "balanced_accuracy": balanced,
        "precision_macro": float(np.mean(precision)),
        "recall_macro": float(np.mean(recall)),
        "f1_macro": float(np.mean(f1)),
        "f1_weighted": float(np.average(f1, weights=support)),
    }
    if proba is not None and proba.ndim == 2 and proba.shape[1] == len(labels):
        normal = proba / proba.sum(axis=1, keepdims=True)
        try:
            out["roc_auc_ovr"] = float(roc_auc_score(y, normal, multi_class="ovr", labels=labels))
        except ValueError:  # a class absent from y_true: the AUC is undefined
            out["roc_auc_ovr"] = float("nan")
        out["log_loss"] = float(log_loss(y, normal, labels=labels))
    return {k: _safe(v) for k, v in out.items()}


def _regression(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    try:
        y = y.astype(float)
        p = p.astype(float)
    except (TypeError, ValueError) as exc:
        raise EvaluationError(
            f"A regression needs numeric targets and predictions: {exc}. "
            "Pass numbers, or task='binary'/'multiclass' for class labels."
        ) from exc
    err = y - p
    mse = float(np.mean(err**2))
    total = float(np.sum((y - y.mean()) ** 2))
    nonzero = y != 0
    return {
        "mae": float(np.mean(np.abs(err))),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "r2": 1.0 - float(np.sum(err**2)) / total if total else float("nan"),
        "mape": float(np.mean(np.abs(err[nonzero] / y[nonzero])))
        if nonzero.any()
        else float("nan"),
        "median_ae": float(np.median(np.abs(err))),
    }
