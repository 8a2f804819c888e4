"""The metadata store: finding it, opening it, migrating it, and refusing what it cannot use.

Everything runs on real SQLite files and a real PostgreSQL server (see conftest.py);
processes that race to create a store are real processes.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from conftest import make_empty_pg_database, make_pg_database
from kiln import ConfigurationError, SchemaVersionError, StoreError, StoreUnavailableError
from kiln.cli import cli
from kiln.store import SCHEMA_REVISIONS, Store, find_home, resolve_url
from kiln.store import _engine as engine_module
from kiln.store.schema import SQLITE_ONLY_INDEXES, metadata
from kiln.tracking import TrackingClient

HEAD = SCHEMA_REVISIONS[-1]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL with nothing behind it yet: no SQLite file, or an empty PostgreSQL db."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'new-store' / 'kiln.db'}"
    return make_empty_pg_database()


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _set_revision(url: str, revision: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def _schema_diff(url: str) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = Store.open(url)
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                # Made on SQLite by DDL of its own (see _schema.SQLITE_ONLY_INDEXES).
                "include_object": lambda obj, name, type_, reflected, compare_to: (
                    not (type_ == "index" and name in SQLITE_ONLY_INDEXES)
                ),
            },
        )
        return list(compare_metadata(context, metadata))


# ------------------------------------------------------------------ finding the store
@pytest.fixture
def no_kiln_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let `find_home` walk folders instead of obeying the test's KILN_HOME."""
    monkeypatch.delenv("KILN_HOME")


def _git_init(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(folder)], check=True, capture_output=True)


@pytest.mark.usefixtures("no_kiln_home")
def test_find_home_takes_the_nearest_kiln_folder_walking_up(tmp_path: Path) -> None:
    (tmp_path / "project" / ".kiln").mkdir(parents=True)
    (tmp_path / "project" / "sub" / ".kiln").mkdir(parents=True)
    deep = tmp_path / "project" / "sub" / "a" / "b"
    deep.mkdir(parents=True)
    other = tmp_path / "project" / "other"
    other.mkdir()

    assert find_home(deep) == tmp_path / "project" / "sub" / ".kiln"
    assert find_home(other) == tmp_path / "project" / ".kiln"
    assert find_home(tmp_path / "project") == tmp_path / "project" / ".kiln"


@pytest.mark.usefixtures("no_kiln_home")
def test_find_home_ignores_a_kiln_file_that_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "outer" / ".kiln").mkdir(parents=True)
    inner = tmp_path / "outer" / "inner"
    inner.mkdir()
    (inner / ".kiln").write_text("not a folder")

    assert find_home(inner) == tmp_path / "outer" / ".kiln"


@pytest.mark.usefixtures("no_kiln_home")
def test_find_home_falls_back_to_the_git_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _git_init(repo)
    deep = repo / "src" / "pkg"
    deep.mkdir(parents=True)

    assert find_home(deep) == repo / ".kiln"
    assert not (repo / ".kiln").exists()  # finding is not creating


@pytest.mark.usefixtures("no_kiln_home")
def test_find_home_prefers_a_kiln_folder_inside_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _git_init(repo)
    (repo / "analysis" / ".kiln").mkdir(parents=True)
    (repo / "analysis" / "notebooks").mkdir()
    (repo / "service").mkdir()

    assert find_home(repo / "analysis" / "notebooks") == repo / "analysis" / ".kiln"
    assert find_home(repo / "service") == repo / ".kiln"


@pytest.mark.usefixtures("no_kiln_home")
def test_find_home_does_not_walk_past_the_git_root(tmp_path: Path) -> None:
    (tmp_path / ".kiln").mkdir()  # a stray store above the repository, like ~/.kiln
    repo = tmp_path / "repo"
    _git_init(repo)
    (repo / "src").mkdir()

    assert find_home(repo / "src") == repo / ".kiln"
    assert find_home(tmp_path / "elsewhere") == tmp_path / ".kiln"


@pytest.mark.usefixtures("no_kiln_home")
def test_find_home_uses_the_start_folder_outside_any_repository(tmp_path: Path) -> None:
    start = tmp_path / "loose" / "folder"
    start.mkdir(parents=True)
    above = [p for p in start.parents if (p / ".kiln").is_dir() or (p / ".git").exists()]
    assert not above, f"precondition: no .kiln/ or .git above the test folder, found {above}"

    assert find_home(start) == start / ".kiln"


