"""kiln.monitor performance: a served model's log joined to labels, scored per window.

The log is written by the real prediction-log writer and read back with
`kiln.prediction_log`, the models are real scikit-learn models, and every number is
checked against `kiln.evaluate.metrics` / `kiln.evaluate.fairness` on the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import kiln
from kiln.evaluate import fairness, metrics
from kiln.monitor import (
    PERFORMANCE_DEFAULTS,
    PerformanceResult,
    performance,
    reference_metrics,
)
from kiln.tracking import LoggedRequest, PredictionLogWriter, prediction_log

SEED = 16
URI = "models:/churn@production"
DAY0 = pd.Timestamp("2026-11-01", tz="UTC")
PER_DAY = 150
REGIONS = np.array(["north", "south", "east"])


def _features(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x0": rng.normal(size=n),
            "x1": rng.normal(size=n),
            "region": rng.choice(REGIONS, size=n),
        }
    )


def _class_target(X: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    score = X["x0"] + X["x1"] + 0.1 * rng.normal(size=len(X))
    return np.where(score > 0, "yes", "no")


def _value_target(X: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    return (3.0 * X["x0"] - 2.0 * X["x1"] + 10 + 0.2 * rng.normal(size=len(X))).to_numpy()


@pytest.fixture(scope="module")
def classifier() -> dict[str, Any]:
    """A fitted churn-like classifier, a held-out test set and three days of traffic."""
    rng = np.random.default_rng(SEED)
    X = _features(rng, 3 * PER_DAY + 600)
    y = _class_target(X, rng)
    encode = ColumnTransformer([("region", OneHotEncoder(), ["region"])], remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression(C=10.0)).fit(X[:300], y[:300])
    return {
        "model": model,
        "X_test": X[300:600].reset_index(drop=True),
        "y_test": y[300:600],
        "X": X[600:].reset_index(drop=True),
        "y": y[600:],
    }


@pytest.fixture(scope="module")
def regressor() -> dict[str, Any]:
    rng = np.random.default_rng(SEED + 1)
    X = _features(rng, 3 * PER_DAY + 300)[["x0", "x1"]]
    y = _value_target(X, rng)
    model = LinearRegression().fit(X[:300], y[:300])
    return {"model": model, "X": X[300:].reset_index(drop=True), "y": y[300:]}


def _times(n: int, seed: int = SEED) -> pd.DatetimeIndex:
    """`n` request times over three days, `n / 3` a day, oldest first (to the millisecond)."""
    rng = np.random.default_rng(seed)
    per = n // 3
    hours = np.sort(np.concatenate([day * 24 + rng.uniform(0, 24, per) for day in range(3)]))
    return DAY0 + pd.to_timedelta(np.round(hours * 3_600_000), unit="ms")


def _serve(model: Any, X: pd.DataFrame, times: pd.DatetimeIndex) -> pd.DataFrame:
    """Log one request per row through the real writer, one chunk a day; read it back."""
    predictions = model.predict(X)
    writer = PredictionLogWriter(URI)
    requests = [
        LoggedRequest(f"req-{i:05d}", int(t.value // 1_000_000), "3", X.iloc[[i]], [predictions[i]])
        for i, t in enumerate(times)
    ]
    for day in range(3):
        writer.write([r for r, t in zip(requests, times, strict=True) if (t - DAY0).days == day])
    writer.close()
    return prediction_log(URI)


def _labels(log: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """The true label of each logged request (row i of the log is request req-i)."""
    index = log["kiln_request_id"].str.slice(4).astype(int).to_numpy()
    return pd.DataFrame({"kiln_request_id": log["kiln_request_id"], "label": y[index]})


@pytest.fixture
def served(classifier: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    log = _serve(classifier["model"], classifier["X"], _times(len(classifier["X"])))
    return log, _labels(log, classifier["y"])


def _json_ready(result: PerformanceResult) -> dict[str, Any]:
    out = result.to_dict()
    assert json.loads(json.dumps(out, allow_nan=False)) == out  # no NaN, no Timestamp
    return out


# ---------------------------------------------------------------- the public fairness


def test_fairness_is_what_evaluate_gives_for_segments(classifier: dict[str, Any]) -> None:
    model, X, y = classifier["model"], classifier["X_test"], classifier["y_test"]
    evaluation = kiln.evaluate(
        model, X, y, segments="region", plots=False, report=False, importance=None, log=False
    )
    groups, gaps = fairness(
        y,
        model.predict(X),
        X["region"],
        y_proba=model.predict_proba(X),
        classes=model.classes_,
    )
    pd.testing.assert_frame_equal(groups, evaluation.groups)
    assert gaps == evaluation.fairness
    assert groups.index.name == "region"
    assert set(groups.index) == set(REGIONS)


def test_fairness_rejects_bad_inputs() -> None:
    with pytest.raises(kiln.EvaluationError, match=r"groups 2: pass one prediction"):
        fairness([0, 1, 1], [0, 1, 0], ["a", "b"])
    with pytest.raises(kiln.EvaluationError, match="needs at least one row"):
        fairness([], [], [])
    with pytest.raises(kiln.EvaluationError, match="task='ranking' is not a task"):
        fairness([0, 1], [0, 1], ["a", "b"], task="ranking")


# ---------------------------------------------------------------- metrics per window


def test_each_days_metrics_equal_kiln_evaluate_metrics_on_its_rows(
    classifier: dict[str, Any], served: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    log, labels = served
    assert str(log["kiln_time"].dtype).startswith("datetime64")
    classes = classifier["model"].classes_
    result = performance(log, labels, every="1d", task="binary", classes=classes)

    assert result.task == "binary"
    assert list(result.windows["window_start"]) == [DAY0 + pd.Timedelta(days=d) for d in range(3)]
    assert list(result.windows["window_end"]) == [DAY0 + pd.Timedelta(days=d) for d in (1, 2, 3)]
    assert list(result.windows["n"]) == [PER_DAY] * 3
    rows = log.merge(labels, on="kiln_request_id")
    for _, window in result.windows.iterrows():
        inside = rows[
            (rows["kiln_time"] >= window["window_start"])
            & (rows["kiln_time"] < window["window_end"])
        ]
        expected = metrics(inside["label"], inside["kiln_prediction"], classes=classes)
        assert list(expected) == list(result.windows.columns[3:])
        assert {k: window[k] for k in expected} == expected
    assert result.overall == metrics(rows["label"], rows["kiln_prediction"], classes=classes)
    assert result.n == 3 * PER_DAY
    assert result.unmatched == 0
    assert result.reference is None
    assert result.flagged == []
    assert not result.degraded
    assert result.groups is None
    assert result.gaps is None
    out = _json_ready(result)
    assert out["windows"][0]["window_start"] == "2026-11-01T00:00:00+00:00"


def test_one_window_by_default_and_the_task_detected(
    served: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    log, labels = served
    result = performance(log, labels)
    rows = log.merge(labels, on="kiln_request_id")
    assert result.task == "binary"
    assert len(result.windows) == 1
    window = result.windows.iloc[0]
    assert window["window_start"] == log["kiln_time"].min()
    assert window["window_end"] == log["kiln_time"].max()
    assert result.overall == metrics(rows["label"], rows["kiln_prediction"])


def test_a_regression_per_half_day_with_an_empty_window(regressor: dict[str, Any]) -> None:
    X, y = regressor["X"], regressor["y"]
    times = _times(len(X), seed=SEED + 1)
    keep = (times - DAY0).days != 1  # no traffic on the second day
    log = _serve(regressor["model"], X[keep].reset_index(drop=True), times[keep])
    labels = _labels(log, y[keep]).rename(columns={"label": "y"})
    result = performance(log, labels, every=dt.timedelta(hours=12))

    assert result.task == "regression"
    assert len(result.windows) == 6
    empty = result.windows.iloc[2:4]
    assert list(empty["n"]) == [0, 0]
    assert empty["mae"].isna().all()
    rows = log.merge(labels, on="kiln_request_id")
    for _, window in result.windows[result.windows["n"] > 0].iterrows():
        inside = rows[
            (rows["kiln_time"] >= window["window_start"])
            & (rows["kiln_time"] < window["window_end"])
        ]
        expected = metrics(inside["y"], inside["kiln_prediction"], task="regression")
        assert {k: window[k] for k in expected} == expected
    assert sum(result.windows["n"]) == len(log)
    out = _json_ready(result)
    assert out["windows"][2]["mae"] is None


def test_a_multiclass_model_on_a_log_frame_made_by_hand() -> None:
    rng = np.random.default_rng(SEED + 2)
    X = _features(rng, 900)[["x0", "x1"]]
    y = np.digitize(X["x0"] + X["x1"] + 0.2 * rng.normal(size=len(X)), [-0.7, 0.7])
    model = LogisticRegression().fit(X[:300], y[:300])
    times = _times(600, seed=SEED + 2)
    log = (
        X[300:]
        .reset_index(drop=True)
        .assign(
            kiln_request_id=[f"r{i}" for i in range(600)],
            kiln_time=times.tz_localize(None),  # naive times work too
            kiln_prediction=model.predict(X[300:]),
        )
    )
    labels = pd.DataFrame({"kiln_request_id": log["kiln_request_id"], "y": y[300:]})
    result = performance(log, labels, every="1d", classes=model.classes_)
    assert result.task == "multiclass"
    for day, (_, window) in enumerate(result.windows.iterrows()):
        rows = slice(200 * day, 200 * (day + 1))
        expected = metrics(y[300:][rows], log["kiln_prediction"][rows], classes=model.classes_)
        assert {k: window[k] for k in expected} == expected
    _json_ready(result)


# ---------------------------------------------------------------- against the reference


def test_a_day_of_flipped_labels_is_flagged_against_the_logged_evaluation(
    classifier: dict[str, Any], served: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    model = classifier["model"]
    with kiln.start_run() as run:
        evaluation = kiln.evaluate(
            model,
            classifier["X_test"],
            classifier["y_test"],
            prefix="test_",
            plots=False,
            report=False,
            importance=None,
        )
    logged = kiln.get_run(run.id).metrics
    reference = reference_metrics(logged, "binary")
    label_metrics = ["accuracy", "balanced_accuracy", "precision", "recall", "f1"]
    assert reference == {k: evaluation.metrics[k] for k in label_metrics}
    assert "roc_auc" not in reference  # a log of labels cannot be scored on it

    log, labels = served
    day2 = log["kiln_time"] >= DAY0 + pd.Timedelta(days=1)
    day2 &= log["kiln_time"] < DAY0 + pd.Timedelta(days=2)
    flipped = labels.copy()
    flipped.loc[day2.to_numpy(), "label"] = np.where(
        labels.loc[day2.to_numpy(), "label"] == "yes", "no", "yes"
    )
    result = performance(
        log, flipped, every="1d", task="binary", classes=model.classes_, reference=reference
    )

    assert result.degraded
    assert result.reference == reference
    by_window = {(f["metric"], f["window_start"]) for f in result.flagged}
    second = DAY0 + pd.Timedelta(days=1)
    assert {m for m, start in by_window if start == second} == set(label_metrics)
    assert {start for m, start in by_window if m == "accuracy"} == {None, second}
    assert ("accuracy", None) in by_window  # all three days together fall too
    flag = next(f for f in result.flagged if f["metric"] == "accuracy" and f["window_start"])
    row = result.windows.set_index("window_start").loc[second]
    assert flag["value"] == row["accuracy"]
    assert flag["drop"] == pytest.approx(reference["accuracy"] - row["accuracy"], abs=1e-15)
    assert flag["max_drop"] == PERFORMANCE_DEFAULTS["max_drop"]
    assert flag["n"] == PER_DAY
    assert flag["window_end"] == second + pd.Timedelta(days=1)
    out = _json_ready(result)
    assert out["degraded"] is True
    assert {f["window_start"] for f in out["flagged"] if f["metric"] == "accuracy"} == {
        None,
        "2026-11-02T00:00:00+00:00",
    }

    # the unflipped days' accuracy stays within the default 0.05; no allowance flags them
    strict = performance(
        log,
        labels,
        every="1d",
        classes=model.classes_,
        reference={"accuracy": 1.0},
        config={"max_drop": 0.0},
    )
    assert len(strict.flagged) == 4  # all rows, and each of the three days


def test_max_drop_per_metric_and_min_rows(
    classifier: dict[str, Any], served: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    log, labels = served
    result = performance(log, labels, every="1d", classes=classifier["model"].classes_)
    accuracy = result.overall["accuracy"]
    reference = {"accuracy": accuracy + 0.03, "f1": result.overall["f1"] + 0.03}
    loose = performance(log, labels, classes=classifier["model"].classes_, reference=reference)
    assert loose.flagged == []
    tight = performance(
        log,
        labels,
        classes=classifier["model"].classes_,
        reference=reference,
        config={"max_drop": {"accuracy": 0.01}},
    )
    assert [f["metric"] for f in tight.flagged] == ["accuracy"]
    assert tight.flagged[0]["max_drop"] == 0.01
    quiet = performance(
        log,
        labels,
        every="1d",
        classes=classifier["model"].classes_,
        reference={"accuracy": 1.5},
        config={"min_rows": PER_DAY + 1},
    )
    assert [f["window_start"] for f in quiet.flagged] == [None]  # days too small to flag


def test_errors_in_the_target_units_are_flagged_relative_to_the_reference(
    regressor: dict[str, Any],
) -> None:
    X, y = regressor["X"], regressor["y"]
    log = _serve(regressor["model"], X, _times(len(X), seed=SEED + 1))
    labels = _labels(log, y).rename(columns={"label": "target"})
    labels["target"] = log["kiln_prediction"] + 1000 * (labels["target"] - log["kiln_prediction"])
    result = performance(log, labels)
    mae = result.overall["mae"]  # errors of about 160: an absolute 0.05 would mean nothing
    ok = performance(log, labels, reference={"mae": mae / 1.04, "r2": result.overall["r2"]})
    assert ok.flagged == []
    worse = performance(log, labels, reference={"mae": mae / 1.06})
    assert [f["metric"] for f in worse.flagged] == ["mae"]
    assert worse.flagged[0]["max_drop"] == pytest.approx(0.05 * mae / 1.06, rel=1e-12)


# ---------------------------------------------------------------- fairness over time


def test_segment_from_the_log_gives_groups_and_gaps_per_window(
    classifier: dict[str, Any], served: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    log, labels = served
    classes = classifier["model"].classes_
    result = performance(log, labels, every="1d", segment="region", classes=classes)
    rows = log.merge(labels, on="kiln_request_id")
    groups, gaps = fairness(
        rows["label"], rows["kiln_prediction"], rows["region"], task="binary", classes=classes
    )
    assert result.groups is not None
    pd.testing.assert_frame_equal(result.groups, groups)
    assert result.gaps == gaps
    assert set(gaps) == {
        "demographic_parity_difference",
        "equalized_odds_difference",
        "accuracy_gap",
    }
    for _, window in result.windows.iterrows():
        inside = rows[
            (rows["kiln_time"] >= window["window_start"])
            & (rows["kiln_time"] < window["window_end"])
        ]
        _, window_gaps = fairness(
            inside["label"], inside["kiln_prediction"], inside["region"], classes=classes
        )
        assert {k: window[k] for k in window_gaps} == window_gaps
    out = _json_ready(result)
    assert {g["region"] for g in out["groups"]} == set(REGIONS)
    assert out["segment"] == "region"

    # a gap that widens past the reference's is flagged like a metric that falls
    assert gaps["accuracy_gap"] > 0
    wide = performance(
        log,
        labels,
        segment="region",
        reference={"accuracy_gap": 0.0},
        config={"max_drop": {"accuracy_gap": 0.0}},
    )
    assert [f["metric"] for f in wide.flagged] == ["accuracy_gap"]
    assert wide.flagged[0]["drop"] == gaps["accuracy_gap"]


def test_segment_from_the_labels_frame(served: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    log, labels = served
    cohorts = labels.assign(cohort=np.where(np.arange(len(labels)) % 2, "odd", "even"))
    result = performance(log, cohorts, segment="cohort")  # `label` is still the label
    assert result.groups is not None
    assert list(result.groups.index) == ["even", "odd"]
    assert list(result.groups["count"]) == [len(labels) // 2 + len(labels) % 2, len(labels) // 2]


# ---------------------------------------------------------------- the join


def test_unmatched_rows_on_both_sides_are_counted(
    served: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    log, labels = served
    partial = labels.iloc[10:].copy()  # 10 logged requests have no label yet
    partial.loc[partial.index[0], "label"] = None  # and one is not labelled yet
    strangers = pd.DataFrame({"kiln_request_id": [f"other-{i}" for i in range(7)], "label": "no"})
    result = performance(log, pd.concat([partial, strangers], ignore_index=True))
    assert (result.unlabelled, result.unmatched_labels, result.unmatched) == (11, 7, 18)
    assert result.n == len(log) - 11
    out = _json_ready(result)
    assert (out["unlabelled"], out["unmatched_labels"], out["unmatched"]) == (11, 7, 18)


@pytest.mark.parametrize("name", ["label", "y", "target", "churned"])
def test_the_label_column_is_found(name: str, served: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    log, labels = served
    frame = labels.rename(columns={"label": name})
    if name != "churned":
        frame = frame.assign(note="checked by hand")  # another column beside a known name
    assert performance(log, frame).n == len(log)


def test_a_key_of_several_columns(served: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    log, labels = served
    log = log.assign(row=log.groupby("kiln_request_id").cumcount())
    labels = labels.assign(row=0)[["kiln_request_id", "row", "label"]]
    assert performance(log, labels, on=["kiln_request_id", "row"]).n == len(log)


# ---------------------------------------------------------------- clear errors


def _case(served: tuple[pd.DataFrame, pd.DataFrame], case: str) -> dict[str, Any]:
    log, labels = served
    ids, n = labels["kiln_request_id"], len(labels)
    many = pd.concat([log.iloc[:2], log.iloc[:1]], ignore_index=True)
    cases: dict[str, dict[str, Any]] = {
        "key not in log": {"log": log, "labels": labels, "on": "customer_id"},
        "key not in labels": {
            "log": log,
            "labels": labels.rename(columns={"kiln_request_id": "id"}),
        },
        "no prediction": {"log": log.drop(columns="kiln_prediction"), "labels": labels},
        "no rows match": {"log": log, "labels": labels.assign(kiln_request_id="x" + ids)},
        "key types differ": {"log": log, "labels": labels.assign(kiln_request_id=range(n))},
        "segment missing": {"log": log, "labels": labels, "segment": "regoin"},
        "labels ambiguous": {
            "log": log,
            "labels": labels.assign(outcome="yes", extra=1).drop(columns="label"),
        },
        "only a key": {"log": log, "labels": labels[["kiln_request_id"]]},
        "two known names": {"log": log, "labels": labels.assign(y="yes")},
        "labels repeat": {"log": log, "labels": pd.concat([labels, labels.iloc[:3]])},
        "request of many rows": {"log": many, "labels": labels},
        "text vs numbers": {"log": log, "labels": labels.assign(label=1)},
        "unknown class": {
            "log": log,
            "labels": labels.assign(label="maybe"),
            "classes": ["no", "yes"],
        },
        "unknown task": {"log": log, "labels": labels, "task": "ranking"},
        "no time": {"log": log.drop(columns="kiln_time"), "labels": labels, "every": "1d"},
        "not a frame": {"log": log.to_dict(), "labels": labels},
        "empty log": {"log": log.iloc[:0], "labels": labels},
        "empty labels": {"log": log, "labels": labels.iloc[:0]},
        "reference not numbers": {"log": log, "labels": labels, "reference": {"accuracy": "high"}},
    }
    return cases[case]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("key not in log", r"The log has no column 'customer_id'.*Join on a column both"),
        ("key not in labels", r"The labels frame has no column 'kiln_request_id'.*Join on"),
        ("no prediction", r"The log has no column 'kiln_prediction'"),
        ("no rows match", r"No row of the log has a label.*check the key column"),
        ("key types differ", r"Cannot join the log and the labels.*astype\(str\)"),
        ("segment missing", r"segment='regoin' is neither.*Did you mean 'region'"),
        ("labels ambiguous", r"2 columns besides the key \(\['outcome', 'extra'\]\).*Rename"),
        ("only a key", r"no column besides the key"),
        ("two known names", r"several of \['label', 'y', 'target'\]"),
        ("labels repeat", r"6 rows whose key.*is not unique.*drop_duplicates"),
        ("request of many rows", r"not unique in the log.*cumcount"),
        ("text vs numbers", r"predictions are text but the labels are not.*astype"),
        ("unknown class", r"not classes of the model: \['maybe'\]"),
        ("unknown task", r"task='ranking' is not a task"),
        ("no time", r"needs the log's 'kiln_time' column"),
        ("not a frame", r"log is a dict; expected a pandas DataFrame"),
        ("empty log", r"The log has no rows.*time window"),
        ("empty labels", r"The labels frame has no rows"),
        ("reference not numbers", r"reference\['accuracy'\] is 'high'; expected a number"),
    ],
)
def test_bad_data_gets_an_evaluation_error(
    case: str, message: str, served: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    kwargs = _case(served, case)
    with pytest.raises(kiln.EvaluationError, match=message):
        performance(kwargs.pop("log"), kwargs.pop("labels"), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every": "bogus"}, r"every='bogus' is not a window length.*'1h'"),
        ({"every": "-1h"}, r"every='-1h' is not a positive length"),
        ({"every": 3600}, r"every=3600 is not a window length.*timedelta"),
        ({"config": {"max_dorp": 0.1}}, r"Unknown key 'max_dorp'.*Did you mean 'max_drop'"),
        ({"config": {"max_drop": -1}}, r"config\['max_drop'\] is -1; expected a number"),
        ({"config": {"max_drop": {"acuracy": 0.1}}}, r"'acuracy'.*Did you mean 'accuracy'"),
        ({"config": {"min_rows": 0}}, r"config\['min_rows'\] is 0; expected a whole number"),
    ],
)
def test_bad_settings_get_a_configuration_error(
    kwargs: dict[str, Any], message: str, served: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    log, labels = served
    with pytest.raises(kiln.ConfigurationError, match=message):
        performance(log, labels, **kwargs)


def test_reference_metrics_picks_the_evaluation_out_of_a_runs_metrics() -> None:
    logged = {
        "training_score": 0.99,
        "train_accuracy": 0.99,
        "val_accuracy": 0.90,
        "val_mae": 3.0,
        "val_roc_auc": 0.95,
        "val_accuracy_gap": 0.04,
        "fit_seconds": 1.5,
    }
    assert reference_metrics(logged, "multiclass") == {"accuracy": 0.90, "accuracy_gap": 0.04}
    assert reference_metrics(logged, "binary", prefix="train_") == {"accuracy": 0.99}
    assert reference_metrics({**logged, "accuracy": 0.8}, "binary") == {"accuracy": 0.8}
    assert reference_metrics(logged, "regression") == {"mae": 3.0}
    assert reference_metrics({"fit_seconds": 1.0}, "binary") == {}
    with pytest.raises(kiln.EvaluationError, match="task='ranking' is not a task"):
        reference_metrics(logged, "ranking")
