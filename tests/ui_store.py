"""A small store for the dashboard tests, written through kiln's own API (seed 0)."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

XSS = "<script>alert(1)</script>"
N_POINTS = 120_000


def sweep_objective(alpha: float, depth: int) -> dict[str, float]:
    """A sweep trial: a score that peaks at alpha=0.3, depth=5."""
    return {"acc": 1.0 - (alpha - 0.3) ** 2 - 0.01 * (depth - 5) ** 2}


def load() -> list[float]:
    """A pipeline step: the data."""
    return [1.0, 2.0, 3.0]


def train(load: list[float], alpha: float) -> float:
    """A pipeline step: a score, logged as a metric of the step's run."""
    import kiln

    score = sum(load) * alpha
    kiln.log_metric("score", score)
    return score


def populate(store: str, folder: Path) -> dict[str, Any]:
    """Three experiments, runs with params/metrics/tags, a failed run, a long metric
    series with one spike, a run named with a script tag, a sweep's trials."""
    import kiln
    from kiln.tracking import TrackingClient

    rng = random.Random(0)
    kiln.configure(store)
    ids: dict[str, Any] = {"churn": []}
    for i in range(12):
        model = ["rf", "lr", "gbm"][i % 3]
        with kiln.start_run(f"churn-{i:02d}", experiment="churn") as run:
            run.log_params({"alpha": round(0.05 * (i + 1), 2), "model": model, "depth": 3 + i % 4})
            for step in range(5):
                run.log_metric("acc", 0.5 + 0.04 * i + 0.01 * step + rng.random() * 1e-3, step=step)
                run.log_metric("loss", 1.0 / (1 + i + step), step=step)
            run.log_metric("system/cpu_percent", 10.0 + i)
            run.set_tags({"team": "growth" if i % 2 else "core"})
        ids["churn"].append(run.id)
    with kiln.start_run(f"xss {XSS}", experiment="churn") as run:
        run.log_params({"note": XSS, "alpha": 0.99})
        run.log_metric("acc", 0.1)
        run.set_tags({"team": XSS})
        (folder / "report.txt").write_text("hello", encoding="utf-8")
        run.log_artifact(str(folder / "report.txt"))
    ids["xss"] = run.id
    try:
        with kiln.start_run("broken", experiment="fraud") as run:
            run.log_params({"alpha": 0.5})
            raise ValueError("the data had no rows")
    except ValueError:
        pass
    ids["failed"] = run.id
    with kiln.start_run("long", experiment="fraud") as run:
        client = TrackingClient(store)
        values = [
            ("loss", 1.0 / (1.0 + s / 1000.0) + 0.001 * math.sin(s), s, None)
            for s in range(N_POINTS)
        ]
        values[N_POINTS // 3] = ("loss", 100.0, N_POINTS // 3, None)  # the one spike
        run.log_metrics({"acc": 0.7})
    client.log_metrics(run.id, values)
    client.flush()
    ids["long"] = run.id
    found = kiln.sweep(
        sweep_objective,
        {"alpha": [0.1, 0.3, 0.6], "depth": [3, 5]},
        objective="acc",
        experiment="tuning",
    )
    ids["sweep"] = found.run_id
    ids["trials"] = [t.run_id for t in found.trials]
    from kiln.pipeline import Pipeline

    pipeline = Pipeline([load, train], name="toy", root=folder)
    pipeline.run({"alpha": 0.5}, experiment="toy")
    ids["pipeline"] = pipeline.run({"alpha": 0.5}, experiment="toy").run_id  # cache hits
    kiln.flush()
    return ids
