"""Patching scikit-learn's `fit` at the BaseEstimator level, and restoring it exactly.

Every class below `sklearn.base.BaseEstimator` that defines its own `fit` gets a thin
wrapper; classes defined later (LightGBM or XGBoost imported after `autolog()`, a
user's estimator) are wrapped as they are created, through a `__init_subclass__`
hook on BaseEstimator. Disabling puts every original function object back and removes
the hook, so `vars(cls)["fit"] is original` again.

Only the outermost `fit` logs: a Pipeline's steps, a search's candidates and a
`kiln.Model` (which logs its own fit) run their inner fits unlogged.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kiln._exceptions import KilnWarning

__all__ = ["AutologWarning", "disable", "enable", "is_enabled"]

_lock = threading.RLock()
_busy = 0  # fits in progress (any thread): inner fits are not logged
_patched: dict[type, Any] = {}  # class -> its original fit function
_options: dict[str, Any] = {}
_model_fit: Any = None  # kiln.Model.fit before patching
_hooked = False


class AutologWarning(KilnWarning):
    """Autologging could not record something; training itself went on unharmed."""


def is_enabled() -> bool:
    """Whether `kiln.autolog()` is on."""
    return bool(_patched) or _hooked


@contextmanager
def _quiet() -> Iterator[None]:
    global _busy
    with _lock:
        _busy += 1
    try:
        yield
    finally:
        with _lock:
            _busy -= 1


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        from kiln.tracking import active_run

        if _busy or not _options or active_run() is None:
            return original(self, *args, **kwargs)
        with _quiet():
            start = time.perf_counter()
            result = original(self, *args, **kwargs)
            seconds = time.perf_counter() - start
        try:
            from kiln.autolog._log import log_fit

            log_fit(self, args, kwargs, seconds, _options)
        except Exception as exc:  # noqa: BLE001 - logging must never break training
            warnings.warn(
                f"kiln.autolog could not log the fit of {type(self).__name__}: "
                f"{type(exc).__name__}: {exc}",
                AutologWarning,
                stacklevel=2,
            )
        return result

    fit.__kiln_autolog_original__ = original  # type: ignore[attr-defined]
    return fit


def _patch(cls: type) -> None:
    original = vars(cls).get("fit")
    if cls in _patched or not inspect.isfunction(original):
        return
    if hasattr(original, "__kiln_autolog_original__"):
        return
    _patched[cls] = original
    cls.fit = _wrap(original)  # type: ignore[attr-defined]


def _subclasses(base: type) -> Iterator[type]:
    seen: set[type] = set()
    stack: list[type] = [base]
    while stack:
        subs: list[type] = type.__subclasses__(stack.pop())
        for sub in subs:
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
                yield sub


def enable(**options: Any) -> None:
    """Patch every BaseEstimator subclass's fit, hook new subclasses, wrap kiln.Model.fit."""
    global _hooked, _model_fit
    from kiln._extras import require

    base = require("sklearn.base", "sklearn", "kiln.autolog()").BaseEstimator
    from kiln.models import Model

    with _lock:
        _options.clear()
        _options.update(options)
        for cls in [base, *_subclasses(base)]:
            _patch(cls)
        if not _hooked:

            def __init_subclass__(cls: type, **kwargs: Any) -> None:
                super(base, cls).__init_subclass__(**kwargs)
                if _options:
                    with _lock:
                        _patch(cls)

            base.__init_subclass__ = classmethod(__init_subclass__)
            _hooked = True
        if _model_fit is None:
            _model_fit = vars(Model)["fit"]
            original = _model_fit

            @functools.wraps(original)
            def model_fit(self: Any, *args: Any, **kwargs: Any) -> Any:
                with _quiet():  # kiln.Model logs its own params, fit time and dataset
                    return original(self, *args, **kwargs)

            Model.fit = model_fit  # type: ignore[method-assign]


def disable() -> None:
    """Put every original fit back and remove the hook (a no-op when not enabled)."""
    global _hooked, _model_fit
    with _lock:
        _options.clear()
        for cls, original in list(_patched.items()):
            cls.fit = original  # type: ignore[attr-defined]
        _patched.clear()
        if _hooked:
            from sklearn.base import BaseEstimator

            if "__init_subclass__" in vars(BaseEstimator):
                del BaseEstimator.__init_subclass__
            _hooked = False
        if _model_fit is not None:
            from kiln.models import Model

            Model.fit = _model_fit  # type: ignore[method-assign]
            _model_fit = None
