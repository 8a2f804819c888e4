"""m. Evidently's data drift report on the same two Parquet files, as DataFrames.

Untimed: imports and `pandas.read_parquet` of both files (Evidently takes DataFrames).
Timed: `Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)`, which
computes every column's drift (and builds the report's plots). The drifted columns
are read from the snapshot afterwards, untimed.

Usage: evidently_monitor.py WORKDIR REFERENCE CURRENT   (Evidently's own env)
"""

import sys
import time
import warnings

t_start = time.perf_counter()
import pandas as pd  # noqa: E402
from _child import emit  # noqa: E402
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

reference = pd.read_parquet(sys.argv[2])
current = pd.read_parquet(sys.argv[3])
t_setup = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    snapshot = Report([DataDriftPreset()]).run(reference_data=reference, current_data=current)
t_end = time.perf_counter()
drifted, methods = [], set()
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if not config["type"].endswith(":ValueDrift"):
        continue
    method = config["method"]
    methods.add(method)
    # p-value tests drift below the threshold, distances at or above it.
    is_p_value = "p_value" in method.lower() or "test" in method.lower()
    value = metric["value"]
    if (value < config["threshold"]) if is_p_value else (value >= config["threshold"]):
        drifted.append(config["column"])
order = list(reference.columns)
emit(
    seconds=t_end - t_setup,
    setup=t_setup - t_start,
    columns=len(order),
    drifted=sorted(drifted, key=order.index),
    methods=sorted(methods),
)
