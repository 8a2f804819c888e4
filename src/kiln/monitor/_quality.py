"""Data quality: what is wrong with the current data, checked against the training profile.

`quality(current, profile)` compares a batch of production inputs (a prediction log, a
file) with the reference profile saved with the model (`profile.json`, see
docs/model-format.md) and returns a list of `Finding`s. Bad data is what it is for:
missing or mistyped columns, ±inf, bytes, mixed-type object columns, all-null columns
and zero rows each become a finding, never an exception.

```python
findings = quality(prediction_log, json.loads(Path(folder, "profile.json").read_text()))
[f.to_dict() for f in findings if f.severity != "info"]
```

Severities: "error" (the data cannot be used as the model expects: no rows, a training
column missing, values of the wrong type, a column that became all null) and "warning"
(it can, but has changed: more nulls, infinities, values outside the training range,
categories training never saw, duplicated rows) are breaches (`kiln monitor` exits 1);
"info" is reported only.

Column at a time: each column is converted, checked and dropped before the next one;
the row-wise checks (duplicates, outliers) keep one running array of the row count.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ConfigurationError, DataFileError
from kiln._extras import require
from kiln._frames import as_frame

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["CHECKS", "QUALITY_DEFAULTS", "SEVERITIES", "Finding", "quality"]

CHECKS = (
    "empty",
    "missing_column",
    "extra_column",
    "wrong_type",
    "all_null",
    "missing_rate",
    "infinite",
    "out_of_range",
    "unseen_category",
    "duplicate_rows",
    "outliers",
)
"""The checks `quality` makes, in the order its findings come."""

SEVERITIES = ("error", "warning", "info")
"""Finding severities: "error" and "warning" are breaches, "info" is reported only."""

QUALITY_DEFAULTS: dict[str, Any] = {
    "missing_rate_increase": 0.05,
    "out_of_range_rate": 0.01,
    "out_of_range_alpha": 0.01,
    "outlier_z": 6.0,
    "max_outliers": 10,
    "max_examples": 5,
    "duplicate_rate": 0.01,
}
"""The options of `quality`'s `config`, with their default values."""

LOG_COLUMNS = ("kiln_request_id", "kiln_time", "kiln_model_version", "kiln_prediction")
_REQUEST, _ROW = "kiln_request_id", "kiln_row"  # a logged row: its request, its place in it
_NUMERIC = ("int", "float")
_CATEGORICAL = ("str", "category", "bool")
_TEXT_LIMIT = 200  # characters of an example kept in details
# A str column is free text (any value accepted, no unseen categories) when the signature
# would not record its categories: more than 1000 distinct values, or more than 20 and
# more than half of its non-null values (kiln.models' signature inference, same rule).
_MAX_CATEGORIES, _FEW_CATEGORIES, _MAX_DISTINCT_SHARE = 1000, 20, 0.5


