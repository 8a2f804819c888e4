"""h. The plain FastAPI endpoint a tutorial would write, in MLflow's env (it has fastapi).

A pydantic model of the 30 features, a one-row DataFrame, `model.predict`. The fitted
pipeline is read from the pickle named by BENCH_PIPELINE. Run under uvicorn:
`python -m uvicorn fastapi_app:app --app-dir <scenarios>`.
"""

import os
import pickle

import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, create_model
from sklearn.datasets import load_breast_cancer

with open(os.environ["BENCH_PIPELINE"], "rb") as fh:
    model = pickle.load(fh)

FEATURES = list(load_breast_cancer(as_frame=True).data.columns)


class _Base(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


# The names have spaces ("mean radius"), so each field takes its name as an alias.
Features = create_model(
    "Features",
    __base__=_Base,
    **{name.replace(" ", "_"): (float, Field(alias=name)) for name in FEATURES},
)

app = FastAPI()


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/predict")
def predict(features: Features) -> dict:  # type: ignore[valid-type]
    frame = pd.DataFrame([features.model_dump(by_alias=True)])  # type: ignore[attr-defined]
    return {"prediction": int(model.predict(frame)[0])}
