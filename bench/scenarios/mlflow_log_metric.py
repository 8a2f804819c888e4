"""a. N `mlflow.log_metric` calls in one run (SQLite store), timed to the run's end.

Usage: mlflow_log_metric.py WORKDIR N
"""

import sys
import time

import mlflow
from _child import emit, mlflow_uri

workdir, n = sys.argv[1], int(sys.argv[2])
mlflow.set_tracking_uri(mlflow_uri(workdir))
mlflow.set_experiment("bench")  # create the store (migrations) outside the timed part
run = mlflow.start_run()
t0 = time.perf_counter()
for i in range(n):
    mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
mlflow.end_run()
seconds = time.perf_counter() - t0
assert len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")) == n
emit(calls=n, seconds=seconds, rate=n / seconds)
