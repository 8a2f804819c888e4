"""Input validation: check data against a model's `Signature`, coerce it to training dtypes.

```python
validator = Validator(signature, mode="strict")
frame = validator.validate({"age": 42, "city": "Oslo"})   # a one-row DataFrame, or raises
result = validator.check(records)                         # reports instead of raising
result.frame, result.errors, result.warnings, result.notes
```

Accepted data: a DataFrame; a list of record dicts; a dict of columns (a dict of scalars
is one record); a numpy array or a list of rows, matched by position, when the model was
trained on an array or every input column is numeric; and, for a one-column ("series")
model, a Series or 1-D array. Column order does not matter, and integer column names may
be given as text (JSON keys always are). Columns not in the signature are dropped, with
a note in `ValidationResult.notes`.

Problems are reported per column with a short code:

| problem    | meaning                                                | strict | warn    | off     |
| ---------- | ------------------------------------------------------ | ------ | ------- | ------- |
| `missing`  | a signature column is absent                           | error  | error   | error   |
| `type`     | a value of the wrong type ("abc" for a float, 1.5 for an int) or one the training dtype cannot hold | error | error | error |
| `null`     | a null where training saw none                         | error  | warning | ignored |
| `category` | a value not seen in training                           | error  | warning | ignored |
| `range`    | a number outside the training min and max             | error  | warning | ignored |
| `input`, `shape` | the data as a whole has the wrong form (column None) | error | error | error |

Only columns whose signature records categories have `category` problems: a free-text
str column (see `infer_signature`) accepts any string. A null the training dtype
cannot hold (int64, bool) is an error in every mode, and in "warn"/"off" mode a value
outside a categorical dtype's categories becomes null, as pandas would make it.
Warnings are `DataDriftWarning`s. Coercions: int to float, whole-number floats to int,
0/1 to bool, ISO 8601 strings to datetimes (naive values are taken as UTC when the
training column had a time zone; aware ones become naive UTC when it had none).
Strings are never read as numbers. A float column's range has a slack of a millionth
of its width, so training values that went through text (JSON, CSV) with 7
significant digits stay in range. Row numbers in problems are zero-based positions,
whatever the input's index.
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ConfigurationError, KilnWarning, ValidationError, describe
from kiln.models._columns import FALLBACK, MISSING, Column, short
from kiln.models._signature import Signature

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DataDriftWarning",
    "ValidationError",
    "ValidationResult",
    "Validator",
    "drift_quiet",
    "quiet_drift",
]

MODES = ("strict", "warn", "off")
_MAX_NAMES = 10  # extra column names listed in a note


class DataDriftWarning(KilnWarning):
    """Input differs from the training data: nulls, unseen categories, values out of range.

    Attributes:
        problems: The problems, in the form of `ValidationError.errors`.
    """

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        self.problems: list[dict[str, Any]] = list(problems or [])
        super().__init__(message)


_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("kiln_quiet_drift", default=False)


@contextlib.contextmanager
def quiet_drift() -> Iterator[None]:
    """Within this block, `kiln.Model` predictions warn of no drift.

    kiln's own predictions (evaluate, permutation importance, compare) run inside it:
    what they find is reported in their results, not as warnings. Thread- and
    asyncio-safe (a context variable).
    """
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def drift_quiet() -> bool:
    """Whether the caller is inside `quiet_drift()`."""
    return _QUIET.get()


@dataclass(frozen=True)
class ValidationResult:
    """What `Validator.check` found.

    Attributes:
        frame: The validated DataFrame (signature columns in order, training dtypes),
            or None when there are errors.
        errors: Problems that make the input unusable in this mode.
        warnings: Drift problems let through (mode "warn").
        notes: Other remarks, e.g. which extra columns were dropped.
    """

    frame: pd.DataFrame | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there are no errors (and so `frame` is set)."""
        return not self.errors


