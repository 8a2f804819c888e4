"""u. The dashboard scenario's seeded runs and its 21 runs-page queries, for both tools.

Stdlib only: it runs in kiln's env and in MLflow's. Every run has 10 params, 10 metrics
(one value each, step 0) and 5 tags, drawn from one seeded `random.Random`. Params and
tags are compared only with `=`, `!=` and `like` on lower-case values (MLflow's filter
has no `or`, and no `in` for params or tags), so both filter languages mean the same
thing (MLflow compares params as strings; kiln compares a numeric param as a number). Every order ends on a metric (unique floats) or
on start_time, so both tools must return the same page; start_time ties (several kiln
runs start in one millisecond) are compared by value, not by run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, NamedTuple

EXPERIMENT = "bench"
LONG_EXPERIMENT = "bench-long"
LONG_KEY = "loss"
SPIKE = 1000.0  # one value far above the rest, that a downsampled chart must keep
PAGE = 50  # the dashboard's page size (kiln.ui's DEFAULT_LIMIT), MLflow's max_results

METRICS = (
    "acc",
    "f1",
    "auc",
    "loss",
    "recall",
    "precision",
    "val_loss",
    "val_acc",
    "epoch_time",
    "mem_mb",
)


def ui_dataset(
    n: int, seed: int = 17
) -> Iterator[tuple[str, dict[str, Any], dict[str, float], dict[str, str]]]:
    """The runs: (name, 10 params, 10 metrics, 5 tags), the same for both tools."""
    rng = random.Random(seed)
    for i in range(n):
        params = {
            "model": rng.choice(("rf", "lr", "gbm", "svm", "mlp")),
            "optimizer": rng.choice(("adam", "sgd", "rmsprop")),
            "max_depth": rng.randint(2, 12),
            "n_estimators": rng.choice((50, 100, 200, 400)),
            "lr": round(rng.uniform(0.001, 0.3), 4),
            "batch_size": rng.choice((32, 64, 128, 256)),
            "dropout": round(rng.uniform(0.0, 0.5), 3),
            "seed": i,
            "dataset": rng.choice(("ds-a", "ds-b", "ds-c", "ds-d", "ds-e")),
            "features": rng.choice(("all", "top10", "top50")),
        }
        metrics = {k: rng.random() for k in METRICS[:8]}
        metrics["epoch_time"] = rng.uniform(1.0, 100.0)
        metrics["mem_mb"] = rng.uniform(100.0, 4000.0)
        tags = {
            "team": rng.choice(("vision", "nlp", "tabular", "speech")),
            "stage": rng.choice(("dev", "staging", "prod")),
            "owner": f"user-{rng.randrange(50):02d}",
            "branch": rng.choice(("main", "feature-a", "feature-b", "fix-c")),
            "priority": rng.choice(("low", "medium", "high")),
        }
        yield f"run-{i}", params, metrics, tags


def long_series(points: int, seed: int = 17) -> Iterator[tuple[int, float]]:
    """The long run's metric: (step, value) for steps 0..points-1, one spike in it."""
    rng = random.Random(seed + 1)
    spike = points * 2 // 3
    for step in range(points):
        yield step, SPIKE if step == spike else 1.0 / (1 + step / 1000) + 0.05 * rng.random()


class Query(NamedTuple):
    """One runs page: kiln's `filter` and `order`, MLflow's `filter` and `order_by`.

    `by_time`: the page is ordered by start_time, so pages are compared by their start
    times (ties in a millisecond may be broken differently); else by run names.
    """

    kiln_filter: str
    kiln_order: str
    mlflow_filter: str
    mlflow_order: list[str]
    by_time: bool = False


def _same(filt: str, order: str, by_time: bool = False) -> Query:
    """A query written the same way in both languages (orders: `key dir, key dir`)."""
    mlflow_order = [
        " ".join([*p.split()[:-1], p.split()[-1].upper()]) for p in order.split(",") if p.strip()
    ]
    return Query(filt, order, filt, mlflow_order, by_time)


QUERIES: list[Query] = [
    # The runs page as it opens: no filter, newest first (both tools' default order).
    Query("", "", "", [], by_time=True),
    _same("metrics.acc > 0.9", "metrics.f1 desc"),
    _same("params.model = 'rf'", "metrics.auc desc"),
    _same("tags.team = 'vision'", "metrics.loss asc"),
    _same("metrics.loss < 0.1 and params.optimizer = 'adam'", "metrics.acc desc"),
    _same("params.dataset != 'ds-e'", "metrics.val_acc desc"),
    _same("tags.stage = 'prod' and metrics.auc > 0.5", "start_time desc", by_time=True),
    _same("params.model != 'svm' and metrics.recall >= 0.95", "metrics.precision desc"),
    _same("tags.owner like 'user-1%'", "metrics.val_loss asc"),
    _same("metrics.f1 > 0.5 and metrics.auc > 0.5 and metrics.acc > 0.5", "metrics.epoch_time asc"),
    _same("params.features = 'top10'", "params.model asc, metrics.acc desc"),
    Query(
        "tags.priority = 'high' and params.batch_size = 64",
        "metrics.mem_mb asc",
        "tags.priority = 'high' and params.batch_size = '64'",
        ["metrics.mem_mb ASC"],
    ),
    _same("metrics.precision > 0.3 and metrics.precision < 0.35", "metrics.recall desc"),
    _same("params.optimizer = 'sgd' and tags.team != 'nlp'", "metrics.f1 asc"),
    _same("metrics.val_acc > 0.99", "start_time asc", by_time=True),
    _same("params.model = 'gbm' and tags.stage != 'prod'", "metrics.val_acc desc"),
    _same("tags.branch = 'main'", "params.optimizer desc, metrics.loss asc"),
    _same("metrics.mem_mb < 500", "metrics.mem_mb desc"),
    _same(
        "params.dataset = 'ds-c' and metrics.acc > 0.7 and tags.priority != 'low'",
        "metrics.auc asc",
    ),
    _same("metrics.epoch_time > 50", "params.features asc, metrics.f1 desc"),
    Query(
        "name like 'run-99%'",
        "metrics.acc desc",
        "attributes.run_name LIKE 'run-99%'",
        ["metrics.acc DESC"],
    ),
]
"""The runs page, then 20 filtered and sorted pages, each a different query."""

WARM_UP = _same("", "start_time asc", by_time=True)
"""One query before timing (not among QUERIES; the oldest runs first, cheap for both
tools): each server's first request pays for opening the store and imports."""
