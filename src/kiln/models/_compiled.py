"""Compiled inference: common scikit-learn pipelines evaluated with numpy alone.

Loading a scikit-learn model means importing scikit-learn, SciPy and skops (seconds in a
fresh process) and each `predict` pays for scikit-learn's input checks (about a
millisecond for one row). For the pipelines most tabular models are made of, the
arithmetic is a few array operations, so at save time kiln also writes them as arrays:

- a `Pipeline` whose first step may be a `ColumnTransformer` (transformers `Pipeline`s of
  the steps below, "passthrough" or "drop"; remainder "drop" or "passthrough");
- transformers `StandardScaler`, `MinMaxScaler`, `MaxAbsScaler`, numeric and categorical
  `SimpleImputer` (no indicator) and `OneHotEncoder` (no infrequent categories);
- a final `LogisticRegression`, `LinearRegression`, `Ridge`, `Lasso` or `ElasticNet`.

`compile_estimator` returns the spec (JSON) and arrays (`.npz`) or raises `Unsupported`;
`Model.save` then checks the compiled predictions against the estimator's on the
reference sample (labels identical, probabilities within 1e-9) and writes them only if
they agree. `CompiledPredictor` runs them on the validator's column arrays. Anything
unusual at predict time (a NaN reaching the final estimator, an unknown category the
encoder would refuse) goes to the real estimator instead, so errors and warnings are
scikit-learn's own.
"""

from __future__ import annotations

import math
from math import exp as _exp
from typing import Any

import numpy as np

__all__ = ["FORMAT", "CompiledPredictor", "Fallback", "Unsupported", "compile_estimator"]

FORMAT = 1


class Unsupported(Exception):
    """The estimator holds something compiled inference does not cover (the reason)."""


class Fallback(Exception):
    """This input needs the real estimator (e.g. a NaN reaching a linear model)."""


# ---------------------------------------------------------------------------- compiling


class _Builder:
    def __init__(self, columns: list[str], kinds: list[str]) -> None:
        self.columns = columns  # signature column names (text)
        self.kinds = kinds  # signature kinds: int, float, bool, str, category, ...
        self.arrays: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = np.asarray(value)
        return key


def compile_estimator(estimator: Any, columns: list[str], kinds: list[str]) -> tuple[dict, dict]:
    """Compile a fitted estimator for columns `columns` (signature order, text names).

    Returns:
        The spec (JSON-ready) and its arrays (name -> ndarray).

    Raises:
        Unsupported: Says what is not covered.
    """
    import sklearn
    from sklearn.pipeline import Pipeline

    b = _Builder(columns, kinds)
    steps = [s for _, s in estimator.steps] if isinstance(estimator, Pipeline) else [estimator]
    steps = [s for s in steps if s is not None and s != "passthrough"]
    if not steps:
        raise Unsupported("an empty pipeline")
    *transforms, head = steps
    blocks: list[dict[str, Any]]
    post: list[dict[str, Any]] = []
    column_transformer = bool(transforms) and type(transforms[0]).__name__ == "ColumnTransformer"
    if column_transformer:
        blocks = _column_transformer(b, transforms[0])
        transforms = transforms[1:]
    else:
        names = _input_names(steps[0], columns)
        blocks = [{"columns": _positions(names, columns), "ops": []}]
        _numeric_only(b, blocks[0]["columns"], "the pipeline's first step")
        blocks[0]["ops"], transforms = _leading_numeric(b, transforms)
    for step in transforms:
        post.append(_numeric_op(b, step))
    spec = {
        "format": FORMAT,
        "sklearn": sklearn.__version__,
        "blocks": blocks,
        "post": post,
        "head": _head(b, head),
        # The memory layout the final estimator sees: a ColumnTransformer stacks its
        # parts row-major; a DataFrame passed straight through is column-major.
        "layout": "C" if column_transformer else "F",
    }
    return spec, b.arrays


def _input_names(step: Any, columns: list[str]) -> list[str]:
    names = getattr(step, "feature_names_in_", None)
    if names is None:  # fitted on an array: columns by position
        n = getattr(step, "n_features_in_", len(columns))
        if n != len(columns):
            raise Unsupported(f"the first step saw {n} features, the signature has {len(columns)}")
        return list(columns)
    return [str(n) for n in names]


