"""`kiln server` speaks MLflow's model registry REST API: the real `mlflow` client
registers models and versions on a real server on loopback (SQLite and PostgreSQL), and
kiln's registry (`kiln.registry`, `kiln models list`) shows the same versions and aliases.
A version whose source is a kiln-saved model loads through kiln; one from an MLflow-only
source is recorded, and kiln's loaders refuse it, saying why."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from serve_helpers import KILN, server_env, serving

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

import kiln  # noqa: E402
from kiln.registry import RegistryClient, RegistryError  # noqa: E402
from kiln.server import Users  # noqa: E402


@pytest.fixture
def mlflow_at(tracked: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A `kiln server` over the test's store, MLflow's client and kiln both pointed at it."""
    with serving([KILN, "--store", tracked, "server"], server_env(tmp_path)) as (url, _proc):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
        mlflow.set_tracking_uri(url)
        yield url


def _kiln_model_run() -> str:
    """A kiln run holding a real kiln-saved sklearn model at model/; its id."""
    from sklearn.linear_model import LinearRegression

    X = np.arange(20, dtype=float).reshape(10, 2)
    with kiln.start_run(experiment="churn", system_metrics=False) as run:
        kiln.Model(LinearRegression(), validation="off").fit(X, X[:, 0] * 2).save()
    return run.id


