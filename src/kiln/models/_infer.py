"""Signature inference: what a model's training data says about its columns.

`infer_signature(X, y)` turns training data into a `Signature` (see
`kiln.models._signature` for the saved schema itself); the helpers here tell a column's
kind, range and categories, and are shared with the reference profile and validation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from kiln._exceptions import SignatureError
from kiln._frames import InputType
from kiln._frames import as_frame as to_frame
from kiln.models._signature import ColumnSpec, Signature

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "as_frame",
    "column_kind",
    "column_spec",
    "infer_signature",
    "looks_categorical",
    "masked_dtype",
    "nullable_dtype",
    "python_value",
]

MAX_CATEGORIES = 1000  # distinct values beyond which a str column or int output records none
FEW_CATEGORIES = 20  # a str column with at most this many distinct values is categorical
MAX_DISTINCT_SHARE = 0.5  # ... as is one with at most this many per non-null value

# What `pandas.api.types.infer_dtype(skipna=True)` says about an object column -> kind.
_OBJECT_KINDS = {
    "string": "str",
    "boolean": "bool",
    "integer": "int",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "float",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
}


def infer_signature(X: Any, y: Any = None, predictions: Any = None) -> Signature:
    """Describe a model's inputs (from `X`) and outputs (from `y` and/or `predictions`).

    Args:
        X: Training features: a pandas DataFrame, a 2-D numpy array (columns become
            "x0", "x1", ...), a dict of columns, or a Series / 1-D array (one column).
        y: Training targets (Series, 1-D or 2-D array, DataFrame), or None.
        predictions: What the model returns, or None. When given, it decides each
            output's kind and dtype; `y` still lends its name(s) when predictions are
            unnamed, and its distinct values (the class labels) to discrete outputs.

    Returns:
        The signature; outputs are empty when neither `y` nor `predictions` is given.
        Unnamed 1-D outputs are called "prediction", columns of a 2-D array
        "prediction_0", "prediction_1", ... The values seen are recorded as categories
        for bool and category columns, and for str columns only when they look
        categorical (`looks_categorical`: at most 1000 distinct values, and at most 20
        or at most half as many as there are non-null values); other str columns are
        free text and accept any string, also in "strict" validation.

    Raises:
        SignatureError: A column's type is not supported (mixed types, bytes,
            timedeltas, ...), it has no values to infer a type from, or column names
            are not unique strings or integers.
    """
    frame, input_type = as_frame(X, prefix="x", role="X")
    inputs = tuple(column_spec(frame[c], c) for c in frame.columns)
    outputs: tuple[ColumnSpec, ...] = ()
    if predictions is not None:
        pred_frame, _ = as_frame(predictions, prefix="prediction", role="predictions")
        y_frame = as_frame(y, prefix="prediction", role="y")[0] if y is not None else None
        if y_frame is not None and len(y_frame.columns) == len(pred_frame.columns):
            if _default_names(predictions):
                pred_frame = pred_frame.set_axis(y_frame.columns, axis=1)
            outputs = tuple(
                column_spec(pred_frame[p], p, output=True, extra=y_frame[t])
                for p, t in zip(pred_frame.columns, y_frame.columns, strict=True)
            )
        else:
            outputs = tuple(column_spec(pred_frame[c], c, output=True) for c in pred_frame.columns)
    elif y is not None:
        y_frame, _ = as_frame(y, prefix="prediction", role="y")
        outputs = tuple(column_spec(y_frame[c], c, output=True) for c in y_frame.columns)
    return Signature(inputs=inputs, outputs=outputs, input_type=input_type)


def _default_names(data: Any) -> bool:
    import pandas as pd

    if isinstance(data, pd.Series):
        return data.name is None
    return not isinstance(data, pd.DataFrame | dict)


def as_frame(data: Any, *, prefix: str = "x", role: str = "X") -> tuple[pd.DataFrame, InputType]:
    """Turn training data into a DataFrame with unique str/int column names.

    Returns the frame and how the data was shaped ("dataframe", "ndarray", "series").
    Unnamed 1-D data gets the name `prefix` + "0" for X, or "prediction" for outputs.

    Raises:
        SignatureError: The data is not tabular, or its column names are not unique
            strings or integers.
    """
    import numpy as np
    import pandas as pd

    frame, input_type = to_frame(data, prefix=prefix, role=role, error=SignatureError)
    if isinstance(frame.columns, pd.MultiIndex):
        raise _format_error(f"{role} has MultiIndex columns; flatten them to strings")
    texts: dict[str, Any] = {}
    for label in frame.columns:
        if isinstance(label, bool | np.bool_) or not isinstance(label, str | int | np.integer):
            raise _format_error(
                f"{role} has a column named {label!r} ({type(label).__name__}); column names "
                "must be strings or integers",
            )
        text = str(label)
        if text in texts:
            raise _format_error(
                f"{role} has two columns named {texts[text]!r} and {label!r}; names must "
                "stay unique when written as text",
            )
        texts[text] = label
    return frame, input_type


def column_kind(values: pd.Series, name: str) -> str:
    """The kind ("bool", "int", ...) of a column of training data.

    Raises:
        SignatureError: The column's type is not supported, or an object column has
            no non-null values to tell its type from.
    """
    import numpy as np
    import pandas as pd
    from pandas.api import types as pdt

    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pdt.is_bool_dtype(dtype):
        return "bool"
    if pdt.is_integer_dtype(dtype):
        return "int"
    if pdt.is_float_dtype(dtype):
        return "float"
    if pdt.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.StringDtype) or (
        isinstance(dtype, pd.ArrowDtype) and pdt.is_string_dtype(dtype)
    ):
        return "str"
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        inferred = pdt.infer_dtype(values, skipna=True)
        if inferred in _OBJECT_KINDS:
            return _OBJECT_KINDS[inferred]
        if inferred == "empty":
            raise _format_error(
                f"column {name!r} has only nulls, so its type cannot be inferred; give it a "
                f"dtype, e.g. df[{name!r}] = df[{name!r}].astype('float64')",
            )
        examples = ", ".join(
            sorted({type(v).__name__ for v in values.dropna().head(1000).tolist()})
        )
        raise _format_error(
            f"column {name!r} holds values of types {examples} ({inferred}); a column must "
            "hold one kind of value: bool, int, float, str, category or datetime. Convert "
            f"it, e.g. df[{name!r}].astype(str)",
        )
    raise _format_error(
        f"column {name!r} has dtype {dtype}, which kiln signatures do not support; convert "
        "it to bool, int, float, str, category or datetime (a timedelta as seconds: "
        "series.dt.total_seconds())",
    )


def masked_dtype(dtype: Any) -> bool:
    """Whether `dtype` is one of pandas' masked nullable dtypes (Int64, Float64, boolean, ...)."""
    import pandas as pd

    return isinstance(
        dtype,
        pd.Int8Dtype
        | pd.Int16Dtype
        | pd.Int32Dtype
        | pd.Int64Dtype
        | pd.UInt8Dtype
        | pd.UInt16Dtype
        | pd.UInt32Dtype
        | pd.UInt64Dtype
        | pd.Float32Dtype
        | pd.Float64Dtype
        | pd.BooleanDtype,
    )


