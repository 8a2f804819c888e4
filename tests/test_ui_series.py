"""The dashboard's metric downsampling: bounded points, spikes kept, one statement."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from kiln.tracking import TrackingClient
from kiln.ui._series import _generic, downsample

N = 50_000


@pytest.fixture
def series(tmp_path: Path) -> tuple[TrackingClient, str]:
    tracking = TrackingClient(f"sqlite:///{tmp_path / 'kiln.db'}")
    run = tracking.create_run(experiment="s")
    rows = [("loss", 2.0 + math.sin(s / 500.0), s * 3, None) for s in range(N)]
    rows[12_345] = ("loss", -40.0, 12_345 * 3, None)  # one downward spike
    rows[33_333] = ("loss", 90.0, 33_333 * 3, None)  # one upward spike
    tracking.log_metrics(run, rows)
    tracking.log_metrics(run, [("short", float(v), None, None) for v in (3, 1, 2)])
    tracking.end_run(run)
    tracking.flush()
    return tracking, run


@pytest.mark.parametrize("points", [1, 10, 250, 1000])
def test_each_bucket_keeps_its_extremes_so_spikes_survive(
    series: tuple[TrackingClient, str], points: int
) -> None:
    tracking, run = series
    got = downsample(tracking.store, run, "loss", points)
    assert got.total == N
    assert len(got.steps) <= 2 * points
    assert got.steps == sorted(got.steps)
    assert min(got.values) == -40.0
    assert got.steps[got.values.index(-40.0)] == 12_345 * 3
    assert max(got.values) == 90.0
    assert got.steps[got.values.index(90.0)] == 33_333 * 3
    with tracking.store.read() as conn:  # the portable (window-function) query agrees
        generic = _generic(conn, run, "loss", points)
    assert generic.total == N
    assert generic.steps == got.steps
    assert generic.values == pytest.approx(got.values, rel=1e-15)  # 16 significant digits


def test_a_short_series_comes_back_whole_and_a_missing_one_empty(
    series: tuple[TrackingClient, str],
) -> None:
    tracking, run = series
    short = downsample(tracking.store, run, "short", 1000)
    assert (short.steps, short.values, short.downsampled) == ([0, 1, 2], [3.0, 1.0, 2.0], False)
    assert downsample(tracking.store, run, "nope").total == 0