@dataclass(frozen=True)
class Finding:
    """One data-quality problem of the current data.

    Attributes:
        check: What was checked, one of `CHECKS`.
        column: The column concerned (as text), or None for the whole table.
        severity: "error" or "warning" (breaches: `kiln monitor` exits 1), or "info".
        message: What was wrong, what was expected, and what to do.
        details: JSON-ready numbers and examples (counts, rates, examples, row keys);
            no NaN or infinity.
    """

    check: str
    column: str | None
    severity: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The finding as plain JSON-ready values (`json.dumps(..., allow_nan=False)` works).

        Returns:
            A dict with `check`, `column`, `severity`, `message` and `details`.
        """
        return {
            "check": self.check,
            "column": self.column,
            "severity": self.severity,
            "message": self.message,
            "details": _jsonable(self.details),
        }


# ---------------------------------------------------------------- configuration


def _suggest(key: Any, choices: Any) -> str:
    close = difflib.get_close_matches(str(key), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _options(config: dict[str, Any] | None) -> dict[str, Any]:
    if config is not None and not isinstance(config, dict):
        raise ConfigurationError(
            f"The quality config is {config!r}; expected a dict such as {QUALITY_DEFAULTS}."
        )
    options = dict(QUALITY_DEFAULTS)
    for key, value in (config or {}).items():
        if key not in QUALITY_DEFAULTS:
            listed = ", ".join(repr(k) for k in QUALITY_DEFAULTS)
            raise ConfigurationError(
                f"Unknown key {key!r} in the quality config; expected one of {listed}."
                f"{_suggest(key, QUALITY_DEFAULTS)}"
            )
        where = f"config[{key!r}]"
        whole = key.startswith("max_")
        ok = not isinstance(value, bool) and isinstance(value, int if whole else int | float)
        if ok and not whole and math.isnan(value):
            ok = False
        rate = key.endswith(("_rate", "_increase", "_alpha"))
        if not ok or value < 0 or (rate and value > 1):
            expected = (
                "a whole number, 0 or more"
                if whole
                else "a number between 0 and 1"
                if rate
                else "a number, 0 or more"
            )
            raise ConfigurationError(f"{where} is {value!r}; expected {expected}.")
        options[key] = value
    return options


def _profile_columns(profile: Any) -> dict[str, dict[str, Any]]:
    columns = profile.get("columns") if isinstance(profile, dict) else None
    if not isinstance(columns, dict) or not all(isinstance(e, dict) for e in columns.values()):
        raise ConfigurationError(
            "The profile has no 'columns' dict of per-column statistics; expected the "
            "contents of a saved model's profile.json (json.loads of the file, or "
            "Model.profile_)."
        )
    return {str(name): entry for name, entry in columns.items()}


# ---------------------------------------------------------------- values as JSON


def _jsonable(value: Any) -> Any:
    """`value` with numpy scalars as Python values, non-finite floats as text, times in
    ISO 8601, and anything else JSON cannot hold as its (shortened) repr."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, list | tuple | dict):
        with contextlib.suppress(TypeError, ValueError):
            value = item()
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return value if len(value) <= _TEXT_LIMIT else value[:_TEXT_LIMIT] + "..."
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    isoformat = getattr(value, "isoformat", None)  # dates, times, Timestamps
    if callable(isoformat):
        with contextlib.suppress(TypeError, ValueError):
            return str(isoformat())
    text = repr(value)
    return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + "..."


def _hashable(series: pd.Series) -> pd.Series:
    """`series`, with unhashable values (lists, dicts, arrays) replaced by their repr."""

    def fix(v: Any) -> Any:
        try:
            hash(v)
        except TypeError:
            return repr(v)
        return v

    return series.map(fix) if series.dtype == object else series


def _counts(series: pd.Series) -> list[tuple[Any, int]]:
    """Non-null (value, count) pairs, most frequent first (unhashable values by their repr)."""
    import pandas as pd

    present = series.dropna()
    if isinstance(present.dtype, pd.CategoricalDtype):
        present = present.astype(object)
    try:
        counts = present.value_counts(sort=True)
    except TypeError:
        counts = _hashable(present).value_counts(sort=True)
    return [(value, int(count)) for value, count in counts.items()]


def _examples(counts: list[tuple[Any, int]], limit: int) -> list[dict[str, Any]]:
    return [
        {"value": _jsonable(v), "type": type(v).__name__, "count": c} for v, c in counts[:limit]
    ]


def _many(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else plural or word + 's'}"


def _listed(examples: list[dict[str, Any]]) -> str:
    return ", ".join(f"{e['value']!r}" for e in examples[:3])


# ---------------------------------------------------------------- the checks


@dataclass
class _Rows:
    """What the row-wise checks share: the row keys and the running outlier state."""

    n: int
    keys: pd.Series  # the key column's values, or the row index
    key_name: str
    names: list[str]  # the checked columns, which `best_column` indexes
    best_z: np.ndarray  # per row, the largest |z| so far (-1 before any)
    best_column: np.ndarray
    best_value: np.ndarray

    def key(self, row: int) -> Any:
        return _jsonable(self.keys.iloc[row])


