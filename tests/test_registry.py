"""The model registry as users call it: the Python API, `models:/` URIs and `kiln models`.

Every test runs once on a SQLite file and once on a real PostgreSQL database. A saved
model is stood in for by a run artifact `model/kiln-model.json`: the registry never
loads models. Processes that race to register or to move an alias are real processes.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

import kiln
from conftest import make_empty_pg_database, make_pg_database
from kiln import RunNotFoundError, SchemaVersionError
from kiln.cli import cli
from kiln.registry import (
    AliasChange,
    AliasNotFoundError,
    ModelNotFoundError,
    ModelVersion,
    ModelVersionNotFoundError,
    RegistryClient,
    RegistryError,
)
from kiln.store import SCHEMA_REVISIONS, Store
from kiln.store import _engine as engine_module
from kiln.tracking import TrackingClient


def model_run(
    client: TrackingClient,
    *,
    name: str = "rf",
    experiment: str = "churn",
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    meta: bytes = b"{}",
    path: str | None = "model",
    environment: dict[str, Any] | None = None,
) -> str:
    """A finished run with a stand-in saved model at `path/` (none when path is None)."""
    run_id = client.create_run(experiment=experiment, name=name, environment=environment)
    if params:
        client.log_params(run_id, params)
    if metrics:
        client.log_metrics(run_id, [(k, v, 0, None) for k, v in metrics.items()])
    if path is not None:
        client.log_artifact(run_id, meta, name=f"{path}/kiln-model.json")
        client.log_artifact(run_id, b"weights of " + name.encode(), name=f"{path}/weights.bin")
    client.end_run(run_id)
    return run_id


@pytest.fixture
def registry(client: TrackingClient) -> RegistryClient:
    """A RegistryClient sharing the test's TrackingClient (both backends)."""
    return RegistryClient(client)


