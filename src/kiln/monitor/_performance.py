"""Performance and fairness over time: a served model's predictions joined to labels.

A served model's prediction log holds what it predicted (`kiln_prediction`: the label
or the value, not probabilities) and when (`kiln_time`). When the true labels arrive
later, `performance` joins them to the log on a key (`kiln_request_id` by default),
scores each time window with `kiln.evaluate.metrics` (the label-based metrics of the
task) and, with `segment=`, each group with `kiln.evaluate.fairness`, and flags every
metric that has fallen by more than `max_drop` from the model's reference evaluation.

A fall is measured in the metric's direction (`kiln.evaluate.HIGHER_IS_BETTER`): a
lower accuracy, a higher error rate, a wider gap between groups. `max_drop` is an
absolute amount for the metrics without units (accuracy, F1, R², MAPE, the fairness
gaps), and a share of the reference value for the metrics in the target's units (MAE,
RMSE, median absolute error; MSE in squared units), so that one default suits a target
measured in cents as well as one measured in millions.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ConfigurationError, EvaluationError, did_you_mean

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["PERFORMANCE_DEFAULTS", "PerformanceResult", "performance", "reference_metrics"]

PERFORMANCE_DEFAULTS: dict[str, Any] = {"max_drop": 0.05, "min_rows": 1}
"""The options of `performance`'s `config`, with their default values.

- `max_drop`: how far a metric may fall below the reference evaluation before it is
  flagged: a number for every metric, or a dict of metric name -> number (metrics not
  named keep 0.05). Absolute for metrics without units; for `mae`, `mse`, `rmse`,
  `median_ae` and `mae_gap`, a share of the reference value (0.05: 5% worse).
- `min_rows`: a time window with fewer labelled rows is reported but never flagged (its
  metrics are too noisy to alarm on).
"""

TIME = "kiln_time"
PREDICTION = "kiln_prediction"
LABEL_NAMES = ("label", "y", "target")
"""The names a labels frame's label column may have (else: its only non-key column)."""

# Metrics in the target's units (or its square): max_drop is a share of the reference.
_RELATIVE = frozenset({"mae", "mse", "rmse", "median_ae", "mae_gap"})
# Where kiln.evaluate(prefix=...) puts held-out metrics, most preferred first.
_PREFIXES = ("", "test_", "eval_", "evaluation_", "holdout_", "val_", "valid_", "validation_")
_LABEL = "__kiln_label__"
_GROUP = "__kiln_segment__"


@functools.cache
def _metric_names(task: str) -> tuple[str, ...]:
    """The label-based metrics `kiln.evaluate.metrics` gives for a task, in its order."""
    from kiln.evaluate import metrics

    toy = {"binary": [0, 1], "multiclass": [0, 1, 2], "regression": [1.0, 2.0, 4.0]}[task]
    return tuple(metrics(toy, toy, task=task))


def _gap_names(task: str) -> tuple[str, ...]:
    main = ("mae_gap",) if task == "regression" else ("accuracy_gap",)
    if task == "binary":
        return ("demographic_parity_difference", "equalized_odds_difference", *main)
    return main


def _check_task(task: Any) -> str:
    from kiln.evaluate import TASKS

    if task not in TASKS:
        raise EvaluationError(
            f"task={task!r} is not a task kiln evaluates: expected one of "
            f"{', '.join(TASKS)} (the model's task), or None to detect it from the labels."
        )
    return str(task)


