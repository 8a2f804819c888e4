"""What an autologged fit records: params, fit time, data fingerprint, score, candidates."""

from __future__ import annotations

import math
import warnings
from typing import Any

from kiln._exceptions import ParamConflictError

__all__ = ["log_fit"]

_PLAIN = (str, int, float, bool, type(None))


def _param_value(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return repr(value)


def _params(estimator: Any) -> dict[str, Any]:
    get = getattr(estimator, "get_params", None)
    if get is None:
        return {}
    try:
        items = get(deep=True).items()
    except Exception:  # noqa: BLE001 - a third-party get_params that cannot deep-copy
        items = get(deep=False).items()
    return {k: v for k, v in items if isinstance(v, _PLAIN)}


def _log_params(run: Any, params: dict[str, Any]) -> None:
    try:
        run.log_params(params)
    except ParamConflictError:
        for key, value in params.items():  # keep what was logged first, add the rest
            try:
                run.log_param(key, value)
            except ParamConflictError:
                warnings.warn(
                    f"Param {key!r} was already logged on this run with another value; "
                    "kept the first. Fit each model in its own run to keep both.",
                    stacklevel=5,
                )


def _split(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    return X, y


def log_fit(
    estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float, options: dict
) -> None:
    """Record one outermost fit on the active run (and a search's candidates as children)."""
    from kiln.tracking import active_run

    run = active_run()
    if run is None:
        return
    X, y = _split(args, kwargs)
    cls = type(estimator)
    run.set_tag("estimator", f"{cls.__module__}.{cls.__qualname__}")
    _log_params(run, _params(estimator))
    run.log_metric("fit_seconds", seconds)
    if X is not None and options.get("datasets", True):
        from kiln.tracking import as_frame

        data = as_frame(X)
        if y is not None and getattr(y, "ndim", 1) == 1 and len(y) == len(data):
            data = data.copy()
            target = getattr(y, "name", None) or "target"
            data[target if target not in data.columns else f"{target}_y"] = list(y)
        run.log_dataset(data, role="train")
    if X is not None and y is not None and hasattr(estimator, "score"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. feature-name warnings while scoring
            score = float(estimator.score(X, y))
        if math.isfinite(score):
            run.log_metric("training_score", score)
    if hasattr(estimator, "cv_results_") and options.get("search_children", True):
        _log_search(run, estimator)


def _log_search(run: Any, search: Any) -> None:
    from kiln.tracking import start_run

    results = search.cv_results_
    if hasattr(search, "best_params_"):
        _log_params(run, {f"best_{k}": _param_value(v) for k, v in search.best_params_.items()})
    best = getattr(search, "best_score_", None)
    if best is not None and math.isfinite(float(best)):
        run.log_metric("best_cv_score", float(best))
    keys = [
        k
        for k in results
        if k.startswith(("mean_", "std_", "rank_", "split")) and not k.startswith("param_")
    ]
    for i, params in enumerate(results["params"]):
        name = f"{run.name}-candidate-{i + 1}"
        with start_run(name, parent=run.id, system_metrics=False) as child:
            child.log_params({k: _param_value(v) for k, v in params.items()})
            values = {}
            for key in keys:
                value = float(results[key][i])
                if math.isfinite(value):
                    values[key] = value
            child.log_metrics(values)
            child.set_tag("candidate", i + 1)
