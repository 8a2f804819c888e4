"""Functions that tests save as function-flavor models (importable by name)."""

from __future__ import annotations

import pandas as pd


def price_with_tax(frame: pd.DataFrame) -> pd.Series:
    """A 'model' that is a plain function of its input frame."""
    return frame["price"] * 1.2 + frame["qty"]
