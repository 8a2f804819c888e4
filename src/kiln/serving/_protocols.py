"""Request and response bodies: kiln's own JSON, MLflow's scoring formats, and KServe V2.

Every parser turns a decoded JSON body into data the model's `Validator` accepts (a
record dict, a dict of columns, a list of records or rows, a numpy array) and never
validates itself: the model's validator is the one place that says what is wrong.

Accepted on `POST /predict` and MLflow's `POST /invocations`:

| body | meaning |
| --- | --- |
| `{"age": 42, "city": "Oslo"}` | one record |
| `{"age": [42, 37], "city": ["Oslo", "Rome"]}` | columns |
| `[{"age": 42, ...}, ...]` | records |
| `{"dataframe_split": {"columns": [...], "data": [[...]]}}` | MLflow, pandas "split" |
| `{"dataframe_records": [{...}, ...]}` | MLflow, pandas "records" |
| `{"instances": [...]}`, `{"inputs": ...}` | MLflow, TF-serving style (rows, records or columns) |

`/invocations` also takes CSV, as MLflow's scoring server does: `Content-Type: text/csv`
(UTF-8), a header row of column names, then one row per record, read by
`pandas.read_csv` (`DataFrame.to_csv(index=False)` writes it); columns the signature
holds as text (str, category) are read as text, so `"007"` stays `"007"`.

MLflow's optional `"params"` object may carry `{"predict_proba": true}` (a JSON boolean).
A dict of columns has a list for every column: single values beside lists are refused, not
broadcast.

The Open Inference Protocol (KServe V2) body carries `inputs`, a list of tensors
(`name`, `shape`, `datatype`, `data`): one per input column named as the column (as
MLServer's pandas codec sends), or, for an all-numeric signature, one 2-D tensor with
the columns in signature order. Each tensor name appears once (a repeated name is 400);
`outputs`, when given, is a list of `{"name": ...}` objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kiln.serving._errors import clip

__all__ = [
    "MLFLOW_KEYS",
    "RequestError",
    "parse_csv",
    "parse_predict",
    "parse_v2",
    "v2_datatype",
    "v2_outputs",
]

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_V2_TYPES = {"bool": "BOOL", "int": "INT64", "float": "FP64"}
_V2_NUMPY = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}


class RequestError(Exception):
    """The body is valid JSON but not in any accepted form (answered with `status`, 422
    unless said otherwise)."""

    def __init__(self, message: str, expected: str, found: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status
        self.problem: dict[str, Any] = {
            "column": None,
            "problem": "input",
            "expected": expected,
            "found": found,
            "rows": [],
            "count": 0,
        }


@dataclass
class Parsed:
    """What a request asks for: the data for the validator and whether to add probabilities."""

    data: Any
    proba: bool = False


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__.replace("dict", "object")


def parse_predict(body: Any, *, proba: bool = False) -> Parsed:
    """Data for the validator from a `/predict` or `/invocations` body.

    Raises:
        RequestError: The body is not one of the accepted forms.
    """
    if isinstance(body, dict):
        keys = [k for k in MLFLOW_KEYS if k in body]
        if len(keys) > 1:
            raise RequestError(
                f"The body has more than one of MLflow's keys ({', '.join(keys)}).",
                "exactly one of " + ", ".join(MLFLOW_KEYS),
                ", ".join(keys),
            )
        if keys:
            params = body.get("params")
            if params is not None and not isinstance(params, dict):
                raise RequestError("'params' must be an object.", "an object", f"a {_kind(params)}")
            flag = (params or {}).get("predict_proba", False)
            if not isinstance(flag, bool):
                raise RequestError(
                    "'params.predict_proba' must be a JSON boolean (true or false).",
                    "true or false",
                    f"a {_kind(flag)} ({clip(repr(flag), 30)})",
                )
            proba = proba or flag
            key = keys[0]
            return Parsed(_mlflow(key, body[key]), proba)
        if not body:
            raise RequestError(
                "The body is an empty object.",
                "a record, columns, a list of records, or an MLflow scoring format",
                "{}",
            )
        _no_broadcast(body)
        return Parsed(body, proba)
    if isinstance(body, list):
        if not body:
            raise RequestError("The body is an empty list.", "at least one record", "[]")
        return Parsed(body, proba)
    raise RequestError(
        "The body must be a JSON object or array.",
        "a record, columns, a list of records, or an MLflow scoring format",
        f"a JSON {_kind(body)}",
    )


def parse_csv(raw: bytes, inputs: Sequence[Any]) -> Any:
    """A DataFrame from a CSV body with a header row (MLflow's `text/csv`).

    Args:
        raw: The body.
        inputs: The signature's input columns; text columns are read as text.

    Raises:
        RequestError: The body is empty, not CSV pandas can read, or has no rows.
    """
    import io

    import pandas as pd

    expected = "a header row of column names, then one row per record (DataFrame.to_csv)"
    if not raw.strip():
        raise RequestError("The CSV body is empty.", expected, "no data", status=400)
    text = {s.name: str for s in inputs if s.kind in ("str", "category")}
    try:
        # A row longer than the header is an error. pandas only warns (ParserWarning)
        # when the first record is, and turning that into an error would take
        # warnings.catch_warnings, which is not thread-safe (kiln.serving._warnings):
        # read with no header row, the header's width is the one every line must have.
        pd.read_csv(io.BytesIO(raw), header=None, nrows=2, dtype=str, encoding="utf-8")
        frame = pd.read_csv(io.BytesIO(raw), dtype=text or None, encoding="utf-8", index_col=False)
    except (ValueError, UnicodeDecodeError) as exc:
        found = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise RequestError(
            f"The body is not CSV that can be read as a table: {clip(found, 200)}",
            expected,
            clip(found, 200),
            status=400,
        ) from None
    if frame.empty:
        raise RequestError(
            "The CSV body has a header row but no records.", expected, "0 rows", status=422
        )
    return frame


def _mlflow(key: str, value: Any) -> Any:
    if key == "dataframe_split":
        if not isinstance(value, dict):
            raise RequestError(
                "'dataframe_split' must be an object with 'columns' and 'data'.",
                "an object with 'columns' and 'data'",
                f"a {_kind(value)}",
            )
        columns, data = value.get("columns"), value.get("data")
        if not isinstance(columns, list) or not isinstance(data, list):
            raise RequestError(
                "'dataframe_split' needs 'columns' (a list of names) and 'data' (a list of rows).",
                "'columns' and 'data' lists",
                f"columns: {_kind(columns)}, data: {_kind(data)}",
            )
        if not all(isinstance(c, str | int) and not isinstance(c, bool) for c in columns):
            raise RequestError(
                "'dataframe_split' column names must be strings.", "strings", "other values"
            )
        width = len(columns)
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != width:
                raise RequestError(
                    f"Row {i} of 'dataframe_split.data' does not have one value per column.",
                    f"{width} values per row",
                    f"{len(row) if isinstance(row, list) else _kind(row)} in row {i}",
                )
        if not data:
            raise RequestError("'dataframe_split.data' is empty.", "at least one row", "0 rows")
        if len(data) == 1:
            return dict(zip(columns, data[0], strict=True))
        return {c: [row[j] for row in data] for j, c in enumerate(columns)}
    if key == "dataframe_records":
        if not isinstance(value, list) or not value:
            raise RequestError(
                "'dataframe_records' must be a non-empty list of records.",
                "a list of objects",
                f"a {_kind(value)}" if not isinstance(value, list) else "an empty list",
            )
        if not all(isinstance(r, dict) for r in value):
            raise RequestError(
                "Every item of 'dataframe_records' must be an object.", "objects", "other values"
            )
        return value[0] if len(value) == 1 else value
    # instances / inputs: rows, records, or a dict of columns
    if isinstance(value, dict) and value:
        _no_broadcast(value)
    if isinstance(value, dict | list) and value:
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            return value[0]
        return value
    raise RequestError(
        f"'{key}' must be a non-empty list (rows or records) or an object (columns).",
        "a non-empty list or object",
        f"a {_kind(value)}" if not isinstance(value, dict | list) else "an empty one",
    )


def _no_broadcast(columns: dict[str, Any]) -> None:
    """Refuse a dict that mixes lists (columns) with single values."""
    lists = [k for k, v in columns.items() if isinstance(v, list)]
    if not lists or len(lists) == len(columns):
        return
    single = next(k for k, v in columns.items() if not isinstance(v, list))
    raise RequestError(
        f"Column {clip(str(single))} is a single value beside columns sent as lists "
        f"(such as {clip(str(lists[0]))}); values are not broadcast. Send every column as a "
        "list of the same length, or one record of single values.",
        "every value a list (columns), or every value a single value (one record)",
        f"{len(lists)} list(s) and {len(columns) - len(lists)} single value(s)",
    )


def v2_datatype(kind: str, dtype: str) -> str:
    """The Open Inference Protocol datatype for a signature column."""
    if kind == "float" and dtype.lower().startswith("float32"):
        return "FP32"
    return _V2_TYPES.get(kind, "BYTES")


def parse_v2(body: Any, columns: list[str], positional: bool) -> tuple[Any, str | None, set[str]]:
    """Data for the validator, the request id and the outputs asked for, from a V2 body.

    Args:
        body: The decoded JSON body.
        columns: The signature's input column names, in order.
        positional: Whether one 2-D tensor may carry all columns (all-numeric signature).

    Raises:
        RequestError: The body is not an inference request.
    """
    import numpy as np

    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise RequestError(
            "A V2 inference request is an object with a non-empty 'inputs' list of tensors.",
            "{'inputs': [{'name', 'shape', 'datatype', 'data'}, ...]}",
            f"a JSON {_kind(body)}" if not isinstance(body, dict) else "no 'inputs' list",
        )
    rid = body.get("id")
    if rid is not None and (not isinstance(rid, str | int) or isinstance(rid, bool)):
        raise RequestError("The V2 request's 'id' must be a string.", "a string", f"a {_kind(rid)}")
    rid = None if rid is None else str(rid)
    wanted = _v2_wanted(body.get("outputs"))
    tensors: dict[str, Any] = {}
    shapes: dict[str, list[int]] = {}
    for i, t in enumerate(body["inputs"]):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or "data" not in t:
            raise RequestError(
                f"Input tensor {i} needs 'name', 'shape', 'datatype' and 'data'.",
                "a tensor object with name, shape, datatype and data",
                f"a {_kind(t)}" if not isinstance(t, dict) else f"keys {clip(str(sorted(t)))}",
            )
        name = t["name"]
        if name in tensors:
            raise RequestError(
                f"Input tensor {clip(name)} appears more than once; each input is sent once.",
                "distinct tensor names",
                f"{clip(name)} again at position {i}",
                status=400,
            )
        datatype = t.get("datatype", "BYTES")
        if not isinstance(datatype, str) or datatype not in _V2_NUMPY:
            raise RequestError(
                f"Input tensor {clip(name)} has an unknown datatype.",
                "one of " + ", ".join(_V2_NUMPY),
                clip(repr(datatype), 40),
            )
        shape = t.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise RequestError(
                f"Input tensor {clip(name)} needs a 'shape' list of sizes.",
                "a list of non-negative integers",
                clip(repr(shape), 40),
            )
        data = t["data"]
        flat = _flatten(data)
        size = int(np.prod(shape)) if shape else 1
        if len(flat) != size:
            raise RequestError(
                f"Input tensor {clip(name)} has {len(flat)} values for shape {shape[:8]}.",
                f"{size} values",
                f"{len(flat)} values",
            )
        tensors[name] = flat
        shapes[name] = shape
    if len(tensors) == 1:
        name, flat = next(iter(tensors.items()))
        shape = shapes[name]
        if name not in columns and len(shape) == 2 and positional:
            array = np.empty(len(flat), dtype=object)
            array[:] = flat
            return array.reshape(shape), rid, wanted
    return tensors, rid, wanted


def _v2_wanted(outputs: Any) -> set[str]:
    """The output names a V2 request asks for (none: the default outputs)."""
    if outputs is None:
        return set()
    problem = None
    if not isinstance(outputs, list):
        problem = f"a {_kind(outputs)}"
    else:
        for i, out in enumerate(outputs):
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                problem = (
                    f"item {i}: a {_kind(out)}"
                    if not isinstance(out, dict)
                    else (f"item {i} without a string 'name'")
                )
                break
    if problem is not None:
        raise RequestError(
            "The V2 request's 'outputs' must be a list of objects with a 'name'.",
            "[{'name': 'predict'}, {'name': 'predict_proba'}]",
            problem,
        )
    return {out["name"] for out in outputs}


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def v2_outputs(preds: Any, proba: Any, classes: list[Any] | None, wanted: set[str]) -> list[Any]:
    """Output tensors: `predict` always (unless only others are asked for), `predict_proba`
    when asked for."""
    import numpy as np

    outs: list[dict[str, Any]] = []
    values = np.asarray(preds)
    if not wanted or "predict" in wanted:
        kind = values.dtype.kind
        datatype = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}.get(kind, "BYTES")
        data = values.tolist() if kind in "biuf" else [str(v) for v in values.tolist()]
        outs.append(
            {"name": "predict", "shape": list(values.shape), "datatype": datatype, "data": data}
        )
    if proba is not None:
        p = np.asarray(proba, dtype=float)
        outs.append(
            {
                "name": "predict_proba",
                "shape": list(p.shape),
                "datatype": "FP64",
                "data": p.ravel().tolist(),
                "parameters": {"classes": classes},
            }
        )
    return outs
