"""The demo's pipeline: load -> split -> train -> score, on scikit-learn's breast-cancer data.

Every public function is a step; its parameters name the steps whose outputs it reads, or
params in params.yaml (`train.C` is read by `train` only). `_model` is a helper: changing
it re-runs `train` and what follows. The demo also calls it to refit the sweep's winner.

    cd examples/demo && kiln run demo_steps && kiln run demo_steps   # the second: cached
"""

from __future__ import annotations

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import kiln

TARGET = "target"  # 1: benign, 0: malignant


def _model(C: float) -> Pipeline:
    # Scaling and a logistic regression: kiln saves it as compiled numpy arithmetic too,
    # so `kiln serve` answers without importing scikit-learn.
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))


def load() -> pd.DataFrame:
    """The 569 tumours: 30 numeric measurements and the target."""
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


def split(
    load: pd.DataFrame, test_size: float, valid_size: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Train rows, validation rows (the sweep's objective) and test rows (kept for the end)."""
    from sklearn.model_selection import train_test_split

    rest, test = train_test_split(
        load, test_size=test_size, random_state=seed, stratify=load[TARGET]
    )
    train, valid = train_test_split(
        rest, test_size=valid_size, random_state=seed, stratify=rest[TARGET]
    )
    return {"train": train, "valid": valid, "test": test}


def train(split: dict[str, pd.DataFrame], C: float) -> kiln.Model:
    """The model in kiln's format: signature, reference profile for monitoring, hashes."""
    rows = split["train"]
    return kiln.Model(_model(C)).fit(rows.drop(columns=TARGET), rows[TARGET])


def score(train: kiln.Model, split: dict[str, pd.DataFrame]) -> dict[str, float]:
    """AUC and accuracy on the validation rows, logged on the step's run."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    rows = split["valid"]
    proba = train.predict_proba(rows.drop(columns=TARGET))[:, 1]
    metrics = {
        "auc": float(roc_auc_score(rows[TARGET], proba)),
        "accuracy": float(accuracy_score(rows[TARGET], proba > 0.5)),
    }
    kiln.log_metrics(metrics)
    return metrics
