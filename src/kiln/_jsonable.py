"""JSON-ready values, the one way kiln writes reports and API answers as JSON."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

__all__ = ["plain"]


def plain(value: Any) -> Any:
    """`value` with numpy scalars as Python ones, NaN and infinity as None, times as ISO
    8601 text and paths as text, through dicts (keys as text), lists and tuples."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    return value
