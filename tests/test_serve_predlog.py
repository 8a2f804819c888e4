"""The prediction log is written by serving and read through tracking.

Whatever reads the log (the coming monitoring package, a notebook) imports
`kiln.tracking`, never the server; the format is defined once, in
`kiln.tracking._predlog`, and serving's writer goes through it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def _store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"


def test_the_reader_lives_in_tracking_and_serving_reexports_it() -> None:
    import kiln.serving
    import kiln.tracking

    assert "prediction_log" in kiln.tracking.__all__
    assert kiln.serving.prediction_log is kiln.tracking.prediction_log


def test_reading_the_log_imports_no_serving(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from kiln.tracking import prediction_log\n"
        f"log = prediction_log('models:/churn@production', store={_store(tmp_path)!r})\n"
        "assert log.empty, log\n"
        "print(sorted(m for m in sys.modules if m.startswith('kiln.serving')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_what_the_writer_writes_the_reader_reads(tmp_path: Path) -> None:
    from kiln.tracking import LoggedRequest, PredictionLogWriter, prediction_log

    store = _store(tmp_path)
    uri = "models:/churn@production"
    writer = PredictionLogWriter(uri, store=store, rate=0.5)
    first = LoggedRequest("a", 1_800_000_000_000, "3", pd.DataFrame({"x": [1.0, 2.0]}), [0, 1])
    second = LoggedRequest("b", 1_800_000_000_500, "3", pd.DataFrame({"x": [3.0]}), [1])
    assert writer.write([first, second]) == 3
    assert writer.write([]) == 0
    writer.close()

    log = prediction_log(uri, store=store)
    assert list(log.columns) == [
        "kiln_request_id",
        "kiln_time",
        "kiln_model_version",
        "kiln_prediction",
        "x",
    ]
    assert list(log["kiln_request_id"]) == ["a", "a", "b"]
    assert list(log["x"]) == [1.0, 2.0, 3.0]
    assert list(log["kiln_prediction"]) == [0, 1, 1]
    assert set(log["kiln_model_version"]) == {"3"}
    assert str(log["kiln_time"].dt.tz) == "UTC"
    later = prediction_log(uri, since=1_800_000_000_100, store=store)
    assert list(later["kiln_request_id"]) == ["b"]
    assert prediction_log(uri, until="2027-01-01T00:00:00", store=store).empty
    assert prediction_log("models:/other@production", store=store).empty


def test_a_bad_time_says_what_a_time_is(tmp_path: Path) -> None:
    from kiln.tracking import prediction_log

    with pytest.raises(ValueError, match="since='yesterday' is not a time; expected an ISO 8601"):
        prediction_log("models:/m@a", since="yesterday", store=_store(tmp_path))


def test_a_window_reads_durations_ago_as_kiln_monitor_does(tmp_path: Path) -> None:
    import time

    from kiln.tracking import LoggedRequest, PredictionLogWriter, prediction_log

    store = _store(tmp_path)
    now = int(time.time() * 1000)
    writer = PredictionLogWriter("models:/m@a", store=store, rate=1.0)
    writer.write(
        [
            LoggedRequest("old", now - 10 * 86_400_000, "1", pd.DataFrame({"x": [1.0]}), [0]),
            LoggedRequest("new", now - 3_600_000, "1", pd.DataFrame({"x": [2.0]}), [1]),
        ]
    )
    writer.close()
    assert list(prediction_log("models:/m@a", since="7d", store=store)["kiln_request_id"]) == [
        "new"
    ]
    assert list(prediction_log("models:/m@a", until="2d", store=store)["kiln_request_id"]) == [
        "old"
    ]


def test_without_store_the_reader_reads_the_store_configure_chose(tmp_path: Path) -> None:
    import kiln
    from kiln.tracking import LoggedRequest, PredictionLogWriter, prediction_log

    store = _store(tmp_path)
    writer = PredictionLogWriter("models:/m@a", store=store, rate=1.0)
    writer.write([LoggedRequest("r", 1_800_000_000_000, "1", pd.DataFrame({"x": [1.0]}), [0])])
    writer.close()
    kiln.configure(store)
    assert list(prediction_log("models:/m@a")["kiln_request_id"]) == ["r"]