def _positions(names: list[str], columns: list[str]) -> list[int]:
    where = {c: i for i, c in enumerate(columns)}
    missing = [n for n in names if n not in where]
    if missing:
        raise Unsupported(f"the estimator reads columns not in the signature: {missing[:5]}")
    return [where[n] for n in names]


def _numeric_only(b: _Builder, positions: list[int], what: str) -> None:
    bad = [b.columns[i] for i in positions if b.kinds[i] not in ("int", "float", "bool")]
    if bad:
        raise Unsupported(f"{what} gets non-numeric columns {bad[:5]}")


def _leading_numeric(b: _Builder, steps: list[Any]) -> tuple[list[dict], list[Any]]:
    ops = []
    while steps:
        try:
            ops.append(_numeric_op(b, steps[0]))
        except Unsupported:
            break
        steps = steps[1:]
    return ops, steps


def _column_transformer(b: _Builder, ct: Any) -> list[dict[str, Any]]:
    if getattr(ct, "transformer_weights", None):
        raise Unsupported("ColumnTransformer with transformer_weights")
    names = _input_names(ct, b.columns)
    blocks = []
    for name, trans, _ in ct.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        indices = list(ct._transformer_to_input_indices.get(name, []))
        if not indices:
            continue
        positions = _positions([names[i] for i in indices], b.columns)
        blocks.append(_chain(b, trans, positions))
    return blocks


def _chain(b: _Builder, trans: Any, positions: list[int]) -> dict[str, Any]:
    from sklearn.pipeline import Pipeline

    steps = [s for _, s in trans.steps] if isinstance(trans, Pipeline) else [trans]
    steps = [s for s in steps if s is not None and not (isinstance(s, str) and s == "passthrough")]
    encoders = [i for i, s in enumerate(steps) if type(s).__name__ == "OneHotEncoder"]
    if not encoders:
        _numeric_only(b, positions, "a numeric transformer")
        return {"columns": positions, "ops": [_numeric_op(b, s) for s in steps]}
    at = encoders[0]
    fill = None
    for step in steps[:at]:  # before the encoder: only an imputer of the raw values
        if type(step).__name__ != "SimpleImputer" or step.add_indicator:
            raise Unsupported(f"{type(step).__name__} before a OneHotEncoder")
        if not _is_nan(step.missing_values) and step.missing_values is not None:
            raise Unsupported(f"SimpleImputer(missing_values={step.missing_values!r})")
        fill = [_plain(v) for v in step.statistics_]
    encode = _one_hot(b, steps[at], positions, fill)
    return {
        "columns": positions,
        "encode": encode,
        "ops": [_numeric_op(b, s) for s in steps[at + 1 :]],
    }


def _one_hot(b: _Builder, enc: Any, positions: list[int], fill: list[Any] | None) -> dict:
    if getattr(enc, "_infrequent_enabled", False):
        raise Unsupported("OneHotEncoder with infrequent categories")
    if np.dtype(enc.dtype) != np.float64:
        raise Unsupported(f"OneHotEncoder(dtype={enc.dtype})")
    drop = getattr(enc, "drop_idx_", None)
    features = []
    for i, cats in enumerate(enc.categories_):
        values = [_plain(v) for v in cats]
        if any(v is None or _is_nan(v) for v in values):
            raise Unsupported("a OneHotEncoder category that is missing (None or NaN)")
        dropped = None if drop is None or drop[i] is None else int(drop[i])
        features.append({"categories": values, "drop": dropped})
    return {
        "features": features,
        "fill": fill,
        "ignore_unknown": enc.handle_unknown == "ignore",
    }


