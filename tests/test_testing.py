"""kiln.testing: each check passes on a correct model and fails on one built to violate it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDClassifier

import kiln
from kiln import testing


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = (X["a"] - X["b"] + 0.5 * X["c"] > 0).astype(int).to_numpy()
    return X, y


class TwoLayer(RegressorMixin, BaseEstimator):
    """A tiny numpy model with a 'frozen' embedding layer and a trained head.

    `leak_to_frozen` makes the frozen layer move (the bug a frozen-layer test catches);
    `dead_head` stops the head from training (the bug a params-change test catches);
    `ignore` drops a feature; `unseeded` initialises from an unseeded generator.
    """

    def __init__(
        self,
        *,
        lr: float = 0.1,
        leak_to_frozen: bool = False,
        dead_head: bool = False,
        ignore: str | None = None,
        unseeded: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.lr = lr
        self.leak_to_frozen = leak_to_frozen
        self.dead_head = dead_head
        self.ignore = ignore
        self.unseeded = unseeded
        self.random_state = random_state

    def _inputs(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X).copy()
        if self.ignore is not None:
            frame[self.ignore] = 0.0
        return frame.to_numpy(dtype=float)

    def partial_fit(self, X: Any, y: Any) -> TwoLayer:
        x = self._inputs(X)
        if not hasattr(self, "embed_"):
            rng = np.random.default_rng(None if self.unseeded else self.random_state)
            self.embed_ = rng.normal(size=(x.shape[1], 4))
            self.head_ = rng.normal(size=4)
        hidden = np.tanh(x @ self.embed_)
        err = hidden @ self.head_ - np.asarray(y, dtype=float)
        grad_head = hidden.T @ err / len(x)
        if not self.dead_head:
            self.head_ = self.head_ - self.lr * grad_head
        if self.leak_to_frozen:
            self.embed_ = self.embed_ - self.lr * 0.01
        return self

    def fit(self, X: Any, y: Any) -> TwoLayer:
        for attr in ("embed_", "head_"):
            self.__dict__.pop(attr, None)
        for _ in range(5):
            self.partial_fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.tanh(self._inputs(X) @ self.embed_) @ self.head_


def test_params_change_and_frozen(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    testing.assert_params_change(TwoLayer(random_state=0), X, y, params=["head_"])
    testing.assert_params_frozen(TwoLayer(random_state=0), X, y, ["embed_"])
    with pytest.raises(AssertionError, match=r"did not change after a training step: head_"):
        testing.assert_params_change(
            TwoLayer(dead_head=True, random_state=0), X, y, params=["head_"]
        )
    with pytest.raises(AssertionError, match=r"frozen parameter\(s\) moved .*: embed_"):
        testing.assert_params_frozen(TwoLayer(leak_to_frozen=True, random_state=0), X, y, "embed_")
    with pytest.raises(kiln.ConfigurationError, match="Did you mean 'embed_'"):
        testing.assert_params_frozen(TwoLayer(random_state=0), X, y, ["embed"])
    # scikit-learn's own partial_fit models work as they are.
    testing.assert_params_change(SGDClassifier(random_state=0), X, y)
    with pytest.raises(kiln.ConfigurationError, match="has no partial_fit"):
        testing.assert_params_change(LogisticRegression(), X, y)


def test_params_change_with_a_custom_step(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    calls = []

    def step(model: TwoLayer, X: Any, y: Any) -> None:
        calls.append(len(X))
        model.partial_fit(X[:50], y[:50])

    testing.assert_params_change(TwoLayer(random_state=0), X, y, params=["head_"], step=step)
    assert calls == [300, 300]  # initialise, then the step under test


def test_every_feature_used(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    testing.assert_all_features_used(TwoLayer(random_state=0).fit(X, y), X)
    testing.assert_all_features_used(kiln.Model(LogisticRegression()).fit(X, y), X)
    with pytest.raises(AssertionError, match=r"1 feature\(s\) never change the prediction: b"):
        testing.assert_all_features_used(TwoLayer(ignore="b", random_state=0).fit(X, y), X)
    forest = RandomForestClassifier(n_estimators=1, max_depth=1, random_state=0).fit(X, y)
    with pytest.raises(AssertionError, match="never change the prediction"):
        testing.assert_all_features_used(forest, X)  # one stump cannot use every feature
    with pytest.raises(kiln.ConfigurationError, match="no feature 'd'"):
        testing.assert_all_features_used(forest, X, features=["d"])


def test_deterministic(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    testing.assert_deterministic(TwoLayer(), X, y, seed=3)  # random_state set from the seed
    testing.assert_deterministic(lambda: RandomForestClassifier(n_estimators=5), X, y)
    testing.assert_deterministic(kiln.Model(RandomForestClassifier(n_estimators=5)), X, y)
    with pytest.raises(AssertionError, match=r"two fits with seed 0 differ \(parameters: "):
        testing.assert_deterministic(TwoLayer(unseeded=True), X, y)


class NaNModel(RegressorMixin, BaseEstimator):
    def fit(self, X: Any, y: Any) -> NaNModel:
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: Any) -> np.ndarray:
        out = np.full(len(X), self.mean_)
        out[::7] = np.nan
        return out


class BadProba(ClassifierMixin, BaseEstimator):
    def fit(self, X: Any, y: Any) -> BadProba:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.zeros(len(X), dtype=int)

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.full((len(X), 2), 0.7)


def test_outputs_in_range(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    testing.assert_outputs_in_range(LogisticRegression().fit(X, y), X)
    linear = LinearRegression().fit(X, y)
    testing.assert_outputs_in_range(linear, X, low=-5, high=5)
    with pytest.raises(AssertionError, match=r"predictions above 0\.5"):
        testing.assert_outputs_in_range(linear, X, high=0.5)
    with pytest.raises(AssertionError, match="43 predictions are NaN or infinite"):
        testing.assert_outputs_in_range(NaNModel().fit(X, y), X)
    with pytest.raises(AssertionError, match="probability rows do not sum to 1"):
        testing.assert_outputs_in_range(BadProba().fit(X, y), X)


def test_signature_compatibility(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    old = kiln.Model(LogisticRegression()).fit(X, y)
    testing.assert_signature_compatible(kiln.Model(LogisticRegression(C=2)).fit(X, y), old)
    wider = X.assign(d=X["a"] * 2)
    with pytest.raises(AssertionError, match="input 'd' is new: old callers do not send it"):
        testing.assert_signature_compatible(kiln.Model(LogisticRegression()).fit(wider, y), old)
    ints = X.assign(a=(X["a"] * 10).round().astype(int))
    int_model = kiln.Model(LogisticRegression()).fit(ints, y)
    testing.assert_signature_compatible(old, int_model)  # int -> float is wider: fine
    with pytest.raises(AssertionError, match="input 'a' changed kind float -> int"):
        testing.assert_signature_compatible(int_model, old)
    labels = np.where(y == 1, "yes", "no")
    three = np.where(X["c"] > 1.5, "maybe", labels)
    with pytest.raises(AssertionError, match="lost classes"):
        testing.assert_signature_compatible(
            kiln.Model(LogisticRegression()).fit(X, labels),
            kiln.Model(LogisticRegression()).fit(X, three),
        )


class ForgetfulModel(kiln.Model):
    """Breaks the conventions: fit returns None and stores state without '_'."""

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        super().fit(X, y, **fit_params)
        self.calls = 1
        return None


class RenamedParam(kiln.Model):
    def __init__(self, estimator: Any = None, *, strictness: str = "warn") -> None:
        super().__init__(estimator, validation=strictness)


def test_check_model(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = data
    testing.check_model(kiln.Model(LogisticRegression()), X, y)
    names = [name for name, _ in testing.model_checks(kiln.Model(LogisticRegression()), X, y)]
    assert "save_load_round_trip" in names
    with pytest.raises(AssertionError, match="failed 2 conformance check") as info:
        testing.check_model(ForgetfulModel(LogisticRegression()), X, y)
    assert "fit_returns_self: fit must return self" in str(info.value)
    assert "learned_state_ends_in_underscore: fit set attributes not ending in '_': ['calls']" in (
        str(info.value)
    )
    with pytest.raises(
        AssertionError, match="not stored as attributes of the same name: strictness"
    ):
        testing.check_model(RenamedParam(LogisticRegression()), X, y)
    with pytest.raises(AssertionError, match="deterministic: two fits with seed 0 differ"):
        testing.check_model(kiln.Model(TwoLayer(unseeded=True)), X, y.astype(float))