def _numbers(series: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The values as float64 (NaN where null or not a number) and a mask of wrong types."""
    import numpy as np
    import pandas as pd
    from pandas.api import types as pdt

    null = series.isna().to_numpy()
    dtype = series.dtype
    if pdt.is_datetime64_any_dtype(dtype) or pdt.is_timedelta64_dtype(dtype):
        return np.full(len(series), np.nan), ~null
    if isinstance(dtype, pd.CategoricalDtype):
        series = series.astype(object)
    if pdt.is_numeric_dtype(series.dtype) or pdt.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    else:
        try:
            parsed = pd.to_numeric(series, errors="coerce")
            values = parsed.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        except (TypeError, ValueError):
            values = np.array([_float(v) for v in series.tolist()], dtype=np.float64)
    wrong = np.isnan(values) & ~null
    if kind == "int":
        with np.errstate(invalid="ignore"):
            wrong |= np.isfinite(values) & (values != np.trunc(values))
    values[wrong] = np.nan
    return values, wrong


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _family(value: Any) -> str:
    if isinstance(value, bool) or type(value).__name__ in ("bool", "bool_"):  # numpy's too
        return "bool"
    if isinstance(value, numbers.Number):
        return "number"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def _all_text(series: pd.Series) -> bool:
    """Whether the column's dtype holds only text (pandas' string dtypes)."""
    from pandas.api import types as pdt

    return series.dtype != object and pdt.is_string_dtype(series.dtype)


def _whole_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Checker:
    """The per-column checks of one call of `quality`."""

    def __init__(self, options: dict[str, Any], rows: _Rows) -> None:
        self.options = options
        self.rows = rows
        self.findings: list[Finding] = []
        # Out-of-range findings wait for every column: their chance p-values are one
        # family, Holm-adjusted over the columns that had a chance test.
        self.ranges: list[dict[str, Any]] = []
        self.range_tests = 0

    def add(
        self, check: str, column: str | None, severity: str, message: str, **details: Any
    ) -> None:
        self.findings.append(Finding(check, column, severity, message, _jsonable(details)))

    def column(self, name: str, series: pd.Series, entry: dict[str, Any]) -> None:
        n = self.rows.n
        kind = entry.get("kind")
        nulls_now = int(series.isna().sum())
        train_nulls, train_count = int(entry.get("nulls") or 0), int(entry.get("count") or 0)
        train_rate = train_nulls / (train_nulls + train_count) if train_nulls + train_count else 0
        if nulls_now == n:
            if train_count:
                self.add(
                    "all_null",
                    name,
                    "error",
                    f"Column {name!r} is null in all {n:,} current rows; in training "
                    f"{1 - train_rate:.1%} of its values were present. Expected values: check "
                    "the upstream job or query that fills this column.",
                    nulls=nulls_now,
                    rows=n,
                    training_null_rate=train_rate,
                )
            return
        rate = nulls_now / n
        increase = self.options["missing_rate_increase"]
        if rate - train_rate > increase:
            self.add(
                "missing_rate",
                name,
                "warning",
                f"Column {name!r} is null in {rate:.1%} of the current rows, against "
                f"{train_rate:.1%} in training (up {rate - train_rate:.1%}, more than the "
                f"{increase:.1%} allowed). Check the upstream source of the column, or "
                "raise config['missing_rate_increase'] if this is expected.",
                nulls=nulls_now,
                rows=n,
                null_rate=rate,
                training_null_rate=train_rate,
                increase=rate - train_rate,
                threshold=increase,
            )
        if kind in _NUMERIC:
            self.numeric(name, series, entry)
        elif kind in _CATEGORICAL:
            self.categorical(name, series, entry)
        elif kind == "datetime":
            self.datetime(name, series)

    def wrong_type(
        self, name: str, expected: str, kind: str, counts: list[tuple[Any, int]]
    ) -> None:
        count = sum(c for _, c in counts)
        examples = _examples(counts, self.options["max_examples"])
        types: dict[str, int] = {}
        for value, c in counts:
            types[type(value).__name__] = types.get(type(value).__name__, 0) + int(c)
        self.add(
            "wrong_type",
            name,
            "error",
            f"Column {name!r} has {_many(count, 'value')} ({count / self.rows.n:.2%}) of "
            f"the wrong type: expected {expected}, as in training ({kind}); e.g. "
            f"{_listed(examples)}. "
            "Fix the upstream data (did the column's type or format change?), or convert "
            "the column before sending it.",
            count=count,
            rate=count / self.rows.n,
            expected=kind,
            types=types,
            examples=examples,
        )

    def numeric(self, name: str, series: pd.Series, entry: dict[str, Any]) -> None:
        import numpy as np

        values, wrong = _numbers(series, entry["kind"])
        if wrong.any():
            expected = "whole numbers" if entry["kind"] == "int" else "numbers"
            self.wrong_type(name, expected, entry["kind"], _counts(series[wrong]))
        infinite = np.isinf(values)
        if infinite.any() and not entry.get("infinite"):
            pos, neg = int((values == np.inf).sum()), int((values == -np.inf).sum())
            self.add(
                "infinite",
                name,
                "warning",
                f"Column {name!r} has {_many(pos + neg, 'infinite value')} ({pos:,} +inf, {neg:,} "
                "-inf); training had none. Expected finite numbers: look for a division by "
                "zero or an overflow upstream.",
                count=pos + neg,
                positive=pos,
                negative=neg,
                rate=(pos + neg) / self.rows.n,
            )
        finite = np.isfinite(values)
        self.out_of_range(name, values, finite, entry)
        self.outliers(name, values, finite, entry)

    def out_of_range(
        self, name: str, values: np.ndarray, finite: np.ndarray, entry: dict[str, Any]
    ) -> None:
        import numpy as np

        low, high = entry.get("min"), entry.get("max")
        checked = int(finite.sum())
        if low is None or high is None or not checked:
            return
        if _reference(entry) >= 2:
            self.range_tests += 1
        with np.errstate(invalid="ignore"):
            below, above = finite & (values < low), finite & (values > high)
        n_below, n_above = int(below.sum()), int(above.sum())
        if not n_below + n_above:
            return
        count = n_below + n_above
        chance = _chance(entry, count, checked)
        where = np.flatnonzero(below | above)
        outside = np.where(below[where], low - values[where], values[where] - high)
        order = where[np.argsort(-outside, kind="stable")[: self.options["max_examples"]]]
        examples = [{"row": self.rows.key(i), "value": values[i]} for i in order]
        self.ranges.append(
            {
                "name": name,
                "below": n_below,
                "above": n_above,
                "count": count,
                "checked": checked,
                "min": low,
                "max": high,
                "chance": chance,
                "examples": examples,
            }
        )

    def range_findings(self) -> None:
        """Decide and add the out-of-range findings once every column is checked.

        Each column's chance p-value is Holm-adjusted over the columns with a chance test
        (those with no value outside count, with p = 1), so a wide table from the training
        distribution is warned about with probability at most `out_of_range_alpha` in all,
        not that much per column."""
        from kiln.monitor._drift import _holm

        limit, alpha = self.options["out_of_range_rate"], self.options["out_of_range_alpha"]
        tested = [r for r in self.ranges if r["chance"] is not None]
        family = max(self.range_tests, len(tested))
        padded = [r["chance"][1] for r in tested] + [1.0] * (family - len(tested))
        for r, holm in zip(tested, _holm(padded), strict=False):
            r["adjusted"] = holm
        for r in self.ranges:
            name, count, checked, chance = r["name"], r["count"], r["checked"], r["chance"]
            rate = count / checked
            adjusted = r.get("adjusted")
            warn = rate > limit and (adjusted is None or adjusted < alpha)
            if chance is None:
                why = f" (a warning above {limit:.1%} of the values)." if warn else "."
            else:
                expected, p_value, reference = chance
                odds = f"p = {p_value:.3g}"
                if family > 1:
                    odds += f" ({adjusted:.3g} Holm-adjusted over {family} columns)"
                why = (
                    f". By chance alone, with {_many(reference, 'training value')}, about "
                    f"{expected:.2%} of new values fall outside; {count:,} or more out of "
                    f"{checked:,} has probability {odds}"
                    + (
                        f" (a warning: above {limit:.1%} of the values and p < {alpha:g})."
                        if warn
                        else f", so this is reported only (a warning takes more than "
                        f"{limit:.1%} of the values and p < {alpha:g})."
                    )
                )
            low, high = r["min"], r["max"]
            self.add(
                "out_of_range",
                name,
                "warning" if warn else "info",
                f"{_many(count, 'value')} ({rate:.2%} of the finite ones) of column "
                f"{name!r} {'falls' if count == 1 else 'fall'} outside the training range "
                f"[{low:g}, {high:g}] ({r['below']:,} below, {r['above']:,} above); e.g. "
                f"{', '.join(repr(e['value']) for e in _jsonable(r['examples'])[:3])}. The "
                "model extrapolates there: check the inputs, or retrain on data that covers "
                "them" + why,
                below=r["below"],
                above=r["above"],
                count=count,
                rate=rate,
                threshold=limit,
                expected_rate=None if chance is None else chance[0],
                p_value=None if chance is None else chance[1],
                p_adjusted=adjusted,
                tests=family if chance is not None else None,
                alpha=alpha,
                min=low,
                max=high,
                key=self.rows.key_name,
                examples=r["examples"],
            )

    def outliers(
        self, name: str, values: np.ndarray, finite: np.ndarray, entry: dict[str, Any]
    ) -> None:
        import numpy as np

        quantiles = entry.get("quantiles") or {}
        at = dict(zip(quantiles.get("probs") or (), quantiles.get("values") or (), strict=False))
        median, q25, q75 = at.get(0.5), at.get(0.25), at.get(0.75)
        if median is None or q25 is None or q75 is None:
            return
        scale = (q75 - q25) / 1.349
        if not scale > 0 and at.get(0.99) is not None and at.get(0.01) is not None:
            scale = (at[0.99] - at[0.01]) / 4.653  # 2 x 2.326, the normal's 1% point
        if not scale > 0:
            scale = entry.get("std") or 0.0
        if not scale > 0:
            return
        with np.errstate(invalid="ignore", over="ignore"):
            z = np.abs(values - median) / scale
        z[~finite] = np.nan
        better = z > self.rows.best_z
        if better.any():
            column = self.rows.names.index(name)
            self.rows.best_z[better] = z[better]
            self.rows.best_column[better] = column
            self.rows.best_value[better] = values[better]

    def categorical(self, name: str, series: pd.Series, entry: dict[str, Any]) -> None:
        kind = entry["kind"]
        listed = (entry.get("categories") or {}).get("values") or []
        known = set(listed)
        known_text = {str(v) for v in listed}
        families = {_family(v) for v in listed} or {
            "str": {"str"},
            "bool": {"bool"},
            "category": {"str", "number"},
        }[kind]
        if kind == "str":
            families = {"str"}
        distinct, count = int(entry.get("distinct") or len(listed)), int(entry.get("count") or 0)
        free_text = kind == "str" and (
            distinct > _MAX_CATEGORIES
            or (distinct > _FEW_CATEGORIES and distinct > _MAX_DISTINCT_SHARE * count)
        )
        if free_text and _all_text(series):
            return  # any string goes
        unseen: list[tuple[Any, int]] = []
        wrong: list[tuple[Any, int]] = []
        for value, count in _counts(series):
            try:
                if value in known:
                    continue
            except TypeError:
                pass
            family = _family(value)
            if family in ("number", "bool") and _whole_text(value) in known_text:
                continue
            if family in families:
                unseen.append((value, count))
            else:
                wrong.append((value, count))
        if wrong:
            expected = {"str": "text", "bool": "booleans"}.get(kind, "known categories")
            self.wrong_type(name, expected, kind, wrong)
        if not unseen or entry.get("truncated") or free_text:
            return
        total = sum(c for _, c in unseen)
        ranked = sorted(unseen, key=lambda vc: (-vc[1], str(vc[0])))
        examples = [{"value": v, "count": c} for v, c in ranked[: self.options["max_examples"]]]
        self.add(
            "unseen_category",
            name,
            "warning",
            f"{_many(total, 'value')} ({total / self.rows.n:.2%}) of column {name!r} "
            f"{'is' if total == 1 else 'are'} of {_many(len(unseen), 'category', 'categories')} "
            "training never saw; e.g. "
            f"{', '.join(repr(e['value']) for e in _jsonable(examples)[:3])}. The model "
            "cannot have learned anything about them: check for a new or renamed category "
            "upstream, and retrain with examples of it.",
            count=total,
            distinct=len(unseen),
            rate=total / self.rows.n,
            examples=examples,
        )

    def datetime(self, name: str, series: pd.Series) -> None:
        import datetime as dt
        import warnings

        import pandas as pd
        from pandas.api import types as pdt

        if pdt.is_datetime64_any_dtype(series.dtype):
            return
        wrong: list[tuple[Any, int]] = []
        for value, count in _counts(series):
            ok = isinstance(value, dt.date | pd.Timestamp)
            if isinstance(value, str):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        ok = pd.notna(pd.to_datetime(value, errors="coerce"))
                    except (TypeError, ValueError, OverflowError):
                        ok = False
            if not ok:
                wrong.append((value, count))
        if wrong:
            self.wrong_type(name, "dates or times", "datetime", wrong)


def _reference(entry: dict[str, Any]) -> int:
    """How many finite training values made a column's range (0 when not said)."""
    try:
        return int(entry.get("count") or 0) - int(entry.get("infinite") or 0)
    except (TypeError, ValueError):
        return 0