class Validator:
    """Checks data against a signature and returns it as a DataFrame in training dtypes.

    The per-column checkers are built here, once, so that validating one record (what a
    server does per request) takes a fraction of a millisecond.

    Args:
        signature: The model's signature (see `infer_signature`).
        mode: "strict" (nulls, unseen categories and out-of-range values are errors),
            "warn" (they are `DataDriftWarning`s) or "off" (not checked). Missing
            columns and wrong types are errors in every mode.

    Attributes:
        signature: The signature checked against.
        mode: The mode given.

    Raises:
        ConfigurationError: `mode` is not one of "strict", "warn", "off".
        SignatureError: A column's dtype is unknown to the installed pandas.
    """

    def __init__(self, signature: Signature, *, mode: str = "strict") -> None:
        import numpy as np
        import pandas as pd

        if mode not in MODES:
            raise ConfigurationError(
                f'mode must be one of {", ".join(MODES)}; got {mode!r}. "strict" refuses '
                'input outside what training saw, "warn" lets it through, "off" does not look.'
            )
        self.signature = signature
        self.mode = mode
        self._np, self._pd = np, pd
        self._columns = [Column(spec, drift=mode != "off") for spec in signature.inputs]
        self._labels = pd.Index([c.label for c in self._columns])
        self._known = {c.label for c in self._columns} | {c.alt for c in self._columns}
        self._one_row = pd.RangeIndex(1)
        groups: dict[Any, list[int]] = {}
        self._row_arrays = []
        for i, col in enumerate(self._columns):
            if col.numpy:
                groups.setdefault(col.target, []).append(i)
            else:
                self._row_arrays.append((i, np.array([i], dtype=np.intp)))
        self._row_groups = [(t, at, np.array(at, dtype=np.intp)) for t, at in groups.items()]
        self._positional = signature.input_type == "ndarray" or all(
            s.kind in ("bool", "int", "float") for s in signature.inputs
        )

    def __repr__(self) -> str:
        return f"Validator({len(self._columns)} columns, mode={self.mode!r})"

    def validate(self, data: Any) -> pd.DataFrame:
        """Check `data` and return it as a DataFrame matching the signature.

        Args:
            data: See the module docs for the accepted forms.

        Returns:
            The signature's columns in order, under their training labels (integer
            names stay integers), in training dtypes; a DataFrame's index is kept.

        Raises:
            ValidationError: The data has errors; `.errors` lists every problem.

        Warns:
            DataDriftWarning: In "warn" mode, for nulls not seen in training, unseen
                categories and values outside the training range.
        """
        result = self.check(data)
        if result.frame is None:
            raise ValidationError.from_errors(result.errors)
        if result.warnings:
            message = describe(result.warnings, "The input differs from the training data")
            warnings.warn(DataDriftWarning(message, result.warnings), stacklevel=2)
        return result.frame

    def check(self, data: Any) -> ValidationResult:
        """Like `validate`, but returns the problems instead of raising or warning.

        Args:
            data: See the module docs for the accepted forms.

        Returns:
            The validated frame (None when there are errors), the errors, the drift
            warnings let through in "warn" mode, and notes such as dropped columns.
        """
        pd = self._pd
        if type(data) is dict and not self._has_columns(data):
            return self._check_record(data)
        if isinstance(data, pd.DataFrame):
            return self._check_frame(data)
        if isinstance(data, dict):
            return self._check_dict(data)
        if isinstance(data, list | tuple):
            return self._check_list(data)
        if isinstance(data, self._np.ndarray):
            return self._check_array(data)
        if isinstance(data, pd.Series) and self.signature.input_type == "series":
            return self._run([_column_array(data)], len(data), data.index, [])
        hint = (
            " (pass series.to_frame() for a column, series.to_frame().T for a record)"
            if isinstance(data, pd.Series)
            else ""
        )
        return _failed(
            "input",
            "a DataFrame, a list of records, a dict of columns or a numpy array",
            f"a {type(data).__name__}{hint}",
        )

    # ------------------------------------------------------------------ input forms

    def _check_record(self, record: dict[Any, Any], index: Any = None) -> ValidationResult:
        """One record of scalars, the per-request path: plain scalar checks first."""
        outs: list[Any] = []
        problems: list[dict[str, Any]] = []
        matched = 0
        for col in self._columns:
            value = record.get(col.label, MISSING)
            if value is MISSING and col.alt is not None:
                value = record.get(col.alt, MISSING)
            if value is MISSING:
                problems.append(col.missing(self._extras(record)))
                continue
            matched += 1
            out = col.scalar(value)
            if out is FALLBACK:  # not plainly valid: the full check says why, or converts
                array = self._np.empty(1, dtype=object)
                array[0] = value
                out = col.check(array, problems)
                if col.numpy and out is not None:
                    out = out[0]
            outs.append(out)
        notes = _dropped(self._extras(record)) if len(record) > matched else []
        index = self._one_row if index is None else index
        return self._finish(outs, problems, notes, index, row=True)

    def _has_columns(self, data: dict[Any, Any]) -> bool:
        """Whether a dict holds columns (a sequence under a signature column's name) rather
        than one record; a sequence under another key is an extra field, dropped."""
        known = self._known
        return any(_is_sequence(v) for k, v in data.items() if k in known or str(k) in known)

    def _extras(self, record: dict[Any, Any]) -> list[Any]:
        return [k for k in record if k not in self._known]

    def _check_frame(self, frame: pd.DataFrame) -> ValidationResult:
        columns = frame.columns
        if not columns.is_unique:
            repeated = sorted({str(c) for c in columns[columns.duplicated()]})
            return _failed(
                "input", "unique column names", f"repeated columns {', '.join(repeated)}"
            )
        if len(frame) == 1:  # one row: take the record path (Series access costs more)
            row = _first_row(frame)
            return self._check_record(dict(zip(columns.tolist(), row, strict=True)), frame.index)
        by_text = {str(c): c for c in columns}
        used = set()
        arrays: list[Any] = []
        for col in self._columns:
            label = col.label if col.label in columns else by_text.get(col.name, MISSING)
            if label is not MISSING:
                used.add(label)
                arrays.append(_column_array(frame[label]))
            else:
                arrays.append(MISSING)
        extras = [c for c in columns if c not in used]
        return self._run(arrays, len(frame), frame.index, extras)

    def _check_dict(self, data: dict[Any, Any]) -> ValidationResult:
        np = self._np
        known = self._known
        lengths = {
            len(v) for k, v in data.items() if _is_sequence(v) and (k in known or str(k) in known)
        }
        if not lengths:
            return self._check_record(dict(data))
        if len(lengths) > 1:
            sizes = ", ".join(f"{k!r}: {len(v)}" for k, v in data.items() if _is_sequence(v))
            return _failed("shape", "columns of one length", f"lengths {sizes}")
        n = lengths.pop()
        by_text = {str(k): k for k in data}
        used = set()
        arrays: list[Any] = []
        for col in self._columns:
            key = col.label if col.label in data else by_text.get(col.name, MISSING)
            if key is MISSING:
                arrays.append(MISSING)
                continue
            used.add(key)
            value = data[key]
            if _is_sequence(value):
                arrays.append(_as_array(value, np, self._pd))
            else:  # a scalar next to columns: repeated, as pandas does
                array = np.empty(n, dtype=object)
                array.fill(value)
                arrays.append(array)
        extras = [k for k in data if k not in used]
        return self._run(arrays, n, None, extras)

    def _check_list(self, data: list[Any] | tuple[Any, ...]) -> ValidationResult:
        np = self._np
        if not data:
            return self._run([np.empty(0, dtype=object)] * len(self._columns), 0, None, [])
        if all(type(r) is dict for r in data):
            if len(data) == 1:  # a record, whatever its extra fields hold
                return self._check_record(data[0])
            return self._check_frame(self._pd.DataFrame(list(data)))
        if self.signature.input_type == "series" and not any(map(_is_sequence, data)):
            return self._run([_as_array(data, np, self._pd)], len(data), None, [])
        if any(map(_is_sequence, data)):
            try:
                array = np.array(data, dtype=object)
            except ValueError:
                return _failed("shape", "rows of equal length", "rows of different lengths")
            if array.ndim != 2:
                return _failed("shape", "rows of equal length", "rows of different lengths")
            return self._check_array(array)
        return self._check_array(_as_array(data, np, self._pd).reshape(1, -1))

    def _check_array(self, array: Any) -> ValidationResult:
        width = len(self._columns)
        if array.ndim == 1:
            if self.signature.input_type == "series":
                return self._run([array], len(array), None, [])
            array = array.reshape(1, -1)
        if array.ndim != 2:
            return _failed("shape", "a 1-D or 2-D array", f"a {array.ndim}-D array")
        if not self._positional:
            return _failed(
                "input",
                "records or a dict of columns (the model has non-numeric columns, which "
                "are matched by name)",
                "an array",
            )
        if array.shape[1] != width:
            names = ", ".join(c.name for c in self._columns[:5])
            more = ", ..." if width > 5 else ""
            return _failed(
                "shape", f"{width} columns per row ({names}{more})", f"{array.shape[1]} columns"
            )
        return self._run([array[:, i] for i in range(width)], array.shape[0], None, [])

    # ------------------------------------------------------------------ checking

    def _run(self, arrays: list[Any], n: int, index: Any, extras: list[Any]) -> ValidationResult:
        problems: list[dict[str, Any]] = []
        outs: list[Any] = []
        for col, array in zip(self._columns, arrays, strict=True):
            if array is MISSING:
                problems.append(col.missing(extras))
            elif len(array) != n:
                problems.append(col.problem("shape", f"{n} values", f"{len(array)} values"))
            else:
                outs.append(col.check(array, problems))
        index = self._pd.RangeIndex(n) if index is None else index
        return self._finish(outs, problems, _dropped(extras), index)

    def _finish(
        self,
        outs: list[Any],
        problems: list[dict[str, Any]],
        notes: list[str],
        index: Any,
        *,
        row: bool = False,
        assemble: bool = True,
    ) -> ValidationResult:
        errors: list[dict[str, Any]] = []
        drift: list[dict[str, Any]] = []
        for p in problems:
            is_drift = p.pop("drift")
            (drift if is_drift and self.mode != "strict" else errors).append(p)
        if errors:
            return ValidationResult(None, errors, drift, notes)
        if not assemble:
            return ValidationResult(outs, [], drift, notes)  # type: ignore[arg-type]
        if row:
            frame = self._assemble_row(outs, index)
        else:
            frame = _assemble(outs, self._labels, index, self._np, self._pd)
        return ValidationResult(frame, [], drift, notes)

    def _assemble_row(self, outs: list[Any], index: Any) -> pd.DataFrame:
        """A one-row frame from Python values (numpy dtypes) and one-element arrays."""
        from_blocks = _from_blocks()
        if from_blocks is None:
            arrays = [
                self._np.array([out], dtype=col.target) if col.numpy else out
                for col, out in zip(self._columns, outs, strict=True)
            ]
            return _assemble(arrays, self._labels, index, self._np, self._pd)
        blocks = [
            (self._np.array([outs[i] for i in at], dtype=dtype).reshape(-1, 1), where)
            for dtype, at, where in self._row_groups
        ]
        blocks += [(outs[i], where) for i, where in self._row_arrays]
        return from_blocks(blocks, index=index, columns=self._labels)


