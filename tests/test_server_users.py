"""`kiln server`'s users, tokens and permissions: the real `mlflow` client signs in to a
real server on loopback (SQLite and PostgreSQL stores) with tokens made by
`kiln.server.Users` or the CLI, and each endpoint checks the permission it declares."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serve_helpers import KILN, server_env, serving

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from kiln import AccessError  # noqa: E402
from kiln.server import Users  # noqa: E402
from kiln.server._mlflow import ENDPOINTS  # noqa: E402
from kiln.server._perms import PERMISSIONS, effective_level  # noqa: E402
from kiln.server._users import LEVELS, ROLES, token_hash  # noqa: E402
from kiln.store import Store  # noqa: E402
from kiln.tracking import TrackingClient  # noqa: E402


class Team:
    """A live server over a store with users root (admin), ana and ben (editors) and
    vic (viewer), each with a token; `as_(name)` points MLflow's client at it as them."""

    def __init__(self, url: str, store: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.url = url
        self.store = store
        self.monkeypatch = monkeypatch
        self.tokens: dict[str, str] = {}

    def as_(self, name: str | None) -> MlflowClient:
        for var in (
            "MLFLOW_TRACKING_TOKEN",
            "MLFLOW_TRACKING_USERNAME",
            "MLFLOW_TRACKING_PASSWORD",
        ):
            self.monkeypatch.delenv(var, raising=False)
        if name is not None:
            self.monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", self.tokens[name])
        return MlflowClient()


def _make_team(store_url: str) -> tuple[Users, dict[str, str]]:
    users = Users(store_url)
    made = {}
    for name, role in [("root", "admin"), ("ana", "editor"), ("ben", "editor"), ("vic", "viewer")]:
        users.add(name, role=role)
        made[name] = users.create_token(name, name="test")
    return users, made


@pytest.fixture
def team(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    _users, made = _make_team(store_url)
    with serving([KILN, "--store", store_url, "server"], server_env(tmp_path)) as (url, _proc):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        mlflow.set_tracking_uri(url)
        found = Team(url, store_url, monkeypatch)
        found.tokens.update(made)
        yield found


def _code(exc: pytest.ExceptionInfo[MlflowException]) -> Any:
    return exc.value.error_code


def test_a_viewer_reads_but_cannot_write(team: Team) -> None:
    root = team.as_("root")
    experiment_id = root.create_experiment("churn")
    run = root.create_run(experiment_id)
    root.log_metric(run.info.run_id, "acc", 0.9)

    vic = team.as_("vic")
    got = vic.get_run(run.info.run_id)
    found = vic.search_runs([experiment_id])
    with pytest.raises(
        MlflowException, match=r"log_metric needs EDIT permission on experiment 'churn'"
    ) as denied:
        vic.log_metric(run.info.run_id, "acc", 0.1)
    with pytest.raises(MlflowException, match="needs the editor role") as no_create:
        vic.create_experiment("mine")

    assert got.data.metrics == {"acc": 0.9}
    assert [r.info.run_id for r in found] == [run.info.run_id]
    assert _code(denied) == _code(no_create) == "PERMISSION_DENIED"
    assert "vic" in str(denied.value)
    assert "has READ" in str(denied.value)
    assert TrackingClient(team.store).get_run(run.info.run_id).metrics == {"acc": 0.9}


def test_an_editor_writes_where_it_created_or_was_granted(team: Team) -> None:
    ana = team.as_("ana")
    experiment_id = ana.create_experiment("ana-exp")
    run = ana.create_run(experiment_id)
    ana.log_param(run.info.run_id, "model", "rf")

    ben = team.as_("ben")
    assert ben.get_run(run.info.run_id).data.params == {"model": "rf"}
    with pytest.raises(MlflowException, match="needs EDIT") as before:
        ben.log_metric(run.info.run_id, "acc", 0.5)
    with pytest.raises(MlflowException, match="needs EDIT"):
        ben.create_run(experiment_id)

    Users(team.store).grant("ben", "ana-exp", "EDIT")
    ben.log_metric(run.info.run_id, "acc", 0.5)
    ben_run = ben.create_run(experiment_id)
    with pytest.raises(MlflowException, match="delete_run needs MANAGE") as no_delete:
        ben.delete_run(ben_run.info.run_id)
    team.as_("ana").delete_run(ben_run.info.run_id)  # the creator has MANAGE

    assert _code(before) == _code(no_delete) == "PERMISSION_DENIED"
    assert TrackingClient(team.store).get_run(run.info.run_id).metrics == {"acc": 0.5}
    assert [r.id for r in TrackingClient(team.store).search_runs("ana-exp")] == [run.info.run_id]
    grants = {(g.user, g.experiment, g.level) for g in Users(team.store).grants()}
    assert grants == {("ana", "ana-exp", "MANAGE"), ("ben", "ana-exp", "EDIT")}


def test_mlflows_default_experiment_takes_editors_runs(team: Team) -> None:
    run = team.as_("ana").create_run("0")  # MLflow's client with no experiment set
    with pytest.raises(MlflowException, match="needs EDIT permission on experiment 'Default'"):
        team.as_("vic").create_run("0")

    assert TrackingClient(team.store).get_run(run.info.run_id).experiment == "Default"


def test_searches_answer_only_what_the_user_can_read(team: Team) -> None:
    root = team.as_("root")
    open_id = root.create_experiment("open")
    hidden_id = root.create_experiment("hidden")
    open_run = root.create_run(open_id)
    root.create_run(hidden_id)
    Users(team.store).grant("vic", "hidden", "NONE")

    vic = team.as_("vic")
    names = {e.name for e in vic.search_experiments()}
    runs = vic.search_runs([open_id, hidden_id])
    only_hidden = vic.search_runs([hidden_id])
    with pytest.raises(MlflowException, match="needs READ") as denied:
        vic.get_experiment(hidden_id)

    assert "hidden" not in names
    assert "open" in names
    assert [r.info.run_id for r in runs] == [open_run.info.run_id]
    assert list(only_hidden) == []
    assert _code(denied) == "PERMISSION_DENIED"
    assert {e.name for e in team.as_("root").search_experiments()} >= {"open", "hidden"}


def test_signing_in_is_needed_and_refused_tokens_are_401(team: Team) -> None:
    users = Users(team.store)
    revoked = users.create_token("ana", name="old")
    users.revoke_token("ana", "old")
    expired = users.create_token("ana", name="brief", expires_in_days=1e-9)
    users.add("gone", role="editor")
    disabled = users.create_token("gone")
    users.set_disabled("gone")
    api = f"{team.url}/api/2.0/mlflow/experiments/search"

    answers = {
        "none": httpx.post(api, json={}),
        "unknown": httpx.post(api, json={}, headers={"Authorization": "Bearer kiln_nope"}),
        "revoked": httpx.post(api, json={}, headers={"Authorization": f"Bearer {revoked}"}),
        "expired": httpx.post(api, json={}, headers={"Authorization": f"Bearer {expired}"}),
        "disabled": httpx.post(api, json={}, headers={"Authorization": f"Bearer {disabled}"}),
        "scheme": httpx.post(api, json={}, headers={"Authorization": "Token abc"}),
    }
    team.monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", revoked)
    with pytest.raises(MlflowException, match="was revoked") as in_mlflow:
        MlflowClient().search_experiments()

    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 401)
    assert all(r.json()["error_code"] == "UNAUTHENTICATED" for r in answers.values())
    assert all(set(r.json()) == {"error_code", "message"} for r in answers.values())
    assert "revoked" in answers["revoked"].json()["message"]
    assert "expired" in answers["expired"].json()["message"]
    assert "disabled" in answers["disabled"].json()["message"]
    assert _code(in_mlflow) == "UNAUTHENTICATED"
    assert httpx.get(f"{team.url}/health").status_code == 200
    assert httpx.get(f"{team.url}/ready").status_code == 200


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_http_basic_signs_in_with_a_users_token_as_password(team: Team) -> None:
    team.as_(None)
    team.monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ana")
    team.monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", team.tokens["ana"])
    experiment_id = MlflowClient().create_experiment("basic")
    team.monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ben")  # ana's token, ben's name
    with pytest.raises(MlflowException, match="not one of user 'ben'") as wrong_user:
        MlflowClient().get_experiment(experiment_id)

    assert _code(wrong_user) == "UNAUTHENTICATED"
    assert [g.user for g in Users(team.store).grants()] == ["ana"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_tokens_last_use_is_written_at_most_once_a_minute(team: Team) -> None:
    ana = team.as_("ana")
    ana.search_experiments()
    first = {t.name: t.last_used_at for t in Users(team.store).tokens("ana")}["test"]
    ana.search_experiments()
    second = {t.name: t.last_used_at for t in Users(team.store).tokens("ana")}["test"]

    assert first is not None
    assert second == first


def test_the_store_holds_no_token_text(store_url: str) -> None:
    users, made = _make_team(store_url)
    store = Store.open(store_url)
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM tokens")).all()
    cells = [str(v) for row in rows for v in row]

    assert len(rows) == len(made)
    assert not any(token in cell for token in made.values() for cell in cells)
    assert {token_hash(t) for t in made.values()} <= set(cells)
    assert all(t.startswith("kiln_") and len(t) > 40 for t in made.values())
    assert users.authenticate(made["vic"]).role == "viewer"  # type: ignore[union-attr]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_servers_own_token_is_an_admin_beside_users(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _users, made = _make_team(store_url)
    cmd = [KILN, "--store", store_url, "server", "--token", "s3cret"]
    with serving(cmd, server_env(tmp_path)) as (url, _proc):
        team = Team(url, store_url, monkeypatch)
        team.tokens.update(made, legacy="s3cret")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mlflow.set_tracking_uri(url)
        ana_exp = team.as_("ana").create_experiment("ana-only")
        run = team.as_("legacy").create_run(ana_exp)  # an admin writes anywhere
        with pytest.raises(MlflowException, match="needs EDIT"):
            team.as_("vic").log_metric(run.info.run_id, "x", 1.0)

    assert TrackingClient(store_url).get_run(run.info.run_id).experiment == "ana-only"


def test_every_endpoint_declares_its_permission() -> None:
    """Every endpoint map of the server package (a module's `ENDPOINTS`, as
    kiln.server._mlflow's) names only endpoints declared in _perms.PERMISSIONS."""
    import importlib
    import pkgutil

    import kiln.server

    maps = {}
    for info in pkgutil.iter_modules(kiln.server.__path__):
        module = importlib.import_module(f"kiln.server.{info.name}")
        if isinstance(getattr(module, "ENDPOINTS", None), dict):
            maps[info.name] = module.ENDPOINTS
    undeclared = {
        name: module
        for module, endpoints in maps.items()
        for name in endpoints.values()
        if name not in PERMISSIONS
    }

    assert "_mlflow" in maps
    assert undeclared == {}, f"endpoints without a permission in _perms.PERMISSIONS: {undeclared}"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_undeclared_endpoint_is_refused_even_on_an_open_server(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiln.server import create_app
    from kiln.server._mlflow import MlflowApi

    monkeypatch.setitem(ENDPOINTS, ("GET", "runs/undeclared"), "undeclared")
    monkeypatch.setattr(MlflowApi, "undeclared", lambda self, body: {}, raising=False)
    app = create_app(store_url)

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kiln") as http:
            return await http.get("/api/2.0/mlflow/runs/undeclared")

    answer = asyncio.run(ask())

    assert answer.status_code == 403
    assert answer.json()["error_code"] == "PERMISSION_DENIED"
    assert "declares no permission" in answer.json()["message"]


# ------------------------------------------------------------------------- the CLI
def test_the_cli_adds_users_makes_tokens_and_grants(store_url: str) -> None:
    from kiln.cli import cli

    TrackingClient(store_url).experiment_id("shared", create=True)
    runner = CliRunner()

    def kiln(*args: str) -> Any:
        return runner.invoke(cli, ["--store", store_url, "server", *args])

    added = kiln("users", "add", "ana", "--role", "viewer")
    made = kiln("tokens", "create", "ana", "--name", "laptop", "--expires-in", "30")
    granted = kiln("permissions", "grant", "ana", "shared", "edit")
    listed = kiln("permissions", "list", "--json")
    tokens = kiln("tokens", "list", "ana", "--json")
    revoked = kiln("tokens", "revoke", "ana", "laptop")
    ungranted = kiln("permissions", "revoke", "ana", "shared")
    disabled = kiln("users", "disable", "ana")
    users = kiln("users", "list", "--json")

    assert added.exit_code == 0, added.output
    assert made.exit_code == 0, made.output
    token = made.stdout.splitlines()[0]
    assert token.startswith("kiln_")
    assert "shown once" in made.stderr
    assert "has EDIT on experiment 'shared'" in granted.output
    assert '"level": "EDIT"' in listed.output
    assert '"state": "active"' in tokens.output
    assert token not in tokens.output
    assert "Revoked token 'laptop'" in revoked.output
    assert "Removed" in ungranted.output
    assert disabled.exit_code == 0
    assert '"disabled": true' in users.output
    assert "was revoked" in str(Users(store_url).authenticate(token))
    assert Users(store_url).grants() == []


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_cli_says_what_was_wrong(store_url: str) -> None:
    from kiln.cli import cli

    runner = CliRunner()

    def kiln(*args: str) -> tuple[int, str]:
        """Exit status and what the user reads (kiln's `main` prints a KilnError)."""
        result = runner.invoke(cli, ["--store", store_url, "server", *args])
        return result.exit_code, result.output + str(result.exception or "")

    kiln("users", "add", "ana")
    duplicate = kiln("users", "add", "ana")
    bad_role = kiln("users", "add", "bob", "--role", "boss")
    unknown = kiln("tokens", "create", "zed")
    no_experiment = kiln("permissions", "grant", "ana", "nowhere", "READ")
    bad_level = kiln("permissions", "grant", "ana", "nowhere", "OWN")
    no_token = kiln("tokens", "revoke", "ana", "laptop")

    assert duplicate[0] == 1
    assert "'ana' already exists" in duplicate[1]
    assert bad_role[0] == 2
    assert "'admin', 'editor', 'viewer'" in bad_role[1]
    assert unknown[0] == 1
    assert "No user named 'zed'; the users are: ana" in unknown[1]
    assert "No experiment named 'nowhere'" in no_experiment[1]
    assert bad_level[0] == 1
    assert "a level is one of NONE, READ, EDIT, MANAGE" in bad_level[1]
    assert "has no token named 'laptop'" in no_token[1]
    with pytest.raises(
        AccessError, match="Unknown role 'boss': a role is one of admin, editor, viewer"
    ):
        Users(store_url).add("bob", role="boss")
    with pytest.raises(AccessError, match="a level is one of NONE, READ, EDIT, MANAGE"):
        Users(store_url).grant("ana", "x", "OWN")


# ------------------------------------------------ roles and grants against a model
_EXPERIMENTS = ("e1", "e2", "Default")
_names = itertools.count()


@pytest.fixture(scope="module")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    folder = tmp_path_factory.mktemp("perm-model")
    url = f"sqlite:///{folder / 'kiln.db'}"
    client = TrackingClient(url)
    runs = {}
    for name in _EXPERIMENTS:
        runs[name] = client.create_run(experiment=name)
    client.flush()
    Users(url).add("owner", role="admin")
    with (
        serving([KILN, "--store", url, "server"], server_env(folder)) as (base, _proc),
        httpx.Client(base_url=base) as http,
    ):
        yield url, (http, runs, {n: client.experiment_id(n) for n in _EXPERIMENTS})


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    role=st.sampled_from(ROLES),
    grants=st.dictionaries(st.sampled_from(_EXPERIMENTS), st.sampled_from(LEVELS)),
)
def test_random_roles_and_grants_act_as_the_reference_model(
    model_store: tuple[str, Any], role: str, grants: dict[str, str]
) -> None:
    """What a user may do over HTTP equals a model written from the documented rules."""
    url, (http, runs, ids) = model_store
    users = Users(url)
    name = f"u{next(_names)}"
    users.add(name, role=role)
    token = users.create_token(name)
    for experiment, level in grants.items():
        users.grant(name, experiment, level)
    auth = {"Authorization": f"Bearer {token}"}
    api = "/api/2.0/mlflow"

    def level_of(experiment: str) -> str:  # the reference model
        if role == "admin":
            return "MANAGE"
        if experiment in grants:
            return grants[experiment]
        return "EDIT" if role == "editor" and experiment == "Default" else "READ"

    rank = LEVELS.index
    for experiment in _EXPERIMENTS:
        read = http.get(
            f"{api}/experiments/get", params={"experiment_id": ids[experiment]}, headers=auth
        )
        write = http.post(
            f"{api}/runs/set-tag",
            json={"run_id": runs[experiment], "key": "by", "value": name},
            headers=auth,
        )
        assert read.status_code == (200 if rank(level_of(experiment)) >= rank("READ") else 403)
        assert write.status_code == (200 if rank(level_of(experiment)) >= rank("EDIT") else 403)
        assert level_of(experiment) == effective_level(
            role, grants.get(experiment), is_default=experiment == "Default"
        )
    listed = http.post(f"{api}/experiments/search", json={}, headers=auth).json()["experiments"]
    created = http.post(f"{api}/experiments/create", json={"name": f"by-{name}"}, headers=auth)

    readable = {e for e in _EXPERIMENTS if rank(level_of(e)) >= rank("READ")}
    assert {e["name"] for e in listed} & set(_EXPERIMENTS) == readable
    assert created.status_code == (403 if role == "viewer" else 200)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_open_server_needs_signing_in_once_a_user_is_added(
    store_url: str, tmp_path: Path
) -> None:
    import time

    with serving([KILN, "--store", store_url, "server"], server_env(tmp_path)) as (url, _proc):
        search = f"{url}/api/2.0/mlflow/experiments/search"
        before = httpx.post(search, json={}).status_code
        Users(store_url).add("ana", role="viewer")
        token = Users(store_url).create_token("ana")
        deadline = time.monotonic() + 10
        while (after := httpx.post(search, json={}).status_code) == 200:
            assert time.monotonic() < deadline, "the server did not notice the new user"
            time.sleep(0.1)
        signed = httpx.post(search, json={}, headers={"Authorization": f"Bearer {token}"})

    assert (before, after, signed.status_code) == (200, 401, 200)


def test_purging_a_deleted_experiment_drops_its_grants(store_url: str) -> None:
    client = TrackingClient(store_url)
    client.create_run(experiment="short-lived")
    client.flush()
    users = Users(store_url)
    users.add("ana", role="viewer")
    users.grant("ana", "short-lived", "EDIT")
    client.delete_experiment("short-lived")
    client.gc()

    with Store.open(store_url).read() as conn:
        import sqlalchemy as sa

        left = conn.execute(sa.text("SELECT COUNT(*) FROM experiment_permissions")).scalar()
    assert left == 0
    assert [e.name for e in client.list_experiments()] == []