def _chance(entry: dict[str, Any], count: int, checked: int) -> tuple[float, float, int] | None:
    """What chance gives for `count` of `checked` new values outside a training range:
    (the expected rate, the p-value of `count` or more, the training values behind the
    range), or None when the profile does not say how many values made the range.

    The range of n training values misses a new value from the same distribution with
    probability q ~ Beta(2, n - 1) (mean 2 / (n + 1)): the range itself is random. So the
    count outside among `checked` values is beta-binomial(checked, 2, n - 1), exactly for
    continuous data and conservatively for ties; a binomial with q = 2 / (n + 1) would
    ignore the spread of q and flag a third of same-distribution batches of 5,000 values
    against a 20-row reference."""
    reference = _reference(entry)
    if reference < 2:
        return None
    stats = require("scipy.stats", "monitor", "The out-of-range check")
    p_value = float(stats.betabinom.sf(count - 1, checked, 2, reference - 1))
    return 2 / (reference + 1), min(1.0, max(0.0, p_value)), reference


def _where(entry: dict[str, Any], key_name: str) -> str:
    """Where a listed row is, for a message: `request 'r1', row 2` for a logged row of a
    request (row = its kiln_row), else `row 'c7'` (by the key, or the index)."""
    if _ROW in entry:
        return f"request {entry['row']!r}, row {entry[_ROW]!r}"
    if key_name == _REQUEST:
        return f"request {entry['row']!r}"
    return f"row {entry['row']!r}"


