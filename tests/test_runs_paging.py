"""TrackingClient.search_runs_page: keyset pages that walk exactly search_runs' order."""

from __future__ import annotations

import random

import pytest

from kiln._exceptions import TrackingError
from kiln.tracking import TrackingClient


@pytest.fixture
def tracking(store_url: str) -> TrackingClient:
    """100 runs in two experiments; some lack the metric, param or tag (seed 0); on
    SQLite and on PostgreSQL."""
    tracking = TrackingClient(store_url)
    rng = random.Random(0)
    for i in range(100):
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


def test_pages_walk_the_same_order_as_search_runs(tracking: TrackingClient) -> None:
    for order in ORDERS:
        for filter in (None, "metrics.acc > 0.55", "params.alpha = 'auto'"):
            whole = [r.id for r in tracking.search_runs(filter=filter, order_by=order)]
            seen: list[str] = []
            cursor = None
            pages = 0
            while True:
                runs, cursor = tracking.search_runs_page(None, filter, order, 7, cursor)
                seen += [r.id for r in runs]
                pages += 1
                if cursor is None:
                    break
            assert seen == whole, (order, filter)
            assert pages == max(1, -(-len(whole) // 7))


def test_a_page_of_one_experiment_and_its_full_runs(tracking: TrackingClient) -> None:
    runs, cursor = tracking.search_runs_page("a", None, "metrics.acc desc", 5)
    assert {r.experiment for r in runs} == {"a"}
    assert cursor is not None
    assert runs[0].metrics["acc"] == max(
        r.metrics["acc"] for r in tracking.search_runs("a") if "acc" in r.metrics
    )


def test_a_cursor_is_checked_against_its_order(tracking: TrackingClient) -> None:
    _runs, cursor = tracking.search_runs_page(None, None, "metrics.acc desc", 5)
    assert cursor is not None
    with pytest.raises(TrackingError, match=r"made for the order 'metrics\.acc desc', not 'name'"):
        tracking.search_runs_page(None, None, "name", 5, cursor)
    with pytest.raises(TrackingError, match="is not a page cursor"):
        tracking.search_runs_page(None, None, None, 5, "%%%")
    with pytest.raises(TrackingError, match="limit must be an integer from 1 to 10,000"):
        tracking.search_runs_page(limit=0)