def _numeric_op(b: _Builder, step: Any) -> dict[str, Any]:
    kind = type(step).__name__
    if kind == "StandardScaler":
        return {
            "op": "standard",
            "mean": None if step.mean_ is None or not step.with_mean else b.add(step.mean_),
            "scale": None if step.scale_ is None or not step.with_std else b.add(step.scale_),
        }
    if kind == "MinMaxScaler":
        clip = list(step.feature_range) if step.clip else None
        return {"op": "minmax", "scale": b.add(step.scale_), "min": b.add(step.min_), "clip": clip}
    if kind == "MaxAbsScaler":
        return {"op": "maxabs", "scale": b.add(step.scale_)}
    if kind == "FunctionTransformer" and step.func is None:  # "passthrough" once fitted
        return {"op": "identity"}
    if kind == "SimpleImputer":
        stats = np.asarray(step.statistics_, dtype=np.float64)
        if step.add_indicator or not _is_nan(step.missing_values) or np.isnan(stats).any():
            raise Unsupported(
                "SimpleImputer with an indicator, non-NaN missing values or an empty column"
            )
        return {"op": "impute", "values": b.add(stats)}
    raise Unsupported(f"{kind} is not compiled")


def _head(b: _Builder, est: Any) -> dict[str, Any]:
    kind = type(est).__name__
    if kind in ("LinearRegression", "Ridge", "Lasso", "ElasticNet"):
        coef = np.asarray(est.coef_, dtype=np.float64)
        if coef.ndim != 1:
            raise Unsupported(f"{kind} with several outputs")
        return {"kind": "linear", "coef": b.add(coef), "intercept": float(est.intercept_)}
    if kind == "LogisticRegression":
        classes = est.classes_
        out: dict[str, Any] = {
            "kind": "logistic",
            "coef": b.add(np.asarray(est.coef_, dtype=np.float64)),
            "intercept": b.add(np.asarray(est.intercept_, dtype=np.float64)),
        }
        if classes.dtype.kind == "O":
            out["classes"] = [_plain(c) for c in classes]
        else:
            out["classes_array"] = b.add(classes)
        return out
    raise Unsupported(f"{kind} is not compiled")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


# ---------------------------------------------------------------------------- running


class CompiledPredictor:
    """Runs a compiled spec on validated column arrays (one per signature column)."""

    def __init__(self, spec: dict[str, Any], arrays: dict[str, Any]) -> None:
        if spec.get("format") != FORMAT:
            raise Unsupported(f"compiled format {spec.get('format')} (this kiln reads {FORMAT})")
        self._saved = (spec, arrays)

        def get(key: str | None) -> Any:
            return None if key is None else arrays[key]

        self._blocks = []
        for block in spec["blocks"]:
            encode = block.get("encode")
            table = None if encode is None else _Encoding(encode)
            ops = [_prepare(op, get) for op in block["ops"]]
            self._blocks.append((block["columns"], table, ops))
        self._post = [_prepare(op, get) for op in spec["post"]]
        self._fortran = spec.get("layout") == "F"
        head = spec["head"]
        self.kind = head["kind"]
        self._coef = get(head["coef"])
        intercept = head["intercept"]
        self._intercept = intercept if isinstance(intercept, float) else get(intercept)
        if self.kind == "logistic":
            if "classes" in head:
                classes = np.empty(len(head["classes"]), dtype=object)
                classes[:] = head["classes"]
            else:
                classes = get(head["classes_array"])
            self.classes = classes
            self._coef_t = self._coef.T

    def __reduce__(self) -> tuple[Any, ...]:
        return (CompiledPredictor, self._saved)

    def matrix(self, outs: list[Any]) -> Any:
        """The matrix the final estimator sees."""
        parts = []
        for positions, encoding, ops in self._blocks:
            if encoding is None:
                cols = [_floats(outs[i]) for i in positions]
                x = np.column_stack(cols) if len(cols) > 1 else cols[0].reshape(-1, 1)
            else:
                x = encoding.encode([outs[i] for i in positions])
            for op in ops:
                x = op(x)
            parts.append(x)
        x = np.hstack(parts) if len(parts) > 1 else parts[0]
        for op in self._post:
            x = op(x)
        if np.isnan(x).any():
            raise Fallback("NaN reaches the final estimator")
        return x

    def _scores(self, outs: list[Any]) -> Any:
        x = self.matrix(outs)
        if self._fortran:
            # Column-major, as scikit-learn sees a DataFrame's values when no
            # ColumnTransformer stacks them: BLAS may round a product differently for
            # the two layouts (seen on AMD EPYC), and the answer must be the library's
            # to the bit.
            x = np.asfortranarray(x)
        if self.kind == "linear":
            return x @ self._coef + self._intercept
        scores = x @ self._coef_t + self._intercept
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def predict(self, outs: list[Any]) -> Any:
        scores = self._scores(outs)
        if self.kind == "linear":
            return scores
        index = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes.take(index, axis=0)

    def predict_proba(self, outs: list[Any]) -> Any:
        if self.kind != "logistic":
            raise Fallback("not a classifier")
        scores = self._scores(outs)
        if scores.ndim == 1:
            # scipy's expit, as scikit-learn uses: libm's exp (numpy's own exp can differ
            # in the last bit), so probabilities are bit-identical to the estimator's.
            p = np.fromiter(map(_expit, scores.tolist()), np.float64, len(scores))
            return np.stack([1 - p, p], axis=1)
        scores = scores - scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores


