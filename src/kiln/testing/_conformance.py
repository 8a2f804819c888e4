"""`check_model`: the conformance suite a custom `kiln.Model` must pass, and signature checks."""

from __future__ import annotations

import inspect
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["assert_signature_compatible", "check_model", "model_checks"]

_WIDER = {("int", "float"), ("bool", "int"), ("bool", "float"), ("category", "str")}


def _signature(model: Any) -> Any:
    from kiln.models import Signature

    if isinstance(model, Signature):
        return model
    signature = getattr(model, "signature_", None)
    if signature is None:
        raise AssertionError(
            f"{type(model).__name__} has no signature_: fit or load it before comparing."
        )
    return signature


def assert_signature_compatible(new: Any, old: Any) -> None:
    """`new` accepts every input `old` accepted and answers in the same form.

    For a safe upgrade (a new model version behind the same endpoint): new may not
    require a column old did not have, change a column's kind except to a wider one
    (int to float, bool to int, category to str), refuse nulls or categories old
    accepted, or change its outputs' kinds or drop classes.

    Args:
        new: The new `kiln.Model` (or its `Signature`).
        old: The old one.
    """
    a, b = _signature(new), _signature(old)
    problems = []
    old_inputs = {c.name: c for c in b.inputs}
    for col in a.inputs:
        was = old_inputs.get(col.name)
        if was is None:
            problems.append(f"input {col.name!r} is new: old callers do not send it")
            continue
        if col.kind != was.kind and (was.kind, col.kind) not in _WIDER:
            problems.append(f"input {col.name!r} changed kind {was.kind} -> {col.kind}")
        if was.nullable and not col.nullable:
            problems.append(f"input {col.name!r} no longer accepts nulls")
        if was.categories is not None and col.categories is not None:
            lost = set(was.categories) - set(col.categories)
            if lost:
                shown = ", ".join(map(repr, sorted(lost, key=str)[:5]))
                problems.append(f"input {col.name!r} no longer accepts {shown}")
    if a.input_type != b.input_type:
        problems.append(f"input type changed {b.input_type} -> {a.input_type}")
    for new_out, old_out in zip(a.outputs, b.outputs, strict=False):
        if new_out.kind != old_out.kind and (old_out.kind, new_out.kind) not in _WIDER:
            problems.append(
                f"output {old_out.name!r} changed kind {old_out.kind} -> {new_out.kind}"
            )
        if old_out.categories is not None and new_out.categories is not None:
            lost = set(old_out.categories) - set(new_out.categories)
            if lost:
                problems.append(f"output {old_out.name!r} lost classes {sorted(lost, key=str)}")
    if len(a.outputs) != len(b.outputs) and a.outputs and b.outputs:
        problems.append(f"{len(b.outputs)} outputs became {len(a.outputs)}")
    if problems:
        raise AssertionError("the new signature is not compatible: " + "; ".join(problems) + ".")


def _fresh(model: Any) -> Any:
    init = inspect.signature(type(model).__init__)
    names = [p for p in init.parameters if p != "self" and init.parameters[p].kind in (1, 3)]
    missing = [n for n in names if not hasattr(model, n)]
    if missing:
        raise AssertionError(
            f"__init__ parameters not stored as attributes of the same name: {', '.join(missing)}"
            " (scikit-learn's convention: store constructor arguments as given)."
        )
    return type(model)(**{n: getattr(model, n) for n in names})


def model_checks(model: Any, X: Any, y: Any) -> list[tuple[str, Callable[[], None]]]:
    """The conformance checks as (name, function) pairs, e.g. for `pytest.mark.parametrize`.

    Each function raises AssertionError when its check fails.
    """
    from kiln._exceptions import NotFittedError, ValidationError
    from kiln.models import load_model
    from kiln.testing._checks import assert_deterministic, assert_outputs_in_range

    def fitted() -> Any:
        fresh = _fresh(model)
        fresh.fit(X, y)  # not its return value: fit_returns_self checks that
        return fresh

    def init_stores_params() -> None:
        _fresh(model)

    def unfitted_predict_raises() -> None:
        try:
            _fresh(model).predict(X)
        except NotFittedError:
            return
        except Exception as exc:
            raise AssertionError(
                f"predict before fit raised {type(exc).__name__}, not kiln.NotFittedError"
            ) from exc
        raise AssertionError("predict before fit did not raise kiln.NotFittedError")

    def fit_returns_self() -> None:
        fresh = _fresh(model)
        if fresh.fit(X, y) is not fresh:
            raise AssertionError("fit must return self")

    def learned_state_ends_in_underscore() -> None:
        fresh = _fresh(model)
        before = set(vars(fresh))
        fresh.fit(X, y)
        added = [k for k in set(vars(fresh)) - before if not k.endswith("_")]
        if added:
            raise AssertionError(f"fit set attributes not ending in '_': {sorted(added)}")

    def predictions_match_rows() -> None:
        assert_outputs_in_range(fitted(), X)

    def has_signature() -> None:
        m = fitted()
        if getattr(m, "signature_", None) is None:
            raise AssertionError("a fitted model needs signature_ (the input schema)")

    def refuses_missing_columns() -> None:
        m = fitted()
        if not hasattr(X, "columns") or len(X.columns) < 1:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m.predict(X.drop(columns=[X.columns[0]]))
        except ValidationError:
            return
        raise AssertionError(f"predict accepted input without column {X.columns[0]!r}")

    def save_load_round_trip() -> None:
        m = fitted()
        with tempfile.TemporaryDirectory(prefix="kiln-check-") as tmp:
            # Saved by this process a moment ago into its own folder: trusted.
            loaded = load_model(m.save(Path(tmp) / "model"), trust_pickle=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                same = np.array_equal(np.asarray(loaded.predict(X)), np.asarray(m.predict(X)))
        if not same:
            raise AssertionError("the loaded model predicts differently from the saved one")

    def deterministic() -> None:
        assert_deterministic(_fresh(model), X, y)

    return [
        ("init_stores_params", init_stores_params),
        ("unfitted_predict_raises", unfitted_predict_raises),
        ("fit_returns_self", fit_returns_self),
        ("learned_state_ends_in_underscore", learned_state_ends_in_underscore),
        ("predictions_match_rows", predictions_match_rows),
        ("has_signature", has_signature),
        ("refuses_missing_columns", refuses_missing_columns),
        ("save_load_round_trip", save_load_round_trip),
        ("deterministic", deterministic),
    ]


def check_model(model: Any, X: Any, y: Any) -> None:
    """Run every conformance check on a (custom) `kiln.Model`, as scikit-learn's
    `check_estimator` does for estimators.

    ```python
    def test_my_model_conforms():
        kiln.testing.check_model(MyModel(alpha=0.1), X_small, y_small)
    ```

    Raises:
        AssertionError: Names every failed check and why.
    """
    failures = []
    for name, check in model_checks(model, X, y):
        try:
            check()
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a crash is a failed check too
            failures.append(f"{name}: raised {type(exc).__name__}: {exc}")
    if failures:
        raise AssertionError(
            f"{type(model).__name__} failed {len(failures)} conformance check(s):\n  - "
            + "\n  - ".join(failures)
        )
