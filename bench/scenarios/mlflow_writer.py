"""b. One of several concurrent writers: N `mlflow.log_metric` calls into its own run.

Timing starts when the harness says go (every writer has imported MLflow and started
its run by then) and ends with the run. Wall-clock stamps let the harness combine writers.

Usage: mlflow_writer.py WORKDIR N
"""

import sys
import time

import mlflow
from _child import emit, mlflow_uri, wait_for_go

workdir, n = sys.argv[1], int(sys.argv[2])
mlflow.set_tracking_uri(mlflow_uri(workdir))
mlflow.set_experiment("bench")
run = mlflow.start_run()
wait_for_go()
start = time.time()
for i in range(n):
    mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
mlflow.end_run()
end = time.time()
assert len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")) == n
emit(calls=n, start=start, end=end, rate=n / (end - start))
