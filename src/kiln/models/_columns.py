"""Per-column checks behind `Validator`: one `Column` per signature column, built once.

A `Column` checks a whole input column at once (`check`: numpy over the column, type
classes for object arrays) and, for the one-record path a server takes per request,
one plain Python value (`scalar`), which answers `FALLBACK` whenever it is not sure so
that `check` has the final word. The rules it applies (coercions, problem codes, modes)
are described in `kiln.models._validator`.
"""

from __future__ import annotations

import datetime
import difflib
import re
from typing import Any

from kiln.models._infer import masked_dtype
from kiln.models._signature import ColumnSpec

__all__ = ["FALLBACK", "MISSING", "Column", "short"]

_MAX_ROWS = 5  # row numbers kept per problem
_MAX_EXAMPLES = 3  # distinct example values shown per problem
_MAX_REPR = 40  # characters of one example value
_F32_MAX = 3.4028234663852886e38
# ISO 8601 forms that datetime.fromisoformat and pandas read alike (others: full check).
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?)?"
)
_RANGE_SLACK = 1e-6  # of a float column's training range width

# Classes of the elements of object arrays.
_NULL, _BOOL, _INT, _FLOAT, _STR, _TIME, _OTHER = range(7)

_WHAT = {
    "bool": "booleans",
    "int": "whole numbers",
    "float": "numbers",
    "str": "strings",
    "category": "categories",
    "datetime": "ISO 8601 date-times",
}


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()  # a column absent from the input
FALLBACK: Any = _Missing()  # `Column.scalar`'s answer when `Column.check` must decide
_INF = float("inf")


