"""Metrics per group, and the fairness gaps between groups."""

from __future__ import annotations

from typing import Any

import numpy as np

from kiln._exceptions import EvaluationError
from kiln.evaluate._metrics import TASKS, _array, detect_task, metrics

__all__ = ["by_group", "fairness", "resolve_segments"]


def resolve_segments(segments: Any, X: Any, n_rows: int) -> tuple[str, np.ndarray]:
    """(name, one group label per row) from a column name, column names, or labels."""
    columns = list(getattr(X, "columns", []))
    if isinstance(segments, str):
        if segments not in columns:
            from kiln._exceptions import did_you_mean

            raise EvaluationError(
                f"segments={segments!r} is not a column of X.{did_you_mean(segments, map(str, columns))} "
                "Pass a column name, a list of them, or one group label per row."
            )
        return segments, np.asarray(X[segments]).astype(str)
    if (
        isinstance(segments, list | tuple)
        and segments
        and all(isinstance(s, str) and s in columns for s in segments)
    ):
        parts = [np.asarray(X[s]).astype(str) for s in segments]
        labels = parts[0]
        for part in parts[1:]:
            labels = np.char.add(np.char.add(labels, "|"), part)
        return "|".join(segments), labels
    labels = np.asarray(segments)
    if labels.ndim != 1 or len(labels) != n_rows:
        got = f"{len(labels)} labels" if labels.ndim == 1 else f"shape {labels.shape}"
        raise EvaluationError(
            f"segments has {got} for {n_rows} rows: pass one group label per row "
            "(or a column name of X, or a list of them)."
        )
    name = str(getattr(segments, "name", None) or "group")
    return name, labels.astype(str)


def by_group(
    y: np.ndarray,
    y_pred: np.ndarray,
    y_proba: np.ndarray | None,
    groups: np.ndarray,
    task: str,
    classes: Any,
    pos_label: Any,
) -> tuple[Any, dict[str, float]]:
    """A DataFrame of metrics per group, and the gaps between groups.

    For binary tasks each group also gets `selection_rate` (share predicted positive),
    `tpr` and `fpr`, and the gaps are `demographic_parity_difference` (largest minus
    smallest selection rate) and `equalized_odds_difference` (the larger of the TPR
    and FPR gaps), as Fairlearn defines them. Every task gets the gap of its main
    metric (`accuracy_gap`, or `mae_gap` for a regression).
    """
    import pandas as pd

    rows: dict[str, dict[str, float]] = {}
    pos = None
    if task == "binary":
        labels = (
            np.asarray(classes) if classes is not None else np.unique(np.concatenate([y, y_pred]))
        )
        pos = pos_label if pos_label is not None else labels[-1]
    for group in np.unique(groups):
        mask = groups == group
        proba = None if y_proba is None else y_proba[mask]
        row: dict[str, float] = {"count": int(mask.sum())}
        row.update(
            metrics(y[mask], y_pred[mask], proba, task, classes=classes, pos_label=pos_label)
        )
        if task == "binary":
            truth, guess = y[mask] == pos, y_pred[mask] == pos
            row["selection_rate"] = float(guess.mean())
            row["tpr"] = float(guess[truth].mean()) if truth.any() else float("nan")
            row["fpr"] = float(guess[~truth].mean()) if (~truth).any() else float("nan")
        rows[str(group)] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "group"
    gaps: dict[str, float] = {}

    def gap(column: str) -> float:
        values = frame[column].dropna()
        return float(values.max() - values.min()) if len(values) else float("nan")

    if task == "binary":
        gaps["demographic_parity_difference"] = gap("selection_rate")
        rates = [g for g in (gap("tpr"), gap("fpr")) if not np.isnan(g)]
        gaps["equalized_odds_difference"] = max(rates) if rates else float("nan")
    main = "mae" if task == "regression" else "accuracy"
    gaps[f"{main}_gap"] = gap(main)
    return frame, gaps


def fairness(
    y_true: Any,
    y_pred: Any,
    groups: Any,
    *,
    y_proba: Any = None,
    task: str | None = None,
    classes: Any = None,
    pos_label: Any = None,
) -> tuple[Any, dict[str, float]]:
    """The metrics of each group, and the fairness gaps between the groups.

    ```python
    groups, gaps = kiln.evaluate.fairness(y_test, y_pred, X_test["region"])
    groups.loc["north", "accuracy"], gaps["equalized_odds_difference"]
    ```

    The same numbers as `kiln.evaluate(..., segments=...)` gives in `Evaluation.groups`
    and `Evaluation.fairness`, from predictions already made (a prediction log, a batch
    score). Each group gets `count` and the task's metrics (`kiln.evaluate.metrics` on
    its rows); a binary task's groups also get `selection_rate` (the share predicted
    positive), `tpr` and `fpr`. The gaps are `demographic_parity_difference` (largest
    minus smallest selection rate) and `equalized_odds_difference` (the larger of the
    TPR and FPR gaps) for a binary task, as Fairlearn defines them, and for every task
    the gap of its main metric: `accuracy_gap`, or `mae_gap` for a regression.

    Args:
        y_true: The true targets.
        y_pred: The predicted labels (or values), one per row.
        groups: One group label per row (a Series, an array, a list); labels are
            compared as text. A named Series names the frame's index.
        y_proba: Class probabilities, as for `kiln.evaluate.metrics` (optional).
        task: "binary", "multiclass" or "regression"; detected from all rows when None.
        classes: The class labels in the order of `y_proba`'s columns (a model's
            `classes_`); by default the sorted labels seen in `y_true` and `y_pred`.
            Give them when a group may lack a class, so that every group scores the
            same positive class.
        pos_label: The positive class of a binary task (default: the last class).

    Returns:
        `(groups, gaps)`: a DataFrame with one row per group (indexed by the group
        label), and a dict of gap name -> value. A metric or gap that is undefined for
        the data (a TPR in a group with no positives) is NaN.

    Raises:
        EvaluationError: The inputs have different numbers of rows, no rows, or
            `task` is not a known task.
    """
    y = _array(y_true, "y_true")
    p = _array(y_pred, "y_pred")
    g = _array(groups, "groups")
    if not len(y) == len(p) == len(g):
        raise EvaluationError(
            f"y_true has {len(y)} rows, y_pred {len(p)} and groups {len(g)}: pass one "
            "prediction and one group label per row of y_true."
        )
    if len(y) == 0:
        raise EvaluationError("fairness() needs at least one row; got none.")
    if task is not None and task not in TASKS:
        raise EvaluationError(
            f"task={task!r} is not a task kiln evaluates: expected one of {', '.join(TASKS)}, "
            "or None to detect it from the target."
        )
    proba = None if y_proba is None else np.asarray(y_proba, dtype=float)
    if proba is not None and len(proba) != len(y):
        raise EvaluationError(
            f"y_proba has {len(proba)} rows but y_true has {len(y)}: pass probabilities "
            "for the same rows."
        )
    task = task or detect_task(y, p, y_proba=proba, classes=classes)
    frame, gaps = by_group(y, p, proba, g.astype(str), task, classes, pos_label)
    name = getattr(groups, "name", None)
    frame.index.name = str(name) if name is not None else "group"
    return frame, gaps
