"""`kiln server` speaks MLflow's tracking REST API: the real `mlflow` client logs to a
real server on loopback, and what it logged is read back through kiln's own API (and
the reverse)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_helpers import KILN, server_env, serving

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from kiln.tracking import TrackingClient  # noqa: E402


@pytest.fixture
def mlflow_at(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A `kiln server` over `store_url`, with MLflow's client pointed at it."""
    with serving([KILN, "--store", store_url, "server"], server_env(tmp_path)) as (url, _proc):
        _point_mlflow_at(url, monkeypatch)
        yield url
    while mlflow.active_run() is not None:
        mlflow.end_run()


def _point_mlflow_at(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # an error shows at once
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    mlflow.set_tracking_uri(url)


def _error_code(exc: pytest.ExceptionInfo[MlflowException]) -> Any:
    return exc.value.error_code


def test_what_mlflow_logs_lands_in_kiln(mlflow_at: str, store_url: str) -> None:
    experiment = mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="rf-1") as rf:
        mlflow.log_param("model", "rf")
        mlflow.log_params({"max_depth": 6, "C": 0.5})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.91, "auc": 0.95}, step=2)
        mlflow.set_tag("owner", "data-team")
    with mlflow.start_run(run_name="lr-1") as lr:
        mlflow.log_param("model", "lr")
        mlflow.log_metric("acc", 0.7)

    client = MlflowClient()
    found = client.search_runs(
        [experiment.experiment_id], filter_string="metrics.acc > 0.8 and params.model = 'rf'"
    )
    ordered = client.search_runs([experiment.experiment_id], order_by=["metrics.acc ASC"])
    finished = client.search_runs(
        [experiment.experiment_id], filter_string="attributes.status = 'FINISHED'"
    )
    by_name = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`mlflow.runName` = 'lr-1'"
    )
    history = client.get_metric_history(rf.info.run_id, "loss")
    got = client.get_run(rf.info.run_id)

    assert [r.info.run_id for r in found] == [rf.info.run_id]
    assert [r.info.run_name for r in ordered] == ["lr-1", "rf-1"]
    assert {r.info.run_id for r in finished} == {rf.info.run_id, lr.info.run_id}
    assert [r.info.run_id for r in by_name] == [lr.info.run_id]
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]
    assert got.info.status == "FINISHED"
    assert got.info.experiment_id == experiment.experiment_id
    assert got.data.params == {"model": "rf", "max_depth": "6", "C": "0.5"}
    assert got.data.metrics == {"loss": 1.0 / 3, "acc": 0.91, "auc": 0.95}
    assert got.data.tags["owner"] == "data-team"

    client.log_metric(rf.info.run_id, "late", 1.0)  # an ended run takes metrics, as in MLflow
    client.delete_run(lr.info.run_id)
    remaining = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in remaining] == [rf.info.run_id]

    assert [r.id for r in TrackingClient(store_url).search_runs("churn")] == [rf.info.run_id]
    kiln_run = TrackingClient(store_url).get_run(rf.info.run_id)
    assert kiln_run.experiment == "churn"
    assert kiln_run.name == "rf-1"
    assert kiln_run.status == "finished"
    assert kiln_run.params == {"model": "rf", "max_depth": "6", "C": "0.5"}
    assert kiln_run.metrics == {"loss": 1.0 / 3, "acc": 0.91, "auc": 0.95, "late": 1.0}
    assert kiln_run.tags["owner"] == "data-team"
    loss = TrackingClient(store_url).metric_history(rf.info.run_id, "loss")
    assert [(m.step, m.value) for m in loss] == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]