def test_the_mlflow_client_registers_kiln_and_external_versions(
    mlflow_at: str, tracked: str
) -> None:
    run_id = _kiln_model_run()
    client = MlflowClient()
    created = client.create_registered_model("churn", description="churn model")
    v1 = client.create_model_version("churn", f"runs:/{run_id}/model", run_id)
    v2 = client.create_model_version(
        "churn",
        "mlflow-artifacts:/1/abc/artifacts/model",
        run_id=None,
        description="logged by MLflow",
        tags={"team": "risk"},
    )
    with pytest.raises(MlflowException, match="already exists") as again:
        client.create_registered_model("churn")
    client.set_registered_model_alias("churn", "production", "1")
    client.set_registered_model_alias("churn", "shadow", "2")

    assert created.name == "churn"
    assert again.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert (v1.version, v1.source, v1.run_id) == ("1", f"runs:/{run_id}/model", run_id)
    assert (v2.version, v2.description, v2.tags) == ("2", "logged by MLflow", {"team": "risk"})
    by_alias = client.get_model_version_by_alias("churn", "production")
    assert (by_alias.version, by_alias.current_stage) == ("1", "None")
    model = client.get_registered_model("churn")
    assert model.description == "churn model"
    assert model.aliases == {"production": "1", "shadow": "2"}
    with pytest.warns(FutureWarning, match="stages"):  # MLflow deprecated stages
        latest = client.get_latest_versions("churn")
    assert [(v.version, v.current_stage) for v in latest] == [("2", "None")]

    # kiln's side: the same versions and aliases; the kiln-saved one loads, the other not
    registry = RegistryClient(tracked)
    versions = registry.list_versions("churn")
    assert [(v.version, v.aliases, v.external) for v in versions] == [
        (1, ["production"], False),
        (2, ["shadow"], True),
    ]
    assert versions[0].flavor == "sklearn"
    assert versions[0].lineage["run_id"] == run_id
    loaded = kiln.load_model("models:/churn@production")
    assert loaded.predict(np.array([[3.0, 4.0]])).tolist() == pytest.approx([6.0])
    with pytest.raises(RegistryError, match="registered through MLflow's API") as refused:
        kiln.load_model("models:/churn@shadow")
    assert "mlflow-artifacts:/1/abc/artifacts/model" in str(refused.value)
    assert "kiln cannot load or serve it" in str(refused.value)
    listed = subprocess.run(
        [KILN, "--store", tracked, "models", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = json.loads(listed.stdout)
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in rows] == [
        ("churn", 2, {"production": 1, "shadow": 2})
    ]
    shown = subprocess.run(
        [KILN, "--store", tracked, "models", "show", "churn"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "external" in shown.stdout


def test_search_update_delete_and_rename(mlflow_at: str, tracked: str) -> None:
    client = MlflowClient()
    for name in ["fraud-eu", "fraud-us", "churn"]:
        client.create_registered_model(name)
    for source in ["models:/m-1", "models:/m-2", "models:/m-3"]:
        client.create_model_version("fraud-eu", source)
    mlflow_run = client.create_run(client.create_experiment("exp"))
    client.create_model_version("churn", "models:/m-9", run_id=mlflow_run.info.run_id)

    fraud = client.search_registered_models("name LIKE 'fraud%'", order_by=["name DESC"])
    page = client.search_registered_models(max_results=2)
    rest = client.search_registered_models(max_results=2, page_token=page.token)
    eu = client.search_model_versions("name='fraud-eu'")
    by_run = client.search_model_versions(f"run_id='{mlflow_run.info.run_id}'")
    assert [m.name for m in fraud] == ["fraud-us", "fraud-eu"]
    assert [m.name for m in page] + [m.name for m in rest] == ["churn", "fraud-eu", "fraud-us"]
    assert [v.version for v in eu] == ["3", "2", "1"]
    assert [(v.name, v.version) for v in by_run] == [("churn", "1")]

    client.update_model_version("fraud-eu", "2", description="second")
    client.set_model_version_tag("fraud-eu", "2", "checked", "yes")
    client.delete_model_version_tag("fraud-eu", "2", "checked")
    client.set_model_version_tag("fraud-eu", "2", "owner", "ana")
    client.set_registered_model_alias("fraud-eu", "champion", "3")
    client.delete_model_version("fraud-eu", "3")
    client.update_registered_model("fraud-eu", description="EU fraud")
    client.rename_registered_model("fraud-eu", "fraud-europe")
    got = client.get_model_version("fraud-europe", "2")
    assert (got.description, got.tags) == ("second", {"owner": "ana"})
    assert client.get_model_version_download_uri("fraud-europe", "2") == "models:/m-2"
    assert client.get_registered_model("fraud-europe").description == "EU fraud"
    assert client.get_registered_model("fraud-europe").aliases == {}
    with pytest.raises(MlflowException, match=r"No registered model named 'fraud-eu'") as gone:
        client.get_registered_model("fraud-eu")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model("fraud-us")

    with (
        pytest.warns(FutureWarning, match="stages"),
        pytest.raises(MlflowException, match="uses aliases instead") as stage,
    ):
        client.transition_model_version_stage("fraud-europe", "2", "Production")
    with pytest.raises(MlflowException, match="no tags on registered models") as tag:
        client.set_registered_model_tag("churn", "k", "v")
    assert stage.value.error_code == tag.value.error_code == "INVALID_PARAMETER_VALUE"

    registry = RegistryClient(tracked)
    assert [m.name for m in registry.list_models()] == ["churn", "fraud-europe"]
    assert [v.version for v in registry.list_versions("fraud-europe")] == [1, 2]
    history = registry.alias_history("fraud-europe", "champion")
    assert [(c.action, c.old_version, c.new_version) for c in history] == [
        ("set", None, 3),
        ("remove", 3, None),
    ]


def test_mlflow_register_model(mlflow_at: str, tracked: str) -> None:
    version = mlflow.register_model("mlflow-artifacts:/1/abc/artifacts/model", "churn")
    again = mlflow.register_model("s3://bucket/model", "churn")  # exists: a new version
    assert (version.version, again.version) == ("1", "2")
    assert [v.external for v in RegistryClient(tracked).list_versions("churn")] == [True, True]

    # runs:/ makes MLflow's client list the run's artifacts (served): a kiln saved model
    # has no MLmodel file, so it looks for a logged model (kiln has none) and refuses;
    # create_model_version registers it (test_the_mlflow_client_registers_kiln_and_external_versions)
    run_id = _kiln_model_run()
    with pytest.raises(MlflowException, match="Unable to find a logged_model"):
        mlflow.register_model(f"runs:/{run_id}/model", "churn")


def test_a_viewer_reads_the_registry_but_cannot_write(
    tracked: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = Users(tracked)
    users.add("ana", role="editor")
    users.add("vic", role="viewer")
    tokens = {n: users.create_token(n, name="test") for n in ["ana", "vic"]}
    with serving([KILN, "--store", tracked, "server"], server_env(tmp_path)) as (url, _proc):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mlflow.set_tracking_uri(url)
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["ana"])
        MlflowClient().create_registered_model("churn")
        MlflowClient().create_model_version("churn", "models:/m-1")
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["vic"])
        vic = MlflowClient()
        assert [m.name for m in vic.search_registered_models()] == ["churn"]
        assert vic.get_model_version("churn", "1").source == "models:/m-1"
        with pytest.raises(MlflowException, match="needs the editor role") as denied:
            vic.create_registered_model("mine")
        with pytest.raises(MlflowException, match="needs the editor role"):
            vic.set_registered_model_alias("churn", "production", "1")
    assert denied.value.error_code == "PERMISSION_DENIED"