@pytest.mark.usefixtures("no_kiln_home")
def test_find_home_starts_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    _git_init(repo)
    (repo / "src").mkdir()
    monkeypatch.chdir(repo / "src")

    assert find_home() == repo / ".kiln"
    assert resolve_url() == f"sqlite:///{repo / '.kiln' / 'kiln.db'}"


def test_kiln_home_overrides_every_folder_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "work" / ".kiln").mkdir()
    monkeypatch.setenv("KILN_HOME", str(tmp_path / "elsewhere" / "store"))

    assert find_home(tmp_path / "work") == tmp_path / "elsewhere" / "store"


@pytest.mark.usefixtures("no_kiln_home")
def test_default_store_is_created_at_the_git_root_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    _git_init(repo)
    (repo / "notebooks").mkdir()
    monkeypatch.chdir(repo / "notebooks")

    client = TrackingClient()
    run_id = client.create_run(experiment="e")
    client.log_text(run_id, "hello", "note.txt")

    assert (repo / ".kiln" / "kiln.db").is_file()
    assert client.store.artifact_root == str(repo / ".kiln" / "artifacts")
    assert list((repo / ".kiln" / "artifacts" / "objects").rglob("*"))


def test_resolve_url_prefers_the_argument_then_kiln_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Path(os.environ["KILN_HOME"])
    assert resolve_url() == f"sqlite:///{home / 'kiln.db'}"

    monkeypatch.setenv("KILN_STORE", str(tmp_path / "from-env.db"))
    assert resolve_url() == f"sqlite:///{tmp_path / 'from-env.db'}"
    assert resolve_url(tmp_path / "explicit.db") == f"sqlite:///{tmp_path / 'explicit.db'}"


def test_resolve_url_understands_paths_folders_and_postgres_spellings(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()

    assert resolve_url(tmp_path / "folder") == f"sqlite:///{tmp_path / 'folder' / 'kiln.db'}"
    assert resolve_url(tmp_path / "new") == f"sqlite:///{tmp_path / 'new' / 'kiln.db'}"
    assert resolve_url("team.sqlite") == f"sqlite:///{Path.cwd() / 'team.sqlite'}"
    for spelling in ("postgres://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db"):
        assert resolve_url(spelling) == "postgresql+psycopg://u@h/db"


# ------------------------------------------------------------------ an embedded store
def test_a_new_sqlite_store_is_created_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "kiln.db"
    store = Store.open(path)

    assert store.dialect == "sqlite"
    assert store.revision == HEAD
    meta = store.meta()
    assert re.fullmatch(r"[0-9a-f]{32}", meta["store_id"])
    assert int(meta["created_at"]) > 0
    assert meta["artifact_root"] == "artifacts"  # beside kiln.db, so the folder can move
    assert store.artifact_root == str(tmp_path / "a" / "b" / "artifacts")
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_existing_empty_sqlite_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "kiln.db"
    sqlite3.connect(path).close()  # a valid SQLite file with no tables

    assert Store.open(path).revision == HEAD
    assert "runs" in _tables(f"sqlite:///{path}")


def _without_rowid(path: Path) -> dict[str, bool]:
    with closing(sqlite3.connect(path)) as raw:
        rows = raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('params', 'latest_metrics', 'tags')"
        ).fetchall()
    return {name: sql.rstrip().endswith("WITHOUT ROWID") for name, sql in rows}


