"""a. N metric values through `MlflowClient().log_batch`, BATCH per call, timed to the run's end.

Usage: mlflow_log_batch.py WORKDIR N BATCH
"""

import sys
import time

import mlflow
from _child import emit, mlflow_uri
from mlflow.entities import Metric

workdir, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mlflow.set_tracking_uri(mlflow_uri(workdir))
client = mlflow.MlflowClient()
experiment = mlflow.set_experiment("bench")  # create the store outside the timed part
run_id = client.create_run(experiment.experiment_id).info.run_id
t0 = time.perf_counter()
for start in range(0, n, batch):
    stamp = int(time.time() * 1000)
    metrics = [Metric("loss", 1.0 / (i + 1), stamp, i) for i in range(start, min(n, start + batch))]
    client.log_batch(run_id, metrics=metrics)
client.set_terminated(run_id)
seconds = time.perf_counter() - t0
assert len(client.get_metric_history(run_id, "loss")) == n
emit(calls=n, seconds=seconds, rate=n / seconds)