# ---------------------------------------------------------------------------- helpers

_SCALAR_TYPES = frozenset({float, int, str, bool, type(None)})
_SEQUENCE_TYPES: list[Any] = []


def _is_sequence(value: Any) -> bool:
    """Whether a value is a column of values (list, tuple, array, Series, Index)."""
    if type(value) in _SCALAR_TYPES:
        return False
    if not _SEQUENCE_TYPES:
        import numpy as np
        import pandas as pd

        _SEQUENCE_TYPES.append(
            (list, tuple, np.ndarray, pd.Series, pd.Index, pd.api.extensions.ExtensionArray)
        )
    return isinstance(value, _SEQUENCE_TYPES[0])


def _column_array(series: Any) -> Any:
    """A Series' values: a numpy array for numpy dtypes, else its ExtensionArray."""
    import numpy as np

    return series.to_numpy() if isinstance(series.dtype, np.dtype) else series.array


def _as_array(values: Any, np: Any, pd: Any) -> Any:
    """A 1-D array from a list, tuple, Series, Index or array; lists keep their objects."""
    if isinstance(values, pd.Series | pd.Index):
        return _column_array(values)
    if isinstance(values, list | tuple) or (isinstance(values, np.ndarray) and values.ndim != 1):
        return np.fromiter(values, dtype=object, count=len(values))
    return values


