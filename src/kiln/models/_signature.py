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

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from kiln._exceptions import SignatureError

__all__ = ["FORMAT_VERSION", "INPUT_TYPES", "KINDS", "ColumnSpec", "InputType", "Signature"]

FORMAT_VERSION = 1
KINDS = ("bool", "int", "float", "str", "category", "datetime")
INPUT_TYPES = ("dataframe", "ndarray", "series")

InputType = Literal["dataframe", "ndarray", "series"]


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
            raise SignatureError(
                f"ColumnSpec.name must be a str, got {type(self.name).__name__} "
                f"{self.name!r}; write the column name as text (name_is_int=True keeps an "
                "integer name)."
            )
        if self.kind not in KINDS:
            raise SignatureError(
                f"ColumnSpec.kind must be one of {', '.join(KINDS)}; got {self.kind!r} for "
                f"column {self.name!r}."
            )
        if self.name_is_int and not _is_int_text(self.name):
            raise SignatureError(
                f"ColumnSpec {self.name!r} has name_is_int=True but its name is not an "
                "integer written as text (such as '0'); drop name_is_int or fix the name."
            )
        if self.kind == "category" and self.levels is None:
            raise SignatureError(
                f"category column {self.name!r} needs its levels: pass levels=(...), the "
                "categorical dtype's categories in order."
            )
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
            SignatureError: A required key is missing or a value has the wrong type.
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
            if str(exc).startswith(_READING):
                raise
            raise _format_error(str(exc).rstrip(".")) from exc


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
            raise SignatureError(
                f"input_type must be one of {', '.join(INPUT_TYPES)}; got {self.input_type!r}."
            )
        for role, specs in (("input", self.inputs), ("output", self.outputs)):
            seen: set[str] = set()
            for spec in specs:
                if not isinstance(spec, ColumnSpec):
                    raise SignatureError(
                        f"Signature {role}s must be ColumnSpec objects; got "
                        f"{type(spec).__name__}. Build them with ColumnSpec(name, kind, dtype) "
                        "or use infer_signature(X, y)."
                    )
                if spec.name in seen:
                    raise SignatureError(
                        f"{role} column {spec.name!r} appears twice; column names must be unique."
                    )
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
            SignatureError: The data is not a signature, or was written by a newer kiln.
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
            if str(exc).startswith(_READING):
                raise
            raise _format_error(str(exc).rstrip(".")) from exc

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


def _is_int_text(text: str) -> bool:
    try:
        return str(int(text)) == text
    except ValueError:
        return False


_READING = "Cannot read the model signature: "


def _format_error(message: str) -> SignatureError:
    return SignatureError(f"{_READING}{message}.")
