"""Registry edits behind MLflow's registry API (`kiln server`): versions recorded from
sources that are not kiln-saved models, descriptions, tags, deleting and renaming
(SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kiln.registry import (
    ModelNotFoundError,
    ModelVersionNotFoundError,
    RegistryClient,
    RegistryError,
)
from kiln.tracking import TrackingClient
from serve_helpers import KILN
from test_registry import model_run


@pytest.fixture
def registry(client: TrackingClient) -> RegistryClient:
    return RegistryClient(client)


def test_a_recorded_version_is_listed_but_refused_by_loaders(
    client: TrackingClient, registry: RegistryClient
) -> None:
    run_id = model_run(client, path=None)
    recorded = registry.record_version(
        "churn", "mlflow-artifacts:/1/x/model", run_id=run_id, description="d", tags={"k": 1}
    )
    kiln_saved = registry.register(model_run(client, name="b"), "churn")

    assert (recorded.version, recorded.external, recorded.flavor) == (1, True, "external")
    assert (recorded.description, recorded.tags, recorded.run_id) == ("d", {"k": "1"}, run_id)
    assert registry.get_model_version("churn", 1).lineage == {
        "description": "d",
        "flavor": "external",
        "format": "mlflow",
    }
    assert (kiln_saved.version, kiln_saved.external) == (2, False)
    assert registry.resolve_uri("models:/churn/2") == kiln_saved.source
    with pytest.raises(RegistryError, match=r"Version 1 of churn was registered through MLflow"):
        registry.resolve_uri("models:/churn/1")
    with pytest.raises(RegistryError, match="non-empty string"):
        registry.record_version("churn", "")


def test_edit_versions_and_models(client: TrackingClient, registry: RegistryClient) -> None:
    registry.create_model("churn", "first")
    for n in range(3):
        registry.record_version("churn", f"models:/m-{n}")
    registry.set_alias("churn", "production", 3)
    registry.set_alias("churn", "shadow", 2)

    edited = registry.update_version("churn", 2, description="two", set_tags={"a": "1", "b": 2})
    trimmed = registry.update_version("churn", "shadow", delete_tags=["a", "missing"])
    registry.delete_version("churn", 3)
    registry.update_model("churn", "renamed soon")
    registry.rename_model("churn", "churn-eu")

    assert (edited.description, edited.tags) == ("two", {"a": "1", "b": "2"})
    assert trimmed.tags == {"b": "2"}
    model = registry.get_model("churn-eu")
    assert (model.description, model.n_versions, model.aliases) == (
        "renamed soon",
        2,
        {"shadow": 2},
    )
    history = registry.alias_history("churn-eu", "production")
    assert [(c.action, c.new_version) for c in history] == [("set", 3), ("remove", None)]
    with pytest.raises(ModelNotFoundError, match="Did you mean"):
        registry.get_model("churn")
    with pytest.raises(ModelVersionNotFoundError, match="no version 3"):
        registry.get_model_version("churn-eu", 3)
    with pytest.raises(RegistryError, match="already exists"):
        registry.create_model("churn-eu")
    registry.create_model("other")
    with pytest.raises(RegistryError, match="a model of that name exists"):
        registry.rename_model("other", "churn-eu")

    registry.delete_model("churn-eu")
    assert [m.name for m in registry.list_models()] == ["other"]
    with pytest.raises(ModelNotFoundError, match=r"No registered model named 'churn-eu'"):
        registry.delete_model("churn-eu")


def test_kiln_serve_and_package_refuse_a_recorded_version(store_url: str, tmp_path: Path) -> None:
    RegistryClient(store_url).record_version("scorer", "models:/m-1")
    out = str(tmp_path / "out")
    for args in (["serve", "models:/scorer/1"], ["package", "models:/scorer/1", "-o", out]):
        done = subprocess.run(
            [KILN, "--store", store_url, *args], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 1, done.stderr
        assert "registered through MLflow's API from models:/m-1" in done.stderr
        assert "kiln cannot load or serve it" in done.stderr
    shown = subprocess.run(
        [KILN, "--store", store_url, "models", "show", "scorer"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "external" in shown.stdout
