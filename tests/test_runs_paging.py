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


def _check_pages(
    tracking: TrackingClient, experiment: str | None, filter: str | None, order: str | None
) -> None:
    """Every page of 7, cursor after cursor, is search_runs' order cut in sevens."""
    whole = [r.id for r in tracking.search_runs(experiment, filter=filter, order_by=order)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        runs, cursor = tracking.search_runs_page(experiment, filter, order, 7, cursor)
        seen += [r.id for r in runs]
        pages += 1
        if cursor is None:
            break
    assert seen == whole, (experiment, filter, order)
    assert pages == max(1, -(-len(whole) // 7))


def test_pages_walk_the_same_order_as_search_runs(tracking: TrackingClient) -> None:
    for order in ORDERS:
        for filter in (None, "metrics.acc > 0.55", "params.alpha = 'auto'"):
            _check_pages(tracking, None, filter, order)


# Pages SQLite reads by walking an index in their order (a metric's or a tag's values,
# one experiment's start times), testing each run's metrics, params and tags as it goes;
# a filter's own bounds on the order's metric seek within that index.
WALKED = [
    ("a", None, None),
    ("a", "metrics.acc > 0.55 and tags.team != 'v'", "start_time"),
    ("b", "params.alpha is null or params.alpha > 0.2", "start_time desc"),
    (None, "metrics.acc > 0.55 and metrics.acc <= 0.7", "metrics.acc desc"),
    ("a", "metrics.acc >= 0.6 and not (params.alpha = 'auto')", "metrics.acc"),
    (None, "metrics.acc = 0.6", "metrics.acc desc, name"),
    ("a", "tags.team is null or params.alpha != 'auto'", "tags.team desc"),
    (None, "tags.team = 'u' and metrics.acc is not null", "tags.team, metrics.acc desc"),
    ("b", "name like 'r1%' and status = 'finished'", "metrics.acc"),
]


@pytest.mark.parametrize("walk", ["walked", "sets"])
def test_walked_pages_and_the_plan_they_fall_back_to_give_the_same_pages(
    tracking: TrackingClient, walk: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if walk == "sets":
        # A walk that runs out of time (a filter that matches few of the runs walked)
        # is stopped and the page read by building each term's set of runs instead.
        monkeypatch.setattr("kiln.tracking._reads._WALK_BUDGET", 0)
    for experiment, filter, order in WALKED:
        _check_pages(tracking, experiment, filter, order)


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
