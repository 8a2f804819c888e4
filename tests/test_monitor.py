"""`kiln.monitor` and `kiln monitor`: a served model's prediction log against its training.

End to end: a real `kiln serve` writes the prediction log from real requests, some of
them drifted; `kiln monitor` (a real subprocess) flags exactly the drifted features,
exits 1, and records a monitoring run linked to the model version. The HTML report
opens in headless Chromium.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import kiln
from browser_helpers import chromium, open_page
from serve_helpers import (
    KILN,
    breast_cancer,
    register,
    running,
    server_env,
    set_alias,
    stop,
    train,
)

SHIFTED = ["mean radius", "mean texture"]


def _store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"


def _drifted_rows() -> pd.DataFrame:
    """Every training row, with two features moved by one standard deviation."""
    X, _ = breast_cancer()
    current = X.copy()
    for name in SHIFTED:
        current[name] = current[name] + X[name].std()
    return current


def _send(url: str, frame: pd.DataFrame, prefix: str, batch: int = 50) -> list[str]:
    """POST the rows in batches with request ids; return the ids sent."""
    ids = []
    with httpx.Client(timeout=30) as http:
        for start in range(0, len(frame), batch):
            rows = frame.iloc[start : start + batch].to_dict(orient="records")
            rid = f"{prefix}-{start}"
            answer = http.post(f"{url}/predict", json=rows, headers={"x-request-id": rid})
            assert answer.status_code == 200, answer.text
            ids.append(rid)
    return ids


def _cli(store: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KILN, "--store", store, "monitor", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A registered model served with a full prediction log; drifted rows sent to it."""
    tmp_path = tmp_path_factory.mktemp("served")
    store = _store(tmp_path)
    version = register(store, train(tmp_path / "model"), "bc")
    set_alias(store, "bc", "production", version)
    uri = "models:/bc@production"
    args = [uri, "--log-rate", "1", "--log-flush", "0.2"]
    env = server_env(tmp_path)
    with running(args, env, store=store) as (url, proc):
        ids = _send(url, _drifted_rows(), "drift")
        assert stop(proc) == 0  # flushes the log
    return {"store": store, "uri": uri, "env": env, "tmp": tmp_path, "ids": ids}


def test_the_served_models_log_is_monitored_end_to_end(served: dict[str, Any]) -> None:
    report_path = served["tmp"] / "monitor.html"
    done = _cli(
        served["store"],
        served["uri"],
        "--since",
        "1h",
        "--json",
        "-o",
        str(report_path),
        env=served["env"],
    )
    assert done.returncode == 1, done.stderr[-3000:]  # a threshold is breached
    result = json.loads(done.stdout)
    assert sorted(result["drift"]["drifted_columns"]) == sorted(SHIFTED)
    assert result["n_current"] == 569
    assert result["model"]["name"] == "bc"
    assert result["model"]["version"] == 1
    assert any(line.startswith("drift: mean radius") for line in result["alerts"])
    assert report_path.is_file()

    # The run is recorded in the monitoring experiment, linked to the model version.
    kiln.configure(served["store"])
    runs = kiln.runs(experiment="monitoring", filter="tags.`kiln.monitor.model` = 'bc'")
    assert list(runs["run_id"]) == [result["run_id"]]
    run = kiln.get_run(result["run_id"])
    assert run.tags["kiln.monitor.version"] == "1"
    assert run.tags["kiln.monitor.drifted"] == "true"
    assert run.metrics["drifted_columns"] == 2
    assert run.metrics["drift/mean radius"] > 0.5
    assert {a.path for a in run.artifacts} >= {"monitor.json", "monitor.html"}


def test_undrifted_current_data_exits_zero(served: dict[str, Any]) -> None:
    X, _ = breast_cancer()
    path = served["tmp"] / "same.parquet"
    X.to_parquet(path)
    done = _cli(
        served["store"], served["uri"], "--current", str(path), "--no-record", env=served["env"]
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "OK" in done.stdout
    assert "No drift in 30 features" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "since='yesterday' is not a time"),
        (["--since", "1h", "--every", "fortnight"], "every='fortnight' is not a duration"),
        (["--every", "1h"], "--every needs --since"),
    ],
)
def test_usage_errors_exit_two_with_the_fix(
    served: dict[str, Any], args: list[str], message: str
) -> None:
    done = _cli(served["store"], served["uri"], *args, "--no-record", env=served["env"])
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_config_key_is_named_and_exits_two(served: dict[str, Any]) -> None:
    config = served["tmp"] / "monitor.yaml"
    config.write_text("alpah: 0.01\n", encoding="utf-8")
    done = _cli(
        served["store"], served["uri"], "--config", str(config), "--no-record", env=served["env"]
    )
    assert done.returncode == 2
    assert "Unknown key 'alpah'" in done.stderr
    assert "Did you mean 'alpha'?" in done.stderr


def test_windows_give_one_result_each(served: dict[str, Any]) -> None:
    done = _cli(
        served["store"],
        served["uri"],
        "--since",
        "2h",
        "--every",
        "1h",
        "--json",
        "--no-record",
        env=served["env"],
    )
    assert done.returncode == 1, done.stderr[-3000:]
    windows = json.loads(done.stdout)["windows"]
    # Every request was sent in the last hour: one window with rows, the quiet one left out.
    assert len(windows) == 1
    assert sorted(windows[0]["drift"]["drifted_columns"]) == sorted(SHIFTED)


