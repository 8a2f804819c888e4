"""Shared fixtures: isolated stores on real SQLite files and a real PostgreSQL server.

PostgreSQL tests get a fresh database per test, copied from a migrated template (fast).
Without a server they skip, saying why, unless KILN_REQUIRE_SERVICES=1 (CI), where
they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN_URL = os.environ.get("KILN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("KILN_REQUIRE_SERVICES", "") not in ("", "0", "false")


def _pg_base() -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own working folder and embedded store; no stray env settings."""
    for var in ("KILN_STORE", "KILN_HOME", "KILN_ARTIFACTS"):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("KILN_HOME", str(tmp_path / "home" / ".kiln"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # pipeline signing keys
    yield
    import kiln.tracking._fluent as fluent
    from kiln.tracking._writer import _flush_at_exit

    _flush_at_exit()  # write what the test queued while its store still exists
    while fluent._stack:
        fluent._stack.pop()
    _quiet_background_writes()
    kiln_configure_reset()


def _quiet_background_writes() -> None:
    """Stop what would keep writing to this test's store after it is closed.

    Runs a test left open stay in the system-metrics sampler's table and their writers
    keep sending heartbeats; on a PostgreSQL store whose engine was disposed, that opens
    a new connection nobody closes, and its ResourceWarning surfaces in a later test.
    """
    from kiln.tracking import _sysmetrics
    from kiln.tracking._writer import _writers

    with _sysmetrics._lock:
        _sysmetrics._watched.clear()
    for writer in list(_writers):
        writer._tick = None


def kiln_configure_reset() -> None:
    import kiln
    from kiln.store import Store

    kiln.configure(None)
    Store.close_all()


_pg_state: dict[str, object] = {}


def _pg_admin():  # type: ignore[no-untyped-def]
    if "engine" in _pg_state:
        return _pg_state["engine"]
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(
            PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        _pg_state["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        _pg_state["engine"] = None
        return None
    _pg_state["engine"] = engine
    return engine


@contextlib.contextmanager
def pg_admin_connection() -> Iterator[Any]:
    """An autocommit connection to the PostgreSQL server as its admin, on an engine of its
    own that is disposed after (for tests that change server-side settings)."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _need_pg():  # type: ignore[no-untyped-def]
    engine = _pg_admin()
    if engine is None:
        why = f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({_pg_state.get('error')})"
        if REQUIRE_SERVICES:
            pytest.fail(f"{why}; KILN_REQUIRE_SERVICES=1 forbids skipping.")
        pytest.skip(why)
    return engine


def _pg_template(artifacts: Path) -> str:
    """A migrated template database for this worker (created once)."""
    if "template" in _pg_state:
        return str(_pg_state["template"])
    import sqlalchemy as sa

    from kiln.store._engine import Store, _make_engine

    engine = _need_pg()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"kiln_tpl_{worker}_{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{_pg_base()}/{name}"
    store = Store(url, _make_engine(url, create=True))
    # Each test's database gets its own artifact folder: the template records a
    # placeholder that `pg_store_url` rewrites.
    store.migrate(artifacts=str(artifacts))
    store.engine.dispose()
    _pg_state["template"] = name
    return name


def make_pg_database(artifacts: Path) -> str:
    """Create a fresh, migrated PostgreSQL database; return its URL."""
    import sqlalchemy as sa

    template = _pg_template(artifacts)
    engine = _need_pg()
    name = f"kiln_t_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    url = f"{_pg_base()}/{name}"
    db = sa.create_engine(url)
    with db.begin() as conn:
        conn.execute(
            sa.text("UPDATE store_meta SET value = :v WHERE key = 'artifact_root'"),
            {"v": str(artifacts)},
        )
    db.dispose()
    _pg_state.setdefault("created", []).append(name)  # type: ignore[union-attr]
    return url


def make_empty_pg_database() -> str:
    """Create an empty PostgreSQL database (no schema); return its URL."""
    import sqlalchemy as sa

    engine = _need_pg()
    name = f"kiln_e_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    _pg_state.setdefault("created", []).append(name)  # type: ignore[union-attr]
    return f"{_pg_base()}/{name}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    engine = _pg_state.get("engine")
    if not engine:
        return
    import gc

    import sqlalchemy as sa

    from kiln.store import Store
    from kiln.tracking._writer import _flush_at_exit, _writers

    gc.collect()  # clients of finished tests, and their writer threads, go away
    _flush_at_exit()
    for writer in list(_writers):
        writer._tick = None  # no more heartbeats for runs whose databases are dropped now
    Store.close_all()
    names = list(_pg_state.get("created", []))  # type: ignore[call-overload]
    if "template" in _pg_state:
        names.append(_pg_state["template"])
    with engine.connect() as conn:  # type: ignore[attr-defined]
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()  # type: ignore[attr-defined]


@pytest.fixture
def subprocess_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The environment for child Pythons: this test's settings plus a bytecode cache.

    The cache sits in pytest's cache folder, so child processes stop paying for
    compiling SQLAlchemy after the first one, without writing into the virtualenv.
    Test modules with other needs (a terminal width, say) override this fixture.
    """
    config_cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    cache = (
        config_cache.mkdir("kiln-pycache")
        if config_cache is not None
        else tmp_path_factory.getbasetemp() / "pycache"
    )
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(cache), "KILN_CAPTURE_PACKAGES": "0"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL: once a SQLite file, once a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    return make_pg_database(tmp_path / "pg-artifacts")


@pytest.fixture
def client(store_url: str):  # type: ignore[no-untyped-def]
    """A TrackingClient on a fresh store (both backends)."""
    from kiln.tracking import TrackingClient

    return TrackingClient(store_url)


@pytest.fixture
def tracked(store_url: str) -> Iterator[str]:
    """The module-level API pointed at a fresh store (both backends); yields its URL."""
    import kiln

    kiln.configure(store_url)
    yield store_url
    kiln_configure_reset()
