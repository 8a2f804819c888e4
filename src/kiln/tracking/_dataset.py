"""Dataset fingerprints, column schemas and summary statistics."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from kiln._exceptions import TrackingError
from kiln._frames import as_frame as to_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["as_frame", "describe_dataset"]

_TOP = 10  # most frequent values kept per categorical column


def as_frame(data: Any) -> pd.DataFrame:
    """Turn a DataFrame, Series, numpy array, list or dict of columns into a DataFrame.

    The same conversion as signature inference (`kiln._frames.as_frame`); unnamed 1-D
    data is the column "value", the columns of 2-D data "x0", "x1", ...

    Raises:
        TrackingError: The data has more than 2 dimensions, or is not tabular.
    """
    return to_frame(data, single="value", role="log_dataset's data", error=TrackingError)[0]


def _fingerprint(df: pd.DataFrame) -> str:
    import pandas as pd

    digest = hashlib.sha256()
    for name, dtype in df.dtypes.items():
        digest.update(f"{name!r}:{dtype}\x00".encode())
    digest.update(str(df.shape).encode())
    if len(df):
        try:
            hashed = pd.util.hash_pandas_object(df, index=True, categorize=True)
        except TypeError:  # unhashable cells (lists, dicts): hash their text
            hashed = pd.util.hash_pandas_object(df.astype(str), index=True)
        digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


def _number(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def describe_dataset(data: Any) -> dict[str, Any]:
    """Fingerprint, shape, column schema and per-column summary of a dataset.

    The fingerprint is a sha256 over column names, dtypes, shape and every cell, so the
    same data always has the same fingerprint and any change gives a new one.
    """
    import pandas as pd

    df = as_frame(data)
    schema: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for name in df.columns:
        col = df[name]
        nulls = int(col.isna().sum())
        schema.append({"name": str(name), "dtype": str(col.dtype), "nullable": nulls > 0})
        stats: dict[str, Any] = {"count": int(col.notna().sum()), "nulls": nulls}
        if pd.api.types.is_bool_dtype(col.dtype):
            stats["mean"] = _number(col.mean()) if stats["count"] else None
        elif pd.api.types.is_numeric_dtype(col.dtype):
            if stats["count"]:
                desc = col.astype("float64").describe()
                for key in ("mean", "std", "min", "25%", "50%", "75%", "max"):
                    stats[key.replace("%", "")] = _number(desc.get(key))
        else:
            counts = col.astype("object").value_counts(dropna=True)
            stats["unique"] = len(counts)
            stats["top"] = {str(k): int(v) for k, v in counts.head(_TOP).items()}
        summary[str(name)] = stats
    return {
        "fingerprint": _fingerprint(df),
        "n_rows": int(df.shape[0]),
        "n_cols": int(df.shape[1]),
        "schema": schema,
        "summary": summary,
    }
