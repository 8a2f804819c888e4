"""d. Fill an MLflow SQLite store with the search scenario's runs (untimed set-up).

MLflow's client creates ~35 runs/s here, so 10,000 runs would take minutes: this writes
the same rows `create_run` + `log_batch` + `set_terminated` would, through MLflow's own
SQLAlchemy models in one transaction, then checks them with MLflow's API.

Usage: mlflow_populate.py WORKDIR N
"""

import sys
import time
import uuid

import mlflow
from _child import emit, mlflow_uri, search_dataset
from mlflow.store.tracking.dbmodels.models import (
    SqlLatestMetric,
    SqlMetric,
    SqlParam,
    SqlRun,
    SqlTag,
)
from mlflow.tracking._tracking_service.utils import _get_store

workdir, n = sys.argv[1], int(sys.argv[2])
mlflow.set_tracking_uri(mlflow_uri(workdir))
experiment = mlflow.set_experiment("bench")
store = _get_store()
t0 = time.perf_counter()
runs, tags, params, metrics = [], [], [], []
now = int(time.time() * 1000)
for i, (name, run_params, run_metrics) in enumerate(search_dataset(n)):
    run_id = uuid.uuid4().hex
    runs.append(
        {
            "run_uuid": run_id,
            "name": name,
            "source_type": "UNKNOWN",
            "source_name": "",
            "entry_point_name": "",
            "user_id": "bench",
            "status": "FINISHED",
            "start_time": now + i,
            "end_time": now + i + 1,
            "deleted_time": None,
            "source_version": "",
            "lifecycle_stage": "active",
            "artifact_uri": f"{experiment.artifact_location}/{run_id}/artifacts",
            "experiment_id": int(experiment.experiment_id),
        }
    )
    tags += [
        {"run_uuid": run_id, "key": "mlflow.runName", "value": name},
        {"run_uuid": run_id, "key": "mlflow.user", "value": "bench"},
    ]
    params += [{"run_uuid": run_id, "key": k, "value": str(v)} for k, v in run_params.items()]
    metrics += [
        {"run_uuid": run_id, "key": k, "value": v, "timestamp": now + i, "step": 0, "is_nan": False}
        for k, v in run_metrics.items()
    ]
with store.engine.begin() as conn:
    conn.execute(SqlRun.__table__.insert(), runs)
    conn.execute(SqlTag.__table__.insert(), tags)
    conn.execute(SqlParam.__table__.insert(), params)
    conn.execute(SqlMetric.__table__.insert(), metrics)
    conn.execute(SqlLatestMetric.__table__.insert(), metrics)
seconds = time.perf_counter() - t0
check = mlflow.get_run(runs[-1]["run_uuid"])
assert check.data.metrics == run_metrics  # the last run's, as MLflow reads them back
assert check.data.params == {k: str(v) for k, v in run_params.items()}
assert check.info.run_name == name
store.engine.dispose()
emit(runs=n, seconds=seconds, rate=n / seconds)
