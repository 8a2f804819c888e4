"""kiln.autolog: plain scikit-learn fits record themselves; disabling restores them exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import kiln
from kiln.autolog import AutologWarning, is_enabled


@pytest.fixture(autouse=True)
def _off() -> Iterator[None]:
    yield
    kiln.autolog(disable=True)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(240, 3)), columns=["a", "b", "c"])
    y = pd.Series((X["a"] + 0.5 * X["b"] > 0).astype(int), name="label")
    return X, y


def test_plain_fit_logs_params_time_data_and_score(
    tracked: str, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = data
    kiln.autolog()
    assert is_enabled()
    with kiln.start_run(system_metrics=False) as run:
        model = LogisticRegression(C=0.25).fit(X, y)
    stored = kiln.get_run(run.id)
    assert stored.params["C"] == "0.25"
    assert stored.params["solver"] == "lbfgs"
    assert stored.tags["estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert stored.metrics["fit_seconds"] > 0
    assert stored.metrics["training_score"] == pytest.approx(model.score(X, y))
    (dataset,) = stored.datasets
    assert (dataset.role, dataset.n_rows, dataset.n_cols) == ("train", 240, 4)
    assert [c["name"] for c in dataset.schema] == ["a", "b", "c", "label"]


def test_grid_search_candidates_become_child_runs(
    tracked: str, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = data
    kiln.autolog()
    grid = {"max_depth": [1, 2, 3, 4], "min_samples_leaf": [1, 5, 20]}  # 12 candidates
    with kiln.start_run(experiment="search", system_metrics=False) as run:
        search = GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3).fit(X, y)
    children = kiln.runs(experiment="search", filter=f"parent_id = '{run.id}'")
    assert len(children) == 12
    results = search.cv_results_
    by_params = {
        (int(r["params.max_depth"]), int(r["params.min_samples_leaf"])): r
        for _, r in children.iterrows()
    }
    for i, params in enumerate(results["params"]):
        row = by_params[(params["max_depth"], params["min_samples_leaf"])]
        assert row["metrics.mean_test_score"] == pytest.approx(results["mean_test_score"][i])
        assert row["metrics.std_test_score"] == pytest.approx(results["std_test_score"][i])
        assert row["metrics.rank_test_score"] == results["rank_test_score"][i]
        assert row["metrics.split2_test_score"] == pytest.approx(results["split2_test_score"][i])
    parent = kiln.get_run(run.id)
    assert parent.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert parent.params["best_max_depth"] == str(search.best_params_["max_depth"])
    assert parent.tags["estimator"].endswith("GridSearchCV")
    # The 12 candidates x 3 folds and the refit were not logged as fits of their own.
    assert len(kiln.metric_history(run.id, "fit_seconds")) == 1
    assert len(parent.datasets) == 1


def test_randomized_search(tracked: str, data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    kiln.autolog()
    with kiln.start_run(system_metrics=False) as run:
        RandomizedSearchCV(
            LogisticRegression(), {"C": [0.01, 0.1, 1, 10, 100]}, n_iter=4, cv=2, random_state=0
        ).fit(X, y)
    assert len(kiln.runs(filter=f"parent_id = '{run.id}'")) == 4


def test_disable_restores_every_fit_exactly(data: tuple[pd.DataFrame, pd.Series]) -> None:
    estimators = (LogisticRegression, RandomForestClassifier, GridSearchCV, StandardScaler)
    owners = [next(c for c in cls.__mro__ if "fit" in vars(c)) for cls in estimators]
    originals = {cls: vars(cls)["fit"] for cls in owners}
    model_fit = vars(kiln.Model)["fit"]
    kiln.autolog()
    kiln.autolog()  # twice is the same as once
    for cls, original in originals.items():
        assert vars(cls)["fit"] is not original
    assert vars(kiln.Model)["fit"] is not model_fit
    kiln.autolog(disable=True)
    for cls, original in originals.items():
        assert vars(cls)["fit"] is original
    assert vars(kiln.Model)["fit"] is model_fit
    assert "__init_subclass__" not in vars(BaseEstimator)
    assert not is_enabled()
    kiln.autolog(disable=True)  # disabling when off does nothing


def test_estimators_defined_later_are_logged_then_restored(
    tracked: str, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = data
    kiln.autolog()

    class Majority(ClassifierMixin, BaseEstimator):
        def __init__(self, strength: int = 3) -> None:
            self.strength = strength

        def fit(self, X: object, y: pd.Series) -> Majority:
            self.classes_ = np.unique(y)
            self.value_ = int(pd.Series(y).mode()[0])
            return self

        def predict(self, X: pd.DataFrame) -> np.ndarray:
            return np.full(len(X), self.value_)

    original = Majority.__dict__["fit"].__kiln_autolog_original__
    with kiln.start_run(system_metrics=False) as run:
        Majority(strength=7).fit(X, y)
    assert kiln.get_run(run.id).params == {"strength": "7"}
    kiln.autolog(disable=True)
    assert vars(Majority)["fit"] is original


def test_kiln_model_and_pipelines_are_not_logged_twice(
    tracked: str, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = data
    kiln.autolog()
    with kiln.start_run(system_metrics=False) as run:
        kiln.Model(LogisticRegression()).fit(X, y)
    stored = kiln.get_run(run.id)
    assert len(kiln.metric_history(run.id, "fit_seconds")) == 1
    assert "estimator" not in stored.tags  # kiln.Model logged it, not autolog
    assert len(stored.datasets) == 1

    with kiln.start_run(system_metrics=False) as run:
        make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    stored = kiln.get_run(run.id)
    assert stored.tags["estimator"] == "sklearn.pipeline.Pipeline"
    assert stored.params["logisticregression__C"] == "1.0"
    assert len(kiln.metric_history(run.id, "fit_seconds")) == 1


def test_lightgbm_through_its_sklearn_api(
    tracked: str, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    X, y = data
    kiln.autolog()
    with kiln.start_run(system_metrics=False) as run:
        lightgbm.LGBMClassifier(n_estimators=7, verbose=-1).fit(X, y)
    stored = kiln.get_run(run.id)
    assert stored.params["n_estimators"] == "7"
    assert "training_score" in stored.metrics


def test_outside_a_run_nothing_is_logged_and_failures_only_warn(
    tmp_path: Path, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    # SQLite only: on PostgreSQL this failure path leaves one psycopg connection to the
    # garbage collector at session end (a ResourceWarning); reported, not yet explained.
    kiln.configure(f"sqlite:///{tmp_path / 'kiln.db'}")
    X, y = data
    kiln.autolog()
    LogisticRegression().fit(X, y)  # no run: plain fit
    assert len(kiln.runs()) == 0

    class BadScore(LogisticRegression):
        def score(self, X: object, y: object, sample_weight: object = None) -> float:
            raise RuntimeError("no score today")

    with kiln.start_run(system_metrics=False), pytest.warns(AutologWarning, match="no score today"):
        fitted = BadScore().fit(X, y)
    assert hasattr(fitted, "coef_")