# ------------------------------------------------------------------ registering
def test_register_a_run_numbers_versions_and_snapshots_its_lineage(
    client: TrackingClient, registry: RegistryClient
) -> None:
    run_id = model_run(
        client,
        params={"C": 1.0, "model": "rf"},
        metrics={"auc": 0.91},
        meta=b'{"flavor": "sklearn"}',
        environment={"git_commit": "a" * 40, "git_branch": "main", "git_dirty": True},
    )
    client.log_dataset(run_id, {"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]}, role="train", name="t1")

    first = registry.register(run_id, "churn", description="Who leaves", tags={"team": "ds"})
    second = registry.register(f"runs:/{run_id}/model", "churn")
    by_prefix = registry.register(run_id[:10], "churn")

    assert [first.version, second.version, by_prefix.version] == [1, 2, 3]
    assert first.source == second.source == f"runs:/{run_id}/model"
    assert first.run_id == run_id
    assert first.uri == "models:/churn/1"
    assert first.tags == {"team": "ds"}
    assert first.status == "ready"
    assert first.flavor == "sklearn"
    assert first.user
    lineage = first.lineage
    assert lineage["run_id"] == run_id
    assert (lineage["run_name"], lineage["experiment"], lineage["run_status"]) == (
        "rf",
        "churn",
        "finished",
    )
    assert lineage["params"] == {"C": "1.0", "model": "rf"}
    assert lineage["metrics"] == {"auc": 0.91}
    [dataset] = lineage["datasets"]
    assert dataset["role"] == "train"
    assert dataset["shape"] == [3, 2]
    assert len(dataset["fingerprint"]) >= 16
    assert (lineage["git_commit"], lineage["git_dirty"]) == ("a" * 40, True)
    assert sorted(lineage["model_files"]) == ["kiln-model.json", "weights.bin"]
    # What was returned is what the store holds.
    assert registry.get_model_version("churn", 1) == first
    assert registry.get_model("churn").description == "Who leaves"


def test_the_lineage_is_a_snapshot_taken_at_registration(
    client: TrackingClient, registry: RegistryClient
) -> None:
    run_id = model_run(client, metrics={"auc": 0.8})
    registry.register(run_id, "churn")
    client.log_metric(run_id, "auc", 0.99, step=5)
    client.set_tags(run_id, {"later": "yes"})

    assert registry.get_model_version("churn", 1).lineage["metrics"] == {"auc": 0.8}
    assert registry.register(run_id, "churn").lineage["metrics"] == {"auc": 0.99}


def test_register_a_run_of_the_module_level_api_while_it_runs(tracked: str) -> None:
    with kiln.start_run(experiment="churn", params={"depth": 3}) as run:
        kiln.log_metric("auc", 0.75)
        kiln.log_artifact(b'{"flavor": {"name": "lightgbm"}}', name="model/kiln-model.json")
        version = kiln.registry.register(run, "churn")

    assert kiln.get_run(run.id).status == "finished"  # registering did not end it
    assert version.run_id == run.id
    assert version.lineage["run_status"] == "running"
    assert version.lineage["params"] == {"depth": "3"}
    assert version.flavor == "lightgbm"
    assert kiln.registry.get_model_version("churn", "latest") == version
    assert [m.name for m in kiln.registry.list_models()] == ["churn"]
    assert kiln.registry.resolve_uri("models:/churn/1") == f"runs:/{run.id}/model"


def test_register_latest_takes_the_newest_top_level_run(
    client: TrackingClient, registry: RegistryClient
) -> None:
    run_id = model_run(client)
    child = client.create_run(name="step", parent_id=run_id)
    client.end_run(child)

    assert registry.register("latest", "churn").run_id == run_id


def test_register_a_model_at_another_path_of_the_run(
    client: TrackingClient, registry: RegistryClient
) -> None:
    run_id = model_run(client, path="models/best")

    version = registry.register(f"runs:/{run_id}/models/best/", "churn")

    assert version.source == f"runs:/{run_id}/models/best"
    assert version.lineage["model_path"] == "models/best"


def test_register_a_local_folder(registry: RegistryClient, tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    (folder / "data").mkdir(parents=True)
    (folder / "kiln-model.json").write_text('{"flavor": "function"}')
    (folder / "data" / "w.bin").write_bytes(b"\x00\x01")

    version = registry.register(str(folder), "local-model")
    again = registry.register(folder, "local-model")

    assert (version.version, again.version) == (1, 2)
    assert version.source == str(folder.resolve())
    assert version.run_id is None
    assert version.flavor == "function"
    assert sorted(version.lineage["model_files"]) == ["data/w.bin", "kiln-model.json"]
    assert registry.resolve_uri("models:/local-model/1") == str(folder.resolve())


def test_register_a_registered_version_again_under_another_name(
    client: TrackingClient, registry: RegistryClient
) -> None:
    run_id = model_run(client)
    registry.register(run_id, "churn")
    registry.set_alias("churn", "production", 1)

    copy = registry.register("models:/churn@production", "churn-eu")

    assert (copy.name, copy.version, copy.run_id) == ("churn-eu", 1, run_id)
    assert copy.source == f"runs:/{run_id}/model"
    assert copy.lineage["registered_from"] == "models:/churn/1"


def test_a_run_without_a_model_is_refused_listing_what_it_has(
    client: TrackingClient, registry: RegistryClient
) -> None:
    bare = model_run(client, name="bare", path=None)
    client.log_artifact(bare, b"notes", name="notes.txt")
    elsewhere = model_run(client, name="elsewhere", path="modle")
    empty = model_run(client, name="empty", path=None)

    with pytest.raises(
        RegistryError,
        match=rf"Run {bare[:12]} \('bare'\) has no saved model at 'model': there is no artifact "
        r"'model/kiln-model.json'\. Its artifacts: notes\.txt\. Log a saved model folder",
    ):
        registry.register(bare, "churn")
    with pytest.raises(
        RegistryError,
        match=rf"Did you mean 'modle'\? Its saved models: runs:/{elsewhere}/modle\.",
    ):
        registry.register(elsewhere, "churn")
    with pytest.raises(RegistryError, match=r"It has no artifacts\."):
        registry.register(f"runs:/{empty}/model", "churn")
    assert registry.list_models() == []  # nothing half-registered


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        ("0123456789abcdef0123456789abcdef", RunNotFoundError, "No run with id '0123456789ab"),
        ("runs:/", RegistryError, r"expected runs:/<run id>/<path>"),
        ("runs:/abc123", RunNotFoundError, r"No run with id"),  # the path defaults to model
        ("runs:/abc123/../x", RegistryError, r"has an empty, '\.' or '\.\.' part"),
        ("runs:/not-hex/model", RegistryError, r"1 to 32 hexadecimal characters; got 'not-hex'"),
        ("s3://bucket/model", RegistryError, r"kiln registers runs:/<run id>/<path> URIs"),
        ("no/such/folder", RegistryError, r"there is no such folder \(working directory: "),
        (42, RegistryError, r"Cannot register a int: expected a model URI"),
        ("models:/churn", RegistryError, r"names a model but not which version"),
    ],
)
def test_register_refuses_what_is_not_a_model(
    registry: RegistryClient, model: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        registry.register(model, "churn")


def test_register_refuses_folders_without_a_model_and_bad_names(
    client: TrackingClient, registry: RegistryClient, tmp_path: Path
) -> None:
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "model.pkl").write_bytes(b"")
    (tmp_path / "kiln-model.json").write_text("{}")
    run_id = model_run(client)

    with pytest.raises(
        RegistryError,
        match=r"is not a saved kiln model: it has no kiln-model\.json\. It has: model\.pkl",
    ):
        registry.register(tmp_path / "f", "churn")
    with pytest.raises(
        RegistryError, match=r"is a file; a saved model is a folder\. Give its folder"
    ):
        registry.register(tmp_path / "kiln-model.json", "churn")
    for bad in ("", "my model", "a/b", "x@y", "-lead", "n" * 256):
        with pytest.raises(RegistryError, match=r"(?i)model name"):
            registry.register(run_id, bad)
    with pytest.raises(RegistryError, match="tag key must be a non-empty string"):
        registry.register(run_id, "churn", tags={"": 1})
    with pytest.raises(RegistryError, match="description must be a string"):
        registry.register(run_id, "churn", description=3)  # type: ignore[arg-type]


# ------------------------------------------------------------------ reading
@pytest.fixture
def churn(client: TrackingClient, registry: RegistryClient) -> list[str]:
    """Model churn with versions 1-3 (runs a, b, b) and fraud with version 1; aliases
    churn@production -> 2 (moved there from 1) and churn@staging -> 3."""
    a = model_run(client, name="a", metrics={"auc": 0.8})
    b = model_run(client, name="b", metrics={"auc": 0.9})
    registry.register(a, "churn")
    registry.register(b, "churn")
    registry.register(b, "churn")
    registry.register(a, "fraud", description="Card fraud")
    registry.set_alias("churn", "production", 1)
    registry.set_alias("churn", "production", 2)
    registry.set_alias("churn", "staging", 3)
    return [a, b]


def test_a_version_by_number_alias_or_latest(registry: RegistryClient, churn: list[str]) -> None:
    two = registry.get_model_version("churn", 2)

    assert two.aliases == ["production"]
    assert two.run_id == churn[1]
    for ref in ("2", "production", "@production", " 2 "):
        assert registry.get_model_version("churn", ref) == two
    assert registry.get_model_version("churn", "latest").version == 3
    assert registry.get_model_version("churn", "LATEST").aliases == ["staging"]
    with pytest.raises(FrozenInstanceError, match="cannot assign"):
        two.version = 5  # type: ignore[misc]


def test_unknown_models_versions_and_aliases_say_what_exists(
    registry: RegistryClient, churn: list[str]
) -> None:
    with pytest.raises(
        ModelNotFoundError,
        match=r"No registered model named 'chrun' in the store at .*\. Did you mean 'churn'\? "
        r"Registered models: churn, fraud\.",
    ):
        registry.get_model_version("chrun", 1)
    with pytest.raises(
        ModelVersionNotFoundError,
        match=r"Model 'churn' has no version 7\. Its versions: 1-3 \(latest: 3\)\.",
    ):
        registry.get_model_version("churn", 7)
    with pytest.raises(
        AliasNotFoundError,
        match=r"Model 'churn' has no alias 'prodution'\. Did you mean 'production'\? "
        r"Its aliases: production -> 2, staging -> 3\.",
    ):
        registry.get_model_version("churn", "prodution")
    with pytest.raises(ModelVersionNotFoundError, match="has no alias 'champion'"):
        registry.resolve_uri("models:/churn@champion")  # an AliasNotFoundError is one too
    with pytest.raises(
        AliasNotFoundError, match=r"It has no aliases; set one with: kiln models alias fraud prod"
    ):
        registry.get_model_version("fraud", "prod")
    with pytest.raises(RegistryError, match="Versions are numbered from 1; got 0"):
        registry.get_model_version("churn", 0)
    with pytest.raises(RegistryError, match="A version must be a positive integer"):
        registry.get_model_version("churn", 1.5)  # type: ignore[arg-type]


def test_an_empty_registry(registry: RegistryClient) -> None:
    assert registry.list_models() == []
    with pytest.raises(ModelNotFoundError, match=r"No model is registered yet: register one"):
        registry.list_versions("churn")


def test_list_models_and_versions(registry: RegistryClient, churn: list[str]) -> None:
    found = registry.list_models()

    assert [(m.name, m.latest_version, m.n_versions) for m in found] == [
        ("churn", 3, 3),
        ("fraud", 1, 1),
    ]
    assert found[0].aliases == {"production": 2, "staging": 3}
    assert found[1].description == "Card fraud"
    versions = registry.list_versions("churn")
    assert [(v.version, v.aliases, v.lineage["metrics"]["auc"]) for v in versions] == [
        (1, [], 0.8),
        (2, ["production"], 0.9),
        (3, ["staging"], 0.9),
    ]
    assert json.loads(json.dumps(versions[1].to_dict()))["uri"] == "models:/churn/2"


def test_resolve_uri(registry: RegistryClient, churn: list[str]) -> None:
    b = f"runs:/{churn[1]}/model"

    assert registry.resolve_uri("models:/churn/1") == f"runs:/{churn[0]}/model"
    assert registry.resolve_uri("models:/churn@production") == b
    assert registry.resolve_uri("models:/churn/latest") == b
    assert registry.resolve_uri(b) == b  # not the registry's: passed through
    assert registry.resolve_uri(Path("some/folder")) == "some/folder"
    with pytest.raises(
        RegistryError, match=r"For the version an alias points at, write models:/churn@production"
    ):
        registry.resolve_uri("models:/churn/production")
    with pytest.raises(
        RegistryError, match=r"models:/churn/3 \(a version\), models:/churn@production"
    ):
        registry.resolve_uri("models:/churn")
    with pytest.raises(RegistryError, match=r"is not a model reference: expected churn/VERSION"):
        registry.resolve_uri("models:/churn/1/extra")
    with pytest.raises(RegistryError, match=r"mixes a version and an alias"):
        registry.resolve_uri("models:/churn/1@production")


def test_module_level_resolve_uri_passes_other_uris_through_without_a_store(
    tmp_path: Path,
) -> None:
    kiln.configure(tmp_path / "never" / "kiln.db")

    assert kiln.registry.resolve_uri("runs:/abc/model") == "runs:/abc/model"
    assert not (tmp_path / "never").exists()


def test_module_level_resolve_uri_reads_the_store_it_is_given(
    client: TrackingClient, registry: RegistryClient, store_url: str
) -> None:
    run_id = model_run(client)
    registry.register(run_id, "churn")

    assert kiln.registry.resolve_uri("models:/churn/1", store=store_url) == f"runs:/{run_id}/model"
    with pytest.raises(ModelNotFoundError, match="No model is registered yet"):
        kiln.registry.resolve_uri("models:/churn/1")  # the configured store is another one


# ------------------------------------------------------------------ aliases
def test_set_alias_creates_moves_and_records_each_change_once(
    registry: RegistryClient, churn: list[str]
) -> None:
    same = registry.set_alias("churn", "production", 2)
    promoted = registry.set_alias("churn", "production", "staging")
    latest = registry.set_alias("churn", "champion", "latest")
    removed = registry.delete_alias("churn", "staging")

    assert (same.action, same.old_version, same.new_version) == ("unchanged", 2, 2)
    assert (promoted.action, promoted.old_version, promoted.new_version) == ("move", 2, 3)
    assert (latest.action, latest.old_version, latest.new_version) == ("set", None, 3)
    assert (removed.action, removed.old_version, removed.new_version) == ("remove", 3, None)
    history = registry.alias_history("churn")
    assert [(h.alias, h.action, h.old_version, h.new_version) for h in history] == [
        ("production", "set", None, 1),
        ("production", "move", 1, 2),
        ("staging", "set", None, 3),
        ("production", "move", 2, 3),
        ("champion", "set", None, 3),
        ("staging", "remove", 3, None),
    ]
    assert history[3] == promoted
    assert all(h.user and h.host and h.at for h in history)
    assert [h.action for h in registry.alias_history("churn", "staging")] == ["set", "remove"]
    assert registry.get_model("churn").aliases == {"champion": 3, "production": 3}
    assert registry.get_model_version("churn", 3).aliases == ["champion", "production"]


def test_alias_errors(registry: RegistryClient, churn: list[str]) -> None:
    with pytest.raises(ModelVersionNotFoundError, match=r"no version 9\. Its versions: 1-3"):
        registry.set_alias("churn", "production", 9)
    with pytest.raises(ModelNotFoundError, match="Did you mean 'churn'"):
        registry.set_alias("chrn", "production", 1)
    with pytest.raises(AliasNotFoundError, match=r"no alias 'stagin'\. Did you mean 'staging'\?"):
        registry.delete_alias("churn", "stagin")
    registry.delete_alias("churn", "staging")
    with pytest.raises(
        AliasNotFoundError,
        match=r"no alias 'stagging' and never had one\. Did you mean 'staging'\?",
    ):
        registry.alias_history("churn", "stagging")
    assert registry.get_model_version("churn", "production").version == 2  # untouched


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("latest", r"'latest' is reserved"),
        ("Latest", r"'Latest' is reserved"),
        ("3", r"all digits, so models:/NAME@3 would read like version 3.*such as 'v3'"),
        ("my alias", r"Alias 'my alias' is not valid: use letters, digits, '-' and '_'"),
        ("a/b", "is not valid"),
        ("a.b", "is not valid"),
        ("x" * 65, "at most 64 characters"),
        ("", "An alias must be a non-empty string"),
    ],
)
def test_alias_names_are_validated(
    registry: RegistryClient, churn: list[str], alias: str, message: str
) -> None:
    with pytest.raises(RegistryError, match=message):
        registry.set_alias("churn", alias, 1)
    assert len(registry.alias_history("churn")) == 3


