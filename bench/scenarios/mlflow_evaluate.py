"""h. mlflow.models.evaluate of the same binary classifier on N_TEST rows, inside a run.

Untimed: imports, data, training, `mlflow.sklearn.log_model` and
`mlflow.pyfunc.load_model` (its evaluate takes a pyfunc model). Timed:
`mlflow.models.evaluate(pyfunc, data, targets="label", model_type="classifier")` with
the default evaluator: metrics and its plots, logged to the active run.

Usage: mlflow_evaluate.py WORKDIR N_TEST
"""

import logging
import os
import sys
import time
import warnings

t_start = time.perf_counter()
import mlflow  # noqa: E402
from _child import emit, mlflow_uri  # noqa: E402
from _evaldata import dataset, model  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402

logging.getLogger("mlflow").setLevel(logging.ERROR)
workdir, n_test = sys.argv[1], int(sys.argv[2])
X_train, y_train, X_test, y_test = dataset(n_test)
mlflow.set_tracking_uri(mlflow_uri(workdir))
mlflow.set_experiment("evaluate")
data = X_test.assign(label=y_test)
with mlflow.start_run() as run:
    fitted = model().fit(X_train, y_train)
    info = mlflow.sklearn.log_model(
        fitted, name="model", signature=infer_signature(X_train, fitted.predict(X_train))
    )
    pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    t_setup = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mlflow.models.evaluate(
            pyfunc, data, targets="label", model_type="classifier", evaluators=["default"]
        )
    t_eval = time.perf_counter()
t_end = time.perf_counter()
artifacts = mlflow.MlflowClient().list_artifacts(run.info.run_id)
emit(
    seconds=t_eval - t_setup,
    setup=t_setup - t_start,
    script=t_end - t_start,
    roc_auc=result.metrics["roc_auc"],
    accuracy=result.metrics["accuracy_score"],
    plots=len(result.artifacts),
    artifacts=len(artifacts),
    pid=os.getpid(),
)