def test_labels_give_performance_and_a_config_file_changes_the_rule(
    served: dict[str, Any],
) -> None:
    log = kiln.prediction_log(served["uri"], store=served["store"])
    _, y = breast_cancer()
    # Request drift-<start> carried training rows start, start+1, ...: its kiln_row-th
    # row's label is y[start + kiln_row]. Labels join on the request id and the row.
    row = log.groupby("kiln_request_id").cumcount()
    start = log["kiln_request_id"].str.split("-").str[1].astype(int)
    labels = pd.DataFrame(
        {
            "kiln_request_id": log["kiln_request_id"],
            "kiln_row": row,
            "label": y.to_numpy()[start + row],
        }
    )
    kiln.configure(served["store"])
    report = kiln.monitor(
        served["uri"],
        since="1h",
        labels=labels,
        on=["kiln_request_id", "kiln_row"],
        config={"thresholds": {"wasserstein": 5.0}, "large_sample": 100},
        experiment=None,
    )
    # At 569 rows with large_sample=100 distances decide; a threshold of 5 sd flags nothing.
    assert report.drifted_columns == []
    assert set(report.table["rule"]) == {"distance"}
    assert report.performance is not None
    # Two features moved by a standard deviation cost accuracy, but it is still a model.
    assert report.performance.overall["accuracy"] > 0.5
    assert report.performance.unmatched == 0
    assert report.to_json()


def test_the_html_report_opens_in_chromium_with_one_chart_per_feature(
    served: dict[str, Any],
) -> None:
    kiln.configure(served["store"])
    report = kiln.monitor(served["uri"], since="1h", experiment=None)
    path = report.save_report(served["tmp"] / "chromium.html")
    with chromium() as browser:
        page, problems = open_page(browser, path)
        page.wait_for_function(
            "document.querySelectorAll('.kiln-plot .main-svg').length > 0", timeout=60_000
        )
        titles = page.eval_on_selector_all(
            ".kiln-plot .gtitle", "els => els.map(e => e.textContent)"
        )
        page.screenshot(path=str(served["tmp"] / "monitor.png"), full_page=False)
        page.close()
    features = list(report.table["column"])
    for name in features:
        assert any(t.startswith(name) for t in titles), (name, titles[:5])
    assert "mean radius (drifted)" in titles
    assert problems == []


def test_current_data_without_rows_or_columns_gets_findings_not_tracebacks(
    served: dict[str, Any],
) -> None:
    X, _ = breast_cancer()
    kiln.configure(served["store"])
    empty = kiln.monitor(served["uri"], X.iloc[:0], experiment=None)
    assert [f.check for f in empty.quality] == ["empty"]
    assert empty.breached
    partial = X.drop(columns=["mean area"]).assign(extra=1.0)
    report = kiln.monitor(served["uri"], partial, experiment=None)
    checks = {(f.check, f.column) for f in report.quality}
    assert ("missing_column", "mean area") in checks
    assert ("extra_column", "extra") in checks
    assert "mean area" not in set(report.table["column"])


def test_a_monitoring_call_inside_a_run_is_recorded_as_its_child(
    served: dict[str, Any], tmp_path: Path
) -> None:
    X, _ = breast_cancer()
    kiln.configure(served["store"])
    with kiln.start_run(experiment="nightly") as parent:
        report = kiln.monitor(served["uri"], X.iloc[:200])
    assert report.run_id is not None
    child = kiln.get_run(report.run_id)
    assert child.parent_id == parent.id
    assert child.experiment == "monitoring"
    assert time.time() - child.start_time / 1000 < 600


def test_a_broken_file_gets_findings_from_the_cli_not_a_traceback(served: dict[str, Any]) -> None:
    X, _ = breast_cancer()
    broken = X.astype({"mean radius": object})
    broken.loc[:9, "mean radius"] = "12,5"  # ten values with a decimal comma
    broken["mean area"] = np.nan  # a column that arrives empty
    path = served["tmp"] / "broken.csv"
    broken.to_csv(path, index=False)
    done = _cli(
        served["store"],
        served["uri"],
        "--current",
        str(path),
        "--json",
        "--no-record",
        env=served["env"],
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    found = {(f["check"], f["column"]): f for f in result["quality"]}
    assert found[("wrong_type", "mean radius")]["severity"] == "error"
    assert found[("all_null", "mean area")]["severity"] == "error"
    # The values that parse are still compared: the rest of the column has not drifted.
    rows = {r["column"]: r for r in result["drift"]["columns"]}
    assert rows["mean radius"]["n_current"] == len(X) - 10
    assert rows["mean radius"]["drifted"] is False
    assert rows["mean area"]["rule"] == "skipped"


def test_prediction_drift_from_data_compares_labels_and_probabilities(
    served: dict[str, Any],
) -> None:
    kiln.configure(served["store"])
    X, _ = breast_cancer()
    same = kiln.monitor(served["uri"], X, experiment=None)
    moved = kiln.monitor(served["uri"], X + X.std(), experiment=None)  # every feature larger
    for report in (same, moved):
        assert report.prediction is not None
        assert list(report.prediction.table["column"]) == ["prediction", "probability[1]"]
    assert not same.prediction.drifted  # the training rows: the same outputs
    table = moved.prediction.table.set_index("column")
    assert table.loc["probability[1]", "drifted"]  # larger tumours: fewer benign ones
    assert any(line.startswith("prediction drift: probability[1]") for line in moved.alerts)
    assert "probability[1] (model output)" in moved.distributions
