"""Champion/challenger: `kiln.registry.compare` and `kiln models compare`."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score

import kiln
from kiln import ConfigurationError, EvaluationError
from kiln.cli import cli
from kiln.evaluate import compare
from kiln.models import DataDriftWarning


def _data(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "noise": rng.normal(size=n)}
    )
    y = pd.Series((X["a"] + 0.5 * X["b"] + rng.normal(scale=0.5, size=n) > 0).astype(int), name="y")
    return X, y


@pytest.fixture
def two_versions(tracked: str) -> tuple[str, pd.DataFrame, pd.Series]:
    X, y = _data(400, 0)
    weak = kiln.Model(LogisticRegression()).fit(X[["noise"]].assign(a=0.0, b=0.0), y)
    strong = kiln.Model(LogisticRegression()).fit(X, y)
    for model in (weak, strong):
        with kiln.start_run() as run:
            model.save()
        kiln.register(run.id, "churn")
    kiln.registry.set_alias("churn", "production", 1)
    return tracked, *_data(300, 1)


def test_compare_says_which_version_is_better_on_which_metric(two_versions: Any) -> None:
    _, X, y = two_versions
    result = compare("churn@production", "churn/2", X, y)
    assert result.task == "binary"
    assert result.n_rows == 300
    assert [m.name for m in result.metrics] == [
        "roc_auc",
        "accuracy",
        "balanced_accuracy",
        "f1",
        "log_loss",
    ]
    assert result.winner == "b"
    assert result.primary.name == "roc_auc"
    assert result.drift[0].startswith("churn@production: a, b")  # it only ever saw a = b = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataDriftWarning)  # held-out tails: no warning
        proba = kiln.load_model("models:/churn/2").predict_proba(X)[:, 1]
    expected = roc_auc_score(y, proba)
    assert result.primary.b == pytest.approx(expected)
    assert result.verdict.startswith("churn/2 is better than churn@production on roc_auc")
    frame = result.to_frame()
    assert frame.loc["roc_auc", "difference"] == pytest.approx(result.primary.b - result.primary.a)
    # the same model against itself ties on every metric
    same = compare("churn/2", "models:/churn@production".replace("@production", "/2"), X, y)
    assert same.winner is None
    assert {m.better for m in same.metrics} == {"tie"}


def test_models_compare_command(two_versions: Any, tmp_path: Path) -> None:
    store, X, y = two_versions
    data = tmp_path / "held_out.parquet"
    X.assign(churned=y).to_parquet(data)
    args = ["--store", store, "models", "compare", "churn@production", "churn/2"]
    shown = CliRunner().invoke(cli, [*args, "--data", str(data), "--target", "churned"])
    assert shown.exit_code == 0, shown.output
    assert "roc_auc" in shown.output
    assert "churn/2 is better than churn@production on roc_auc" in shown.output
    as_json = CliRunner().invoke(cli, [*args, "--data", str(data), "--target", "churned", "--json"])
    assert json.loads(as_json.output)["winner"] == "b"
    wrong = CliRunner().invoke(cli, [*args, "--data", str(data), "--target", "label"])
    assert wrong.exit_code == 2
    assert "'label' is not a column of" in wrong.output
    assert "Its columns: a, b, noise, churned." in wrong.output


def test_compare_refuses_models_of_different_tasks(tracked: str, tmp_path: Path) -> None:
    X, y = _data(100, 2)
    classifier = kiln.Model(LogisticRegression()).fit(X, y).save(tmp_path / "c")
    regressor = kiln.Model(LinearRegression()).fit(X, X["a"] * 2).save(tmp_path / "r")
    with pytest.raises(EvaluationError, match="compare models of the same task"):
        compare(classifier, regressor, X, y)
    with pytest.raises(ConfigurationError, match="does not name a model version"):
        compare("churn", regressor, X, y)


def test_compare_regressors_prefers_the_lower_error(tmp_path: Path) -> None:
    X, _ = _data(200, 3)
    target = 3 * X["a"] - X["b"]
    exact = kiln.Model(LinearRegression()).fit(X, target).save(tmp_path / "exact")
    blind = kiln.Model(LinearRegression()).fit(X[["noise"]].assign(a=0.0, b=0.0), target)
    result = compare(blind.save(tmp_path / "blind"), exact, X, target)
    assert [m.name for m in result.metrics][:3] == ["rmse", "mae", "r2"]
    assert result.winner == "b"
    assert result.primary.b == pytest.approx(0.0, abs=1e-9)


def _cli_json(store: str, *args: str) -> dict[str, Any]:
    done = CliRunner().invoke(cli, ["--store", store, *args, "--json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return dict(json.loads(done.output))


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_compare_and_evaluate_report_the_same_numbers(
    task: str, tracked: str, tmp_path: Path
) -> None:
    # Regression test (issue 15): `kiln models compare` had its own metrics, which left out
    # MAPE when a target was 0 and named the multiclass metrics f1/roc_auc where
    # `kiln evaluate` says f1_macro/roc_auc_ovr. Now both use kiln.evaluate's metrics.
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    if task == "regression":
        y = pd.Series(np.round(2 * X["a"] + X["b"] + rng.normal(scale=0.3, size=300), 1))
        y.iloc[:5] = 0.0  # a zero target: MAPE is over the other rows
        model = kiln.Model(LinearRegression()).fit(X, y)
    else:
        y = pd.Series(np.digitize(X["a"] + rng.normal(scale=0.5, size=300), [-0.5, 0.5]))
        model = kiln.Model(LogisticRegression()).fit(X, y)
    folder = str(model.save(tmp_path / "model"))
    data = tmp_path / "held_out.csv"
    X.assign(target=y).to_csv(data, index=False)

    evaluated = _cli_json(tracked, "evaluate", folder, "--data", str(data), "--target", "target")
    compared = _cli_json(
        tracked, "models", "compare", folder, folder, "--data", str(data), "--target", "target"
    )
    assert compared["task"] == evaluated["task"] == task
    shown = {m["name"]: m["a"] for m in compared["metrics"]}
    primary = {"regression": "rmse", "multiclass": "roc_auc_ovr"}[task]
    assert next(iter(shown)) == primary
    assert set(shown) <= set(evaluated["metrics"]), "compare names a metric evaluate does not"
    for name, value in shown.items():
        assert value == pytest.approx(evaluated["metrics"][name], rel=1e-12), name
    if task == "regression":
        assert shown["mape"] is not None
    else:
        assert {"f1_macro", "roc_auc_ovr", "log_loss"} <= set(shown)
    # the Python API gives what the command printed
    assert compare(folder, folder, X, y).to_dict()["metrics"] == compared["metrics"]


def test_compare_moved_to_evaluate_and_the_registry_name_still_works() -> None:
    import kiln.evaluate
    import kiln.registry

    assert "compare" in kiln.evaluate.__all__
    assert kiln.registry.compare is kiln.evaluate.compare
    assert kiln.registry.Comparison is kiln.evaluate.Comparison
    assert kiln.registry.MetricComparison is kiln.evaluate.MetricComparison
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = kiln.registry.nope  # type: ignore[attr-defined]
    # the registry sits below models and evaluate: importing it loads neither
    code = (
        "import sys, kiln.registry; "
        "print([m for m in sys.modules if m.startswith(('kiln.models', 'kiln.evaluate'))])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_each_metric_has_one_direction() -> None:
    from kiln.evaluate import HIGHER_IS_BETTER, metrics
    from kiln.evaluate._compare import SHOWN
    from kiln.tracking import metric_direction

    rng = np.random.default_rng(0)
    binary = metrics([0, 1, 1, 0], [0, 1, 0, 0], [0.2, 0.9, 0.4, 0.3])
    multi = metrics([0, 1, 2, 2], [0, 1, 1, 2], rng.dirichlet([1, 1, 1], size=4), classes=[0, 1, 2])
    regression = metrics([0.0, 1.0, 2.0], [0.5, 1.0, 2.5], task="regression")
    fairness = ["demographic_parity_difference", "equalized_odds_difference", "accuracy_gap"]
    computed = {*binary, *multi, *regression, *fairness, "mae_gap"}
    assert computed == set(HIGHER_IS_BETTER)
    assert {name for shown in SHOWN.values() for name in shown} <= computed
    # `kiln runs compare` marks best runs with tracking's own table of usual names: it
    # must agree with evaluate's on every metric evaluate computes, fairness gaps included
    # (accuracy_gap was read as accuracy: higher is better).
    for name, higher in HIGHER_IS_BETTER.items():
        assert metric_direction(name) == ("max" if higher else "min"), name
        assert metric_direction(f"test/{name}") == ("max" if higher else "min"), name