def _tables_and_indexes(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as raw:
        return {name for (name,) in raw.execute("SELECT name FROM sqlite_master")}


def test_a_new_sqlite_store_keeps_run_keyed_tables_without_rowid(tmp_path: Path) -> None:
    Store.open(tmp_path / "kiln.db")

    assert "ix_params_key_value" in _tables_and_indexes(tmp_path / "kiln.db")

    assert _without_rowid(tmp_path / "kiln.db") == dict.fromkeys(
        ("params", "latest_metrics", "tags"), True
    )


def test_an_embedded_store_at_0002_is_rebuilt_without_rowid_keeping_every_row(
    tmp_path: Path,
) -> None:
    from alembic import command
    from alembic.config import Config

    path = tmp_path / "kiln.db"
    url = f"sqlite:///{path}"
    old = Store(url, engine_module._make_engine(url, create=True))
    cfg = Config()
    cfg.set_main_option("script_location", str(engine_module._MIGRATIONS))
    with old.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        old._init_meta(conn, None)
        conn.execute(sa.text("INSERT INTO experiments (name, created_at) VALUES ('e', 1)"))
        for i in range(3):
            run_id = f"{i:032x}"
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, experiment_id, name, status, start_time) "
                    "VALUES (:id, 1, :name, 'finished', :t)"
                ),
                {"id": run_id, "name": f"r{i}", "t": i},
            )
            conn.execute(
                sa.text("INSERT INTO params VALUES (:id, 'alpha', :v, :n)"),
                {"id": run_id, "v": str(i / 10), "n": i / 10},
            )
            conn.execute(
                sa.text("INSERT INTO latest_metrics VALUES (:id, 'acc', :v, 0, 1)"),
                {"id": run_id, "v": 0.1 + i / 3},
            )
            conn.execute(sa.text("INSERT INTO tags VALUES (:id, 'team', 'ds')"), {"id": run_id})
    old.engine.dispose()
    assert _without_rowid(path) == dict.fromkeys(("params", "latest_metrics", "tags"), False)

    client = TrackingClient(path)

    assert client.store.revision == HEAD
    assert _without_rowid(path) == dict.fromkeys(("params", "latest_metrics", "tags"), True)
    assert "ix_params_key_value" in _tables_and_indexes(path)
    found = client.search_runs(filter="metrics.acc > 0.4", order_by="metrics.acc desc")
    assert [(r.name, r.params, r.metrics, r.tags) for r in found] == [
        (f"r{i}", {"alpha": str(i / 10)}, {"acc": 0.1 + i / 3}, {"team": "ds"}) for i in (2, 1)
    ]
    Store.close_all()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert raw.execute("SELECT count(*) FROM params").fetchone() == (3,)


def test_an_embedded_store_can_be_moved_with_its_artifacts(tmp_path: Path) -> None:
    client = TrackingClient(tmp_path / "before" / ".kiln")
    run_id = client.create_run(experiment="e")
    client.log_text(run_id, "kept across the move", "note.txt")
    Store.close_all()

    (tmp_path / "before" / ".kiln").rename(tmp_path / ".kiln-moved")
    moved = TrackingClient(tmp_path / ".kiln-moved")

    assert moved.store.artifact_root == str(tmp_path / ".kiln-moved" / "artifacts")
    assert moved.read_artifact(run_id, "note.txt") == b"kept across the move"


