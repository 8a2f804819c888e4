"""g. One-row predict latency of a loaded model, in the process, after warm-up.

Times, call by call in turn: `model.predict(one-row DataFrame)` (validated against the
training signature), `model.predict(dict record)` (the serving path), and the bare
scikit-learn `pipeline.predict(one-row DataFrame)` as the floor. Every held-out row's
prediction is checked first.

Usage: kiln_predict_latency.py WORKDIR PREPARED URI CALLS WARMUP
"""

import sys

import pandas as pd
from _child import emit, kiln_store
from _modeldata import check, read_rows, time_calls

import kiln

prepared, uri, calls, warmup = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
kiln.configure(store=kiln_store(prepared))
model = kiln.load_model(uri)
bare = model.estimator_
records, expected = read_rows(prepared)
frames = [pd.DataFrame([r]) for r in records]
check("kiln frame", model.predict, frames, expected)
check("kiln record", model.predict, records, expected)
check("bare sklearn", bare.predict, frames, expected)
cases = {
    "frame": (model.predict, frames),
    "record": (model.predict, records),
    "bare": (bare.predict, frames),
}
emit(calls=calls, **time_calls(cases, calls, warmup))