def nullable_dtype(dtype: Any) -> bool:
    """Whether `dtype` is a nullable type chosen on purpose (Int64, boolean, "string", pyarrow).

    pandas 3's default string dtype ("str", missing values as NaN) does not count: it is
    what every string column gets, so counting it would make every such column nullable.
    """
    import pandas as pd

    if masked_dtype(dtype) or isinstance(dtype, pd.ArrowDtype):
        return True
    return isinstance(dtype, pd.StringDtype) and dtype.na_value is pd.NA


def column_spec(
    values: pd.Series, label: Any, *, output: bool = False, extra: pd.Series | None = None
) -> ColumnSpec:
    """Describe one column of training data (or of outputs, when `output`).

    `extra` holds more values of the same column (the targets, when `values` are the
    predictions); their distinct values join the categories.
    """
    import numpy as np
    import pandas as pd

    name = str(label)
    kind = column_kind(values, name)
    nulls = bool(values.isna().any())
    spec: dict[str, Any] = {
        "name": name,
        "name_is_int": isinstance(label, int | np.integer) and not isinstance(label, bool),
        "kind": kind,
        "dtype": str(values.dtype),
        "nullable": nulls or nullable_dtype(values.dtype),
    }
    present = values.dropna()
    if kind == "category":
        dtype: Any = values.dtype
        level_kind = column_kind(pd.Series(dtype.categories), f"{name} (its categories)")
        if level_kind == "datetime":
            raise _format_error(
                f"category column {name!r} has datetime categories; convert them to str",
            )
        spec["levels"] = tuple(dtype.categories.tolist())
        spec["ordered"] = bool(dtype.ordered)
    if kind in ("int", "float"):
        spec["min"], spec["max"] = _numeric_range(present, kind)
    discrete = kind in ("bool", "str", "category") or (output and kind == "int")
    if discrete:
        seen = present.astype(object) if kind == "category" else present
        if extra is not None and column_kind(extra, name) == kind:
            seen = pd.concat([pd.Series(seen.to_numpy()), pd.Series(extra.dropna().to_numpy())])
        unique = pd.unique(np.asarray(seen, dtype=object))
        if kind in ("bool", "category"):
            record = True
        elif kind == "str":
            record = looks_categorical(len(unique), len(seen))
        else:  # int outputs: the class labels
            record = len(unique) <= MAX_CATEGORIES
        if record:
            spec["categories"] = tuple(sorted(python_value(v) for v in unique))
    return ColumnSpec(**spec)


def looks_categorical(distinct: int, count: int) -> bool:
    """Whether a str column with `distinct` values among `count` non-null ones is categorical.

    It is when it has at most 1000 distinct values and either at most 20 of them or at
    most half as many as `count` (a "plan" column of 3 levels over 200 rows; 40 values
    over 1000 rows). Otherwise it is free text (names, comments, documents; 40 values
    over 60 rows): recording what training saw would reject nearly every new value in
    "strict" mode, so no categories are recorded and any string is accepted.
    """
    if distinct > MAX_CATEGORIES:
        return False
    return distinct <= FEW_CATEGORIES or distinct <= MAX_DISTINCT_SHARE * count


def _numeric_range(present: pd.Series, kind: str) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    if not len(present):
        return None, None
    if kind == "int":
        if present.dtype == object:
            items = present.tolist()
            return int(min(items)), int(max(items))
        return int(present.min()), int(present.max())
    array = np.asarray(pd.to_numeric(present), dtype=np.float64)
    finite = array[np.isfinite(array)]
    lo = float(finite.min()) if len(finite) and not np.any(array == -np.inf) else None
    hi = float(finite.max()) if len(finite) and not np.any(array == np.inf) else None
    return lo, hi


def python_value(value: Any) -> Any:
    """A numpy scalar as the matching Python value (JSON-ready; finite numbers only).

    Raises:
        SignatureError: The value is NaN or infinite.
    """
    item = getattr(value, "item", None)
    value = item() if callable(item) else value
    if isinstance(value, float) and not math.isfinite(value):
        raise _format_error(f"category {value!r} is not a finite number")
    return value


def _format_error(message: str) -> SignatureError:
    """The error for data a signature cannot be inferred from."""
    return SignatureError(message[:1].upper() + message[1:] + ".")
