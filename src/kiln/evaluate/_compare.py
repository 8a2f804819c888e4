"""Champion and challenger: two models scored on the same held-out data, side by side.

```python
result = kiln.evaluate.compare("churn@production", "churn/4", X_test, y_test)
print(result.verdict)        # "churn/4 is better on roc_auc (0.912 vs 0.897)"
result.to_frame()            # one row per metric: value of each, difference, better
```

The numbers are `kiln.evaluate`'s (`kiln.evaluate.metrics`), so `kiln models compare`
and `kiln evaluate` agree on every metric they both show; each metric's direction is
`HIGHER_IS_BETTER`'s. (Moved from `kiln.registry.compare`, which still works.)
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

from kiln._exceptions import ConfigurationError, EvaluationError
from kiln.evaluate._evaluate import evaluate
from kiln.evaluate._metrics import HIGHER_IS_BETTER

__all__ = ["Comparison", "MetricComparison", "compare", "model_uri"]

# The metrics a comparison shows, per task; the first is the primary (the deciding one).
SHOWN: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "accuracy", "balanced_accuracy", "f1", "log_loss"),
    "multiclass": ("roc_auc_ovr", "accuracy", "balanced_accuracy", "f1_macro", "log_loss"),
    "regression": ("rmse", "mae", "r2", "mape"),
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
        task: "binary", "multiclass" or "regression" (as `kiln.evaluate` names it).
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
        """The deciding metric: the first both models have.

        ROC AUC (`roc_auc`, or `roc_auc_ovr` for more than two classes; else accuracy)
        for classifiers, RMSE for regressions.
        """
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

    Each model is scored by `kiln.evaluate` (no plots, no report, nothing logged), so
    the values are exactly those `kiln.evaluate` and `kiln evaluate` report.

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
        ConfigurationError: `a` or `b` does not name a model.
        EvaluationError: The two models do different tasks, or `y` does not match `X`.
    """
    from kiln.models import load_model

    model_a = load_model(model_uri(a), store=store, trust_pickle=trust_pickle)
    model_b = load_model(model_uri(b), store=store, trust_pickle=trust_pickle)
    kind = model_a.task_ or "regression"
    if (model_b.task_ or "regression") != kind:
        raise EvaluationError(
            f"{os.fspath(a)} does {kind} but {os.fspath(b)} does {model_b.task_ or 'regression'}: "
            "compare models of the same task."
        )
    drift = []
    for ref, model in ((a, model_a), (b, model_b)):
        found = model.check(X)
        if found.warnings:
            columns = sorted({str(p["column"]) for p in found.warnings})
            drift.append(f"{os.fspath(ref)}: {', '.join(columns)}")
    options: dict[str, Any] = {"plots": False, "importance": None, "report": False, "log": False}
    first = evaluate(model_a, X, y, **options)
    second = evaluate(model_b, X, y, task=first.task, **options)
    metrics = []
    for name in SHOWN[first.task]:
        va, vb = _value(first.metrics, name), _value(second.metrics, name)
        higher = HIGHER_IS_BETTER[name]
        metrics.append(MetricComparison(name, va, vb, higher, _better(va, vb, higher)))
    return Comparison(os.fspath(a), os.fspath(b), first.task, len(y), metrics, drift)


def _value(found: dict[str, float], name: str) -> float | None:
    """A metric's value, or None when it was not computed (no probabilities) or is NaN."""
    value = found.get(name)
    return None if value is None or math.isnan(value) else value


def _better(a: float | None, b: float | None, higher: bool) -> str | None:
    if a is None or b is None:
        return None
    if abs(a - b) <= _TIE * max(1.0, abs(a), abs(b)):
        return "tie"
    return "a" if (a > b) == higher else "b"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