def reference_metrics(
    run_metrics: dict[str, float], task: str, *, prefix: str | None = None
) -> dict[str, float]:
    """The evaluation metrics among a training run's logged metrics.

    `kiln.evaluate` logs each metric to the run under its name, after `prefix=` when one
    was given (e.g. `test_accuracy`), and the fairness gaps too when it had `segments`.
    This picks the label-based metrics of `task` (those a prediction log can be scored
    on: no AUC or log loss, which need probabilities) and the gaps out of all the run's
    metrics, and drops the prefix.

    ```python
    run = kiln.get_run(version.run_id)
    reference = kiln.monitor.reference_metrics(run.metrics, "binary")
    kiln.monitor.performance(log, labels, reference=reference)
    ```

    Args:
        run_metrics: Metric name -> value, as in `Run.metrics`.
        task: "binary", "multiclass" or "regression".
        prefix: The prefix the evaluation was logged with. By default the first of "",
            "test_", "eval_", "evaluation_", "holdout_", "val_", "valid_" and
            "validation_" under which any of the task's metrics was logged (never a
            training score).

    Returns:
        Metric name (without the prefix) -> value, for the finite values found; empty
        when the run logged no evaluation.

    Raises:
        EvaluationError: `task` is not a task kiln evaluates.
    """
    task = _check_task(task)

    def pick(candidate: str, names: tuple[str, ...]) -> dict[str, float]:
        found = {}
        for name in names:
            value = run_metrics.get(f"{candidate}{name}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                found[name] = float(value)
        return found

    for candidate in (prefix,) if prefix is not None else _PREFIXES:
        found = pick(candidate, _metric_names(task))
        if found:  # the gaps were logged under the same prefix, when there were any
            return {**found, **pick(candidate, _gap_names(task))}
    return {}


@dataclass(frozen=True)
class _Options:
    max_drop: float
    per_metric: dict[str, float]
    min_rows: int

    def allowance(self, metric: str, reference: float) -> float:
        """How much `metric` may fall from `reference`, in the metric's own units."""
        share = self.per_metric.get(metric, self.max_drop)
        return share * abs(reference) if metric in _RELATIVE else share


def _options(config: dict[str, Any] | None) -> _Options:
    from kiln.evaluate import HIGHER_IS_BETTER

    config = dict(config or {})
    for key in config:
        if key not in PERFORMANCE_DEFAULTS:
            raise ConfigurationError(
                f"Unknown key {key!r} in the performance config; expected one of "
                f"{', '.join(map(repr, PERFORMANCE_DEFAULTS))}."
                f"{did_you_mean(str(key), PERFORMANCE_DEFAULTS)}"
            )

    def number(where: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ConfigurationError(
                f"{where} is {value!r}; expected a number at least 0 (how far the metric "
                "may fall from the reference evaluation before it is flagged)."
            )
        return float(value)

    given = config.get("max_drop", PERFORMANCE_DEFAULTS["max_drop"])
    per_metric: dict[str, float] = {}
    max_drop = float(PERFORMANCE_DEFAULTS["max_drop"])
    if isinstance(given, dict):
        for name, value in given.items():
            if name not in HIGHER_IS_BETTER:
                raise ConfigurationError(
                    f"config['max_drop'] names {name!r}, which is not a metric kiln "
                    f"computes; expected names from kiln.evaluate.HIGHER_IS_BETTER."
                    f"{did_you_mean(str(name), HIGHER_IS_BETTER)}"
                )
            per_metric[name] = number(f"config['max_drop'][{name!r}]", value)
    else:
        max_drop = number("config['max_drop']", given)
    min_rows = config.get("min_rows", PERFORMANCE_DEFAULTS["min_rows"])
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise ConfigurationError(
            f"config['min_rows'] is {min_rows!r}; expected a whole number at least 1 (the "
            "fewest labelled rows a time window needs to be flagged)."
        )
    return _Options(max_drop, per_metric, min_rows)


def _offset(every: Any) -> Any:
    """`every` as a pandas offset, or a ConfigurationError saying what to give."""
    import pandas as pd
    from pandas.tseries.frequencies import to_offset

    hint = (
        "expected a pandas frequency such as '1h', '30min', '1d' or '7d', or a "
        "datetime.timedelta; or None for one window over all rows."
    )
    if isinstance(every, bool) or not isinstance(every, str | _dt.timedelta):
        raise ConfigurationError(f"every={every!r} is not a window length; {hint}")
    try:
        if isinstance(every, str):
            # "1d" / "7d" as users (and the CLI's --every) write them; pandas wants "D"
            text = re.sub(r"(?<=\d)d(?![a-z])", "D", every.strip())
            try:
                length = pd.Timedelta(text)  # a fixed length: "1h", "30min", "1D12h"
            except ValueError:
                return _positive(every, to_offset(text), hint)  # calendar: "W", "MS"
        else:
            length = pd.Timedelta(every)
        return _positive(every, to_offset(length), hint)
    except ConfigurationError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"every={every!r} is not a window length ({exc}); {hint}"
        ) from None


def _positive(every: Any, offset: Any, hint: str) -> Any:
    if offset.n <= 0:
        raise ConfigurationError(f"every={every!r} is not a positive length; {hint}")
    return offset


def _label_column(labels: pd.DataFrame, keys: list[str], segment: str | None) -> str:
    others = [c for c in labels.columns if c not in keys and c != segment]
    named = [c for c in LABEL_NAMES if c in others]
    if len(named) == 1:
        return named[0]
    if not named and len(others) == 1:
        return str(others[0])
    why = (
        f"several of {list(LABEL_NAMES)} ({named})"
        if named
        else f"{len(others)} columns besides the key ({others[:10]})"
        if others
        else "no column besides the key"
    )
    raise EvaluationError(
        f"Cannot tell which column of the labels holds the true labels: it has {why}; "
        f"expected the key {keys if len(keys) > 1 else keys[0]!r} and one label column, "
        f"named 'label', 'y' or 'target' if there are others. Rename the label column "
        f"(labels.rename(columns={{'my_column': 'label'}})) or keep only the key and "
        f"the label (labels[[key, 'my_column']])."
    )


def _keys(on: Any) -> list[str]:
    keys = [on] if isinstance(on, str) else list(on) if isinstance(on, list | tuple) else None
    if not keys or not all(isinstance(k, str) for k in keys):
        raise EvaluationError(
            f"on={on!r} is not a key; expected a column name (or a list of them) present "
            "in both the log and the labels, such as on='kiln_request_id'."
        )
    return keys


def _require(frame: pd.DataFrame, columns: list[str], side: str, fix: str) -> None:
    for column in columns:
        if column not in frame.columns:
            names = list(map(str, frame.columns))
            raise EvaluationError(
                f"The {side} has no column {column!r}; its columns are {names[:12]}."
                f"{did_you_mean(column, names)} {fix}"
            )


def _times(log: pd.DataFrame) -> pd.Series | None:
    import pandas as pd
    from pandas.api import types

    if TIME not in log.columns:
        return None
    times = log[TIME]
    if types.is_datetime64_any_dtype(times.dtype):
        return times
    try:
        if types.is_numeric_dtype(times.dtype):  # the log's format: ms since the epoch
            return pd.to_datetime(times, unit="ms", utc=True)
        return pd.to_datetime(times, utc=True)
    except (TypeError, ValueError) as exc:
        raise EvaluationError(
            f"The log's {TIME!r} column (dtype {times.dtype}) does not hold times ({exc}); "
            "expected timestamps, as kiln.prediction_log returns them."
        ) from None


def _is_text(values: np.ndarray) -> bool:
    if values.dtype.kind in "US":
        return True
    return values.dtype.kind == "O" and any(isinstance(v, str) for v in values[:1000])


def _join(
    log: pd.DataFrame, labels: pd.DataFrame, keys: list[str], segment: str | None
) -> tuple[pd.DataFrame, int, int]:
    """The labelled log rows (with `_LABEL`, maybe `_GROUP`), unlabelled, unmatched labels."""
    import pandas as pd

    fix_key = (
        "Join on a column both frames have: on='kiln_request_id' (the log's request id) "
        "or a row id among the model's inputs."
    )
    _require(log, [*keys, PREDICTION], "log", fix_key)
    _require(labels, keys, "labels frame", fix_key)
    for side, frame, fix in (
        ("log", log, "Check the model URI and the time window (since/until) of the log."),
        ("labels frame", labels, "Pass the labels that have arrived for logged requests."),
    ):
        if len(frame) == 0:
            raise EvaluationError(
                f"The {side} has no rows; expected at least one labelled prediction. {fix}"
            )
    segment_in_log = segment is not None and segment in log.columns
    if segment is not None and not segment_in_log and segment not in labels.columns:
        names = [*map(str, log.columns), *map(str, labels.columns)]
        raise EvaluationError(
            f"segment={segment!r} is neither a column of the log nor of the labels; "
            f"expected an input column of the model (such as 'region') or a column of the "
            f"labels frame.{did_you_mean(segment, names)}"
        )
    label = _label_column(labels, keys, segment)
    right = labels[[*keys, label] + ([segment] if segment and not segment_in_log else [])]
    right = right.rename(columns={label: _LABEL, **({segment: _GROUP} if segment else {})})
    right = right[right[_LABEL].notna()]
    duplicated = right.duplicated(keys, keep=False)
    if duplicated.any():
        example = right.loc[duplicated, keys].iloc[0].tolist()
        raise EvaluationError(
            f"The labels have {int(duplicated.sum())} rows whose key {keys} is not unique "
            f"(e.g. {example}); expected one label per key. Drop the duplicates "
            f"(labels.drop_duplicates({keys!r}, keep='last')) or join on a finer key."
        )
    left = log[[*keys, PREDICTION] + ([TIME] if TIME in log.columns else [])].copy()
    if segment_in_log:
        left[_GROUP] = log[segment]
    try:
        joined = left.merge(right, on=keys, how="left", indicator=True)
    except ValueError as exc:
        raise EvaluationError(
            f"Cannot join the log and the labels on {keys}: {exc}. Expected the key to "
            "have the same type on both sides; cast one, e.g. "
            "labels['kiln_request_id'] = labels['kiln_request_id'].astype(str)."
        ) from None
    matched = joined["_merge"] == "both"
    log_keys = pd.MultiIndex.from_frame(log[keys].astype(object))
    label_keys = pd.MultiIndex.from_frame(right[keys].astype(object))
    unmatched_labels = int((~label_keys.isin(log_keys)).sum())
    if not matched.any():
        shown = right[keys].head(3).to_numpy().tolist()
        logged = log[keys].head(3).to_numpy().tolist()
        raise EvaluationError(
            f"No row of the log has a label: none of the {len(right)} label keys on {keys} "
            f"(e.g. {shown}) is among the log's {len(log)} rows (e.g. {logged}). Expected "
            "the labels of requests in the log: check the key column, its type, and the "
            "time window of the log."
        )
    joined = joined[matched].drop(columns="_merge")
    repeated = joined.duplicated(keys, keep=False)
    if repeated.any():
        example = joined.loc[repeated, keys].iloc[0].tolist()
        raise EvaluationError(
            f"The key {keys} is not unique in the log: {example} has "
            f"{int((joined[keys] == example).all(axis=1).sum())} rows (a request with "
            "several input rows), so one label cannot say which row it is for. Join on a "
            "key of each row: a row id among the model's inputs, or the row's place in its "
            "request (log['row'] = log.groupby('kiln_request_id').cumcount(), the same "
            "column in the labels, and on=['kiln_request_id', 'row'])."
        )
    return joined.reset_index(drop=True), int((~matched).sum()), unmatched_labels


def _finite(value: Any) -> Any:
    """A JSON-ready value: numbers and text as they are, times as ISO 8601, NaN as None."""
    import pandas as pd

    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, _dt.datetime | pd.Timestamp):  # NaT is a Timestamp, not a datetime
        return None if pd.isna(value) else value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    return None if pd.isna(value) else str(value)


