"""g. Train the pipeline and save it with MLflow (untimed set-up, once per session).

MLflow's documented path: `mlflow.sklearn.log_model(pipeline, name="model",
signature=..., input_example=...)` inside a run on a SQLite tracking store, then
`mlflow.pyfunc.load_model(model_info.model_uri)` (a `models:/m-...` URI). The same model
is also written with `mlflow.sklearn.save_model` to the folder `mlflow-model/`, and
`rows.json` and `pipeline.pkl` as in kiln_model_save.py (the harness checks both
`rows.json` files are identical).

Usage: mlflow_model_save.py WORKDIR
"""

import os
import pickle
import sys
import time
from importlib.metadata import version

import mlflow
from _child import emit, mlflow_uri
from _modeldata import dataset, pipeline, write_rows
from mlflow.models import infer_signature

workdir = sys.argv[1]
X, y, held_out = dataset()
mlflow.set_tracking_uri(mlflow_uri(workdir))
mlflow.set_experiment("models")
t0 = time.perf_counter()
with mlflow.start_run() as run:
    fitted = pipeline().fit(X, y)
    signature = infer_signature(X, fitted.predict(X))
    info = mlflow.sklearn.log_model(
        fitted, name="model", signature=signature, input_example=X.head(3)
    )
seconds = time.perf_counter() - t0
folder = os.path.join(workdir, "mlflow-model")
mlflow.sklearn.save_model(fitted, folder, signature=signature, input_example=X.head(3))
write_rows(os.path.join(workdir, "rows.json"), held_out, fitted.predict(held_out))
with open(os.path.join(workdir, "pipeline.pkl"), "wb") as fh:  # for the floor only
    pickle.dump(fitted, fh, protocol=pickle.HIGHEST_PROTOCOL)
flavor = mlflow.models.Model.load(folder).flavors["sklearn"]
files = {f: os.path.getsize(os.path.join(folder, f)) for f in sorted(os.listdir(folder))}
emit(
    uri=info.model_uri,
    run_uri=f"runs:/{run.info.run_id}/model",
    folder=folder,
    seconds=seconds,
    accuracy=float(fitted.score(X, y)),
    serialization=flavor.get("serialization_format"),
    files=files,
    sklearn=version("scikit-learn"),
    skops=version("skops"),
    pandas=version("pandas"),
    numpy=version("numpy"),
)
