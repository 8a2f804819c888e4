"""b. Create the MLflow SQLite store and the experiment before the concurrent writers start.

Several MLflow processes creating one new SQLite store at once crash on a migration race.

Usage: mlflow_init.py WORKDIR
"""

import sys

import mlflow
from _child import emit, mlflow_uri

mlflow.set_tracking_uri(mlflow_uri(sys.argv[1]))
mlflow.set_experiment("bench")
emit(ok=True)
