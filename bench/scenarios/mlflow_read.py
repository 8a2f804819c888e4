"""f. A second fresh process reads the hello-world run back.

Usage: mlflow_read.py WORKDIR RUN_ID
"""

import sys

import mlflow
from _child import emit, mlflow_uri

mlflow.set_tracking_uri(mlflow_uri(sys.argv[1]))
emit(value=mlflow.get_run(sys.argv[2]).data.metrics["acc"])
