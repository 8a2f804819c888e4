"""h. The data and model of the evaluation scenario, the same in both envs.

A binary target from 20 numeric features, generated with numpy's seeded PCG64
generator: 5,000 training rows and (by default) 100,000 test rows. The model is a
scikit-learn LogisticRegression, trained identically in each env (lbfgs is
deterministic), so both tools evaluate the same model on the same rows.
"""

from __future__ import annotations

from typing import Any

N_FEATURES = 20
N_TRAIN = 5_000
SEED = 20261123


def dataset(n_test: int) -> tuple[Any, Any, Any, Any]:
    """(X_train, y_train, X_test, y_test) as DataFrames / Series named 'label'."""
    import numpy as np
    import pandas as pd

    rng = np.random.Generator(np.random.PCG64(SEED))
    n = N_TRAIN + n_test
    X = pd.DataFrame(
        rng.normal(size=(n, N_FEATURES)), columns=[f"x{i:02d}" for i in range(N_FEATURES)]
    )
    weights = rng.normal(size=N_FEATURES)
    score = X.to_numpy() @ weights / 3 + rng.normal(scale=1.0, size=n)
    y = pd.Series((score > 0).astype(np.int64), name="label")
    return (
        X[:N_TRAIN],
        y[:N_TRAIN],
        X[N_TRAIN:].reset_index(drop=True),
        y[N_TRAIN:].reset_index(drop=True),
    )


def model() -> Any:
    """The unfitted classifier."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1_000)