def _records(frame: pd.DataFrame | None, *, index: bool = False) -> list[dict[str, Any]] | None:
    if frame is None:
        return None
    if index:
        frame = frame.reset_index()
    return [{str(k): _finite(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


@dataclass
class PerformanceResult:
    """How well a served model did on the rows whose labels are known.

    Attributes:
        task: "binary", "multiclass" or "regression".
        windows: One row per time window: `window_start`, `window_end` (exclusive;
            with one window, the last row's time), `n` (labelled rows), then one column
            per metric of `kiln.evaluate.metrics` (NaN in a window without rows), and
            with `segment` the fairness gaps of the window.
        overall: The metrics on every labelled row.
        reference: The reference evaluation's metrics that were compared, or None.
        groups: With `segment`, the metrics of each group on every labelled row
            (`kiln.evaluate.fairness`), else None.
        gaps: With `segment`, the fairness gaps on every labelled row, else None.
        flagged: One dict per metric that fell by more than its `max_drop` from the
            reference: `metric`, `window_start` and `window_end` (None for all rows),
            `n`, `value`, `reference`, `drop` (how much worse, in the metric's units)
            and `max_drop` (the allowance, in the same units).
        unmatched: Log rows without a label plus labels without a log row.
        unlabelled: Log rows without a label.
        unmatched_labels: Labels whose key is in no row of the log.
        n: The labelled rows scored.
        segment: The column the groups come from, or None.
    """

    task: str
    windows: pd.DataFrame
    overall: dict[str, float]
    reference: dict[str, float] | None
    groups: pd.DataFrame | None
    gaps: dict[str, float] | None
    flagged: list[dict[str, Any]]
    unmatched: int
    unlabelled: int = 0
    unmatched_labels: int = 0
    n: int = 0
    segment: str | None = None

    @property
    def degraded(self) -> bool:
        """Whether any metric fell by more than its `max_drop`."""
        return bool(self.flagged)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain Python values (times as ISO 8601 text, NaN as None).

        Returns:
            A dict with `task`, `n`, `degraded`, `overall`, `reference`, `gaps`,
            `flagged`, `unmatched`, `unlabelled`, `unmatched_labels`, `segment`,
            `windows` (one dict per window) and `groups` (one dict per group, its label
            under the segment's name), all JSON-ready.
        """

        def plain(values: dict[str, Any] | None) -> dict[str, Any] | None:
            return None if values is None else {k: _finite(v) for k, v in values.items()}

        return {
            "task": self.task,
            "n": self.n,
            "degraded": self.degraded,
            "overall": plain(self.overall),
            "reference": plain(self.reference),
            "gaps": plain(self.gaps),
            "flagged": [plain(flag) for flag in self.flagged],
            "unmatched": self.unmatched,
            "unlabelled": self.unlabelled,
            "unmatched_labels": self.unmatched_labels,
            "segment": self.segment,
            "windows": _records(self.windows),
            "groups": _records(self.groups, index=True),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The result as JSON text (see `to_dict`).

        Args:
            indent: Indentation of the JSON text; None for one line.

        Returns:
            The JSON text.
        """
        return json.dumps(self.to_dict(), indent=indent)


def _score(
    rows: pd.DataFrame, task: str, classes: Any, segment: str | None
) -> tuple[dict[str, float], pd.DataFrame | None, dict[str, float] | None]:
    from kiln.evaluate import fairness, metrics

    y, p = rows[_LABEL].to_numpy(), rows[PREDICTION].to_numpy()
    scores = metrics(y, p, task=task, classes=classes)
    if segment is None:
        return scores, None, None
    groups, gaps = fairness(y, p, rows[_GROUP].rename(segment), task=task, classes=classes)
    return scores, groups, gaps


def _classes(y: np.ndarray, p: np.ndarray, task: str, classes: Any) -> Any:
    """The classes every window is scored with, so that each has the same positive class."""
    import numpy as np

    if task == "regression":
        return None
    if _is_text(y) != _is_text(p):
        what = ("labels", "predictions") if _is_text(y) else ("predictions", "labels")
        raise EvaluationError(
            f"The {what[0]} are text but the {what[1]} are not (e.g. label {y[0]!r}, "
            f"prediction {p[0]!r}), so no prediction could ever be right; expected labels "
            "of the same type as the model's predictions. Cast the label column, e.g. "
            "labels['label'] = labels['label'].astype(int) (or .astype(str))."
        )
    if classes is not None:
        known = np.asarray(classes)
        unknown = sorted({str(v) for v in np.unique(y) if v not in set(known.tolist())})
        if unknown:
            raise EvaluationError(
                f"The labels have values that are not classes of the model: {unknown[:5]} "
                f"(classes: {known.tolist()[:10]}); expected each label to be one of the "
                "model's classes. Fix or drop those labels, or pass classes=None to score "
                "with the labels seen."
            )
        return known
    try:
        return np.unique(np.concatenate([y, p]))
    except TypeError as exc:
        raise EvaluationError(
            f"The labels and predictions mix types that cannot be compared ({exc}); "
            "expected labels of the same type as the model's predictions."
        ) from None


def _flags(
    windows: pd.DataFrame,
    overall: dict[str, float],
    gaps: dict[str, float] | None,
    n: int,
    reference: dict[str, float],
    options: _Options,
    per_window: bool,
) -> list[dict[str, Any]]:
    from kiln.evaluate import HIGHER_IS_BETTER

    def check(values: dict[str, Any], start: Any, end: Any, count: int) -> list[dict[str, Any]]:
        if count < options.min_rows:
            return []
        found = []
        for metric, ref in reference.items():
            value = values.get(metric)
            if value is None or metric not in HIGHER_IS_BETTER:
                continue
            value = float(value)
            if not (math.isfinite(value) and math.isfinite(ref)):
                continue
            drop = ref - value if HIGHER_IS_BETTER[metric] else value - ref
            allowed = options.allowance(metric, ref)
            if drop > allowed:
                found.append(
                    {
                        "metric": metric,
                        "window_start": start,
                        "window_end": end,
                        "n": count,
                        "value": value,
                        "reference": ref,
                        "drop": drop,
                        "max_drop": allowed,
                    }
                )
        return found

    flagged = check({**overall, **(gaps or {})}, None, None, n)
    if per_window:
        for record in windows.to_dict(orient="records"):
            row = {str(k): v for k, v in record.items()}
            flagged += check(row, row["window_start"], row["window_end"], int(row["n"]))
    return flagged


def _reference(reference: Any, names: list[str]) -> dict[str, float]:
    """The reference's metrics that this task computes, as floats."""
    if not isinstance(reference, dict):
        raise EvaluationError(
            f"reference is a {type(reference).__name__}; expected a dict of metric name -> "
            "value, such as reference_metrics(run.metrics, task) returns."
        )
    out = {}
    for name, value in reference.items():
        if name not in names:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EvaluationError(
                f"reference[{name!r}] is {value!r}; expected a number (the metric's value "
                "in the reference evaluation)."
            )
        out[name] = float(value)
    return out


def performance(
    log: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    on: str | list[str] = "kiln_request_id",
    task: str | None = None,
    classes: Any = None,
    every: str | _dt.timedelta | None = None,
    segment: str | None = None,
    reference: dict[str, float] | None = None,
    config: dict[str, Any] | None = None,
) -> PerformanceResult:
    """Score a served model's logged predictions against labels that arrived later.

    ```python
    log = kiln.prediction_log("models:/churn@production", since="2026-11-01")
    result = kiln.monitor.performance(log, labels, every="1d", segment="region",
                                      reference={"accuracy": 0.91, "f1": 0.84})
    result.windows        # one row per day: window_start, window_end, n, accuracy, ...
    result.flagged        # [{"metric": "accuracy", "window_start": ..., "drop": 0.12, ...}]
    ```

    The log's predictions are labels or values (no probabilities), so the metrics are
    the label-based ones of `kiln.evaluate.metrics`: accuracy, balanced accuracy,
    precision, recall and F1 (macro and weighted for a multiclass task), or MAE, MSE,
    RMSE, R², MAPE and median absolute error for a regression.

    Args:
        log: The prediction log (`kiln.prediction_log`): the key column(s),
            `kiln_prediction`, `kiln_time` (needed with `every`) and the inputs.
        labels: The true labels: the key column(s) and one label column, named `label`,
            `y` or `target` if there are other columns (such as `segment`). Rows whose
            label is null are not labels yet.
        on: The key to join on: a column name, or a list of them.
        task: "binary", "multiclass" or "regression" (the model's task); detected
            from the labels and predictions with `kiln.evaluate.detect_task` when None.
        classes: The model's classes (`classes_`), so that every window scores the
            same positive class (the last); by default the sorted labels and
            predictions seen.
        every: The length of a time window: a pandas frequency ("1h", "1d", "7d") or a
            `datetime.timedelta`; None for one window over all rows. Windows start on
            the frequency's boundaries (midnight UTC for "1d"); a window without
            labelled rows between two with rows has `n` = 0 and NaN metrics.
        segment: A column of the log (an input) or of the labels to group by: adds the
            metrics per group and the fairness gaps (`kiln.evaluate.fairness`), overall
            and per window.
        reference: The reference evaluation's metrics (`reference_metrics` picks them
            out of the training run's); each metric found in both is compared, overall
            and in each window, and flagged when it fell by more than `max_drop`.
        config: `max_drop` and `min_rows`; see `PERFORMANCE_DEFAULTS`.

    Returns:
        A `PerformanceResult`.

    Raises:
        EvaluationError: A key column or `kiln_prediction` is missing, the label column
            cannot be told, no row of the log has a label, a key is not unique, the
            `segment` column does not exist, the labels do not fit the predictions, or
            `task` is unknown.
        ConfigurationError: `every` is not a window length, or `config` has an unknown
            key or a bad value.
    """
    import numpy as np
    import pandas as pd

    from kiln.evaluate import detect_task

    options = _options(config)
    offset = _offset(every) if every is not None else None
    if task is not None:
        task = _check_task(task)
    for name, frame in (("log", log), ("labels", labels)):
        if not isinstance(frame, pd.DataFrame):
            raise EvaluationError(
                f"{name} is a {type(frame).__name__}; expected a pandas DataFrame "
                f"({'from kiln.prediction_log' if name == 'log' else 'of keys and labels'})."
            )
    keys = _keys(on)
    joined, unlabelled, unmatched_labels = _join(log, labels, keys, segment)
    times = _times(joined)
    if offset is not None and times is None:
        raise EvaluationError(
            f"every={every!r} needs the log's {TIME!r} column, which it does not have; "
            "expected the frame kiln.prediction_log returns, or every=None for one window."
        )
    y, p = joined[_LABEL].to_numpy(), joined[PREDICTION].to_numpy()
    if task is None:
        task = detect_task(y, p, classes=classes)
    classes = _classes(y, p, task, classes)
    overall, groups, gaps = _score(joined, task, classes, segment)
    names = list(overall) + list(gaps or {})

    rows: list[dict[str, Any]] = []
    if offset is None:
        start = None if times is None else times.min()
        end = None if times is None else times.max()
        rows.append({"window_start": start, "window_end": end, "n": len(joined), **overall})
        rows[0].update(gaps or {})
    else:
        joined = joined.assign(**{TIME: times})
        grouped = joined.groupby(
            pd.Grouper(key=TIME, freq=offset, closed="left", label="left"), sort=True
        )
        indices = grouped.indices
        for start, count in grouped.size().items():
            row: dict[str, Any] = {"window_start": start, "window_end": start + offset}
            row["n"] = int(count)
            if count:
                scores, _, window_gaps = _score(joined.iloc[indices[start]], task, classes, segment)
                row.update(scores, **(window_gaps or {}))
            rows.append(row)
    windows = pd.DataFrame(rows, columns=["window_start", "window_end", "n", *names])
    windows["n"] = windows["n"].astype(np.int64)
    for name in names:
        windows[name] = windows[name].astype(float)

    compared = None
    flagged: list[dict[str, Any]] = []
    if reference is not None:
        compared = _reference(reference, names)
        flagged = _flags(windows, overall, gaps, len(joined), compared, options, offset is not None)
    return PerformanceResult(
        task=task,
        windows=windows,
        overall=overall,
        reference=compared,
        groups=groups,
        gaps=gaps,
        flagged=flagged,
        unmatched=unlabelled + unmatched_labels,
        unlabelled=unlabelled,
        unmatched_labels=unmatched_labels,
        n=len(joined),
        segment=segment,
    )
