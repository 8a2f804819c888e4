"""ML checks for pytest, after torchtest's idea, for any flavor.

Each `assert_*` raises `AssertionError` with a message naming what failed, so it reads
well in a pytest report; each passes silently.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kiln._exceptions import ConfigurationError, did_you_mean

__all__ = [
    "assert_all_features_used",
    "assert_deterministic",
    "assert_outputs_in_range",
    "assert_params_change",
    "assert_params_frozen",
    "learned_state",
    "train_step",
]

Step = Callable[[Any, Any, Any], Any]
_BOOKKEEPING = {"classes_", "feature_names_in_", "t_"}


def learned_state(model: Any) -> dict[str, np.ndarray]:
    """A copy of a model's learned parameters, by name.

    A `kiln.Model` gives its estimator's; an object with `named_parameters()` (a
    PyTorch module) its parameters; a scikit-learn-style estimator its floating-point
    attributes that end in `_` (a Pipeline's prefixed by step name), leaving out
    bookkeeping such as `classes_`, `n_iter_` and `t_`.
    """
    from kiln.models import Model

    if isinstance(model, Model):
        model = getattr(model, "estimator_", model.estimator)
    named = getattr(model, "named_parameters", None)
    if callable(named):
        return {n: np.array(p.detach().cpu().numpy(), copy=True) for n, p in named()}
    state: dict[str, np.ndarray] = {}
    for step_name, step in getattr(model, "steps", None) or []:
        for key, value in learned_state(step).items():
            state[f"{step_name}.{key}"] = value
    for key, value in vars(model).items():
        if not key.endswith("_") or key.startswith(("_", "n_")) or key in _BOOKKEEPING:
            continue
        try:
            array = np.array(value, copy=True)
        except (TypeError, ValueError):
            continue
        if array.size and array.dtype.kind in "fc":  # weights, not counts or labels
            state[key] = array
    return state


def train_step(model: Any, X: Any, y: Any, step: Step | None = None) -> Any:
    """One training step: `step(model, X, y)` if given, else `partial_fit`.

    Raises:
        ConfigurationError: The model has no `partial_fit` and no `step` was given.
    """
    if step is not None:
        return step(model, X, y)
    partial = getattr(model, "partial_fit", None)
    if partial is None:
        raise ConfigurationError(
            f"{type(model).__name__} has no partial_fit, so kiln.testing cannot take one "
            "training step: pass step=lambda model, X, y: ... (e.g. one optimiser step)."
        )
    if _is_classifier(model) and not hasattr(model, "classes_"):
        return partial(X, y, classes=np.unique(y))  # scikit-learn wants them on the first call
    return partial(X, y)


def _is_classifier(model: Any) -> bool:
    try:
        from sklearn.base import is_classifier

        return bool(is_classifier(model))
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator
        return getattr(model, "_estimator_type", None) == "classifier"


def _pick(state: dict[str, np.ndarray], names: Sequence[str] | None, what: str) -> list[str]:
    if names is None:
        return sorted(state)
    for name in names:
        if name not in state:
            raise ConfigurationError(
                f"{what}: the model has no learned parameter {name!r}.{did_you_mean(name, state)} "
                f"It has: {', '.join(sorted(state)) or 'none (is it initialised?)'}."
            )
    return list(names)


def _before_after(
    model: Any, X: Any, y: Any, step: Step | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    before = learned_state(model)
    if not before:  # not initialised yet: the first step creates the parameters
        train_step(model, X, y, step)
        before = learned_state(model)
    train_step(model, X, y, step)
    return before, learned_state(model)


def assert_params_change(
    model: Any, X: Any, y: Any, *, params: Sequence[str] | None = None, step: Step | None = None
) -> None:
    """Every (or every named) learned parameter changes after one training step.

    Catches a layer that is not connected to the loss, or a learning rate of zero.
    """
    before, after = _before_after(model, X, y, step)
    names = _pick(before, params, "assert_params_change")
    stuck = [n for n in names if n in after and np.array_equal(before[n], after[n])]
    if stuck:
        raise AssertionError(
            f"{len(stuck)} parameter(s) did not change after a training step: "
            f"{', '.join(stuck)}. Are they connected to the loss, and is the learning rate > 0?"
        )


def assert_params_frozen(
    model: Any, X: Any, y: Any, frozen: Sequence[str], *, step: Step | None = None
) -> None:
    """The named (frozen) parameters stay exactly as they were after a training step."""
    if isinstance(frozen, str):
        frozen = [frozen]
    before, after = _before_after(model, X, y, step)
    names = _pick(before, frozen, "assert_params_frozen")
    moved = [n for n in names if n not in after or not np.array_equal(before[n], after[n])]
    if moved:
        raise AssertionError(
            f"frozen parameter(s) moved during a training step: {', '.join(moved)}."
        )


def _outputs(model: Any, X: Any) -> np.ndarray:
    if (
        hasattr(model, "predict_proba")
        and getattr(model, "task_", "classification") != "regression"
    ):
        try:
            return np.asarray(model.predict_proba(X), dtype=float)
        except (AttributeError, NotImplementedError):
            pass
    return np.asarray(model.predict(X))


def assert_outputs_in_range(
    model: Any, X: Any, *, low: float | None = None, high: float | None = None
) -> None:
    """Predictions are free of NaN and infinity, and within [low, high] when given.

    Class probabilities (from `predict_proba`) must also lie in [0, 1] and sum to 1.
    """
    pred = np.asarray(model.predict(X))
    problems = []
    if pred.dtype.kind in "fc":
        bad = int(np.sum(~np.isfinite(pred)))
        if bad:
            problems.append(f"{bad} predictions are NaN or infinite")
        if low is not None and np.any(pred < low):
            problems.append(f"predictions below {low} (min {np.nanmin(pred):g})")
        if high is not None and np.any(pred > high):
            problems.append(f"predictions above {high} (max {np.nanmax(pred):g})")
    if len(pred) != _n_rows(X):
        problems.append(f"{len(pred)} predictions for {_n_rows(X)} rows")
    if hasattr(model, "predict_proba") and getattr(model, "task_", None) != "regression":
        try:
            proba = np.asarray(model.predict_proba(X), dtype=float)
        except (AttributeError, NotImplementedError):
            proba = None
        if proba is not None:
            if not np.all(np.isfinite(proba)):
                problems.append("probabilities contain NaN or infinity")
            elif np.any((proba < 0) | (proba > 1)):
                problems.append("probabilities outside [0, 1]")
            elif proba.ndim == 2 and not np.allclose(proba.sum(axis=1), 1.0, atol=1e-6):
                problems.append("probability rows do not sum to 1")
    if problems:
        raise AssertionError("outputs out of range: " + "; ".join(problems) + ".")


def _n_rows(X: Any) -> int:
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def assert_all_features_used(
    model: Any, X: Any, *, features: Sequence[str] | None = None, n_rows: int = 500, seed: int = 0
) -> None:
    """Every input feature can change the prediction.

    Each feature in turn gets other rows' values (a shuffle) while the rest stay put;
    a feature that changes no output (probabilities when the model has them) on any
    of up to `n_rows` rows is reported as ignored.
    """
    import pandas as pd

    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    rng = np.random.default_rng(seed)
    if len(frame) > n_rows:
        frame = frame.iloc[np.sort(rng.choice(len(frame), n_rows, replace=False))]
    frame = frame.reset_index(drop=True)
    columns = list(features) if features is not None else list(frame.columns)
    base = _outputs(model, frame if isinstance(X, pd.DataFrame) else frame.to_numpy())
    ignored = []
    for column in columns:
        if column not in frame.columns:
            raise ConfigurationError(
                f"assert_all_features_used: no feature {column!r}."
                f"{did_you_mean(str(column), map(str, frame.columns))}"
            )
        changed = frame.copy()
        values = changed[column].to_numpy()
        changed[column] = values[rng.permutation(len(values))]
        if changed[column].equals(frame[column]):  # one value everywhere: reverse instead
            changed[column] = values[::-1]
        out = _outputs(model, changed if isinstance(X, pd.DataFrame) else changed.to_numpy())
        if np.array_equal(out, base):
            ignored.append(str(column))
    if ignored:
        raise AssertionError(
            f"{len(ignored)} feature(s) never change the prediction: {', '.join(ignored)}. "
            "The model ignores them (or they were dropped in preprocessing)."
        )


def _seeded_copy(model: Any, seed: int) -> Any:
    fresh = model() if callable(model) and not hasattr(model, "fit") else copy.deepcopy(model)
    inner = getattr(fresh, "estimator", fresh)
    params: dict[str, Any] = getattr(inner, "get_params", dict)()
    seeds = {k: seed for k in params if k == "random_state" or k.endswith("__random_state")}
    if seeds:
        inner.set_params(**seeds)
    random.seed(seed)
    np.random.seed(seed)
    return fresh


def assert_deterministic(model: Any, X: Any, y: Any, *, seed: int = 0) -> None:
    """Two fits under the same seed give the same predictions and parameters.

    Args:
        model: An unfitted model (deep-copied for each fit), or a function making one.
            Its `random_state` params (nested ones too) are set to `seed`, and Python's
            and NumPy's global generators are seeded, before each fit.
        X: Training features (predictions are compared on them too).
        y: Training targets.
        seed: The seed.
    """
    runs = []
    for _ in range(2):
        fitted = _seeded_copy(model, seed)
        fitted = fitted.fit(X, y) or fitted
        runs.append((_outputs(fitted, X), learned_state(fitted)))
    (out_a, state_a), (out_b, state_b) = runs
    differ = [k for k in state_a if k in state_b and not np.array_equal(state_a[k], state_b[k])]
    if not np.array_equal(out_a, out_b) or differ:
        detail = f" (parameters: {', '.join(differ)})" if differ else ""
        raise AssertionError(
            f"two fits with seed {seed} differ{detail}. Is there randomness that ignores the "
            "seed (an unseeded generator, threads racing, a random_state not passed on)?"
        )
