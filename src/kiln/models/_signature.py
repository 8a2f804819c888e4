"""Model signatures: the columns a model takes and returns, as seen in training.

A `Signature` is saved with every model. Serving validates requests against it
(`kiln.models.Validator`), `kiln serve` publishes it as an OpenAPI schema, and monitoring
reads it to know which columns are numeric and which categorical. Its JSON form is part
of the saved-model format: `to_dict()` writes `format_version` 1, and `from_dict()`
reads it back exactly (integer column names stay integers).

```python
sig = infer_signature(X_train, y_train)
sig.inputs[0]        # ColumnSpec(name='age', kind='int', dtype='int64', min=18, max=90, ...)
Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig   # True
```

Each column has a kind, one of "bool", "int", "float", "str", "category", "datetime",
and the exact pandas dtype it had ("int64", "Int64", "float32", "str", "string",
"object", "category", "datetime64[us, UTC]", ...), which validation restores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from kiln.models._validator import ValidationError

__all__ = ["KINDS", "ColumnSpec", "Signature", "infer_signature"]

FORMAT_VERSION = 1
KINDS = ("bool", "int", "float", "str", "category", "datetime")
INPUT_TYPES = ("dataframe", "ndarray", "series")
MAX_CATEGORIES = 1000  # distinct values beyond which a str column or int output records none
FEW_CATEGORIES = 20  # a str column with at most this many distinct values is categorical
MAX_DISTINCT_SHARE = 0.5  # ... as is one with at most this many per non-null value

InputType = Literal["dataframe", "ndarray", "series"]

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


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a model's input or output, as seen in training.

    Attributes:
        name: The column name as text (JSON keys and messages use it).
        kind: One of "bool", "int", "float", "str", "category", "datetime".
        dtype: The exact pandas dtype seen in training, e.g. "int64", "Int64", "str".
        nullable: Whether nulls are allowed: they were seen in training, or the dtype is
            a nullable extension type chosen on purpose (Int64, Float64, boolean,
            "string", pyarrow types). pandas 3's default "str" dtype does not count.
        min: Smallest finite value seen (int and float columns); None when unbounded
            below (-inf seen) or unknown.
        max: Largest finite value seen; None when unbounded above or unknown.
        categories: Sorted values seen, for columns whose values come from a set: bool
            and category columns always, str columns that look categorical (see
            `looks_categorical`), and int outputs (class labels) with at most 1000
            distinct values. None for other kinds and for free text (a str column
            that does not look categorical), which accepts any string.
        name_is_int: Whether the original column name was an integer (a frame built
            from an array has columns 0, 1, ...); `label` gives it back.
        levels: For "category" columns, the categorical dtype's categories in order.
        ordered: For "category" columns, whether the categorical dtype is ordered.
    """

    name: str
    kind: str
    dtype: str
    nullable: bool = False
    min: int | float | None = None
    max: int | float | None = None
    categories: tuple[Any, ...] | None = None
    name_is_int: bool = False
    levels: tuple[Any, ...] | None = None
    ordered: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"ColumnSpec.name must be a str, got {type(self.name).__name__}")
        if self.kind not in KINDS:
            raise ValueError(f"ColumnSpec.kind must be one of {KINDS}, got {self.kind!r}")
        if self.name_is_int and not _is_int_text(self.name):
            raise ValueError(f"ColumnSpec {self.name!r} has name_is_int but is not an integer")
        if self.kind == "category" and self.levels is None:
            raise ValueError(f"category column {self.name!r} needs its levels")
        for attr in ("categories", "levels"):
            value = getattr(self, attr)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, attr, tuple(value))

    @property
    def label(self) -> str | int:
        """The column name as it was in training: an int when `name_is_int`, else the str."""
        return int(self.name) if self.name_is_int else self.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; every key is always present."""
        return {
            "name": self.name,
            "name_is_int": self.name_is_int,
            "kind": self.kind,
            "dtype": self.dtype,
            "nullable": self.nullable,
            "min": self.min,
            "max": self.max,
            "categories": None if self.categories is None else list(self.categories),
            "levels": None if self.levels is None else list(self.levels),
            "ordered": self.ordered,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSpec:
        """Read a column written by `to_dict()`; unknown keys are ignored.

        Raises:
            ValidationError: A required key is missing or a value has the wrong type.
        """
        if not isinstance(data, dict):
            raise _format_error(f"a column must be a JSON object, got {type(data).__name__}")
        missing = [k for k in ("name", "kind", "dtype") if k not in data]
        if missing:
            raise _format_error(f"column {data.get('name')!r} lacks {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise _format_error(str(exc)) from exc


@dataclass(frozen=True)
class Signature:
    """The columns a model takes (`inputs`) and returns (`outputs`), in order.

    Attributes:
        inputs: One `ColumnSpec` per input feature, in training order.
        outputs: One `ColumnSpec` per output (one for a single prediction column).
        input_type: How the model was fed in training: "dataframe", "ndarray" (a 2-D
            array; pass `frame.to_numpy()` to the model) or "series" (one column).
    """

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = ()
    input_type: InputType = "dataframe"
    _by_name: dict[str, ColumnSpec] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if self.input_type not in INPUT_TYPES:
            raise ValueError(f"input_type must be one of {INPUT_TYPES}, got {self.input_type!r}")
        for role, specs in (("input", self.inputs), ("output", self.outputs)):
            seen: set[str] = set()
            for spec in specs:
                if not isinstance(spec, ColumnSpec):
                    raise TypeError(f"{role}s must be ColumnSpec, got {type(spec).__name__}")
                if spec.name in seen:
                    raise ValueError(f"{role} column {spec.name!r} appears twice")
                seen.add(spec.name)
        object.__setattr__(self, "_by_name", {s.name: s for s in self.inputs})

    def input(self, name: str | int) -> ColumnSpec:
        """The input column called `name` (an int name may be given as int or text).

        Raises:
            KeyError: No input column has that name.
        """
        try:
            return self._by_name[str(name)]
        except KeyError:
            raise KeyError(f"the signature has no input column {name!r}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with `format_version` for the saved-model format."""
        return {
            "format_version": FORMAT_VERSION,
            "input_type": self.input_type,
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        """Read a signature written by `to_dict()` (exactly: `from_dict(s.to_dict()) == s`).

        Raises:
            ValidationError: The data is not a signature, or was written by a newer kiln.
        """
        if not isinstance(data, dict) or "inputs" not in data:
            raise _format_error("expected a JSON object with 'inputs' (from Signature.to_dict)")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise _format_error(
                f"format_version {version!r} is not supported (this kiln reads "
                f"{FORMAT_VERSION}); upgrade kiln to load this model"
            )
        try:
            return cls(
                inputs=tuple(ColumnSpec.from_dict(c) for c in data["inputs"]),
                outputs=tuple(ColumnSpec.from_dict(c) for c in data.get("outputs") or ()),
                input_type=data.get("input_type", "dataframe"),
            )
        except (TypeError, ValueError) as exc:
            if type(exc).__name__ == "ValidationError":
                raise
            raise _format_error(str(exc)) from exc

    def openapi_schema(self, *, strict: bool = True) -> dict[str, Any]:
        """JSON schema (OpenAPI 3.1 / JSON Schema 2020-12) of one input record.

        Args:
            strict: Also state the training range (`minimum`/`maximum`) and categories
                (`enum`), as a validator in "strict" mode enforces them. Use False for a
                server in "warn" or "off" mode.
        """
        properties = {s.name: _property(s, strict) for s in self.inputs}
        return {
            "type": "object",
            "title": "Input record",
            "description": "One row of model input; columns may come in any order, "
            "and columns not listed are ignored.",
            "properties": properties,
            "required": [s.name for s in self.inputs],
            "additionalProperties": True,
        }


_JSON_TYPES = {
    "bool": "boolean",
    "int": "integer",
    "float": "number",
    "str": "string",
    "datetime": "string",
}


def _property(spec: ColumnSpec, strict: bool) -> dict[str, Any]:
    if spec.kind == "category":
        level_types = {type(v) for v in spec.levels or ()}
        json_type = (
            "string"
            if level_types <= {str}
            else "boolean"
            if level_types <= {bool}
            else "integer"
            if level_types <= {int}
            else "number"
        )
    else:
        json_type = _JSON_TYPES[spec.kind]
    prop: dict[str, Any] = {
        "type": [json_type, "null"] if spec.nullable else json_type,
        "title": spec.name,
        "x-kiln-kind": spec.kind,
        "x-kiln-dtype": spec.dtype,
    }
    if spec.kind == "datetime":
        prop["format"] = "date-time"
    if spec.min is not None or spec.max is not None:
        lo = "-inf" if spec.min is None else spec.min
        hi = "inf" if spec.max is None else spec.max
        prop["description"] = f"{spec.kind} ({spec.dtype}); training range {lo} to {hi}"
        if strict:
            if spec.min is not None:
                prop["minimum"] = spec.min
            if spec.max is not None:
                prop["maximum"] = spec.max
    else:
        prop["description"] = f"{spec.kind} ({spec.dtype})"
    allowed = spec.categories if spec.categories is not None else spec.levels
    if strict and allowed is not None:
        prop["enum"] = [*allowed, None] if spec.nullable else list(allowed)
    return prop


# --------------------------------------------------------------------------- inference


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
        ValidationError: A column's type is not supported (mixed types, bytes,
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
        ValidationError: The data is not tabular, or its column names are not unique
            strings or integers.
    """
    import numpy as np
    import pandas as pd

    input_type: InputType = "dataframe"
    single = prefix if prefix == "prediction" else f"{prefix}0"
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pd.Series):
        frame = data.to_frame(name=data.name if data.name is not None else single)
        input_type = "series"
    elif isinstance(data, np.ndarray | list | tuple) or (
        hasattr(data, "__array__") and not isinstance(data, dict)
    ):
        array = np.asarray(data)
        if array.ndim == 1:
            frame = pd.DataFrame({single: array})
            input_type = "series"
        elif array.ndim == 2:
            sep = "_" if prefix == "prediction" else ""
            names = [f"{prefix}{sep}{i}" for i in range(array.shape[1])]
            frame = pd.DataFrame({n: array[:, i] for i, n in enumerate(names)})
            input_type = "ndarray"
        else:
            raise _format_error(
                f"{role} is a {array.ndim}-dimensional array; expected 1 or 2 dimensions",
                problem="input",
            )
    elif isinstance(data, dict):
        frame = pd.DataFrame(data)
    else:
        raise _format_error(
            f"{role} is a {type(data).__name__}; expected a pandas DataFrame or Series, a "
            "numpy array or a dict of columns",
            problem="input",
        )
    if isinstance(frame.columns, pd.MultiIndex):
        raise _format_error(
            f"{role} has MultiIndex columns; flatten them to strings", problem="input"
        )
    texts: dict[str, Any] = {}
    for label in frame.columns:
        if isinstance(label, bool | np.bool_) or not isinstance(label, str | int | np.integer):
            raise _format_error(
                f"{role} has a column named {label!r} ({type(label).__name__}); column names "
                "must be strings or integers",
                column=str(label),
                problem="name",
            )
        text = str(label)
        if text in texts:
            raise _format_error(
                f"{role} has two columns named {texts[text]!r} and {label!r}; names must "
                "stay unique when written as text",
                column=text,
                problem="name",
            )
        texts[text] = label
    return frame, input_type


def column_kind(values: pd.Series, name: str) -> str:
    """The kind ("bool", "int", ...) of a column of training data.

    Raises:
        ValidationError: The column's type is not supported, or an object column has
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
                column=name,
                problem="unsupported",
            )
        examples = ", ".join(
            sorted({type(v).__name__ for v in values.dropna().head(1000).tolist()})
        )
        raise _format_error(
            f"column {name!r} holds values of types {examples} ({inferred}); a column must "
            "hold one kind of value: bool, int, float, str, category or datetime. Convert "
            f"it, e.g. df[{name!r}].astype(str)",
            column=name,
            problem="unsupported",
        )
    raise _format_error(
        f"column {name!r} has dtype {dtype}, which kiln signatures do not support; convert "
        "it to bool, int, float, str, category or datetime (a timedelta as seconds: "
        "series.dt.total_seconds())",
        column=name,
        problem="unsupported",
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
                column=name,
                problem="unsupported",
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
        ValidationError: The value is NaN or infinite.
    """
    item = getattr(value, "item", None)
    value = item() if callable(item) else value
    if isinstance(value, float) and not math.isfinite(value):
        raise _format_error(f"category {value!r} is not a finite number", problem="unsupported")
    return value


def _is_int_text(text: str) -> bool:
    try:
        return str(int(text)) == text
    except ValueError:
        return False


def _format_error(
    message: str, *, column: str | None = None, problem: str = "format"
) -> ValidationError:
    from kiln.models._validator import ValidationError

    error: dict[str, Any] = {
        "column": column,
        "problem": problem,
        "expected": "",
        "found": "",
        "rows": [],
        "count": 0,
    }
    return ValidationError(message, [error])