# ------------------------------------------------------------------ real processes
_WORKER = """
import json, sys, time
from pathlib import Path
from kiln.registry import RegistryClient

mode, url, ready, go, n = sys.argv[1:6]
values = sys.argv[6:]
registry = RegistryClient(url)
registry.list_models()  # open the store before the start signal
Path(ready).touch()
deadline = time.monotonic() + 120
while not Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.001)
out = []
for i in range(int(n)):
    # A pause between calls lets the other worker in: SQLite's busy handler sleeps
    # while it waits, so a worker that never pauses would take every turn.
    time.sleep(0.002)
    if mode == "register":
        out.append(registry.register(values[0], "race").version)
    else:
        change = registry.set_alias("race", "production", int(values[i % 2]))
        out.append([change.action, change.old_version, change.new_version])
print(json.dumps(out))
"""


def race(
    tmp_path: Path, env: dict[str, str], mode: str, url: str, n: int, args: list[list[str]]
) -> list[Any]:
    """Start one worker per entry of `args` at the same instant; return what each printed."""
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(len(args))]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, mode, url, str(ready[i]), str(go), str(n), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for i, extra in enumerate(args)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready):
            died = [p.pid for p in procs if p.poll() is not None]
            assert not died, f"workers exited before the start signal: {procs[0].stderr}"
            assert time.monotonic() < deadline, "workers did not get ready in 120 s"
            time.sleep(0.01)
        go.touch()
        results = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, f"worker failed:\n{err}"
    return [json.loads(out) for out, _ in results]


