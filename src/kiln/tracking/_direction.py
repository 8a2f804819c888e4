"""Which way is better for a metric: `metric_direction`.

Used wherever kiln marks a best run (`kiln runs compare`, sweeps). A direction is known
for kiln's own metrics (durations are better lower; bookkeeping counts have none), for
the metrics `kiln.evaluate` computes and their usual spellings (`val_loss`, `test/auc`,
`cv_f1_macro`), or declared: a run tag `kiln.direction.<metric>` set to `max` or `min`
(sweeps set it for their objective), or a `directions` mapping from the caller. A metric
with no known or declared direction has none, and no run is called best on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["DIRECTION_TAG", "metric_direction"]

DIRECTION_TAG = "kiln.direction."

# Names (a metric's key, or its last part after a separator) with a known direction.
_HIGHER = frozenset(
    [
        "accuracy",
        "acc",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
        "f1_macro",
        "f1_micro",
        "f1_weighted",
        "precision_macro",
        "recall_macro",
        "precision_weighted",
        "recall_weighted",
        "roc_auc",
        "roc_auc_ovr",
        "roc_auc_ovo",
        "auc",
        "average_precision",
        "ap",
        "r2",
        "score",
        "best_cv_score",
        "training_score",
        "map",
        "ndcg",
        "iou",
        "dice",
        "bleu",
        "rouge",
        "gini",
        "specificity",
        "sensitivity",
        "tpr",
        "tnr",
        "kappa",
        "mcc",
        "explained_variance",
    ]
)
_LOWER = frozenset(
    [
        "loss",
        "log_loss",
        "logloss",
        "brier",
        "brier_score",
        "mae",
        "mse",
        "rmse",
        "rmsle",
        "msle",
        "mape",
        "smape",
        "median_ae",
        "error",
        "err",
        "error_rate",
        "perplexity",
        "fpr",
        "fnr",
        "seconds",
        "latency",
        "duration",
        "time",
    ]
)
# A gap between groups (kiln.evaluate's fairness: accuracy_gap, demographic_parity_difference,
# also as segment.accuracy_gap) is better smaller, whatever the metric it is a gap in.
_GAP_SUFFIXES = ("_gap", "_difference", "_disparity")
# kiln's own bookkeeping: counts and system readings have no better direction.
_NONE_PREFIXES = ("kiln.pipeline.steps_", "system/", "kiln.sweep.")
_SEPARATORS = re.compile(r"[./:\-\s]")


def metric_direction(
    key: str,
    *,
    tags: Mapping[str, str] | None = None,
    directions: Mapping[str, str] | None = None,
) -> str | None:
    """`"max"`, `"min"` or None (unknown: no run is best on it) for a metric key.

    Args:
        key: The metric's key, as logged.
        tags: A run's tags; `kiln.direction.<key>` = max|min declares the direction.
        directions: Declared directions by key (max|min), taking precedence.
    """
    for declared in (directions or {}, {k[len(DIRECTION_TAG) :]: v for k, v in (tags or {}).items() if k.startswith(DIRECTION_TAG)}):  # fmt: skip
        value = str(declared.get(key, "")).strip().lower()
        if value in ("max", "maximize", "higher"):
            return "max"
        if value in ("min", "minimize", "lower"):
            return "min"
    lowered = key.lower()
    if lowered.startswith(_NONE_PREFIXES):
        return None
    name = _SEPARATORS.split(lowered)[-1]
    negated = name.startswith("neg_")  # scikit-learn's scorers: neg_mean_squared_error
    if negated:
        name = name[4:]
    found = "min" if name.endswith(_GAP_SUFFIXES) else _lookup(name)
    if found is None:
        return None
    if negated:
        return "max" if found == "min" else "min"
    return found


def _lookup(name: str) -> str | None:
    if name in _HIGHER:
        return "max"
    if name in _LOWER:
        return "min"
    # Prefixed or suffixed spellings: val_loss, cv_auc, mean_squared_error, f1_macro_test.
    parts = name.split("_")
    best: tuple[int, str] | None = None
    for i in range(len(parts)):
        for j in range(i + 1, len(parts) + 1):
            if (i, j) == (0, len(parts)):
                continue
            piece = "_".join(parts[i:j])
            side = "max" if piece in _HIGHER else "min" if piece in _LOWER else None
            if side is not None and (best is None or j - i > best[0]):
                best = (j - i, side)
    return best[1] if best else None
