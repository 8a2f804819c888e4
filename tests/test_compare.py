"""Champion/challenger: `kiln.registry.compare` and `kiln models compare`."""

from __future__ import annotations

import json
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
from kiln import ConfigurationError
from kiln.cli import cli
from kiln.models._validator import DataDriftWarning
from kiln.registry import compare


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
    assert result.task == "classification"
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


def test_compare_refuses_models_of_different_tasks(tracked: str, tmp_path: Path) -> None:
    X, y = _data(100, 2)
    classifier = kiln.Model(LogisticRegression()).fit(X, y).save(tmp_path / "c")
    regressor = kiln.Model(LinearRegression()).fit(X, X["a"] * 2).save(tmp_path / "r")
    with pytest.raises(ConfigurationError, match="compare models of the same task"):
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
