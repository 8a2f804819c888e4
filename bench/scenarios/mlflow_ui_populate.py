"""u. Fill an MLflow SQLite store with the same runs as kiln's (untimed set-up).

MLflow's client creates ~35 runs/s here, so 100,000 runs would take most of an hour:
this writes the rows `create_run` + `log_batch` + `set_terminated` would, through
MLflow's own SQLAlchemy models in one transaction, with each run's start and end time
taken from kiln's copy (`times.json` from kiln_ui_populate.py), then the long run's
LONG values of one metric; then checks a run with MLflow's API.

Usage: mlflow_ui_populate.py WORKDIR N LONG TIMES_JSON
"""

import json
import sys
import time
import uuid

import mlflow
from _child import emit, mlflow_uri
from _uidata import EXPERIMENT, LONG_EXPERIMENT, LONG_KEY, long_series, ui_dataset
from mlflow.store.tracking.dbmodels.models import (
    SqlLatestMetric,
    SqlMetric,
    SqlParam,
    SqlRun,
    SqlTag,
)
from mlflow.tracking._tracking_service.utils import _get_store

workdir, n, long_points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(sys.argv[4]) as fh:
    times = json.load(fh)
mlflow.set_tracking_uri(mlflow_uri(workdir))
long_exp = mlflow.set_experiment(LONG_EXPERIMENT)
experiment = mlflow.set_experiment(EXPERIMENT)
store = _get_store()
t0 = time.perf_counter()


def run_row(run_id: str, name: str, exp: object, start: int, end: int) -> dict:
    return {
        "run_uuid": run_id,
        "name": name,
        "source_type": "UNKNOWN",
        "source_name": "",
        "entry_point_name": "",
        "user_id": "bench",
        "status": "FINISHED",
        "start_time": start,
        "end_time": end,
        "deleted_time": None,
        "source_version": "",
        "lifecycle_stage": "active",
        "artifact_uri": f"{exp.artifact_location}/{run_id}/artifacts",
        "experiment_id": int(exp.experiment_id),
    }


def name_tags(run_id: str, name: str) -> list[dict]:
    return [
        {"run_uuid": run_id, "key": "mlflow.runName", "value": name},
        {"run_uuid": run_id, "key": "mlflow.user", "value": "bench"},
    ]


runs, tags, params, metrics = [], [], [], []
for name, run_params, run_metrics, run_tags in ui_dataset(n):
    run_id = uuid.uuid4().hex
    start, end = times[name]
    runs.append(run_row(run_id, name, experiment, start, end))
    tags += name_tags(run_id, name)
    tags += [{"run_uuid": run_id, "key": k, "value": v} for k, v in run_tags.items()]
    params += [{"run_uuid": run_id, "key": k, "value": str(v)} for k, v in run_params.items()]
    metrics += [
        {"run_uuid": run_id, "key": k, "value": v, "timestamp": end, "step": 0, "is_nan": False}
        for k, v in run_metrics.items()
    ]
with store.engine.begin() as conn:
    conn.execute(SqlRun.__table__.insert(), runs)
    conn.execute(SqlTag.__table__.insert(), tags)
    conn.execute(SqlParam.__table__.insert(), params)
    conn.execute(SqlMetric.__table__.insert(), metrics)
    conn.execute(SqlLatestMetric.__table__.insert(), metrics)
seconds = time.perf_counter() - t0
last = runs[-1]["run_uuid"]
del runs, tags, params, metrics

t1 = time.perf_counter()
long_id = uuid.uuid4().hex
start, end = times["long"]
series = [
    {
        "run_uuid": long_id,
        "key": LONG_KEY,
        "value": v,
        "timestamp": end,
        "step": step,
        "is_nan": False,
    }
    for step, v in long_series(long_points)
]
with store.engine.begin() as conn:
    conn.execute(SqlRun.__table__.insert(), [run_row(long_id, "long", long_exp, start, end)])
    conn.execute(SqlTag.__table__.insert(), name_tags(long_id, "long"))
    for i in range(0, len(series), 100_000):
        conn.execute(SqlMetric.__table__.insert(), series[i : i + 100_000])
    conn.execute(SqlLatestMetric.__table__.insert(), [series[-1]])
long_seconds = time.perf_counter() - t1

check = mlflow.get_run(last)
assert check.data.metrics == run_metrics  # the last run's, as MLflow reads them back
assert check.data.params == {k: str(v) for k, v in run_params.items()}
assert check.info.run_name == name
assert check.data.tags["team"] == run_tags["team"]
store.engine.dispose()
emit(
    runs=n,
    seconds=seconds,
    rate=n / seconds,
    long_id=long_id,
    experiment_id=experiment.experiment_id,
    long_seconds=long_seconds,
)
