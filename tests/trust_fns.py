"""Objects the trust tests plant in models and caches: each writes a marker file when
its code runs on load, so a test can tell whether loading ran it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin


class Plant:
    """Unpickling this runs `exec`, which writes `marker` (pickle calls `__reduce__`)."""

    def __init__(self, marker: str | Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        code = f"import pathlib; pathlib.Path({self.marker!r}).write_text('ran')"
        return (exec, (code,))


class MarkerScaler(TransformerMixin, BaseEstimator):
    """A pass-through transformer whose `__setstate__` (called by skops) writes `marker`."""

    def __init__(self, marker: str = "") -> None:
        self.marker = marker

    def fit(self, X: Any, y: Any = None) -> MarkerScaler:
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> Any:
        return X

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("marker"):
            Path(state["marker"]).write_text("ran", encoding="utf-8")
        super().__setstate__(state)
