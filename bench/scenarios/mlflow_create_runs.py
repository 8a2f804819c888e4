"""c. Create N runs, each with 5 params and 5 metrics, through the fluent API (SQLite).

Usage: mlflow_create_runs.py WORKDIR N
"""

import sys
import time

import mlflow
from _child import emit, mlflow_uri

workdir, n = sys.argv[1], int(sys.argv[2])
mlflow.set_tracking_uri(mlflow_uri(workdir))
experiment = mlflow.set_experiment("bench")  # the store and experiment exist before timing
t0 = time.perf_counter()
for i in range(n):
    with mlflow.start_run():
        mlflow.log_params({"model": "rf", "max_depth": 6, "lr": 0.1, "fold": i % 5, "seed": i})
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8, "auc": 0.95, "loss": 0.3, "recall": 0.7})
seconds = time.perf_counter() - t0
found = mlflow.MlflowClient().search_runs([experiment.experiment_id], max_results=n + 10)
assert len(found) == n
emit(runs=n, seconds=seconds, rate=n / seconds)
