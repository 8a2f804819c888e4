"""h. Save the prepared pipeline as an MLflow model folder (untimed set-up).

MLflow's documented path for a served model: `mlflow.sklearn.save_model(pipeline,
folder, signature=infer_signature(X, predictions))`, then `mlflow models serve -m folder`.

Usage: mlflow_serve_prepare.py WORKDIR PREPARED
"""

import os
import pickle
import sys

import mlflow
from _child import emit
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer

prepared = sys.argv[2]
with open(os.path.join(prepared, "pipeline.pkl"), "rb") as fh:
    pipeline = pickle.load(fh)
X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
signature = infer_signature(X, pipeline.predict(X))
mlflow.sklearn.save_model(pipeline, os.path.join(prepared, "mlflow-model"), signature=signature)
emit(prediction=int(pipeline.predict(X.iloc[[7]])[0]))
