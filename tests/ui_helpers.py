"""A store for the dashboard's page tests, filled through kiln's public API.

One run with artifacts of every previewed kind, a registered model with two versions and
an alias moved twice (plus a prediction-log run serving it), a small pipeline run, and
two monitoring windows of the model. Names carry markup, so the tests can check that
every page escapes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

MARKUP = "<script>alert(1)</script>"
MODEL = "bc"
PIPELINE_STEPS = ["raw", "doubled", "total", "other", "after_other", "<b>marked</b>"]

PIPELINE_SOURCE = """import kiln


def raw(n):
    return list(range(n))


def doubled(raw):
    return [2 * x for x in raw]


def total(doubled):
    return sum(doubled)


def other(raw):
    return len(raw)


def after_other(other, total):
    return other + total


@kiln.step(name="<b>marked</b>")
def marked(total):
    return total
"""

NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# A notebook <b>title</b>"]},
        {
            "cell_type": "code",
            "execution_count": 1,
            "metadata": {},
            "source": ["print('hello from the notebook')"],
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": ["hello from the notebook\n"]}
            ],
        },
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}

REPORT_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>report</title></head>
<body><h1 id="r">An evaluation report</h1>
<script>document.getElementById("r").dataset.ran = "yes";</script></body></html>"""


def png_bytes() -> bytes:
    """A small real PNG (matplotlib, Agg)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [0, 1, 4])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


@dataclass
class Filled:
    """What `fill` made: the store URL and the ids the tests look up."""

    store: str
    run_id: str = ""
    pipeline_run: str = ""
    model_runs: list[str] = field(default_factory=list)
    monitoring_runs: list[str] = field(default_factory=list)
    cached_pipeline_run: str = ""
    notebook_run: str = ""


def fill(tmp: Path) -> Filled:
    """Fill a fresh SQLite store under `tmp` (about 10 s)."""
    import kiln
    import kiln.monitor
    from kiln.pipeline import Pipeline
    from kiln.registry import RegistryClient
    from kiln.tracking import TrackingClient
    from pipeline_helpers import Project
    from serve_helpers import breast_cancer, train

    store = f"sqlite:///{tmp / 'store' / 'kiln.db'}"
    out = Filled(store)
    client = TrackingClient(store)

    # A run with artifacts of every previewed kind.
    run_id = client.create_run(experiment="ui-pages", name="artifacts run")
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"x": np.arange(120), "y": rng.normal(size=120).round(3)})
    files = tmp / "files"
    (files / "plots").mkdir(parents=True)
    (files / "plots" / "curve.png").write_bytes(png_bytes())
    frame.to_csv(files / "head.csv", index=False)
    client.log_artifact(run_id, files / "plots", name="plots")
    client.log_artifact(run_id, files / "head.csv", name="data/head.csv")
    client.log_artifact(run_id, frame, name="data/frame.parquet")
    client.log_artifact(run_id, {"alpha": 0.5, "nested": {"ok": True}}, name="summary.json")
    client.log_text(run_id, REPORT_HTML, "evaluation/report.html")
    client.log_text(run_id, json.dumps(NOTEBOOK), "notebook/analysis.ipynb")
    client.log_text(run_id, "plain text\nsecond line\n", "notes.txt")
    client.log_text(run_id, "markup in a name", f"{MARKUP}.txt")
    client.end_run(run_id)
    out.run_id = run_id

    # An executed notebook (kiln stores its page beside it).
    import kiln.notebooks
    from nbutil import write_nb

    notebook = write_nb(tmp / "analysis.ipynb", "x = 2", "print('hello from a kernel', x * 21)")
    out.notebook_run = kiln.notebooks.run_notebook(notebook, store=store, experiment="nb").run_id

    # A registered model: two versions, an alias moved twice; a prediction-log run.
    registry = RegistryClient(client)
    for i, c in enumerate((1.0, 0.1)):
        folder = train(tmp / f"model{i}", C=c)
        mrun = client.create_run(experiment="ui-models", name=f"train C={c} {MARKUP}")
        client.log_params(mrun, {"C": c})
        client.log_dataset(mrun, breast_cancer()[0], name="breast_cancer", role="train")
        client.log_artifact(mrun, folder, name="model")
        client.log_text(mrun, REPORT_HTML, "evaluation/report.html")
        client.end_run(mrun)
        client.flush()
        registry.register(f"runs:/{mrun}/model", MODEL, description=f"model {MARKUP}")
        out.model_runs.append(mrun)
    registry.set_alias(MODEL, "production", 1)
    registry.set_alias(MODEL, "production", 2)
    registry.set_alias(MODEL, "production", 1)
    registry.set_alias(MODEL, "candidate", 2)
    serving = client.create_run(
        experiment="kiln-serving",
        name=f"serve models:/{MODEL}@production",
        tags={"kiln.serving.model_uri": f"models:/{MODEL}@production", "kiln.serving.rate": "1.0"},
    )
    client.end_run(serving)

    # A pipeline run, and one whose step name carries markup.
    kiln.configure(store)
    project = Project(tmp / "project", PIPELINE_SOURCE, {"n": 4})
    pipe = Pipeline.from_module(project.module, root=str(project.root), name=f"small {MARKUP}")
    out.pipeline_run = pipe.run().run_id
    out.cached_pipeline_run = pipe.run().run_id  # every step a cache hit

    # Two monitoring windows of version 2, labelled (performance); the second drifted.
    X, y = breast_cancer()
    model = kiln.load_model(f"models:/{MODEL}/2")
    shifted = X.copy()
    for col in ("mean radius", "mean texture"):
        shifted[col] = shifted[col] + X[col].std()
    for current in (X.sample(200, random_state=1), shifted):
        current = current.copy()
        current["kiln_prediction"] = model.predict(X.loc[current.index])
        current["row_id"] = current.index
        labels = pd.DataFrame({"row_id": current.index, "label": y.loc[current.index].values})
        report = kiln.monitor.monitor(
            f"models:/{MODEL}/2", current, labels=labels, on="row_id", experiment="monitoring"
        )
        out.monitoring_runs.append(str(report.run_id))
    kiln.flush()
    client.flush()
    return out
