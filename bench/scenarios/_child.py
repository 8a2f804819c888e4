"""Shared by the scenario scripts. Stdlib only: it runs in kiln's env and in MLflow's.

Every scenario script takes its fresh working directory as the first argument (it is
also the script's working directory) and prints one JSON line of results last.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Iterator
from typing import Any

SEARCH_FILTER = "metrics.acc > 0.5 and params.model = 'rf'"
MODELS = ("rf", "lr", "gbm", "svm")


def kiln_store(workdir: str) -> str:
    """The kiln store (a folder holding kiln.db) inside a working directory."""
    return os.path.join(workdir, "kiln")


def mlflow_uri(workdir: str) -> str:
    """The MLflow SQLite tracking URI inside a working directory."""
    return "sqlite:///" + os.path.join(os.path.abspath(workdir), "mlflow.db")


def emit(**fields: Any) -> None:
    """Print the results as the last line of output."""
    print(json.dumps(fields), flush=True)


def wait_for_go() -> None:
    """Tell the harness this process is ready, then block until every writer is."""
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("the harness did not send 'go'")


def search_dataset(n: int, seed: int = 0) -> Iterator[tuple[str, dict[str, Any], dict[str, float]]]:
    """The runs of the search scenario, the same for both tools: (name, params, metrics)."""
    rng = random.Random(seed)
    for i in range(n):
        params = {
            "model": rng.choice(MODELS),
            "max_depth": rng.randint(2, 12),
            "n_estimators": rng.choice((50, 100, 200, 400)),
            "lr": round(rng.uniform(0.01, 0.3), 3),
            "seed": i,
        }
        metrics = {k: rng.random() for k in ("acc", "f1", "auc", "loss", "recall")}
        yield f"run-{i}", params, metrics


def expected_search(n: int) -> tuple[int, float]:
    """How many runs SEARCH_FILTER matches and the best acc among them."""
    accs = [m["acc"] for _, p, m in search_dataset(n) if m["acc"] > 0.5 and p["model"] == "rf"]
    return len(accs), max(accs)
