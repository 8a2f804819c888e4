"""h. Train the breast-cancer pipeline once and save it for every server (untimed set-up).

Writes into WORKDIR: `kiln-model/` (kiln's saved model), `pipeline.pkl` (the same fitted
pipeline, for MLflow's folder and the FastAPI endpoint), `record.json` (one row as a
JSON record) and `split.json` (the same row in MLflow's `dataframe_split` form).

Usage: kiln_serve_prepare.py WORKDIR
"""

import json
import os
import pickle
import sys

from _child import emit
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import kiln

workdir = sys.argv[1]
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = kiln.Model(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))).fit(X, y)
model.save(os.path.join(workdir, "kiln-model"))
with open(os.path.join(workdir, "pipeline.pkl"), "wb") as fh:
    pickle.dump(model.estimator_, fh, protocol=pickle.HIGHEST_PROTOCOL)
row = X.iloc[[7]]
with open(os.path.join(workdir, "record.json"), "w") as fh:
    json.dump(row.iloc[0].to_dict(), fh)
with open(os.path.join(workdir, "split.json"), "w") as fh:
    json.dump(
        {"dataframe_split": {"columns": list(row.columns), "data": row.to_numpy().tolist()}}, fh
    )
emit(prediction=int(model.predict(row)[0]))
