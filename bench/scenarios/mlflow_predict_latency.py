"""g. One-row predict latency of a loaded pyfunc model, in the process, after warm-up.

Times, call by call in turn: `pyfunc_model.predict(one-row DataFrame)` (with MLflow's
schema enforcement against the logged signature), `pyfunc_model.predict(dict record)`,
and the bare scikit-learn `pipeline.predict(one-row DataFrame)` (from
`get_raw_model()`) as the floor. Every held-out row's prediction is checked first.

Usage: mlflow_predict_latency.py WORKDIR PREPARED URI CALLS WARMUP
"""

import sys

import mlflow
import pandas as pd
from _child import emit, mlflow_uri
from _modeldata import check, read_rows, time_calls

prepared, uri, calls, warmup = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
mlflow.set_tracking_uri(mlflow_uri(prepared))
model = mlflow.pyfunc.load_model(uri)
bare = model.get_raw_model()
records, expected = read_rows(prepared)
frames = [pd.DataFrame([r]) for r in records]
check("pyfunc frame", model.predict, frames, expected)
check("pyfunc record", model.predict, records, expected)
check("bare sklearn", bare.predict, frames, expected)
cases = {
    "frame": (model.predict, frames),
    "record": (model.predict, records),
    "bare": (bare.predict, frames),
}
emit(calls=calls, **time_calls(cases, calls, warmup))