def test_a_run_logged_with_kiln_reads_in_mlflow(mlflow_at: str, store_url: str) -> None:
    kiln = TrackingClient(store_url)
    run_id = kiln.create_run(experiment="forecast", name="gbm-1")
    kiln.log_params(run_id, {"depth": 4})
    kiln.log_metrics(run_id, [("rmse", 3.0, 0, None), ("rmse", 2.5, 1, None)])
    kiln.set_tags(run_id, {"team": "demand"})
    kiln.end_run(run_id)
    kiln.flush()

    client = MlflowClient()
    experiment = client.get_experiment_by_name("forecast")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], filter_string="metrics.rmse < 2.6")
    listed = client.search_runs(
        [experiment.experiment_id],
        filter_string="params.depth IN ('4', '5') and tags.team LIKE 'dem%' "
        "and attributes.run_name != 'other'",
        order_by=["attributes.start_time DESC"],
    )
    run = client.get_run(run_id)
    history = client.get_metric_history(run_id, "rmse")

    assert [r.info.run_id for r in runs] == [run_id]
    assert [r.info.run_id for r in listed] == [run_id]
    assert run.info.run_name == "gbm-1"
    assert run.info.status == "FINISHED"
    assert run.data.params == {"depth": "4"}
    assert run.data.metrics == {"rmse": 2.5}
    assert run.data.tags["team"] == "demand"
    assert [(m.step, m.value) for m in history] == [(0, 3.0), (1, 2.5)]
    assert [e.name for e in client.search_experiments(filter_string="name = 'forecast'")] == [
        "forecast"
    ]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_what_kiln_cannot_do_is_an_mlflow_error(mlflow_at: str, store_url: str) -> None:
    client = MlflowClient()
    experiment = mlflow.set_experiment("errors")
    with mlflow.start_run() as run:
        mlflow.log_param("model", "rf")
        with pytest.raises(MlflowException, match="already 'rf'") as conflict:
            mlflow.log_param("model", "lr")
    with pytest.raises(MlflowException, match=r"datasets\.\* yet") as bad_filter:
        client.search_runs([experiment.experiment_id], filter_string="datasets.name = 'x'")
    with pytest.raises(MlflowException, match="Unknown field 'colour'") as unknown:
        client.search_runs([experiment.experiment_id], filter_string="colour = 'red'")
    with pytest.raises(MlflowException, match="not found") as missing:
        client.get_run("0" * 32)
    with pytest.raises(MlflowException, match="already exists") as exists:
        client.create_experiment("errors")

    assert _error_code(conflict) == "INVALID_PARAMETER_VALUE"
    assert _error_code(bad_filter) == "INVALID_PARAMETER_VALUE"
    assert _error_code(unknown) == "INVALID_PARAMETER_VALUE"
    assert _error_code(missing) == "RESOURCE_DOES_NOT_EXIST"
    assert _error_code(exists) == "RESOURCE_ALREADY_EXISTS"
    assert TrackingClient(store_url).get_run(run.info.run_id).params == {"model": "rf"}


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_mlflows_default_experiment_is_kilns(mlflow_at: str, store_url: str) -> None:
    run = MlflowClient().create_run("0")  # MLflow's client when no experiment is set
    MlflowClient().set_terminated(run.info.run_id)

    kiln_run = TrackingClient(store_url).get_run(run.info.run_id)
    assert kiln_run.experiment == "Default"
    assert kiln_run.status == "finished"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_every_error_answers_mlflows_error_json(mlflow_at: str) -> None:
    """What MLflow's client never sends wrong, sent wrong by hand: each answer is MLflow's
    `{"error_code", "message"}` with its status."""
    api = f"{mlflow_at}/api/2.0/mlflow"
    answers = {
        "no such route": httpx.get(f"{mlflow_at}/nowhere"),
        "no such endpoint": httpx.post(f"{api}/runs/frobnicate", json={}),
        "registry": httpx.get(f"{api}/registered-models/get", params={"name": "nope"}),
        "artifacts": httpx.get(f"{api}/artifacts/list", params={"run_id": "0" * 32}),
        "logged models": httpx.post(f"{api}/logged-models", json={}),
        "not JSON": httpx.post(f"{api}/runs/create", content=b"{nope"),
        "too big": httpx.post(f"{api}/runs/create", content=b" " * (9 * 2**20)),
        "missing field": httpx.post(f"{api}/experiments/create", json={}),
        "bad order_by": httpx.post(
            f"{api}/runs/search", json={"experiment_ids": ["0"], "order_by": ["x y z"]}
        ),
    }
    got = {what: (r.status_code, r.json()["error_code"]) for what, r in answers.items()}

    assert got == {
        "no such route": (404, "ENDPOINT_NOT_FOUND"),
        "no such endpoint": (404, "ENDPOINT_NOT_FOUND"),
        "registry": (404, "RESOURCE_DOES_NOT_EXIST"),
        "artifacts": (404, "RESOURCE_DOES_NOT_EXIST"),  # no such run
        "logged models": (501, "NOT_IMPLEMENTED"),
        "not JSON": (400, "MALFORMED_REQUEST"),
        "too big": (413, "INVALID_PARAMETER_VALUE"),
        "missing field": (400, "INVALID_PARAMETER_VALUE"),
        "bad order_by": (400, "INVALID_PARAMETER_VALUE"),
    }
    assert all(set(r.json()) == {"error_code", "message"} for r in answers.values())


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_server_with_a_token_takes_mlflows_tracking_token(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmd = [KILN, "--store", store_url, "server", "--token", "s3cret"]
    with serving(cmd, server_env(tmp_path)) as (url, _proc):
        _point_mlflow_at(url, monkeypatch)
        with pytest.raises(MlflowException, match="needs a token") as refused:
            MlflowClient().create_experiment("guarded")
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "s3cret")
        experiment_id = MlflowClient().create_experiment("guarded")

    assert _error_code(refused) == "UNAUTHENTICATED"
    assert [e.name for e in TrackingClient(store_url).list_experiments()] == ["guarded"]
    assert experiment_id == str(TrackingClient(store_url).experiment_id("guarded"))


def test_off_loopback_without_a_token_the_server_refuses_to_start(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    env = {k: v for k, v in subprocess_env.items() if k != "KILN_TOKEN"}
    proc = subprocess.run(
        [KILN, "--store", str(tmp_path / "kiln.db"), "server", "--host", "0.0.0.0", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 1
    assert "needs a token: pass --token TOKEN" in proc.stderr
