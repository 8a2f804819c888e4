"""Function models for the serving tests (imported by the server process by reference)."""

from __future__ import annotations

import os
import time

import pandas as pd


def slow_sum(frame: pd.DataFrame) -> pd.Series:
    """The row sums, after sleeping KILN_TEST_SLEEP seconds (default 0.05) per call."""
    time.sleep(float(os.environ.get("KILN_TEST_SLEEP", "0.05")))
    return frame.sum(axis=1)


def infinite_when_negative(frame: pd.DataFrame) -> pd.Series:
    """`a`, or +inf where `a` is negative (a model that overflows on some rows)."""
    return frame["a"].where(frame["a"] >= 0, float("inf"))


def openmp_threads(frame: pd.DataFrame) -> pd.Series:
    """For each row, the OpenMP pool size this process would use (threadpoolctl's reading,
    after scikit-learn has loaded its OpenMP runtime)."""
    import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime when not loaded yet
    from threadpoolctl import threadpool_info

    sizes = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]
    return pd.Series([float(max(sizes))] * len(frame), index=frame.index)


class JobsSeen:
    """An estimator that predicts its own `n_jobs` (what a fitted model runs with)."""

    def __init__(self, n_jobs: int | None = None) -> None:
        self.n_jobs = n_jobs

    def get_params(self, deep: bool = True) -> dict[str, object]:
        return {"n_jobs": self.n_jobs}

    def set_params(self, **params: object) -> JobsSeen:
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def fit(self, X: pd.DataFrame, y: object = None) -> JobsSeen:
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> object:
        import numpy as np

        return np.full(len(X), float(self.n_jobs or 0))


def warns_each_call(frame: pd.DataFrame) -> pd.Series:
    """`a`, with a UserWarning on every call; it silences another warning for a moment
    first, as libraries do, which makes Python forget which warnings it already showed."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
    warnings.warn("serve_fns.warns_each_call warns on every call", UserWarning, stacklevel=1)
    return frame["a"]
