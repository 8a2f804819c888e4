"""g. Train the pipeline and save it with kiln (untimed set-up, once per session).

Writes into WORKDIR: the kiln store `kiln/` holding a run with the model
(`model.save()` inside `kiln.start_run()`), the same model saved to the folder
`kiln-model/` (`model.save(path)`), `rows.json`: the held-out rows and the bare
pipeline's predictions for them, which the timed scripts check against, and
`pipeline.pkl`, the fitted pipeline pickled, for the floor (bare_load_predict.py).

Usage: kiln_model_save.py WORKDIR
"""

import json
import os
import pickle
import sys
import time
from importlib.metadata import version

from _child import emit, kiln_store
from _modeldata import dataset, pipeline, write_rows

import kiln
from kiln.store import Store

workdir = sys.argv[1]
X, y, held_out = dataset()
kiln.configure(store=kiln_store(workdir))
t0 = time.perf_counter()
with kiln.start_run(experiment="models"):
    model = kiln.Model(pipeline()).fit(X, y)
    uri = model.save()
kiln.flush()
seconds = time.perf_counter() - t0
folder = model.save(os.path.join(workdir, "kiln-model"))
write_rows(os.path.join(workdir, "rows.json"), held_out, model.estimator_.predict(held_out))
with open(os.path.join(workdir, "pipeline.pkl"), "wb") as fh:  # for the floor only
    pickle.dump(model.estimator_, fh, protocol=pickle.HIGHEST_PROTOCOL)
with open(os.path.join(folder, "kiln-model.json"), encoding="utf-8") as fh:
    manifest = json.load(fh)
Store.close_all()  # checkpoint the WAL: the timed processes open a settled store
files = {f: os.path.getsize(os.path.join(folder, f)) for f in sorted(os.listdir(folder))}
emit(
    uri=uri,
    folder=folder,
    seconds=seconds,
    accuracy=float(model.estimator_.score(X, y)),
    serialization=manifest["serialization"],
    files=files,
    sklearn=version("scikit-learn"),
    skops=version("skops"),
    pandas=version("pandas"),
    numpy=version("numpy"),
)
