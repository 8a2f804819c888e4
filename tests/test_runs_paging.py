"""TrackingClient.search_runs_page: keyset pages that walk exactly search_runs' order."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kiln._exceptions import TrackingError
from kiln.tracking import TrackingClient


@pytest.fixture
def client(tmp_path: Path) -> TrackingClient:
    """150 runs in two experiments; some lack the metric, param or tag (seed 0)."""
    tracking = TrackingClient(f"sqlite:///{tmp_path / 'kiln.db'}")
    rng = random.Random(0)
    for i in range(150):
        run = tracking.create_run(experiment=rng.choice(["a", "b"]), name=f"r{i % 40}")
        if rng.random() < 0.8:
            tracking.log_params(run, {"alpha": rng.choice([0.1, 0.5, 1, "auto"])})
        if rng.random() < 0.7:
            tracking.log_metric(run, "acc", rng.choice([0.5, 0.6, 0.7, rng.random()]))
        if rng.random() < 0.5:
            tracking.set_tags(run, {"team": rng.choice(["u", "v"])})
        tracking.end_run(run, rng.choice(["finished", "failed"]))
    tracking.flush()
    return tracking


ORDERS = [
    None,
    "metrics.acc desc",
    "metrics.acc",
    "params.alpha desc, tags.team",
    "tags.team desc, metrics.acc",
    "status, name desc",
    "experiment, metrics.acc desc",
]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("filter", [None, "metrics.acc > 0.55", "params.alpha = 'auto'"])
def test_pages_walk_the_same_order_as_search_runs(
    client: TrackingClient, order: str | None, filter: str | None
) -> None:
    whole = [r.id for r in client.search_runs(filter=filter, order_by=order)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        runs, cursor = client.search_runs_page(None, filter, order, 7, cursor)
        seen += [r.id for r in runs]
        pages += 1
        if cursor is None:
            break
    assert seen == whole
    assert pages == max(1, -(-len(whole) // 7))


def test_a_page_of_one_experiment_and_its_full_runs(client: TrackingClient) -> None:
    runs, cursor = client.search_runs_page("a", None, "metrics.acc desc", 5)
    assert {r.experiment for r in runs} == {"a"}
    assert cursor is not None
    assert runs[0].metrics["acc"] == max(
        r.metrics["acc"] for r in client.search_runs("a") if "acc" in r.metrics
    )


def test_a_cursor_is_checked_against_its_order(client: TrackingClient) -> None:
    _runs, cursor = client.search_runs_page(None, None, "metrics.acc desc", 5)
    assert cursor is not None
    with pytest.raises(TrackingError, match=r"made for the order 'metrics\.acc desc', not 'name'"):
        client.search_runs_page(None, None, "name", 5, cursor)
    with pytest.raises(TrackingError, match="is not a page cursor"):
        client.search_runs_page(None, None, None, 5, "%%%")
    with pytest.raises(TrackingError, match="limit must be an integer from 1 to 10,000"):
        client.search_runs_page(limit=0)
