"""g. The training data and pipeline of the model scenario, the same in both envs.

Imported by the model scripts of both tools (numpy, pandas and scikit-learn are in
both envs). The data is generated with numpy's seeded PCG64 generator, so both sides
train the same pipeline on the same rows; held-out rows are kept only where every
numeric value lies inside the training range, so kiln's strict validation accepts them.
"""

from __future__ import annotations

import json
from typing import Any

N_ROWS = 4_000  # training rows
N_NUMERIC = 26
CATEGORICAL = {
    "region": ["north", "south", "east", "west", "central"],
    "plan": ["free", "basic", "pro", "team", "enterprise", "edu"],
    "device": ["ios", "android", "web", "desktop"],
    "channel": ["ads", "search", "referral", "social", "email", "direct", "partner"],
}
N_HELD_OUT = 64  # one-row inputs for prediction
SEED = 20261122


def _frame(rng: Any, n: int) -> Any:
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    for i in range(N_NUMERIC):
        data[f"x{i:02d}"] = rng.normal(loc=i % 5, scale=1 + (i % 3), size=n)
    for name, levels in CATEGORICAL.items():
        data[name] = np.asarray(levels, dtype=object)[rng.integers(0, len(levels), size=n)]
    frame = pd.DataFrame(data)
    for name in CATEGORICAL:
        frame[name] = frame[name].astype(str)
    return frame


def dataset() -> tuple[Any, Any, Any]:
    """(X_train, y_train, X_held_out): 30 columns, 26 numeric and 4 categorical."""
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(SEED))
    X = _frame(rng, N_ROWS)
    weights = rng.normal(size=N_NUMERIC)
    score = X[[f"x{i:02d}" for i in range(N_NUMERIC)]].to_numpy() @ weights / 6
    score += (X["plan"].isin(["pro", "team", "enterprise"])).to_numpy() * 1.5
    score += rng.normal(scale=1.0, size=N_ROWS)
    y = (score > np.median(score)).astype(np.int64)
    candidates = _frame(rng, N_HELD_OUT * 4)
    numeric = [f"x{i:02d}" for i in range(N_NUMERIC)]
    inside = np.ones(len(candidates), dtype=bool)
    for col in numeric:
        inside &= candidates[col].between(X[col].min(), X[col].max()).to_numpy()
    held_out = candidates[inside].head(N_HELD_OUT).reset_index(drop=True)
    return X, y, held_out


def pipeline() -> Any:
    """The unfitted pipeline: scale numerics, one-hot categoricals, logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f"x{i:02d}" for i in range(N_NUMERIC)]
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
        ]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=1_000))])


def write_rows(path: str, held_out: Any, predictions: Any) -> None:
    """Save the held-out rows (as records) and the pipeline's predictions for them."""
    records = [
        {k: v.item() if hasattr(v, "item") else v for k, v in r.items()}
        for r in held_out.to_dict(orient="records")
    ]
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"records": records, "predictions": [int(p) for p in predictions]}, fh)


def read_rows(prepared: str) -> tuple[list[dict[str, Any]], list[int]]:
    """The held-out records and the expected predictions, from `rows.json`."""
    import os

    with open(os.path.join(prepared, "rows.json"), encoding="utf-8") as fh:
        rows = json.load(fh)
    return rows["records"], rows["predictions"]


def check(name: str, predict: Any, inputs: list[Any], expected: list[int]) -> None:
    """Exit with a message unless `predict` gives the expected class for every input."""
    import sys

    got = [int(predict(x)[0]) for x in inputs]
    if got != expected:
        wrong = [i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e]
        sys.exit(f"{name}: wrong predictions for held-out rows {wrong[:10]}")


def time_calls(cases: dict[str, tuple[Any, list[Any]]], calls: int, warmup: int) -> dict[str, Any]:
    """Per-call latency of each case, in ms: median and 90th percentile.

    Cases are called in turn (one call of each per round), cycling through their
    inputs, so a slow spell on the machine hits every case alike; `warmup` rounds first.
    """
    import time

    names = list(cases)
    times: dict[str, list[float]] = {n: [] for n in names}
    clock = time.perf_counter
    for i in range(warmup + calls):
        for name in names:
            fn, inputs = cases[name]
            x = inputs[i % len(inputs)]
            t = clock()
            fn(x)
            elapsed = clock() - t
            if i >= warmup:
                times[name].append(elapsed)
    out: dict[str, Any] = {}
    for name, values in times.items():
        values.sort()
        out[f"{name}_ms"] = values[len(values) // 2] * 1e3
        out[f"{name}_p90_ms"] = values[int(len(values) * 0.9)] * 1e3
    return out
