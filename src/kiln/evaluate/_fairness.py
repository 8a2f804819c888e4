"""Metrics per group, and the fairness gaps between groups."""

from __future__ import annotations

from typing import Any

import numpy as np

from kiln._exceptions import EvaluationError
from kiln.evaluate._metrics import metrics

__all__ = ["by_group", "resolve_segments"]


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