def _expit(v: float) -> float:
    try:
        return 1.0 / (1.0 + _exp(-v))
    except OverflowError:  # exp(-v) is inf in C: 1 / inf
        return 0.0


def _floats(out: Any) -> Any:
    if isinstance(out, np.ndarray):
        return out.astype(np.float64, copy=False).reshape(-1)
    if hasattr(out, "to_numpy"):
        return out.to_numpy(dtype=np.float64, na_value=np.nan).reshape(-1)
    return np.asarray(out, dtype=np.float64).reshape(-1)


def _prepare(op: dict[str, Any], get: Any) -> Any:
    kind = op["op"]
    if kind == "standard":
        mean, scale = get(op["mean"]), get(op["scale"])

        def standard(x: Any) -> Any:
            if mean is not None:
                x = x - mean
            if scale is not None:
                x = x / scale
            return x

        return standard
    if kind == "minmax":
        scale, low, clip = get(op["scale"]), get(op["min"]), op["clip"]

        def minmax(x: Any) -> Any:
            x = x * scale
            x += low
            return x if clip is None else np.clip(x, clip[0], clip[1], out=x)

        return minmax
    if kind == "identity":
        return lambda x: x
    if kind == "maxabs":
        scale = get(op["scale"])
        return lambda x: x / scale
    if kind == "impute":
        values = get(op["values"])

        def impute(x: Any) -> Any:
            holes = np.isnan(x)
            if holes.any():
                x = np.where(holes, values, x)
            return x

        return impute
    raise Unsupported(f"unknown compiled op {kind!r}")