class Column:
    """The checker for one signature column, prepared once per validator."""

    def __init__(self, spec: ColumnSpec, *, drift: bool) -> None:
        import numpy as np
        import pandas as pd

        self._np, self._pd = np, pd
        self.spec = spec
        self.name = spec.name
        self.kind = spec.kind
        self.label = spec.label
        self.alt: Any = spec.name if spec.name_is_int else _int_or_none(spec.name)
        self.drift = drift
        if spec.kind == "category":
            levels = list(spec.levels or ())
            self.target: Any = pd.CategoricalDtype(levels, ordered=spec.ordered)
            self.level_code = {v: i for i, v in enumerate(levels)}
            self.level_get = np.frompyfunc(self.level_code.get, 2, 1)
            types = {type(v) for v in levels}
            self.level_kind = next((k for k, ts in _LEVEL_KINDS if types <= ts), "float")
            seen = spec.categories if drift else None
            narrower = seen is not None and set(seen) != set(levels)
            self.seen_set = frozenset(seen) if seen is not None and narrower else None
        else:
            try:
                self.target = pd.api.types.pandas_dtype(spec.dtype)
            except TypeError as exc:
                from kiln._exceptions import SignatureError

                raise SignatureError(
                    f"Column {spec.name!r} of the saved signature has dtype {spec.dtype!r}, "
                    f"which this version of pandas ({pd.__version__}) does not know; load "
                    "the model where it was saved, or with a matching pandas."
                ) from exc
            self.level_kind = spec.kind
        target = self.target
        self.numpy = isinstance(target, np.dtype)
        self.masked = masked_dtype(target)
        self.holds_null = not (self.numpy and target.kind in "iub")
        self.quiet_null = (spec.nullable or not drift) and self.holds_null
        self.lo = spec.min if drift else None
        self.hi = spec.max if drift else None
        bounds = [b for b in (self.lo, self.hi) if b is not None]
        if spec.kind == "float" and bounds:
            # Slack, so that training values sent through text (JSON, CSV) stay in range.
            width = self.hi - self.lo if len(bounds) == 2 else 0.0  # type: ignore[operator]
            slack = _RANGE_SLACK * width + 1e-9 * max(abs(b) for b in bounds)
            self.lo = None if self.lo is None else self.lo - slack
            self.hi = None if self.hi is None else self.hi + slack
        self.slo = float("-inf") if self.lo is None else self.lo
        self.shi = float("inf") if self.hi is None else self.hi
        cats = spec.categories if drift and spec.kind in ("str", "bool") else None
        self.cat_set = None if cats is None else frozenset(cats)
        self.seen_get = None
        seen_values = self.cat_set if spec.kind != "category" else self.seen_set
        if seen_values is not None:
            self.seen_get = np.frompyfunc(dict.fromkeys(seen_values, 0).get, 2, 1)
        if self.level_kind == "int":
            base = np.dtype("int64")
            if self.kind == "int" and (self.numpy or self.masked):
                base = np.dtype(target.numpy_dtype if self.masked else target)
            info = np.iinfo(base)
            self.ilo, self.ihi = int(info.min), int(info.max)
            self.canon = np.dtype(np.uint64) if base == np.uint64 else np.dtype(np.int64)
        self.f32 = self.numpy and target == np.float32
        self.unit: Any = _unit(target, np) if spec.kind == "datetime" else None
        if self.unit is not None and not self.numpy and getattr(target, "tz", None) is None:
            self.unit = None  # an object column of datetimes: always the full check
        self.vocab: Any = None
        str_arrow = isinstance(target, pd.StringDtype) and target.storage == "pyarrow"
        if spec.kind == "str" and str_arrow and spec.categories:
            # Arrow buffers are immutable, so slices of one array are safe to hand out.
            self.vocab = pd.array(list(spec.categories), dtype=target)
            self.vocab_at = {v: i for i, v in enumerate(spec.categories)}

    # ------------------------------------------------------------------ problems

    def problem(
        self, code: str, expected: str, found: str, mask: Any = None, *, drift: bool = False
    ) -> dict[str, Any]:
        """A problem with this column; `mask` marks the rows that have it."""
        rows: list[int] = []
        count = 0
        if mask is not None:
            where = self._np.flatnonzero(mask)
            rows, count = where[:_MAX_ROWS].tolist(), len(where)
        return {
            "column": self.name,
            "problem": code,
            "expected": expected,
            "found": found,
            "rows": rows,
            "count": count,
            "drift": drift,
        }

    def missing(self, extras: list[Any]) -> dict[str, Any]:
        """The problem of this column being absent; suggests a close extra column."""
        by_lower = {str(e).lower(): str(e) for e in extras}
        close = difflib.get_close_matches(self.name.lower(), list(by_lower), n=3, cutoff=0.6)
        hint = "; did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?"
        found = "no such column" + (hint if close else "")
        return self.problem("missing", f"a column of {self.what()}", found)

    def what(self) -> str:
        """What the column holds, e.g. "whole numbers (int64)"."""
        return f"{_WHAT[self.kind]} ({self.spec.dtype})"

    def _type(self, problems: list[dict[str, Any]], a: Any, mask: Any, why: str = "") -> None:
        if mask.any():
            found = why + _examples(a, mask, self._np)
            problems.append(self.problem("type", self.what(), found, mask))

    def _nulls(self, problems: list[dict[str, Any]], a: Any, nulls: Any) -> None:
        if self.spec.nullable or not nulls.any():
            return
        if not self.holds_null:
            expected = f"no nulls ({self.spec.dtype} cannot hold them)"
            problems.append(self.problem("null", expected, _examples(a, nulls, self._np), nulls))
        elif self.drift:
            found = _examples(a, nulls, self._np)
            problems.append(
                self.problem("null", "no nulls (none in training)", found, nulls, drift=True)
            )

    def _range(self, problems: list[dict[str, Any]], a: Any, values: Any, ok: Any) -> None:
        np = self._np
        out = np.zeros(len(values), dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.lo is not None:
                out |= values < self.lo
            if self.hi is not None:
                out |= values > self.hi
        out &= ok
        if out.any():
            lo = "-inf" if self.spec.min is None else self.spec.min
            hi = "inf" if self.spec.max is None else self.spec.max
            expected = f"values within the training range [{lo}, {hi}]"
            found = _examples(a, out, np)
            problems.append(self.problem("range", expected, found, out, drift=True))

    def _unseen(self, problems: list[dict[str, Any]], a: Any, mask: Any) -> None:
        if mask.any():
            allowed = list(
                self.spec.categories if self.spec.categories is not None else self.spec.levels or ()
            )
            shown = ", ".join(short(v) for v in allowed[:5])
            more = f", ... ({len(allowed)} in all)" if len(allowed) > 5 else ""
            expected = f"one of the categories seen in training: {shown}{more}"
            found = _examples(a, mask, self._np)
            problems.append(self.problem("category", expected, found, mask, drift=True))

    # ------------------------------------------------------------------ one scalar

    def scalar(self, v: Any) -> Any:
        """The output for a plainly valid Python scalar, or `FALLBACK`.

        The output is the value itself for numpy dtypes, else a one-element array.
        `FALLBACK` sends the value through `check`, which has the final word: this path
        only takes values that `check` would accept unchanged, in the common dtypes.
        """
        t = type(v)
        kind = self.kind
        if v is None or (t is float and v != v):
            if not self.quiet_null:
                return FALLBACK
            if self.numpy and kind in ("float", "str"):
                return v if kind == "str" else float("nan")
            if kind == "category":
                return self._pd.Categorical.from_codes([-1], dtype=self.target)
            return FALLBACK
        if kind == "float":
            if (t is not float and t is not int) or not self.numpy:
                return FALLBACK
            try:
                f = float(v)
            except OverflowError:
                return FALLBACK
            if not self.slo <= f <= self.shi or (self.f32 and _F32_MAX < abs(f) < _INF):
                return FALLBACK
            return f
        if kind == "int":
            if t is float and v.is_integer():
                v = int(v)
            elif t is not int:
                return FALLBACK
            if not (self.ilo <= v <= self.ihi and self.slo <= v <= self.shi):
                return FALLBACK
            if self.numpy:
                return v
            if self.masked:
                values = self._np.array([v], dtype=self.target.numpy_dtype)
                return self._pd.arrays.IntegerArray(values, self._np.zeros(1, dtype=bool))
            return FALLBACK
        if kind == "str":
            if t is not str or (self.cat_set is not None and v not in self.cat_set):
                return FALLBACK
            if self.numpy:
                return v
            if self.vocab is not None and v in self.vocab_at:
                at = self.vocab_at[v]
                return self.vocab[at : at + 1]
            return self._pd.array([v], dtype=self.target)  # free text, or mode "off"
        if kind == "bool":
            if t is not bool:
                if (t is not int and t is not float) or v not in (0, 1):
                    return FALLBACK
                v = v == 1
            if self.cat_set is not None and v not in self.cat_set:
                return FALLBACK
            if self.numpy and self.target.kind == "b":
                return v
            if self.masked:
                values = self._np.array([v])
                return self._pd.arrays.BooleanArray(values, self._np.zeros(1, dtype=bool))
            return FALLBACK
        if kind == "datetime":
            return self._datetime_scalar(v) if t is str else FALLBACK
        if kind == "category" and _LEVEL_TYPES[self.level_kind](t):
            code = self.level_code.get(v)
            if code is None or (self.seen_set is not None and v not in self.seen_set):
                return FALLBACK
            return self._pd.Categorical.from_codes([code], dtype=self.target)
        return FALLBACK

    def _datetime_scalar(self, text: str) -> Any:
        """A plain ISO 8601 string as a datetime64 (or one-element array), or `FALLBACK`."""
        if self.unit not in ("us", "ns") or not _ISO_DATETIME.fullmatch(text):
            return FALLBACK
        try:
            when = datetime.datetime.fromisoformat(text)
            if when.tzinfo is not None:
                when = when.astimezone(datetime.UTC).replace(tzinfo=None)
        except (ValueError, OverflowError):
            return FALLBACK
        if self.unit == "ns" and not 1678 <= when.year <= 2261:
            return FALLBACK
        value = self._np.datetime64(when, self.unit)
        if self.numpy:
            return value
        index = self._pd.DatetimeIndex(self._np.array([value]))
        return index.tz_localize("UTC").tz_convert(self.target.tz).array

    # ------------------------------------------------------------------ one column

    def check(self, a: Any, problems: list[dict[str, Any]]) -> Any:
        """Check one input column, append its problems, return it in the training dtype.

        Returns None when the column has an error (then there is no output frame).
        """
        np = self._np
        pd = self._pd
        if isinstance(a.dtype, pd.CategoricalDtype) or a.dtype.kind == "U":
            a = np.asarray(a, dtype=object)
        elif isinstance(a.dtype, pd.ArrowDtype) and not isinstance(a.dtype, pd.StringDtype):
            a = a.to_numpy(dtype=object, na_value=None)
        before = len(problems)
        kind = self.level_kind
        if kind == "datetime":
            values, nulls, ok = self._datetime(a, problems)
        elif kind == "float":
            values, nulls, ok = self._float(a, problems)
        elif kind == "int":
            values, nulls, ok = self._int(a, problems)
        elif kind == "bool":
            values, nulls, ok = self._bool(a, problems)
        else:
            values, nulls, ok = self._str(a, problems)
        self._nulls(problems, a, nulls)
        hard = any(not p["drift"] for p in problems[before:])
        unseen = None
        if self.seen_get is not None:
            unseen = ok & (_lookup(self.seen_get, values, ok, np) < 0)
        if self.kind == "category":
            codes = _lookup(self.level_get, values, ok, np)
            unseen = ok & (codes < 0) if unseen is None else unseen | (ok & (codes < 0))
            if self.drift:
                self._unseen(problems, a, unseen)
            if hard:
                return None
            return pd.Categorical.from_codes(codes, dtype=self.target)
        if unseen is not None:
            self._unseen(problems, a, unseen)
        elif self.lo is not None or self.hi is not None:
            self._range(problems, a, values, ok)
        return None if hard else self._output(a, values, nulls)

    def _float(self, a: Any, problems: list[dict[str, Any]]) -> tuple[Any, Any, Any]:
        """float64 values, nulls and valid non-null rows; numbers only."""
        np = self._np
        pd = self._pd
        n = len(a)
        dtype = a.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
            values = a.astype(np.float64, copy=False)
            nulls = np.isnan(values)
            ok = ~nulls
        elif _masked_number(dtype):
            values = a.to_numpy(dtype=np.float64, na_value=np.nan)
            nulls = np.isnan(values)
            ok = ~nulls
        elif _is_object(dtype):
            classes = _classes(a, np, pd)
            nulls = classes == _NULL
            numbers = (classes == _INT) | (classes == _FLOAT)
            values = np.full(n, np.nan)
            converted, overflow = _floats(a[numbers], np)
            values[numbers] = converted
            self._type(problems, a, ~numbers & ~nulls)
            where = np.flatnonzero(numbers)
            self._type(problems, a, _mark(n, where[overflow], np), "numbers too large: ")
            ok = _mark(n, where[~overflow], np)
        else:
            nulls = _isna(a, np, pd)
            self._type(problems, a, ~nulls)
            return np.full(n, np.nan), nulls, np.zeros(n, dtype=bool)
        if self.f32:
            with np.errstate(over="ignore", invalid="ignore"):
                too_big = np.isfinite(values) & ~np.isfinite(values.astype(np.float32))
            self._type(problems, a, too_big, "numbers too large for float32: ")
            ok &= ~too_big
        return values, nulls, ok

    def _int(self, a: Any, problems: list[dict[str, Any]]) -> tuple[Any, Any, Any]:
        """Whole-number values (int64, or uint64 for a uint64 column), nulls, valid rows."""
        np = self._np
        pd = self._pd
        n = len(a)
        dtype = a.dtype
        values = np.zeros(n, dtype=self.canon)
        limits = f"whole numbers outside {self.spec.dtype}'s limits: "
        if _masked_number(dtype) or (isinstance(dtype, np.dtype) and dtype.kind in "iuf"):
            if _masked_number(dtype):
                nulls = _isna(a, np, pd)
                if dtype.kind == "f":
                    numbers = a.to_numpy(dtype=np.float64, na_value=np.nan)
                else:
                    numbers = a.to_numpy(dtype=dtype.numpy_dtype, na_value=0)
            else:
                numbers = a
                nulls = np.isnan(a) if dtype.kind == "f" else np.zeros(n, dtype=bool)
            if numbers.dtype.kind == "f":
                ok, fraction, outside = self._whole(numbers, ~nulls)
                values[ok] = numbers[ok]
                self._type(problems, a, fraction, "numbers that are not whole: ")
            else:
                outside = ((numbers < self.ilo) | (numbers > self.ihi)) & ~nulls
                ok = ~outside & ~nulls
                values[ok] = numbers[ok]
            self._type(problems, a, outside, limits)
            return values, nulls, ok
        if not _is_object(dtype):
            nulls = _isna(a, np, pd)
            self._type(problems, a, ~nulls)
            return values, nulls, np.zeros(n, dtype=bool)
        classes = _classes(a, np, pd)
        nulls = classes == _NULL
        ints, floats = classes == _INT, classes == _FLOAT
        self._type(problems, a, ~(ints | floats | nulls))
        ok = np.zeros(n, dtype=bool)
        outside = np.zeros(n, dtype=bool)
        if ints.any():
            where = np.flatnonzero(ints)
            items = a[where]
            beyond = np.asarray((items < self.ilo) | (items > self.ihi), dtype=bool)
            values[where[~beyond]] = items[~beyond].astype(self.canon)
            ok[where[~beyond]] = True
            outside[where[beyond]] = True
        if floats.any():
            where = np.flatnonzero(floats)
            f, overflow = _floats(a[where], np)
            f[overflow] = np.inf
            good, fraction, beyond = self._whole(f, np.ones(len(f), dtype=bool))
            values[where[good]] = f[good]
            ok[where[good]] = True
            outside[where[beyond]] = True
            self._type(problems, a, _mark(n, where[fraction], np), "numbers that are not whole: ")
        self._type(problems, a, outside, limits)
        return values, nulls, ok

    def _whole(self, f: Any, present: Any) -> tuple[Any, Any, Any]:
        """Split floats into whole numbers that fit, fractions, and too-large ones."""
        np = self._np
        with np.errstate(invalid="ignore"):
            whole = present & np.isfinite(f) & (np.trunc(f) == f)
            fits = whole & (f >= float(self.ilo)) & (f < float(self.ihi) + 1.0)
            infinite = present & np.isinf(f)
        return fits, present & ~whole & ~infinite, (whole & ~fits) | infinite

    def _bool(self, a: Any, problems: list[dict[str, Any]]) -> tuple[Any, Any, Any]:
        """bool values, nulls and valid rows; True/False, or the numbers 0 and 1."""
        np = self._np
        pd = self._pd
        n = len(a)
        dtype = a.dtype
        if isinstance(dtype, np.dtype) and dtype.kind == "b":
            return a, np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
        if isinstance(dtype, pd.BooleanDtype):
            nulls = _isna(a, np, pd)
            return a.to_numpy(dtype=bool, na_value=False), nulls, ~nulls
        values = np.zeros(n, dtype=bool)
        if _masked_number(dtype) or (isinstance(dtype, np.dtype) and dtype.kind in "iuf"):
            f = (
                a.to_numpy(dtype=np.float64, na_value=np.nan)
                if _masked_number(dtype)
                else a.astype(np.float64)
            )
            nulls = np.isnan(f)
            ok = (f == 0) | (f == 1)
            values = f == 1
        elif _is_object(dtype):
            classes = _classes(a, np, pd)
            nulls = classes == _NULL
            ok = classes == _BOOL
            values[ok] = a[ok].astype(bool)
            numbers = np.flatnonzero((classes == _INT) | (classes == _FLOAT))
            if len(numbers):
                f, _ = _floats(a[numbers], np)
                binary = (f == 0) | (f == 1)
                values[numbers[binary]] = f[binary] == 1
                ok[numbers[binary]] = True
        else:
            nulls = _isna(a, np, pd)
            ok = np.zeros(n, dtype=bool)
        self._type(problems, a, ~ok & ~nulls)
        return values, nulls, ok & ~nulls

    def _str(self, a: Any, problems: list[dict[str, Any]]) -> tuple[Any, Any, Any]:
        """The strings (as given), nulls and valid rows; other values are type errors."""
        np = self._np
        pd = self._pd
        if isinstance(a.dtype, pd.StringDtype):
            nulls = _isna(a, np, pd)
            return a, nulls, ~nulls
        if _is_object(a.dtype):
            classes = _classes(a, np, pd)
            nulls = classes == _NULL
            ok = classes == _STR
            self._type(problems, a, ~ok & ~nulls)
            return a, nulls, ok
        nulls = _isna(a, np, pd)
        self._type(problems, a, ~nulls)
        return np.full(len(a), None, dtype=object), nulls, np.zeros(len(a), dtype=bool)

    def _datetime(self, a: Any, problems: list[dict[str, Any]]) -> tuple[Any, Any, Any]:
        """Naive UTC datetimes (a DatetimeIndex), nulls and valid rows."""
        np = self._np
        pd = self._pd
        n = len(a)
        dtype = a.dtype
        if pd.api.types.is_datetime64_any_dtype(dtype):
            index = pd.DatetimeIndex(a)
            if index.tz is not None:
                index = index.tz_convert("UTC").tz_localize(None)
            nulls = np.asarray(index.isna())
        elif _is_object(dtype) or isinstance(dtype, pd.StringDtype):
            if isinstance(dtype, pd.StringDtype):
                classes = np.where(_isna(a, np, pd), _NULL, _STR)
            else:
                classes = _classes(a, np, pd)
            nulls = classes == _NULL
            parse = np.flatnonzero((classes == _STR) | (classes == _TIME))
            bad = ~nulls
            bad[parse] = False
            stamps = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
            if len(parse):
                items = pd.Series(np.asarray(a, dtype=object)[parse], dtype=object)
                parsed = pd.to_datetime(items, format="ISO8601", utc=True, errors="coerce")
                naive = parsed.dt.tz_localize(None).to_numpy()
                failed = np.asarray(parsed.isna())
                bad[parse[failed]] = True
                stamps = stamps.astype(naive.dtype)
                stamps[parse] = naive
            index = pd.DatetimeIndex(stamps)
            self._type(problems, a, bad)
        else:
            nulls = _isna(a, np, pd)
            self._type(problems, a, ~nulls)
            index = pd.DatetimeIndex(np.full(n, np.datetime64("NaT", "ns")))
        ok = ~np.asarray(index.isna())
        unit = _unit(self.target, np)
        try:
            index = index.as_unit(unit)
        except (pd.errors.OutOfBoundsDatetime, OverflowError):
            too_far = np.asarray((index < pd.Timestamp.min) | (index > pd.Timestamp.max))
            self._type(problems, a, too_far, f"date-times outside {self.spec.dtype}'s range: ")
            index = index.where(~too_far).as_unit(unit)
            ok &= ~too_far
        return index, nulls, ok

    def _output(self, a: Any, values: Any, nulls: Any) -> Any:
        """The column in its training dtype, from checked values."""
        np = self._np
        pd = self._pd
        target = self.target
        kind = self.kind
        if kind == "datetime":
            tz = getattr(target, "tz", None)
            if tz is not None:
                return values.tz_localize("UTC").tz_convert(tz).array
            if self.numpy and target.kind == "M":
                return values.to_numpy()
            return np.asarray(values.astype(object))
        if kind == "str":
            if a.dtype == target:
                return a.copy()
            strings = np.array(values, dtype=object)
            if self.numpy:
                return strings
            strings[nulls] = None
            return pd.array(strings, dtype=target)
        if self.numpy and not _is_object(target):
            with np.errstate(over="ignore"):
                return values.astype(target)
        if self.masked:
            base = target.numpy_dtype
            array_type = {
                "float": pd.arrays.FloatingArray,
                "int": pd.arrays.IntegerArray,
                "bool": pd.arrays.BooleanArray,
            }[kind]
            return array_type(values.astype(base), nulls.copy())
        objects = values.astype(object)
        objects[nulls] = None
        return objects if self.numpy else pd.array(objects, dtype=target)


# ---------------------------------------------------------------------------- helpers

_LEVEL_KINDS = (("str", {str}), ("bool", {bool}), ("int", {int}))
_LEVEL_TYPES = {
    "str": lambda t: t is str,
    "bool": lambda t: t is bool,
    "int": lambda t: t is int,
    "float": lambda t: t is float or t is int,
}


def _lookup(get: Any, values: Any, ok: Any, np: Any) -> Any:
    """Codes of the valid values in a table (a frompyfunc of dict.get), -1 when absent."""
    codes = np.full(len(ok), -1, dtype=np.intp)
    where = np.flatnonzero(ok)
    if len(where):
        codes[where] = get(np.asarray(values, dtype=object)[where], -1).astype(np.intp)
    return codes


def _int_or_none(text: str) -> int | None:
    try:
        return int(text) if str(int(text)) == text else None
    except ValueError:
        return None


def _unit(target: Any, np: Any) -> str:
    unit = getattr(target, "unit", None)
    if unit is not None:
        return str(unit)
    if isinstance(target, np.dtype) and target.kind == "M":
        return str(np.datetime_data(target)[0])
    return "ns"


def _is_object(dtype: Any) -> bool:
    import numpy as np

    return isinstance(dtype, np.dtype) and dtype.kind == "O"


def _masked_number(dtype: Any) -> bool:
    import pandas as pd

    return masked_dtype(dtype) and not isinstance(dtype, pd.BooleanDtype)


def _isna(a: Any, np: Any, pd: Any) -> Any:
    return np.asarray(pd.isna(a), dtype=bool)


def _mark(n: int, where: Any, np: Any) -> Any:
    mask = np.zeros(n, dtype=bool)
    mask[where] = True
    return mask


def _floats(items: Any, np: Any) -> tuple[Any, Any]:
    """Numbers from an object array as float64, and which were too large for a float."""
    try:
        return items.astype(np.float64), np.zeros(len(items), dtype=bool)
    except (OverflowError, TypeError, ValueError):
        pass
    converted = np.frompyfunc(_float_or_none, 1, 1)(items)
    overflow = np.asarray(np.equal(converted, None), dtype=bool)
    converted[overflow] = np.nan
    return converted.astype(np.float64), overflow


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (OverflowError, TypeError, ValueError):
        return None


_CLASS_OF_TYPE: dict[type, int] = {}


def _element_class(value: Any) -> int:
    code = _CLASS_OF_TYPE.get(type(value))
    if code is None:
        code = _slow_class(value)
    if code in (_FLOAT, _TIME) and value != value:
        return _NULL
    return code


def _slow_class(value: Any) -> int:
    import datetime
    import decimal
    import numbers

    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return _NULL
    if isinstance(value, bool | np.bool_):
        return _BOOL
    if isinstance(value, numbers.Integral):
        return _INT
    if isinstance(value, numbers.Real | decimal.Decimal):
        return _FLOAT
    if isinstance(value, str):
        return _STR
    if isinstance(value, datetime.date | np.datetime64):
        return _TIME
    return _OTHER


def _classes(a: Any, np: Any, pd: Any) -> Any:
    """The class (null, bool, int, float, str, datetime, other) of each element."""
    if not _CLASS_OF_TYPE:
        import datetime

        _CLASS_OF_TYPE.update(
            {
                type(None): _NULL,
                bool: _BOOL,
                np.bool_: _BOOL,
                int: _INT,
                np.int64: _INT,
                float: _FLOAT,
                np.float64: _FLOAT,
                str: _STR,
                pd.Timestamp: _TIME,
                datetime.datetime: _TIME,
            }
        )
    inferred = pd.api.types.infer_dtype(a, skipna=True)
    uniform = {"string": _STR, "integer": _INT, "floating": _FLOAT, "boolean": _BOOL}.get(inferred)
    if uniform is not None:
        return np.where(_isna(a, np, pd), _NULL, uniform)
    if inferred == "empty":
        return np.full(len(a), _NULL)
    with np.errstate(all="ignore"):
        return np.frompyfunc(_element_class, 1, 1)(a).astype(np.int8)


def short(value: Any) -> str:
    """repr() of one value, numpy scalars as Python ones, cut to a few dozen characters."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _examples(a: Any, mask: Any, np: Any) -> str:
    """Up to 3 distinct values at `mask`, e.g. "'abc', 'x', ..."; never the whole input."""
    where = np.flatnonzero(mask)
    shown: list[str] = []
    for i in where[:100]:
        text = short(a[int(i)])
        if text not in shown:
            shown.append(text)
            if len(shown) == _MAX_EXAMPLES:
                break
    more = ", ..." if len(where) > len(shown) else ""
    return ", ".join(shown) + more
