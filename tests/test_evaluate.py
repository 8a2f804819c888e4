"""kiln.evaluate: exact metrics per task, plots that agree with them, fairness, logging."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsRegressor

import kiln
from kiln.evaluate import detect_task, metrics


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.normal(50, 15, n),
            "noise": rng.normal(size=n),
        }
    )
    logit = 0.08 * (X["age"] - 40) + 0.05 * (X["income"] - 50)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def model(data: tuple[pd.DataFrame, np.ndarray]) -> kiln.Model:
    X, y = data
    return kiln.Model(LogisticRegression(), validation="off").fit(X[:2000], y[:2000])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(20, 300))
def test_binary_metrics_match_scikit_learn(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    proba = rng.random(n)
    pred = (proba > 0.5).astype(int)
    got = metrics(y, pred, proba, task="binary", classes=[0, 1])
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, proba))
    if 0 < y.sum() < n:
        assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba))
        assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))
        assert got["average_precision"] == pytest.approx(skm.average_precision_score(y, proba))
    else:
        assert np.isnan(got["roc_auc"])


def test_multiclass_and_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    y = rng.choice(["a", "b", "c"], 500)
    proba = rng.dirichlet([1, 1, 1], 500)
    pred = np.array(["a", "b", "c"])[proba.argmax(axis=1)]
    got = metrics(y, pred, proba)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert got["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))

    t = rng.normal(5, 2, 400)
    p = t + rng.normal(size=400)
    reg = metrics(t, p)
    assert reg["mae"] == pytest.approx(skm.mean_absolute_error(t, p))
    assert reg["rmse"] == pytest.approx(skm.root_mean_squared_error(t, p))
    assert reg["r2"] == pytest.approx(skm.r2_score(t, p))
    assert reg["mape"] == pytest.approx(skm.mean_absolute_percentage_error(t, p))
    assert reg["median_ae"] == pytest.approx(skm.median_absolute_error(t, p))


def test_task_detection() -> None:
    assert detect_task([0, 1, 1, 0]) == "binary"
    assert detect_task(["x", "y", "z"]) == "multiclass"
    assert detect_task([0.5, 1.25, 3.0]) == "regression"
    assert detect_task(list(range(100))) == "regression"
    assert detect_task([1.0, 2.0, 1.0]) == "binary"
    assert detect_task([0, 1], y_proba=np.ones((2, 3)) / 3) == "multiclass"


def test_metrics_refuse_bad_input() -> None:
    with pytest.raises(kiln.EvaluationError, match="y_true has 3 rows but y_pred has 2"):
        metrics([1, 0, 1], [1, 0])
    with pytest.raises(kiln.EvaluationError, match="task='ranking' is not a task kiln evaluates"):
        metrics([1, 0], [1, 0], task="ranking")
    with pytest.raises(kiln.EvaluationError, match="task='binary' but there are 3 classes"):
        metrics([0, 1, 2], [0, 1, 2], task="binary")
    # sklearn's own ValueError for numbers scored as classes, said in kiln's words
    with pytest.raises(kiln.EvaluationError, match="for numbers, pass task='regression'"):
        metrics([0.0, 1.0, 2.0], [0.5, 1.0, 2.5])


def test_evaluate_logs_metrics_plots_and_report(
    tracked: str, data: tuple[pd.DataFrame, np.ndarray], model: kiln.Model
) -> None:
    X, y = data
    X_test, y_test = X[2000:], y[2000:]
    with kiln.start_run(experiment="eval", system_metrics=False) as run:
        result = kiln.evaluate(model, X_test, y_test)
    proba = model.predict_proba(X_test)[:, 1]
    assert result.task == "binary"
    assert result.run_id == run.id
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y_test, proba))
    # The AUC printed on the ROC plot is the metric.
    assert result.figures["roc"].values["auc"] == pytest.approx(result.metrics["roc_auc"])
    assert result.figures["roc"].traces[0].name == f"AUC = {result.metrics['roc_auc']:.3f}"
    assert set(result.figures) == {
        "roc",
        "precision_recall",
        "confusion_matrix",
        "confusion_matrix_normalized",
        "calibration",
        "gain",
        "lift",
        "feature_importance",
    }
    assert result.importance_kind == "|coefficient|"
    assert max(result.importance, key=lambda k: result.importance[k]) == "age"

    stored = kiln.get_run(run.id)
    assert stored.metrics["roc_auc"] == pytest.approx(result.metrics["roc_auc"])
    paths = {a.path for a in stored.artifacts}
    assert {"evaluation/roc.png", "evaluation/roc.json", "evaluation/report.html"} <= paths
    summary = json.loads(
        kiln.get_client().read_artifact(run.id, "evaluation/metrics.json").decode()
    )
    assert summary["metrics"]["accuracy"] == pytest.approx(result.metrics["accuracy"])


def test_evaluate_fairness_by_segment(
    data: tuple[pd.DataFrame, np.ndarray], model: kiln.Model
) -> None:
    X, y = data
    X_test, y_test = X[2000:].reset_index(drop=True), y[2000:]
    region = np.where(X_test["income"] > 50, "high", "low")
    result = kiln.evaluate(model, X_test, y_test, segments=region, report=False)
    pred = model.predict(X_test)
    table = result.groups
    assert list(table.index) == ["high", "low"]
    for group in ("high", "low"):
        mask = region == group
        assert table.loc[group, "count"] == mask.sum()
        assert table.loc[group, "selection_rate"] == pytest.approx(pred[mask].mean())
        tpr = pred[mask & (y_test == 1)].mean()
        fpr = pred[mask & (y_test == 0)].mean()
        assert table.loc[group, "tpr"] == pytest.approx(tpr)
        assert table.loc[group, "fpr"] == pytest.approx(fpr)
    dp = abs(table.loc["high", "selection_rate"] - table.loc["low", "selection_rate"])
    eo = max(
        abs(table.loc["high", "tpr"] - table.loc["low", "tpr"]),
        abs(table.loc["high", "fpr"] - table.loc["low", "fpr"]),
    )
    assert result.fairness["demographic_parity_difference"] == pytest.approx(dp)
    assert result.fairness["equalized_odds_difference"] == pytest.approx(eo)
    fig = result.figures["fairness"]
    assert [t.name for t in fig.traces] == ["selection_rate", "tpr", "fpr"]
    assert fig.traces[0].x == ["high", "low"]
    assert result.report is None

    by_column = kiln.evaluate(model, X_test, y_test, segments="noise", plots=False, report=False)
    assert len(by_column.groups) == len(X_test)  # every distinct value is its own group
    with pytest.raises(kiln.EvaluationError, match="Did you mean 'income'"):
        kiln.evaluate(model, X_test, y_test, segments="incme")
    with pytest.raises(kiln.EvaluationError, match="segments has 3 labels for 1000 rows"):
        kiln.evaluate(model, X_test, y_test, segments=["a", "b", "c"])
    # one value, not one per row: said so (it was a TypeError from len() of a 0-d array)
    with pytest.raises(kiln.EvaluationError, match=r"segments has shape \(\) for 1000 rows"):
        kiln.evaluate(model, X_test, y_test, segments=5)


def test_evaluate_regression_with_permutation_importance(
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, _ = data
    target = 3 * X["age"] - X["income"]
    knn = KNeighborsRegressor(n_neighbors=5).fit(X[:2000], target[:2000])
    result = kiln.evaluate(knn, X[2000:], target[2000:], report=False)
    assert result.task == "regression"
    assert result.metrics["r2"] == pytest.approx(skm.r2_score(target[2000:], knn.predict(X[2000:])))
    assert result.importance_kind.startswith("Permutation")
    assert result.importance["age"] > result.importance["income"] > abs(result.importance["noise"])
    assert set(result.figures) == {"predicted_vs_actual", "residuals", "feature_importance"}


def test_evaluate_a_saved_model_by_uri(tracked: str, data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, _y = data
    with kiln.start_run(system_metrics=False):
        uri = (
            kiln.Model(LinearRegression(), validation="off")
            .fit(X[:2000], X["age"][:2000] * 2)
            .save()
        )
    result = kiln.evaluate(uri, X[2000:], X["age"][2000:] * 2, plots=False, report=False)
    assert result.task == "regression"
    assert result.metrics["r2"] == pytest.approx(1.0)
    assert result.run_id is None  # no run active: nothing logged


def test_evaluate_refuses_bad_calls(
    data: tuple[pd.DataFrame, np.ndarray], model: kiln.Model
) -> None:
    X, y = data
    with pytest.raises(kiln.EvaluationError, match="X has 3000 rows but y has 10"):
        kiln.evaluate(model, X, y[:10])
    with pytest.raises(kiln.NoActiveRunError, match="no run is active"):
        kiln.evaluate(model, X, y, log=True, plots=False, report=False)
    with pytest.raises(kiln.ModelError, match="needs a fitted model with predict"):
        kiln.evaluate(object(), X, y)
    with pytest.raises(kiln.EvaluationError, match="importance='shap'"):
        kiln.evaluate(model, X, y, importance="shap")
    with pytest.raises(kiln.EvaluationError, match="no report to save"):
        kiln.evaluate(model, X, y, plots=False, report=False).save_report("out.html")
    # bad inputs to evaluation are EvaluationError, never the signature's ValidationError,
    # and still a ValueError for callers that catch that
    assert not issubclass(kiln.EvaluationError, kiln.ValidationError)
    assert issubclass(kiln.EvaluationError, ValueError)


def test_evaluate_module_is_callable_and_has_parts() -> None:
    import kiln.evaluate as module

    assert kiln.evaluate is module
    assert callable(kiln.evaluate)
    assert kiln.evaluate.metrics is metrics
