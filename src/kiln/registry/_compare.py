"""Champion and challenger: two models scored on the same held-out data, side by side.

```python
result = kiln.registry.compare("churn@production", "churn/4", X_test, y_test)
print(result.verdict)        # "churn/4 is better on roc_auc (0.912 vs 0.897)"
result.to_frame()            # one row per metric: value of each, difference, better
```
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

from kiln._exceptions import ConfigurationError

__all__ = ["Comparison", "MetricComparison", "compare", "model_uri"]

# name -> (higher is better, classification?); the first of each task is the primary.
_METRICS: dict[str, tuple[bool, bool]] = {
    "roc_auc": (True, True),
    "accuracy": (True, True),
    "balanced_accuracy": (True, True),
    "f1": (True, True),
    "log_loss": (False, True),
    "rmse": (False, False),
    "mae": (False, False),
    "r2": (True, False),
    "mape": (False, False),
}
_TIE = 1e-12


@dataclass(frozen=True)
class MetricComparison:
    """One metric for both models.

    Attributes:
        name: The metric, e.g. `roc_auc`.
        a: Model A's value (None when it cannot be computed, e.g. no probabilities).
        b: Model B's value.
        higher_is_better: The metric's direction.
        better: "a", "b", "tie", or None when either value is missing.
    """

    name: str
    a: float | None
    b: float | None
    higher_is_better: bool
    better: str | None


@dataclass(frozen=True)
class Comparison:
    """The result of `compare`.

    Attributes:
        a: Model A as given (e.g. `churn@production`).
        b: Model B as given.
        task: "classification" or "regression".
        n_rows: Rows scored.
        metrics: Per metric, both values and which is better; the first is the primary.
        drift: How the data differs from each model's training data (the columns
            `DataDriftWarning` named while scoring), so a surprising result can be explained.
    """

    a: str
    b: str
    task: str
    n_rows: int
    metrics: list[MetricComparison]
    drift: list[str]

    @property
    def primary(self) -> MetricComparison:
        """The deciding metric: ROC AUC (else accuracy) for classifiers, RMSE for regression."""
        return next(m for m in self.metrics if m.better is not None)

    @property
    def winner(self) -> str | None:
        """`a`, `b`, or None for a tie on the primary metric."""
        better = self.primary.better
        return None if better == "tie" else better

    @property
    def verdict(self) -> str:
        """One sentence: which model is better on the primary metric, with both values."""
        m = self.primary
        if self.winner is None:
            return f"{self.a} and {self.b} tie on {m.name} ({_fmt(m.a)})."
        won, lost = (self.a, self.b) if self.winner == "a" else (self.b, self.a)
        mine, theirs = (m.a, m.b) if self.winner == "a" else (m.b, m.a)
        others = [x.name for x in self.metrics[1:] if x.better == self.winner]
        also = f"; also better on {', '.join(others)}" if others else ""
        return f"{won} is better than {lost} on {m.name} ({_fmt(mine)} vs {_fmt(theirs)}){also}."

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "a": self.a,
            "b": self.b,
            "task": self.task,
            "n_rows": self.n_rows,
            "winner": self.winner,
            "verdict": self.verdict,
            "metrics": [asdict(m) for m in self.metrics],
            "drift": self.drift,
        }

    def to_frame(self) -> Any:
        """One row per metric: `a`, `b`, `difference` (b - a), `better`."""
        import pandas as pd

        rows = [
            {
                "metric": m.name,
                "a": m.a,
                "b": m.b,
                "difference": None if m.a is None or m.b is None else m.b - m.a,
                "better": m.better,
            }
            for m in self.metrics
        ]
        return pd.DataFrame(rows).set_index("metric")


def model_uri(ref: str | os.PathLike[str]) -> str:
    """A model URI from a short reference: `churn/3`, `churn@production` -> `models:/...`.

    URIs (`models:/`, `runs:/`) and existing folders are returned as they are.
    """
    text = os.fspath(ref)
    if "://" in text or ":/" in text or os.path.isdir(text):
        return text
    if "@" in text or "/" in text:
        return f"models:/{text}"
    raise ConfigurationError(
        f"{text!r} does not name a model version: expected NAME/VERSION, NAME@ALIAS, "
        "a models:/ or runs:/ URI, or a saved model folder."
    )


def compare(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    X: Any,
    y: Any,
    *,
    store: str | None = None,
    trust_pickle: bool = False,
) -> Comparison:
    """Score two models on the same data and say which is better on which metric.

    Args:
        a: The first model (the champion): `churn@production`, `churn/3`, a URI or folder.
        b: The second (the challenger).
        X: Held-out features, in any form `Model.predict` accepts.
        y: The true targets for `X`.
        store: The store to resolve registry and run URIs in (default: the configured one).
        trust_pickle: Load models whose files run code when loaded (see
            `kiln.load_model`); refused without it.

    Returns:
        A `Comparison`; `.verdict` says which is better, `.to_frame()` shows every metric.

    Raises:
        ConfigurationError: The two models do different tasks, or `y` does not match `X`.
    """
    import numpy as np

    from kiln.models import load_model

    model_a = load_model(model_uri(a), store=store, trust_pickle=trust_pickle)
    model_b = load_model(model_uri(b), store=store, trust_pickle=trust_pickle)
    task = model_a.task_ or "regression"
    if (model_b.task_ or "regression") != task:
        raise ConfigurationError(
            f"{a} does {task} but {b} does {model_b.task_}: compare models of the same task."
        )
    from kiln.models import quiet_drift

    truth = np.asarray(y)
    scores, drift = [], []
    for ref, model in ((a, model_a), (b, model_b)):
        found = model.check(X)
        if found.warnings:
            columns = sorted({str(p["column"]) for p in found.warnings})
            drift.append(f"{os.fspath(ref)}: {', '.join(columns)}")
        with quiet_drift():
            scores.append(_score(model, X, truth, task))
    metrics = []
    for name, (higher, for_classifiers) in _METRICS.items():
        if for_classifiers != (task == "classification"):
            continue
        va, vb = scores[0].get(name), scores[1].get(name)
        metrics.append(MetricComparison(name, va, vb, higher, _better(va, vb, higher)))
    return Comparison(os.fspath(a), os.fspath(b), task, len(truth), metrics, drift)


def _score(model: Any, X: Any, y: Any, task: str) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as skm

    pred = np.asarray(model.predict(X))
    if len(pred) != len(y):
        raise ConfigurationError(f"y has {len(y)} values but X has {len(pred)} rows.")
    if task == "regression":
        out = {
            "rmse": math.sqrt(skm.mean_squared_error(y, pred)),
            "mae": skm.mean_absolute_error(y, pred),
            "r2": skm.r2_score(y, pred),
        }
        if not np.any(y == 0):
            out["mape"] = skm.mean_absolute_percentage_error(y, pred)
        return {k: float(v) for k, v in out.items()}
    labels = sorted(set(y.tolist()) | set(pred.tolist()))
    binary = len(labels) <= 2
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "f1": skm.f1_score(y, pred, average="binary" if binary else "macro", pos_label=labels[-1]),
    }
    try:
        proba = np.asarray(model.predict_proba(X))
    except Exception:  # noqa: BLE001 - a classifier without probabilities: no AUC or log loss
        proba = None
    classes = model.classes_
    if proba is not None and classes is not None and set(y.tolist()) <= set(classes):
        out["log_loss"] = skm.log_loss(y, proba, labels=classes)
        if len(set(y.tolist())) > 1:
            out["roc_auc"] = (
                skm.roc_auc_score(y, proba[:, 1])
                if len(classes) == 2
                else skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
            )
    return {k: float(v) for k, v in out.items()}


def _better(a: float | None, b: float | None, higher: bool) -> str | None:
    if a is None or b is None:
        return None
    if abs(a - b) <= _TIE * max(1.0, abs(a), abs(b)):
        return "tie"
    return "a" if (a > b) == higher else "b"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