@pytest.mark.slow
def test_processes_creating_a_new_store_at_once_all_succeed(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    n = 5
    db = tmp_path / "shared" / "kiln.db"  # neither the folder nor the file exists yet
    url = f"sqlite:///{db}"
    go = tmp_path / "go"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "import alembic.command, sqlalchemy, kiln, kiln.tracking  # slow imports first\n"
        "ready, go, url, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]\n"
        "ready.touch()\n"
        "deadline = time.monotonic() + 120\n"
        "while not go.exists():\n"
        "    if time.monotonic() > deadline:\n"
        "        sys.exit('no start signal')\n"
        "    time.sleep(0.001)\n"
        "kiln.configure(url)\n"
        "with kiln.start_run(experiment='race', name=name, params={'worker': name}) as run:\n"
        "    kiln.log_metric('score', float(name[1:]))\n"
        "print(run.id)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / f"ready{i}"), str(go), url, f"w{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=subprocess_env,
            text=True,
        )
        for i in range(n)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready{i}").exists() for i in range(n)):
            died = [p.args[-1] for p in procs if p.poll() is not None]
            assert not died, f"workers {died} exited before the start signal"
            assert time.monotonic() < deadline, "workers did not get ready in 120 s"
            time.sleep(0.01)
        assert not db.exists()
        go.touch()  # every worker opens the brand-new store now
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, f"worker {p.args[-1]} failed:\n{err}"
    printed = {out.strip() for out, _ in results}
    found = TrackingClient(url).search_runs("race")
    assert {r.id for r in found} == printed
    assert sorted(r.name for r in found) == [f"w{i}" for i in range(n)]
    assert all(r.status == "finished" and r.metrics for r in found)
    with closing(sqlite3.connect(db)) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        assert raw.execute("SELECT count(*) FROM experiments").fetchone() == (1,)
        assert raw.execute("SELECT count(*) FROM store_meta WHERE key = 'store_id'").fetchone() == (
            1,
        )


# ------------------------------------------------------------------ schema versions
def test_migrated_schema_matches_the_sqlalchemy_metadata(store_url: str) -> None:
    assert _schema_diff(store_url) == []


def test_schema_comparison_notices_a_missing_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kiln.db'}"
    store = Store.open(url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_runs_parent_id"))

    diff = _schema_diff(url)

    assert [(kind, index.name) for kind, index in diff] == [("add_index", "ix_runs_parent_id")]


def test_a_schema_newer_than_the_client_is_refused(store_url: str) -> None:
    Store.open(store_url)
    Store.close_all()
    _set_revision(store_url, "9999")

    expected = rf"schema revision 9999, newer than this kiln client understands \(its newest is {HEAD}\).*pip install -U kiln-ml"
    with pytest.raises(SchemaVersionError, match=expected):
        Store.open(store_url)
    with pytest.raises(SchemaVersionError, match=expected):
        TrackingClient(store_url)
    with pytest.raises(SchemaVersionError, match=expected):
        CliRunner().invoke(cli, ["--store", store_url, "store", "migrate"], catch_exceptions=False)
    assert _revision(store_url) == "9999"  # nobody tried to "fix" the newer schema


@pytest.mark.postgres
def test_an_empty_postgres_database_is_refused_and_left_untouched() -> None:
    url = make_empty_pg_database()

    with pytest.raises(
        SchemaVersionError,
        match=rf"no kiln schema yet\. Create it once for the team with:  kiln store migrate --store '{re.escape(url)}'",
    ):
        Store.open(url)
    with pytest.raises(SchemaVersionError, match="no kiln schema yet"):
        TrackingClient(url)
    assert _tables(url) == []


@pytest.mark.postgres
def test_an_older_postgres_schema_is_refused_with_the_migrate_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_pg_database(tmp_path / "artifacts")
    # A client one migration ahead of this database: NEXT stands for its next revision.
    NEXT = f"{int(SCHEMA_REVISIONS[-1]) + 1:04d}"
    monkeypatch.setattr(engine_module, "SCHEMA_REVISIONS", (*SCHEMA_REVISIONS, NEXT))

    with pytest.raises(
        SchemaVersionError,
        match=rf"schema revision {HEAD}; this kiln client needs {NEXT}\. A shared store is never migrated implicitly: run  kiln store migrate --store",
    ):
        Store.open(url)
    monkeypatch.undo()  # the refusal changed nothing: today's client opens it as before
    assert Store.open(url).revision == HEAD


# ------------------------------------------------------------------ unusable URLs
def _closed_port(tmp_path: Path) -> str:
    return "postgresql://kiln@127.0.0.1:1/kiln"


def _password(tmp_path: Path) -> str:
    return "postgresql://kiln:hunter2@127.0.0.1:1/kiln"


def _parent_is_a_file(tmp_path: Path) -> str:
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    return f"sqlite:///{tmp_path / 'notes.txt' / 'kiln.db'}"


def _not_a_database(tmp_path: Path) -> str:
    (tmp_path / "kiln.db").write_text("these are not the bytes of a SQLite database\n" * 50)
    return f"sqlite:///{tmp_path / 'kiln.db'}"


def _unknown_scheme(tmp_path: Path) -> str:
    return "mysql://kiln@db.example.com/kiln"


@pytest.mark.parametrize(
    ("make_url", "error", "shown", "advice"),
    [
        pytest.param(
            _closed_port,
            StoreUnavailableError,
            "postgresql+psycopg://kiln@127.0.0.1:1/kiln",
            "Check that the server is running and the URL is right",
            id="postgres-closed-port",
        ),
        pytest.param(
            _password,
            StoreUnavailableError,
            "postgresql+psycopg://kiln:***@127.0.0.1:1/kiln",
            "Check that the server is running",
            id="postgres-password-masked",
        ),
        pytest.param(
            _parent_is_a_file,
            StoreUnavailableError,
            "notes.txt/kiln.db",
            "notes.txt is a file, not a folder). Set KILN_HOME or --store to a writable place",
            id="sqlite-parent-is-a-file",
        ),
        pytest.param(
            _not_a_database,
            StoreUnavailableError,
            "kiln.db: file is not a database",
            "Check that the file is a kiln store (kiln.db)",
            id="sqlite-not-a-database",
        ),
        pytest.param(
            _unknown_scheme,
            ConfigurationError,
            "mysql://kiln@db.example.com/kiln has the scheme 'mysql'",
            "Expected sqlite:///path/kiln.db, postgresql://user@host/db",
            id="unknown-scheme",
        ),
    ],
)
def test_unusable_urls_say_which_url_and_what_to_do(
    tmp_path: Path,
    make_url: Callable[[Path], str],
    error: type[Exception],
    shown: str,
    advice: str,
) -> None:
    url = make_url(tmp_path)

    with pytest.raises(error, match=rf"(?s){re.escape(shown)}.*{re.escape(advice)}") as info:
        Store.open(url)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("table", ["customers", "experiments"])
def test_another_applications_sqlite_database_is_left_alone(tmp_path: Path, table: str) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as raw, raw:
        raw.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, note TEXT)")

    refused = rf"app\.db is not a kiln store: it has other tables \({table}\) and no kiln schema.*Point --store or KILN_STORE at a kiln\.db file"
    with pytest.raises(StoreUnavailableError, match=refused):
        Store.open(path)
    with pytest.raises(StoreUnavailableError, match=refused):
        CliRunner().invoke(cli, ["--store", str(path), "store", "migrate"], catch_exceptions=False)
    assert _tables(f"sqlite:///{path}") == [table]


def test_an_in_memory_sqlite_store_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="in-memory SQLite store would lose everything"):
        Store.open("sqlite:///:memory:")