@pytest.mark.slow
def test_processes_registering_at_once_get_distinct_consecutive_versions(
    client: TrackingClient,
    registry: RegistryClient,
    store_url: str,
    tmp_path: Path,
    subprocess_env: dict[str, str],
) -> None:
    n = 20
    runs = [model_run(client, name=f"w{i}") for i in range(2)]

    got = race(tmp_path, subprocess_env, "register", store_url, n, [[r] for r in runs])

    assert sorted(got[0] + got[1]) == list(range(1, 2 * n + 1))
    assert got[0] != list(range(got[0][0], got[0][0] + n)), "the workers did not race"
    assert all(a < b for a, b in zip(got[0], got[0][1:], strict=False))  # each in order
    by_version = {v.version: v.run_id for v in registry.list_versions("race")}
    assert {v: by_version[v] for v in got[0]} == dict.fromkeys(got[0], runs[0])
    assert {v: by_version[v] for v in got[1]} == dict.fromkeys(got[1], runs[1])


@pytest.mark.slow
def test_processes_moving_one_alias_at_once_leave_a_complete_consistent_history(
    client: TrackingClient,
    registry: RegistryClient,
    store_url: str,
    tmp_path: Path,
    subprocess_env: dict[str, str],
) -> None:
    n = 60
    run_id = model_run(client)
    for _ in range(4):
        registry.register(run_id, "race")
    # Worker A alternates versions 1 and 2, worker B 3 and 4: whoever wrote last, every
    # call changes the alias, so every call must appear in the history exactly once.
    got = race(tmp_path, subprocess_env, "alias", store_url, n, [["1", "2"], ["3", "4"]])

    history = registry.alias_history("race", "production")
    assert len(history) == 2 * n
    assert [h.action for h in history] == ["set"] + ["move"] * (2 * n - 1)
    assert history[0].old_version is None
    for before, after in itertools.pairwise(history):
        assert after.old_version == before.new_version
    assert registry.get_model_version("race", "production").version == history[-1].new_version
    for mine, versions in ((got[0], {1, 2}), (got[1], {3, 4})):
        assert all(action in ("set", "move") for action, _, _ in mine)
        recorded = [
            [h.action, h.old_version, h.new_version] for h in history if h.new_version in versions
        ]
        assert recorded == mine  # each worker's changes, in its order, as it saw them
    turns = sum(
        (before.new_version in (1, 2)) != (after.new_version in (1, 2))
        for before, after in itertools.pairwise(history)
    )
    assert turns > 1, "the workers ran one after the other, so nothing raced"


