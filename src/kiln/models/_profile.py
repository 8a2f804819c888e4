"""Reference profiles: what the training data looked like, for monitoring to compare against.

`reference_profile(X)` returns a JSON-ready dict of per-column statistics and a seeded
sample of rows (a DataFrame, saved as Parquet next to the model):

```python
profile, sample = reference_profile(X_train, seed=0)
json.dumps(profile, allow_nan=False)      # no NaN or inf anywhere: missing numbers are null
sample.to_parquet("reference_sample.parquet")
```

The profile (`format_version` 1):

```
{"format_version": 1, "n_rows": 1000, "seed": 0, "sample_rows": 1000,
 "columns": {"age": {"name_is_int": false, "kind": "int", "dtype": "int64",
                     "count": 998, "nulls": 2, "infinite": 0,
                     "min": 18, "max": 90, "mean": 41.2, "std": 12.9,
                     "quantiles": {"probs": [0, 0.01, ...], "values": [...]},
                     "histogram": {"edges": [21 numbers], "counts": [20 counts]},
                     "value_counts": null},
             "city": {"kind": "str", ..., "distinct": 3, "truncated": false,
                      "other_count": 0,
                      "categories": {"values": ["Oslo", ...], "counts": [510, ...]}}}}
```

- Numeric (int, float) columns: statistics over finite values; `infinite` counts the
  rest. Whole-number columns with at most 50 distinct values get exact `value_counts`
  instead of a `histogram`.
- Categorical (str, category, bool) columns: every category with its count, most
  frequent first (ties by value); a categorical dtype's unused categories count 0.
  Beyond 10,000 distinct values only the 10,000 most frequent are kept, `truncated` is
  true and `other_count` holds the rest.
- Datetime columns: `count`, `nulls`, `min` and `max` (ISO 8601).
- The sample holds the same rows for every column (`sample_rows` of them, in their
  original order), with column names as text, as Parquet requires; `name_is_int`
  says which were integers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from kiln.models._infer import as_frame, column_kind

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["QUANTILES", "reference_profile"]

FORMAT_VERSION = 1
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
HISTOGRAM_BINS = 20
MAX_EXACT_VALUES = 50  # whole-number columns with at most this many values: exact counts
MAX_CATEGORIES = 10_000  # categories kept per column, most frequent first


def reference_profile(
    X: Any, *, seed: int = 0, sample_size: int = 10_000
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Profile training features for monitoring: per-column statistics and a row sample.

    Args:
        X: Training features: a DataFrame, 2-D numpy array, dict of columns or Series
            (as for `infer_signature`).
        seed: Seed for choosing the sample rows; the same seed gives the same result.
        sample_size: Most rows in the sample; all rows are kept when there are fewer.

    Returns:
        The profile (a JSON-ready dict without NaN or inf; see the module docs) and the
        sample (a DataFrame with a fresh index and text column names).

    Raises:
        SignatureError: A column's type is not supported (as for `infer_signature`).
        ConfigurationError: `sample_size` is negative.
    """
    import numpy as np

    if sample_size < 0:
        from kiln._exceptions import ConfigurationError

        raise ConfigurationError(
            f"sample_size must be 0 or more (the rows kept as the reference sample); got "
            f"{sample_size}."
        )
    frame, _ = as_frame(X)
    n = len(frame)
    if n > sample_size:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=sample_size, replace=False))
    else:
        rows = np.arange(n)
    columns: dict[str, Any] = {}
    for label in frame.columns:
        name = str(label)
        columns[name] = _column(frame[label], name, isinstance(label, int | np.integer))
    sample = frame.iloc[rows].reset_index(drop=True)
    sample.columns = [str(c) for c in frame.columns]
    profile = {
        "format_version": FORMAT_VERSION,
        "n_rows": n,
        "seed": seed,
        "sample_rows": len(rows),
        "columns": columns,
    }
    return profile, sample


def _column(values: pd.Series, name: str, name_is_int: bool) -> dict[str, Any]:
    kind = column_kind(values, name)
    nulls = int(values.isna().sum())
    entry: dict[str, Any] = {
        "name_is_int": name_is_int,
        "kind": kind,
        "dtype": str(values.dtype),
        "count": len(values) - nulls,
        "nulls": nulls,
    }
    if kind in ("int", "float"):
        entry.update(_numeric(values, kind))
    elif kind == "datetime":
        entry.update(_datetime(values))
    else:
        entry.update(_categorical(values))
    return entry


def _numeric(values: pd.Series, kind: str) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf":
        array = values.to_numpy(dtype=np.float64)
    elif values.dtype.kind == "O":  # object column of Python numbers
        array = np.asarray(pd.to_numeric(values.dropna()), dtype=np.float64)
    else:  # Int64, Float64, pyarrow numbers
        array = values.dropna().to_numpy(dtype=np.float64)
    array = array[~np.isnan(array)]
    finite = array[np.isfinite(array)]
    stats: dict[str, Any] = {
        "infinite": len(array) - len(finite),
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "quantiles": None,
        "histogram": None,
        "value_counts": None,
    }
    if not len(finite):
        return stats
    as_value = int if kind == "int" else float
    if kind == "int":  # exact, also beyond 2**53
        present = values.dropna()
        stats["min"], stats["max"] = int(present.min()), int(present.max())
    else:
        stats["min"], stats["max"] = float(finite.min()), float(finite.max())
    stats["mean"] = _number(finite.mean())
    stats["std"] = _number(finite.std(ddof=1)) if len(finite) > 1 else None
    stats["quantiles"] = {
        "probs": list(QUANTILES),
        "values": [_number(q) for q in np.quantile(finite, QUANTILES)],
    }
    distinct, counts = np.unique(finite, return_counts=True)
    if len(distinct) <= MAX_EXACT_VALUES and np.all(np.trunc(distinct) == distinct):
        stats["value_counts"] = {
            "values": [as_value(v) for v in distinct.tolist()],
            "counts": counts.tolist(),
        }
    else:
        hist, edges = np.histogram(finite, bins=HISTOGRAM_BINS)
        stats["histogram"] = {"edges": [_number(e) for e in edges], "counts": hist.tolist()}
    return stats


def _categorical(values: pd.Series) -> dict[str, Any]:
    from kiln.models._infer import python_value

    counts = values.value_counts(dropna=True, sort=False)
    pairs = sorted(
        ((python_value(v), int(c)) for v, c in counts.items()), key=lambda vc: (-vc[1], vc[0])
    )
    kept = pairs[:MAX_CATEGORIES]
    return {
        "distinct": sum(1 for _, c in pairs if c),
        "truncated": len(pairs) > MAX_CATEGORIES,
        "other_count": sum(c for _, c in pairs[MAX_CATEGORIES:]),
        "categories": {"values": [v for v, _ in kept], "counts": [c for _, c in kept]},
    }


def _datetime(values: pd.Series) -> dict[str, Any]:
    import pandas as pd

    present = values.dropna()
    if present.dtype.kind == "O":  # Python datetimes or dates
        present = pd.to_datetime(present, utc=True)
    if not len(present):
        return {"min": None, "max": None}
    return {"min": present.min().isoformat(), "max": present.max().isoformat()}


def _number(x: Any) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None
