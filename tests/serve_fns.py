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