# ------------------------------------------------------------------ schema upgrades
def _store_at_0001(url: str, artifacts: str | None = None) -> None:
    from alembic import command
    from alembic.config import Config

    store = Store(url, engine_module._make_engine(url, create=True))
    cfg = Config()
    cfg.set_main_option("script_location", str(engine_module._MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        store._init_meta(conn, artifacts)
    store.engine.dispose()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


REGISTRY_TABLES = {"registered_models", "model_versions", "model_aliases", "model_alias_history"}


def test_an_embedded_store_from_before_the_registry_upgrades_itself(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old' / 'kiln.db'}"
    _store_at_0001(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO experiments (name, created_at) VALUES ('old', 1)"))
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, experiment_id, name, status, start_time) "
                "VALUES (:id, 1, 'before', 'finished', 1)"
            ),
            {"id": "ab" * 16},
        )
    engine.dispose()
    assert not REGISTRY_TABLES & _tables(url)

    client = TrackingClient(url)
    client.log_artifact("ab" * 16, b"{}", name="model/kiln-model.json")
    version = RegistryClient(client).register("ab" * 16, "old-model")

    assert client.store.revision == SCHEMA_REVISIONS[-1]
    assert _tables(url) >= REGISTRY_TABLES
    assert version.lineage["run_name"] == "before"


@pytest.mark.postgres
def test_a_team_store_from_before_the_registry_needs_kiln_store_migrate(
    tmp_path: Path,
) -> None:
    url = make_empty_pg_database()
    _store_at_0001(url, artifacts=str(tmp_path / "artifacts"))

    with pytest.raises(
        SchemaVersionError,
        match=rf"schema revision 0001; this kiln client needs {SCHEMA_REVISIONS[-1]}",
    ):
        RegistryClient(url)
    assert not REGISTRY_TABLES & _tables(url)
    migrated = CliRunner().invoke(cli, ["--store", url, "store", "migrate"], catch_exceptions=False)
    assert migrated.exit_code == 0, migrated.output

    assert RegistryClient(url).list_models() == []
    assert _tables(url) >= REGISTRY_TABLES


# ------------------------------------------------------------------ kiln models
@dataclass
class Registry:
    """A store with models churn (versions 1-3, aliases) and fraud (version 1)."""

    url: str
    a: str
    b: str


def populate(url: str) -> Registry:
    client = TrackingClient(url)
    registry = RegistryClient(client)
    a = model_run(client, name="a", params={"depth": 3}, metrics={"auc": 0.8})
    b = model_run(client, name="b", metrics={"auc": 0.9}, meta=b'{"flavor": "sklearn"}')
    client.log_dataset(b, {"x": [1.0, 2.0]}, role="train", name="train-v1")
    registry.register(a, "churn", description="Who leaves")
    registry.register(b, "churn", tags={"team": "ds"})
    registry.register(b, "churn")
    registry.register(a, "fraud")
    registry.set_alias("churn", "production", 1)
    registry.set_alias("churn", "production", 2)
    registry.set_alias("churn", "staging", 3)
    return Registry(url, a, b)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """One populated store per backend for this module's read-only CLI tests."""
    with pytest.MonkeyPatch.context() as mp:
        for var in ("KILN_STORE", "KILN_HOME", "KILN_ARTIFACTS"):
            mp.delenv(var, raising=False)
        if request.param == "sqlite":
            return populate(f"sqlite:///{tmp_path_factory.mktemp('reg') / 'kiln.db'}")
        return populate(make_pg_database(tmp_path_factory.mktemp("reg-pg-artifacts")))


@pytest.fixture
def populated(store_url: str) -> Registry:
    """A fresh populated store (both backends), for CLI tests that change it."""
    return populate(store_url)


def kiln_models(store: str, *args: str) -> Result:
    """`kiln --store STORE models ARGS...`; kiln errors are left in `.exception`."""
    return CliRunner().invoke(cli, ["--store", store, "models", *args])


def ok(store: str, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--store", store, "models", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def as_json(store: str, *args: str) -> Any:
    return json.loads(ok(store, *args, "--json").stdout)


def test_models_list(shared: Registry) -> None:
    listed = as_json(shared.url, "list")
    table = ok(shared.url, "list").stdout

    assert [(m["name"], m["latest_version"], m["aliases"]) for m in listed] == [
        ("churn", 3, {"production": 2, "staging": 3}),
        ("fraud", 1, {}),
    ]
    assert listed[0]["description"] == "Who leaves"
    assert "production=2, staging=3" in table
    assert "Who leaves" in table


def test_models_list_when_empty(store_url: str) -> None:
    assert ok(store_url, "list").stdout.startswith("No registered models found")
    assert as_json(store_url, "list") == []


def test_models_show_a_model_and_its_versions(shared: Registry) -> None:
    shown = as_json(shared.url, "show", "churn")
    table = ok(shared.url, "show", "churn").stdout

    assert [(v["version"], v["aliases"]) for v in shown["versions"]] == [
        (1, []),
        (2, ["production"]),
        (3, ["staging"]),
    ]
    assert shown["versions"][0]["source"] == f"runs:/{shared.a}/model"
    assert "Model churn" in table
    assert f"runs:/{shared.b}/model" in table
    assert "sklearn" in table


@pytest.mark.parametrize("ref", ["churn@production", "churn/2", "models:/churn@production"])
def test_models_show_one_version_with_its_lineage(shared: Registry, ref: str) -> None:
    shown = as_json(shared.url, "show", ref)

    assert (shown["name"], shown["version"], shown["uri"]) == ("churn", 2, "models:/churn/2")
    assert shown["lineage"]["metrics"] == {"auc": 0.9}
    assert shown["tags"] == {"team": "ds"}
    table = ok(shared.url, "show", ref).stdout
    for text in ("models:/churn/2", "production", "sklearn", "train-v1", "kiln-model.json", "team"):
        assert text in table


def test_models_show_latest_and_unknown_names(shared: Registry) -> None:
    assert as_json(shared.url, "show", "churn/latest")["version"] == 3

    unknown = kiln_models(shared.url, "show", "chrun")
    assert isinstance(unknown.exception, ModelNotFoundError)
    assert "Did you mean 'churn'?" in str(unknown.exception)
    wrong = kiln_models(shared.url, "show", "churn/production")
    assert isinstance(wrong.exception, RegistryError)
    assert "write churn@production" in str(wrong.exception)


def test_models_register(populated: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "kiln-model.json").write_text("{}")

    made = as_json(populated.url, "register", populated.b[:8], "churn", "-t", "k=v", "-d", "New")
    said = ok(populated.url, "register", str(folder), "local").stdout

    assert (made["version"], made["run_id"], made["tags"]) == (4, populated.b, {"k": "v"})
    assert said == f"Registered models:/local/1 from {folder.resolve()}\n"
    assert as_json(populated.url, "show", "churn")["description"] == "New"
    bad = kiln_models(populated.url, "register", populated.a, "churn", "-t", "novalue")
    assert bad.exit_code == 2
    assert "expected KEY=VALUE; got 'novalue'" in bad.output


def test_models_alias_sets_moves_and_deletes(populated: Registry) -> None:
    url = populated.url

    assert ok(url, "alias", "churn", "champion", "1").stdout == "Set churn@champion -> version 1.\n"
    assert ok(url, "alias", "churn", "champion", "staging").stdout == (
        "Moved churn@champion from version 1 to 3.\n"
    )
    assert (
        "already points at version 3; nothing changed"
        in ok(url, "alias", "churn", "champion", "3").stdout
    )
    moved = as_json(url, "alias", "churn", "production", "latest")
    assert (moved["action"], moved["old_version"], moved["new_version"]) == ("move", 2, 3)
    assert ok(url, "alias", "churn", "champion", "--delete").stdout == (
        "Removed churn@champion (it pointed at version 3).\n"
    )
    assert as_json(url, "show", "churn")["aliases"] == {"production": 3, "staging": 3}


def test_models_alias_needs_a_version_or_delete(populated: Registry) -> None:
    missing = kiln_models(populated.url, "alias", "churn", "production")
    both = kiln_models(populated.url, "alias", "churn", "production", "1", "--delete")
    unknown = kiln_models(populated.url, "alias", "churn", "production", "9")
    reserved = kiln_models(populated.url, "alias", "churn", "latest", "1")

    assert missing.exit_code == 2
    assert "Missing VERSION: kiln models alias churn production VERSION (or --delete)" in (
        missing.output
    )
    assert both.exit_code == 2
    assert "Give either a VERSION or --delete, not both." in both.output
    assert isinstance(unknown.exception, ModelVersionNotFoundError)
    assert isinstance(reserved.exception, RegistryError)
    assert as_json(populated.url, "show", "churn@production")["version"] == 2


def test_models_history(shared: Registry) -> None:
    everything = as_json(shared.url, "history", "churn")
    production = as_json(shared.url, "history", "churn", "production")
    table = ok(shared.url, "history", "churn").stdout

    assert [(h["alias"], h["action"], h["old_version"], h["new_version"]) for h in everything] == [
        ("production", "set", None, 1),
        ("production", "move", 1, 2),
        ("staging", "set", None, 3),
    ]
    assert [h["new_version"] for h in production] == [1, 2]
    assert "Alias history of churn" in table
    assert "move" in table
    assert ok(shared.url, "history", "fraud").stdout.startswith("No alias of fraud has been set")


def test_kiln_help_lists_the_models_group() -> None:
    top = CliRunner().invoke(cli, ["--help"]).stdout
    group = CliRunner().invoke(cli, ["models", "--help"]).stdout

    assert "models       List, show, register and alias registered models." in top
    assert all(cmd in group for cmd in ("list", "show", "register", "alias", "history"))


@pytest.mark.slow
def test_a_kiln_models_error_prints_one_line_and_exits_1(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    url = populate(f"sqlite:///{tmp_path / 'cli' / 'kiln.db'}").url
    kiln_exe = str(Path(sys.executable).parent / "kiln")
    done = subprocess.run(
        [kiln_exe, "--store", url, "models", "show", "churn@prod"],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1
    assert done.stderr.startswith(
        "Error: Model 'churn' has no alias 'prod'. Its aliases: production -> 2, staging -> 3."
    )
    assert done.stdout == ""


def test_records_are_plain_values(registry: RegistryClient, churn: list[str]) -> None:
    version = registry.get_model_version("churn", 1)
    change = registry.alias_history("churn")[0]

    assert isinstance(version, ModelVersion)
    assert isinstance(change, AliasChange)
    assert json.dumps(version.to_dict())
    assert change.to_dict()["at"].endswith("+00:00")


def test_gc_keeps_a_deleted_run_that_backs_a_registered_version(
    client: TrackingClient, registry: RegistryClient
) -> None:
    kept = model_run(client, name="kept")
    gone = model_run(client, name="gone", path="model")
    registry.register(kept, "churn")
    kept_blobs = [a.sha256 for a in client.get_run(kept).artifacts]
    client.delete_runs([kept, gone])

    result = client.gc()

    assert result["runs_purged"] == 1
    assert result["blobs_removed"] == 1  # gone's weights; kept's files and the shared {} stay
    assert registry.get_model_version("churn", 1).run_id == kept
    assert all(client.artifacts.exists(sha) for sha in kept_blobs)