def test_opening_without_create_does_not_make_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match=r"No kiln store at .*missing\.db"):
        Store.open(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


# ------------------------------------------------------------------ kiln store migrate
def test_store_migrate_creates_a_store_whose_artifact_root_every_client_uses(
    empty_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    creator_cwd = Path.cwd()

    result = runner.invoke(
        cli,
        ["--store", empty_store_url, "store", "migrate", "--artifacts", "shared-artifacts"],
        catch_exceptions=False,
    )

    assert result.exit_code == 0
    assert f"from revision (empty) to {HEAD}" in result.stdout
    shared = creator_cwd / "shared-artifacts"  # recorded absolute, as the user meant it
    # Another client, elsewhere, with another KILN_ARTIFACTS: the recorded root wins.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("KILN_ARTIFACTS", str(tmp_path / "not-this-one"))
    client = TrackingClient(empty_store_url)
    assert client.store.artifact_root == str(shared)
    run_id = client.create_run(experiment="after-migrate")
    info = client.log_text(run_id, "stored in the shared root", "note.txt")
    assert (shared / "objects" / info.sha256[:2] / info.sha256).is_file()
    assert not (tmp_path / "not-this-one").exists()
    assert not (elsewhere / "shared-artifacts").exists()

    again = runner.invoke(cli, ["--store", empty_store_url, "store", "migrate"])
    assert again.exit_code == 0
    assert f"already at schema revision {HEAD}" in again.stdout
    assert TrackingClient(empty_store_url).get_run(run_id).artifacts == [info]


@pytest.mark.postgres
def test_store_migrate_on_postgres_needs_an_artifact_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_empty_pg_database()
    runner = CliRunner()

    with pytest.raises(
        ConfigurationError,
        match=r"A team store needs an artifact root every client can reach\. Give one with  kiln store migrate --artifacts",
    ):
        runner.invoke(cli, ["--store", url, "store", "migrate"], catch_exceptions=False)
    assert _tables(url) == []  # the half-made schema was rolled back

    monkeypatch.setenv("KILN_ARTIFACTS", str(tmp_path / "team-artifacts"))
    result = runner.invoke(cli, ["--store", url, "store", "migrate"], catch_exceptions=False)
    assert result.exit_code == 0
    assert Store.open(url).artifact_root == str(tmp_path / "team-artifacts")


@pytest.mark.postgres
def test_store_migrate_into_a_database_with_a_clashing_table_fails_cleanly(tmp_path: Path) -> None:
    url = make_empty_pg_database()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE experiments (id integer, owner text)"))
    engine.dispose()

    with pytest.raises(
        StoreError,
        match=r"from revision \(empty\) failed and was rolled back: relation \"experiments\" already exists\nIf the database holds another application's tables",
    ):
        CliRunner().invoke(
            cli,
            ["--store", url, "store", "migrate", "--artifacts", str(tmp_path / "artifacts")],
            catch_exceptions=False,
        )
    assert _tables(url) == ["experiments"]


def test_a_store_keeps_the_artifact_root_it_was_created_with(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_ARTIFACTS", str(tmp_path / "first"))
    first = TrackingClient(store_url)
    recorded = first.store.meta()["artifact_root"]
    root = first.store.artifact_root
    run_id = first.create_run(experiment="e")
    first.log_text(run_id, "written by the first client", "a.txt")
    Store.close_all()

    monkeypatch.setenv("KILN_ARTIFACTS", str(tmp_path / "second"))
    monkeypatch.chdir(tmp_path)
    second = TrackingClient(store_url)

    assert second.store.meta()["artifact_root"] == recorded
    assert second.store.artifact_root == root
    assert second.read_artifact(run_id, "a.txt") == b"written by the first client"
    assert not (tmp_path / "second").exists()


def _write_after_parent(url: str, holding: Any, done: Any) -> None:
    store = Store.open(url)
    assert holding.wait(30)
    with store.write() as conn:
        conn.execute(
            sa.text("INSERT INTO store_meta (key, value) VALUES ('child', :t)"),
            {"t": str(time.time())},
        )
    done.set()


def test_sqlite_writers_of_two_processes_take_turns_on_the_write_lock(tmp_path: Path) -> None:
    """A forked child does not share the parent's write lock: while the parent holds it,
    the child waits; once the parent commits, the child writes. The lock file sits beside
    the database."""
    import multiprocessing

    url = f"sqlite:///{tmp_path / 'kiln.db'}"
    store = Store.open(url)
    ctx = multiprocessing.get_context("fork")
    holding, done = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_write_after_parent, args=(url, holding, done))
    child.start()
    with store.write() as conn:
        holding.set()
        assert not done.wait(0.5), "the child wrote while the parent held the write lock"
        conn.execute(sa.text("INSERT INTO store_meta (key, value) VALUES ('parent', 'x')"))
        released = time.time()
    child.join(30)

    assert child.exitcode == 0
    assert (tmp_path / "kiln.db.write-lock").exists()
    assert float(store.meta()["child"]) >= released


@pytest.mark.parametrize(("setting", "frozen"), [("1", True), ("0", False)])
def test_opening_a_store_freezes_long_lived_objects_unless_told_not_to(
    tmp_path: Path, setting: str, frozen: bool
) -> None:
    code = (
        "import gc, sys\n"
        "from kiln.store import Store\n"
        "before = gc.get_freeze_count()\n"
        "Store.open(sys.argv[1])\n"
        "print(before, gc.get_freeze_count())\n"
    )
    env = {**os.environ, "KILN_GC_FREEZE": setting}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "kiln.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    before, after = map(int, out.stdout.split())
    assert before == 0
    assert (after > 10_000) is frozen


def test_the_schema_is_public_and_loaded_on_first_use() -> None:
    code = (
        "import sys, kiln.store\n"
        "assert 'sqlalchemy' not in sys.modules\n"
        "from kiln.store import schema\n"
        "print(schema.runs.name, 'sqlalchemy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )

    assert (done.returncode, done.stderr, done.stdout) == (0, "", "runs True\n")
    assert "schema" in __import__("kiln.store").store.__all__


def test_store_connect_gives_an_unmigrated_handle_that_migrate_brings_up(tmp_path: Path) -> None:
    store = Store.connect(tmp_path / "new" / "kiln.db")
    try:
        assert store.revision is None
        assert store.migrate(str(tmp_path / "blobs")) == (None, HEAD)
        assert store.revision == HEAD
    finally:
        store.engine.dispose()
    assert Store.open(tmp_path / "new" / "kiln.db").artifact_root == str(tmp_path / "blobs")
