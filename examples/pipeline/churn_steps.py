"""A small churn pipeline: load -> features -> split -> train -> evaluate.

Every public function is a step; its parameters name the steps it reads or the params
in params.yaml. `_ratio` is a helper: changing it re-runs `features` and what follows.

    cd examples/pipeline && kiln run && kiln run --dry-run -p train.C=0.1
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import kiln


def _ratio(a: pd.Series, b: pd.Series) -> pd.Series:
    return a / (b + 1.0)


def load(data: Path) -> pd.DataFrame:
    """Read the customers table (an input file: its content is part of the cache key)."""
    return pd.read_csv(data)


def features(load: pd.DataFrame) -> pd.DataFrame:
    """Add the derived columns."""
    out = load.copy()
    out["calls_per_month"] = _ratio(out["support_calls"], out["tenure_months"])
    return out


def split(features: pd.DataFrame, test_size: float, seed: int) -> dict[str, pd.DataFrame]:
    """A stratified train/test split."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        features, test_size=test_size, random_state=seed, stratify=features["churned"]
    )
    return {"train": train, "test": test}


def train(split: dict[str, pd.DataFrame], C: float) -> kiln.Model:
    """A logistic regression, saved in kiln's model format."""
    from sklearn.linear_model import LogisticRegression

    data = split["train"]
    # validation="off": the test rows may fall outside the training ranges, which is fine here.
    return kiln.Model(LogisticRegression(C=C, max_iter=1000), validation="off").fit(
        data.drop(columns="churned"), data["churned"]
    )


def evaluate(train: kiln.Model, split: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Test-set accuracy, logged as a metric of the step's run."""
    test = split["test"]
    accuracy = float((train.predict(test.drop(columns="churned")) == test["churned"]).mean())
    kiln.log_metric("accuracy", accuracy)
    return {"accuracy": accuracy}