def _first_row(frame: pd.DataFrame) -> list[Any]:
    """The first row's values as Python objects, read block by block (4x faster than
    `frame.to_numpy(dtype=object)`, which interleaves every column first)."""
    try:
        out: list[Any] = [None] * frame.shape[1]
        for block in frame._mgr.blocks:
            values = block.values
            cells = values[:, 0].tolist() if values.ndim == 2 else [values[0]]
            for at, value in zip(block.mgr_locs.as_array.tolist(), cells, strict=True):
                out[at] = value
        return out
    except (AttributeError, TypeError, ValueError):  # pandas internals moved: the public way
        return list(frame.to_numpy(dtype=object)[0].tolist())


def _dropped(extras: list[Any]) -> list[str]:
    if not extras:
        return []
    names = ", ".join(short(e) for e in extras[:_MAX_NAMES])
    more = f" and {len(extras) - _MAX_NAMES} more" if len(extras) > _MAX_NAMES else ""
    return [f"dropped {len(extras)} column(s) not in the signature: {names}{more}"]


def _failed(problem: str, expected: str, found: str) -> ValidationResult:
    error: dict[str, Any] = {
        "column": None,
        "problem": problem,
        "expected": expected,
        "found": found,
        "rows": [],
        "count": 0,
    }
    return ValidationResult(None, [error])


