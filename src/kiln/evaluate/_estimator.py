"""What is inside a model: shared by the evaluation (importance) and its report (the name)."""

from __future__ import annotations

from typing import Any

__all__ = ["inner_estimator", "model_name"]


def inner_estimator(model: Any) -> Any:
    """The fitted estimator inside a `kiln.Model`, or the model itself."""
    from kiln.models import Model

    return model.estimator_ if isinstance(model, Model) else model


def model_name(model: Any) -> str:
    """A short name for a model: its estimator's class (`Pipeline(LogisticRegression)`)."""
    inner = inner_estimator(model)
    steps = getattr(inner, "steps", None)
    if steps:
        return f"{type(inner).__name__}({type(steps[-1][1]).__name__})"
    return str(getattr(inner, "__name__", None) or type(inner).__name__)