class _Encoding:
    """One-hot encoding of raw columns through per-column lookup tables."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.ignore_unknown = spec["ignore_unknown"]
        fill = spec["fill"]
        self.lookups: list[dict[Any, int]] = []
        self.fills: list[int] = []
        self.offsets: list[int] = []
        offset = 0
        for i, feature in enumerate(spec["features"]):
            drop = feature["drop"]
            lookup = {}
            for j, value in enumerate(feature["categories"]):
                if j == drop:
                    lookup[value] = -2  # encoded as all zeros, and known
                else:
                    lookup[value] = j if drop is None or j < drop else j - 1
            width = len(feature["categories"]) - (drop is not None)
            self.lookups.append(lookup)
            value = None if fill is None else fill[i]
            self.fills.append(lookup.get(value, -1) if value is not None else -1)
            self.offsets.append(offset)
            offset += width
        self.width = offset

    def encode(self, columns: list[Any]) -> Any:
        values = [_objects(c) for c in columns]
        n = len(values[0]) if values else 0
        x = np.zeros((n, self.width), dtype=np.float64)
        for values_i, lookup, fill, offset in zip(
            values, self.lookups, self.fills, self.offsets, strict=True
        ):
            codes = np.fromiter(
                (lookup.get(v, -1) if not _missing(v) else fill for v in values_i),
                dtype=np.intp,
                count=n,
            )
            if not self.ignore_unknown and (codes == -1).any():
                raise Fallback("an unknown category for an encoder that refuses them")
            rows = np.flatnonzero(codes >= 0)
            x[rows, offset + codes[rows]] = 1.0
        return x


def frame_columns(frame: Any) -> list[Any]:
    """A validated DataFrame's columns as arrays (numpy, or pandas' own for extension
    dtypes), read block by block rather than one Series at a time."""
    try:
        out: list[Any] = [None] * frame.shape[1]
        for block in frame._mgr.blocks:
            values = block.values
            for i, at in enumerate(block.mgr_locs.as_array.tolist()):
                out[at] = values[i] if values.ndim == 2 else values
        return out
    except (AttributeError, TypeError, ValueError):  # pandas internals moved: the public way
        return [frame.iloc[:, i].array for i in range(frame.shape[1])]


def _objects(out: Any) -> list[Any]:
    if hasattr(out, "codes") and hasattr(out, "categories"):  # pandas Categorical
        cats = list(out.categories)
        return [cats[c] if c >= 0 else None for c in out.codes]
    if isinstance(out, np.ndarray):
        return out.reshape(-1).tolist()
    if hasattr(out, "tolist"):
        return out.tolist()
    return [out]


def _missing(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and value != value)
        or type(value).__name__ == "NAType"
    )


# ---------------------------------------------------------------------------- saving

SPEC_FILE = "inference.json"
ARRAYS_FILE = "inference.npz"
CHECK_RTOL = 1e-9


def write_compiled(model: Any, folder: Any) -> dict[str, Any]:
    """Compile `model` (a fitted scikit-learn kiln.Model), check it, write its files.

    Returns:
        Manifest fields: `inference` (files and rows checked), or `inference_skipped`
        with the reason compiled inference is not used for this model.
    """
    import json
    import warnings

    sample = getattr(model, "reference_sample_", None)
    if sample is None or len(sample) == 0:
        return {"inference": None, "inference_skipped": "no reference sample to check against"}
    inputs = model.signature_.inputs
    try:
        spec, arrays = compile_estimator(
            model.estimator_, [c.name for c in inputs], [c.kind for c in inputs]
        )
        predictor = CompiledPredictor(spec, arrays)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # drift in the probe rows is intended
            rows = _check(model, predictor, sample)
    except (Unsupported, Fallback) as exc:
        return {"inference": None, "inference_skipped": str(exc)}
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1), encoding="utf-8")
    with open(folder / ARRAYS_FILE, "wb") as fh:
        np.savez(fh, **arrays)
    return {
        "inference": {
            "spec": SPEC_FILE,
            "arrays": ARRAYS_FILE,
            "format": FORMAT,
            "checked_rows": rows,
        },
    }


def _check(model: Any, predictor: CompiledPredictor, sample: Any) -> int:
    """Compare compiled and library predictions on the sample and on probe rows."""
    from kiln.models._validator import ColumnValidator

    validator = ColumnValidator(model.signature_, mode="off")
    frames = [sample]
    probe = sample.head(64).copy()
    categorical = [c.name for c in model.signature_.inputs if c.kind in ("str", "category")]
    if categorical and len(probe):  # nulls (and so unknown categories) in every encoder
        probe[categorical] = None
        frames.append(probe)
    rows = 0
    for frame in frames:
        columns: Any = validator.validate(frame)
        estimator_frame = columns.frame()
        try:
            got = predictor.predict(columns.outs)
        except Fallback:
            continue  # the library estimator answers these rows at predict time
        want = model.estimator_.predict(estimator_frame)
        if not np.array_equal(np.asarray(got), np.asarray(want)):
            raise Unsupported("compiled predictions differ from the estimator's")
        if predictor.kind == "logistic":
            got_p = predictor.predict_proba(columns.outs)
            want_p = model.estimator_.predict_proba(estimator_frame)
            if not np.allclose(got_p, want_p, rtol=CHECK_RTOL, atol=1e-12):
                raise Unsupported("compiled probabilities differ from the estimator's")
        rows += len(frame)
    if rows == 0:
        raise Unsupported("no rows could be checked")
    return rows


def read_compiled(folder: Any, fields: dict[str, Any]) -> CompiledPredictor:
    """The compiled predictor saved in `folder` (files already checked by hash)."""
    import json

    spec = json.loads((folder / fields["spec"]).read_text(encoding="utf-8"))
    with np.load(folder / fields["arrays"], allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return CompiledPredictor(spec, arrays)