_FROM_BLOCKS: list[Any] = []


def _from_blocks() -> Any:
    """pandas' `create_dataframe_from_blocks` (pandas >= 3), or None."""
    if not _FROM_BLOCKS:
        try:
            from pandas.api.internals import create_dataframe_from_blocks
        except ImportError:  # pandas < 3
            create_dataframe_from_blocks = None
        _FROM_BLOCKS.append(create_dataframe_from_blocks)
    return _FROM_BLOCKS[0]


def _assemble(outs: list[Any], labels: Any, index: Any, np: Any, pd: Any) -> Any:
    """A DataFrame from one array per column: one block per numpy dtype, no re-inference."""
    from_blocks = _from_blocks()
    if from_blocks is None:
        frame = pd.DataFrame(dict(enumerate(outs)), index=index, copy=True)
        return frame.set_axis(labels, axis=1)
    groups: dict[Any, list[int]] = {}
    blocks: list[tuple[Any, Any]] = []
    for i, out in enumerate(outs):
        if isinstance(out, np.ndarray):
            groups.setdefault(out.dtype, []).append(i)
        else:
            blocks.append((out, np.array([i], dtype=np.intp)))
    for dtype, positions in groups.items():
        stacked = np.empty((len(positions), len(index)), dtype=dtype)
        for row, i in enumerate(positions):
            stacked[row] = outs[i]
        blocks.append((stacked, np.array(positions, dtype=np.intp)))
    return from_blocks(blocks, index=index, columns=labels)


class Columns:
    """Validated input as one array per signature column, before any DataFrame is built.

    What `ColumnValidator.validate` returns: compiled inference reads `outs` directly;
    `frame()` builds the DataFrame the library estimator needs, only when asked.
    """

    __slots__ = ("_row", "_validator", "index", "outs")

    def __init__(self, validator: Validator, outs: list[Any], index: Any, row: bool) -> None:
        self._validator, self.outs, self.index, self._row = validator, outs, index, row

    def __len__(self) -> int:
        return len(self.index)

    def frame(self) -> pd.DataFrame:
        """The validated DataFrame, as `Validator.validate` returns it."""
        v = self._validator
        if self._row:
            return v._assemble_row(self.outs, self.index)
        return _assemble(self.outs, v._labels, self.index, v._np, v._pd)


class ColumnValidator(Validator):
    """A `Validator` whose results hold `Columns` instead of a DataFrame (same checks)."""

    def _finish(
        self,
        outs: list[Any],
        problems: list[dict[str, Any]],
        notes: list[str],
        index: Any,
        *,
        row: bool = False,
        assemble: bool = False,
    ) -> ValidationResult:
        result = super()._finish(outs, problems, notes, index, row=row, assemble=False)
        if result.frame is None:
            return result
        columns = Columns(self, outs, index, row)
        return ValidationResult(columns, result.errors, result.warnings, result.notes)  # type: ignore[arg-type]
