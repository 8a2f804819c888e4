"""g. A fresh process loads the saved model and makes one one-row prediction.

The harness times the whole process (interpreter start, imports, load, predict, exit);
the in-process split is reported too. TARGET is `runs:/<run id>/model` (read from the
kiln store in PREPARED, each file checked against its recorded sha256) or a folder.

Usage: kiln_load_predict.py WORKDIR PREPARED TARGET
"""

import time

t0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import pandas as pd  # noqa: E402
from _child import emit, kiln_store  # noqa: E402

import kiln  # noqa: E402

t1 = time.perf_counter()
prepared, target = sys.argv[2], sys.argv[3]
with open(os.path.join(prepared, "rows.json"), encoding="utf-8") as fh:
    record = json.load(fh)["records"][0]
frame = pd.DataFrame([record])
if target.startswith("runs:/"):
    kiln.configure(store=kiln_store(prepared))
model = kiln.load_model(target)
t2 = time.perf_counter()
prediction = model.predict(frame)
t3 = time.perf_counter()
emit(prediction=int(prediction[0]), imports=t1 - t0, load=t2 - t1, predict=t3 - t2, script=t3 - t0)
