"""g. The floor of a fresh load + predict: no tool, just the library calls.

Run with each tool's env on the files that tool's set-up wrote. FORMAT `skops`:
`skops.io.load` of the tool's model.skops (the format both tools use for scikit-learn),
allowing the types it reports as untrusted, as kiln and MLflow do; FORMAT `pickle`:
`pickle.load` of the same fitted pipeline, which imports only the classes it holds.
Timed like the tools' scripts.

Usage: bare_load_predict.py WORKDIR PREPARED FORMAT FILE
"""

import time

t0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import pandas as pd  # noqa: E402
from _child import emit  # noqa: E402

t1 = time.perf_counter()
prepared, fmt, path = sys.argv[2], sys.argv[3], sys.argv[4]
with open(os.path.join(prepared, "rows.json"), encoding="utf-8") as fh:
    record = json.load(fh)["records"][0]
frame = pd.DataFrame([record])
if fmt == "skops":
    import skops.io as sio

    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
else:
    import pickle

    with open(path, "rb") as fh:
        model = pickle.load(fh)
t2 = time.perf_counter()
prediction = model.predict(frame)
t3 = time.perf_counter()
emit(prediction=int(prediction[0]), imports=t1 - t0, load=t2 - t1, predict=t3 - t2, script=t3 - t0)
