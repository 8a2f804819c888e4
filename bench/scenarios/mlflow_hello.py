"""f. Hello world in a fresh process: a new SQLite store, one run with one metric.

Usage: mlflow_hello.py WORKDIR
"""

import sys

import mlflow
from _child import emit, mlflow_uri

mlflow.set_tracking_uri(mlflow_uri(sys.argv[1]))
mlflow.set_experiment("hello")
with mlflow.start_run() as run:
    mlflow.log_metric("acc", 0.93)
emit(run_id=run.info.run_id)