def _row_hash(series: pd.Series) -> np.ndarray:
    import numpy as np
    import pandas as pd

    try:
        hashed = pd.util.hash_pandas_object(series, index=False)
    except (TypeError, ValueError):  # unhashable values, bytes that are not text
        typed = series.map(lambda v: "" if v is None else f"{type(v).__name__}:{v!r}")
        hashed = pd.util.hash_pandas_object(typed.astype(object), index=False)
    return hashed.to_numpy(dtype=np.uint64)


def quality(
    current: Any,
    profile: dict[str, Any],
    *,
    columns: list[str] | None = None,
    key: str | None = "kiln_request_id",
    ignore: Sequence[str] = LOG_COLUMNS,
    config: dict[str, Any] | None = None,
) -> list[Finding]:
    """Check the current data against the training profile; one `Finding` per problem.

    Args:
        current: The current data: a pandas DataFrame (such as a prediction log) or
            anything `kiln.log_dataset` accepts. Column names are compared as text.
        profile: The model's reference profile (the contents of its `profile.json`).
        columns: The training columns to check (default: all of them). Extra columns
            are reported only when this is None.
        key: The column whose values identify rows in the details (duplicates,
            outliers, out-of-range examples); the row index when absent.
        ignore: Columns left out of every check (the prediction log's own columns).
            The `key` column is left out of the extra-column and duplicate checks too.
        config: Options (defaults in `QUALITY_DEFAULTS`): `missing_rate_increase`
            (0.05), `out_of_range_rate` (0.01), `out_of_range_alpha` (0.01),
            `outlier_z` (6.0), `max_outliers` (10), `max_examples` (5),
            `duplicate_rate` (0.01). Values outside the training range are a warning
            when they are more than `out_of_range_rate` of a column's finite values and
            more than chance gives: a range from n training values misses about
            2 / (n + 1) of new values from the same distribution, and the count outside
            must have a probability below `out_of_range_alpha` under that chance
            (beta-binomial, Holm-adjusted over the columns checked, so a wide table
            from the training distribution is warned about at most that often in
            all); otherwise they are reported as info.

    Returns:
        The findings, grouped by check in the order of `CHECKS` (columns in the
        profile's order within a check); empty when all is well.

    Raises:
        ConfigurationError: The config has an unknown key or a bad value, the profile
            is not a kiln profile, or `columns` names a column the profile lacks.
        DataFileError: `current` is not tabular data.
    """
    import numpy as np

    options = _options(config)
    profiled = _profile_columns(profile)
    frame, _ = as_frame(current, role="current", error=DataFileError)
    skip = {str(c) for c in ignore}
    if columns is None:
        names = [c for c in profiled if c not in skip]
    else:
        names = [str(c) for c in columns]
        for name in names:
            if name not in profiled:
                raise ConfigurationError(
                    f"columns= names {name!r}, which the profile does not have; expected "
                    f"training columns such as {list(profiled)[:10]}.{_suggest(name, profiled)}"
                )
    n = len(frame)
    if n == 0:
        return [
            Finding(
                "empty",
                None,
                "error",
                "The current data has no rows; expected at least one. Check the time window "
                "(since/until) or the file: nothing else can be checked.",
                {"rows": 0, "columns": len(frame.columns)},
            )
        ]
    position: dict[str, int] = {}
    for i, label in enumerate(frame.columns):
        position.setdefault(str(label), i)
    keys: pd.Series = frame.index.to_series()
    key_name = "index"
    if key is not None and key in position:
        keys, key_name = frame.iloc[:, position[key]], key
    rows = _Rows(
        n=n,
        keys=keys,
        key_name=key_name,
        names=names,
        best_z=np.full(n, -1.0),
        best_column=np.full(n, -1, dtype=np.int64),
        best_value=np.full(n, np.nan),
    )
    checker = _Checker(options, rows)
    missing = [name for name in names if name not in position]
    extra = [
        c for c in position if c not in profiled and c not in skip and c != key and columns is None
    ]
    for name in missing:
        kind = profiled[name].get("kind")
        checker.add(
            "missing_column",
            name,
            "error",
            f"Column {name!r} (kind {kind!r} in training) is missing from the current "
            "data, so its drift and quality cannot be computed, and the model cannot "
            f"predict without it.{_suggest(name, extra)} Send the column, or leave it out "
            "with columns=[...].",
            kind=kind,
        )
    for name in extra:
        checker.add(
            "extra_column",
            name,
            "info",
            f"Column {name!r} is in the current data but the model was not trained on it; "
            f"it is not checked.{_suggest(name, missing)} Nothing to do unless it is a "
            "training column under a new name.",
        )
    for name in names:
        if name in position:
            checker.column(name, frame.iloc[:, position[name]], profiled[name])
    checker.range_findings()

    inputs = [c for c in (names if columns is not None else position) if c in position]
    inputs = [c for c in inputs if c not in skip and (c != key or c in profiled)]
    if inputs:
        hashed = np.zeros(n, dtype=np.uint64)
        for name in inputs:
            hashed = hashed * np.uint64(1_000_003) ^ _row_hash(frame.iloc[:, position[name]])
        import pandas as pd

        repeated = pd.Series(hashed).duplicated(keep="first").to_numpy()
        count = int(repeated.sum())
        if count:
            limit = options["duplicate_rate"]
            rate = count / n
            examples = [rows.key(i) for i in np.flatnonzero(repeated)[: options["max_examples"]]]
            checker.add(
                "duplicate_rows",
                None,
                "warning" if rate > limit else "info",
                f"{_many(count, 'row')} ({rate:.2%}) {'repeats' if count == 1 else 'repeat'} "
                f"an earlier row in all {_many(len(inputs), 'input column')}"
                + (
                    f", more than the {limit:.1%} allowed. Look for retries or a join that "
                    "multiplies rows upstream; raise config['duplicate_rate'] when inputs "
                    "legitimately repeat."
                    if rate > limit
                    else "."
                ),
                count=count,
                rate=rate,
                threshold=limit,
                columns=len(inputs),
                key=key_name,
                examples=examples,
            )
    threshold = options["outlier_z"]
    over = np.flatnonzero(rows.best_z > threshold)
    if len(over):
        order = over[np.argsort(-rows.best_z[over], kind="stable")][: options["max_outliers"]]
        # A request id names a request, which may hold many rows: kiln_row (its place
        # in the request, from 0) says which one.
        place = position.get(_ROW) if key_name == _REQUEST else None
        listed = [
            {
                "row": rows.key(i),
                **({} if place is None else {_ROW: _jsonable(frame.iat[i, place])}),
                "column": names[rows.best_column[i]],
                "value": rows.best_value[i],
                "z": round(float(rows.best_z[i]), 3),
            }
            for i in order
        ]
        checker.add(
            "outliers",
            None,
            "info",
            f"{_many(len(over), 'row')} {'has' if len(over) == 1 else 'have'} a value more "
            f"than {threshold:g} robust standard "
            f"deviations from the training median (the most outlying: {_where(listed[0], key_name)}, "
            f"column {listed[0]['column']!r}, z = {listed[0]['z']:g}). "
            "Look at these rows: data-entry errors, unit changes or a new kind of case.",
            count=len(over),
            threshold=threshold,
            key=key_name,
            rows=listed,
        )
    order_of = {check: i for i, check in enumerate(CHECKS)}
    return sorted(checker.findings, key=lambda f: order_of[f.check])
