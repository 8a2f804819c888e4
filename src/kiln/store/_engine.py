"""Finding, opening and migrating the metadata store.

The URL decides the backend: `sqlite:///path/kiln.db` (or a plain path) for the embedded
store, `postgresql+psycopg://user@host/db` for a team. An embedded store is created and
migrated on first use under a file lock, so processes that start at once on a new store
do not race. A PostgreSQL store is migrated only by `kiln store migrate`: a client never
changes a shared schema behind its team's back.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._exceptions import (
    ConfigurationError,
    SchemaVersionError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from kiln._extras import require
from kiln._settings import get_setting

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["SCHEMA_REVISIONS", "Store", "find_home", "resolve_url"]

# Oldest to newest. The last one is the schema this client reads and writes.
SCHEMA_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004")
_MIGRATIONS = Path(__file__).parent / "migrations"
_DB_NAME = "kiln.db"


def _now_ms() -> int:
    return int(time.time() * 1000)


def find_home(start: Path | None = None) -> Path:
    """Return the embedded store's folder for `start` (default: the working directory).

    The nearest `.kiln/` folder walking up, as git finds `.git/`, but not past the root
    of the git repository `start` is in (a stray `~/.kiln` must not capture every
    project under the home folder); where there is none, `<git root>/.kiln`; outside a
    repository, `<start>/.kiln`. `KILN_HOME` overrides all of this.
    """
    env = get_setting("home")
    if env:
        return Path(env).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".kiln").is_dir():
            return folder / ".kiln"
        if (folder / ".git").exists():
            return folder / ".kiln"
    return here / ".kiln"


def resolve_url(store: str | os.PathLike[str] | None = None) -> str:
    """Turn an explicit store, `KILN_STORE`, or the default into a SQLAlchemy URL.

    Args:
        store: A URL (`sqlite:///...`, `postgresql+psycopg://...`), a path to a SQLite
            file, or a folder (its `kiln.db` is used). None means `KILN_STORE`, then the
            embedded default found by `find_home`.
    """
    raw = get_setting("store", os.fspath(store) if store is not None else None)
    if not raw:
        return f"sqlite:///{find_home() / _DB_NAME}"
    raw = str(raw)
    if raw.startswith("postgres://"):
        raw = "postgresql+psycopg://" + raw[len("postgres://") :]
    if raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw[len("postgresql://") :]
    if "://" in raw:
        scheme = raw.split("://", 1)[0]
        if scheme not in ("sqlite", "postgresql+psycopg"):
            raise ConfigurationError(
                f"Store URL {_safe(raw)} has the scheme {scheme!r}, which kiln does not support. "
                "Expected sqlite:///path/kiln.db, postgresql://user@host/db, or a path to a "
                "SQLite file (--store or KILN_STORE)."
            )
        return raw
    path = Path(raw).expanduser()
    if path.is_dir() or not path.suffix:
        path = path / _DB_NAME
    return f"sqlite:///{path.resolve()}"


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only used to print a URL
        return url


class Store:
    """An open metadata store: its engine, its backend and its artifact root.

    Use `Store.open(url)` (cached per process) rather than the constructor.

    Attributes:
        url: The SQLAlchemy URL, password included.
        dialect: `sqlite` or `postgresql`.
        engine: The SQLAlchemy engine.
        artifact_root: The artifact store's root URL or folder, as recorded in the store.
    """

    _open: dict[tuple[str, int], Store] = {}

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self.dialect = engine.dialect.name
        self.artifact_root = ""
        self.store_id: str | None = None  # read with the artifact root
        self._turn = _WriteTurn(engine.url.database or "" if self.dialect == "sqlite" else None)

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(cls, store: str | os.PathLike[str] | None = None, *, create: bool = True) -> Store:
        """Open (and for an embedded store, create or migrate) the store at `store`.

        Args:
            store: See `resolve_url`.
            create: For SQLite, create the file when it does not exist.

        Raises:
            StoreUnavailableError: The URL cannot be opened.
            SchemaVersionError: The schema is newer than this client, or (PostgreSQL)
                older and in need of `kiln store migrate`.
        """
        url = resolve_url(store)
        key = (url, os.getpid())
        found = cls._open.get(key)
        if found is not None:
            return found
        self = cls(url, _make_engine(url, create=create))
        try:
            if self.dialect == "sqlite":
                self._prepare_sqlite()
            else:
                self._check_revision(self._revision(), allow_upgrade=False)
            self.artifact_root = self._artifact_root()
        except BaseException:
            self.engine.dispose()
            raise
        cls._open[key] = self
        _freeze_long_lived()
        if self.dialect == "sqlite" and not _closing_registered:
            import atexit

            _closing_registered.append(True)
            atexit.register(cls.close_all)
        return self

    @classmethod
    def connect(cls, store: str | os.PathLike[str] | None = None) -> Store:
        """A new store handle whose schema is neither checked nor migrated yet.

        For `kiln store migrate`: call `migrate()` on it, then `engine.dispose()`. Unlike
        `open`, the handle is not cached, and an embedded store's file is created when
        it does not exist. Everything else should use `Store.open`.

        Args:
            store: See `resolve_url`.

        Raises:
            ConfigurationError: The URL has a scheme kiln does not support.
            StoreUnavailableError: The URL cannot be opened.
        """
        url = resolve_url(store)
        return cls(url, _make_engine(url, create=True))

    @classmethod
    def close_all(cls) -> None:
        """Dispose of every engine this process opened (tests and `kiln.configure` use it).

        Each embedded store's file is then marked closed cleanly (see `_check_sqlite_health`).
        """
        for (_, pid), store in list(cls._open.items()):
            store.engine.dispose()
            if pid == os.getpid() and store.dialect == "sqlite":
                _mark_clean(Path(store.engine.url.database or ""))
        cls._open.clear()

    @staticmethod
    def damage_message(store: str | os.PathLike[str] | None, problems: list[str]) -> str:
        """What to tell a user whose embedded store has `problems`, and how to recover."""
        url = resolve_url(store)
        path = Path(url.removeprefix("sqlite:///"))
        return _damaged(str(path), path, problems)

    @staticmethod
    def check(store: str | os.PathLike[str] | None = None) -> list[str]:
        """SQLite's full `PRAGMA integrity_check` of an embedded store, without opening it
        for writing; returns the problems found (none: an empty list).

        A PostgreSQL store checks its own pages; for it this only connects.

        Raises:
            StoreUnavailableError: There is no store there, or it cannot be reached.
        """
        url = resolve_url(store)
        if not url.startswith("sqlite:"):
            from sqlalchemy import text
            from sqlalchemy.exc import SQLAlchemyError

            engine = _make_engine(url, create=False)
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except SQLAlchemyError as exc:
                raise StoreUnavailableError(
                    f"Cannot reach the store at {_safe(url)}: {_first_line(exc)}"
                ) from exc
            finally:
                engine.dispose()
            return []
        from sqlalchemy.engine import make_url

        path = Path(make_url(url).database or "")
        if not path.is_file():
            raise StoreUnavailableError(f"No kiln store at {path}.")
        return _sqlite_problems(path, "integrity_check")

    @property
    def display_url(self) -> str:
        """The URL with any password masked."""
        return _safe(self.url)

    @property
    def home(self) -> Path | None:
        """The folder holding an embedded store's file, or None for a server store."""
        if self.dialect != "sqlite":
            return None
        return Path(self.engine.url.database or ".").resolve().parent

    def _prepare_sqlite(self) -> None:
        from filelock import FileLock

        self._check_sqlite_health()
        try:
            revision = self._revision()
        except StoreUnavailableError as exc:
            # A file another process is creating right now (its first connection turns
            # it to WAL mode under an exclusive lock) can answer "database is locked";
            # the creator holds the file lock below, so decide under it.
            if not _busy(exc):
                raise
        else:
            if revision == SCHEMA_REVISIONS[-1]:
                return
            self._check_revision(revision, allow_upgrade=True)
        home = self.home
        assert home is not None
        with FileLock(str(home / (_DB_NAME + ".lock")), timeout=120):
            # Another process may have migrated while we waited for the lock.
            revision = self._revision_when_free()
            self._check_revision(revision, allow_upgrade=True)
            if revision is None:
                self._create_fresh()
            elif revision != SCHEMA_REVISIONS[-1]:
                self.migrate()

    def _check_sqlite_health(self) -> None:
        """`PRAGMA quick_check` when the file changed since the last clean close.

        A process that closes the store cleanly records the file's size and time (see
        `_close_cleanly`); a file that differs was left by a crash, or changed by
        something other than kiln, and is checked before anything is written into it.
        """
        path = Path(self.engine.url.database or "")
        try:
            stat = path.stat()
        except OSError:
            return  # a new store
        if stat.st_size == 0 or _clean_mark(path) == _stamp(stat):
            return
        problems = _sqlite_problems(path, "quick_check")
        if problems == ["file is not a database"]:
            return  # not a SQLite file at all: `_revision` says so, and what to do
        if problems:
            raise StoreUnavailableError(_damaged(self.display_url, path, problems))

    def _create_fresh(self) -> None:
        """Create the newest schema in an empty SQLite file and stamp it, as Alembic advises.

        Building the tables from `schema` and recording the head revision is equivalent to
        running every migration (a test checks that the migrated schema matches `schema`),
        and skips loading Alembic and its scripts: a new store costs milliseconds.
        """
        from sqlalchemy import text

        from kiln.store.schema import SQLITE_ONLY_INDEXES, metadata

        self._refuse_foreign_database()
        with self.engine.begin() as conn:
            metadata.create_all(conn, checkfirst=False)  # an empty file: refused otherwise
            for ddl in SQLITE_ONLY_INDEXES.values():
                conn.execute(text(ddl))
            conn.execute(
                text(
                    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
                )
            )
            conn.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                {"v": SCHEMA_REVISIONS[-1]},
            )
            self._init_meta(conn, None)

    def _refuse_foreign_database(self) -> None:
        """Refuse a SQLite file that has tables but no kiln schema: it is someone else's."""
        from sqlalchemy import inspect

        with self.engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
        if tables:
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise StoreUnavailableError(
                f"The SQLite database at {self.display_url} is not a kiln store: it has other "
                f"tables ({shown}) and no kiln schema, and kiln will not add its own to it. "
                "Point --store or KILN_STORE at a kiln.db file (a new path is created)."
            )

    # --------------------------------------------------------------- revision
    def _revision(self) -> str | None:
        from sqlalchemy import inspect, text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return None
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError as exc:
            advice = (
                "Check that the file is a kiln store (kiln.db) you can read and write, or "
                "choose another with --store or KILN_STORE."
                if self.dialect == "sqlite"
                else "Check that the server is running and the URL is right (KILN_STORE or --store)."
            )
            if self.dialect == "sqlite" and _is_damage(str(exc)):
                path = Path(self.engine.url.database or "")
                raise StoreUnavailableError(
                    _damaged(self.display_url, path, [_first_line(exc)])
                ) from exc
            raise StoreUnavailableError(
                f"Cannot open the store at {self.display_url}: {_first_line(exc)}\n{advice}"
            ) from exc

    def _revision_when_free(self, wait: float = 60.0) -> str | None:
        """`_revision`, retried for `wait` seconds while the file reads as locked."""
        deadline = time.monotonic() + wait
        delay = 0.01
        while True:
            try:
                return self._revision()
            except StoreUnavailableError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _check_revision(self, revision: str | None, *, allow_upgrade: bool) -> None:
        head = SCHEMA_REVISIONS[-1]
        if revision == head:
            return
        if revision is not None and revision not in SCHEMA_REVISIONS:
            raise SchemaVersionError(
                f"The store at {self.display_url} has schema revision {revision}, newer than "
                f"this kiln client understands (its newest is {head}). "
                "Upgrade kiln (pip install -U kiln-ml) to use this store."
            )
        if allow_upgrade:
            return
        if revision is None:
            raise SchemaVersionError(
                f"The PostgreSQL database at {self.display_url} has no kiln schema yet. "
                f"Create it once for the team with:  kiln store migrate --store '{self.display_url}'"
            )
        raise SchemaVersionError(
            f"The store at {self.display_url} has schema revision {revision}; this kiln "
            f"client needs {head}. A shared store is never migrated implicitly: run  "
            f"kiln store migrate --store '{self.display_url}'  once, when every client is "
            "upgraded."
        )

    @property
    def revision(self) -> str | None:
        """The schema revision the store is at (None for an empty database)."""
        return self._revision()

    def migrate(self, artifacts: str | None = None) -> tuple[str | None, str]:
        """Bring the schema to this client's newest revision.

        Args:
            artifacts: The artifact root to record when the store has none yet.

        Returns:
            The revision before and after.

        Raises:
            StoreError: The migration failed (it is rolled back).
        """
        from alembic import command
        from alembic.config import Config
        from sqlalchemy.exc import SQLAlchemyError

        before = self._revision()
        self._check_revision(before, allow_upgrade=True)
        if before is None and self.dialect == "sqlite":
            self._refuse_foreign_database()
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                self._init_meta(conn, artifacts)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"Migrating the store at {self.display_url} from revision {before or '(empty)'} "
                f"failed and was rolled back: {_first_line(exc)}\nIf the database holds another "
                "application's tables with the same names, give kiln a database of its own."
            ) from exc
        self.artifact_root = self._artifact_root()
        return before, SCHEMA_REVISIONS[-1]

    # ------------------------------------------------------------------- meta
    def _init_meta(self, conn: Connection, artifacts: str | None) -> None:
        from sqlalchemy import select

        from kiln.store.schema import store_meta

        have = dict(conn.execute(select(store_meta.c.key, store_meta.c.value)).all())
        new: dict[str, str] = {}
        if "store_id" not in have:
            new["store_id"] = uuid.uuid4().hex
            new["created_at"] = str(_now_ms())
        if "artifact_root" not in have:
            root = get_setting("artifacts", artifacts)
            if not root:
                if self.dialect != "sqlite":
                    raise ConfigurationError(
                        "A team store needs an artifact root every client can reach. Give one "
                        "with  kiln store migrate --artifacts s3://bucket/kiln  (or a shared "
                        "folder, or KILN_ARTIFACTS)."
                    )
                root = "artifacts"  # relative to the folder that holds kiln.db
            elif "://" not in root:
                # A folder given by the user means the folder they see now: record it
                # absolute, or every client would resolve it against its own directory.
                root = str(Path(root).expanduser().resolve())
            new["artifact_root"] = root
        if new:
            conn.execute(store_meta.insert(), [{"key": k, "value": v} for k, v in new.items()])

    def meta(self) -> dict[str, str]:
        """The store's own key/value settings (store id, creation time, artifact root)."""
        from sqlalchemy import select

        from kiln.store.schema import store_meta

        with self.engine.connect() as conn:
            return dict(conn.execute(select(store_meta.c.key, store_meta.c.value)).all())

    def _artifact_root(self) -> str:
        meta = self.meta()
        self.store_id = meta.get("store_id")
        root = meta.get("artifact_root", "artifacts")
        if "://" in root or os.path.isabs(root):
            return root
        home = self.home
        return str((home / root) if home else Path(root).resolve())

    # ----------------------------------------------------------- transactions
    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (on SQLite, BEGIN IMMEDIATE so writers queue, never deadlock).

        On SQLite, writers of every process first take turns on a file lock (see
        `_WriteTurn`), so the lock's next holder starts as soon as it is released.
        """
        with self._turn, self.engine.connect() as conn:
            conn = conn.execution_options(kiln_immediate=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self.engine.connect() as conn, conn.begin():
            yield conn


def write_turn(path: str | None) -> contextlib.AbstractContextManager[None]:
    """Take this process's turn to write the SQLite file at `path` (see `_WriteTurn`).

    For code that writes the embedded store with the standard library's sqlite3 (the
    pipeline's no-op fast path) and must queue with every other writer. None (a server
    database) gives a context that does nothing.
    """
    return _WriteTurn(path)


class _WriteTurn:
    """Writers of one SQLite file take turns: a thread lock, then `flock` on a lock file.

    SQLite alone makes a writer that finds the database locked sleep and retry (1, 2, 5,
    ... up to 100 ms a time): with eight processes logging at once most of the time went
    to sleeping while nobody wrote, and eight writers together logged less than one
    alone. The kernel hands a released `flock` to the next waiter at once. SQLite's own
    locking stays underneath (busy_timeout), for writers that do not use this lock;
    where the lock file cannot be opened or locked (a read-only folder, a filesystem
    without flock), writers fall back to it alone.
    """

    def __init__(self, database: str | None) -> None:
        self.path = f"{database}.write-lock" if database else None
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.RLock()
        self._fd: int | None = None
        self._pid = 0
        self._depth = 0

    def __enter__(self) -> None:
        if self.path is None:
            return
        if self._pid != os.getpid():  # new, or inherited through fork: not ours to use
            self._reset()
            self._pid = os.getpid()
        self._lock.acquire()
        self._depth += 1
        if self._depth == 1:
            try:
                import fcntl

                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except (ImportError, OSError):
                self._fd = None

    def __exit__(self, *exc: object) -> None:
        if self.path is None:
            return
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                import fcntl

                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


_frozen: list[int] = []  # the pid that froze, once per process


def _freeze_long_lived() -> None:
    """Once per process, after the first store is open: `gc.freeze()` (setting gc_freeze).

    A process that imported SQLAlchemy (and often pandas) holds a few hundred thousand
    long-lived objects, and every full collection walks them all: in a logging loop, a
    search or at interpreter exit that cost more than kiln's own work (50-100 ms; a
    process logging 5,000 metrics ran 1.5-2x faster frozen). Objects alive now are
    ignored by the cyclic collector from then on; reference counting still frees them,
    so only reference cycles that exist now and become garbage later are kept.
    KILN_GC_FREEZE=0 turns this off.
    """
    if _frozen and _frozen[0] == os.getpid():
        return
    _frozen[:] = [os.getpid()]
    if get_setting("gc_freeze"):
        import gc

        gc.freeze()


# The parent's pools, kept by a forked child so that it never closes their connections.
_INHERITED: list[Any] = []


def _forget_inherited_connections() -> None:
    """In a forked child, give every open store a fresh pool (SQLAlchemy's fork recipe).

    The pooled connections belong to the parent: a child that used them would interleave
    its statements with the parent's on one PostgreSQL socket, or share SQLite's locks
    with it. `close=False` leaves them open for the parent, and keeping the old pools
    referenced stops the child from closing them when they are collected.
    """
    for store in list(Store._open.values()):
        _INHERITED.append(store.engine.pool)
        store.engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_connections)


_closing_registered: list[bool] = []
_CLEAN_SUFFIX = ".closed"


def _stamp(stat: os.stat_result) -> str:
    return f"{stat.st_size} {stat.st_mtime_ns}"


def _clean_mark(path: Path) -> str | None:
    try:
        return Path(str(path) + _CLEAN_SUFFIX).read_text().strip()
    except OSError:
        return None


def _mark_clean(path: Path) -> None:
    """Record the file's size and time after a clean close (quietly: a read-only folder
    only means the next open checks the file)."""
    with contextlib.suppress(OSError):
        Path(str(path) + _CLEAN_SUFFIX).write_text(_stamp(path.stat()) + "\n")


def _is_damage(text: str) -> bool:
    text = text.lower()
    return any(word in text for word in ("malformed", "corrupt", "can't decode", "codec"))


def _sqlite_problems(path: Path, pragma: str) -> list[str]:
    """The problems `PRAGMA quick_check` / `integrity_check` finds in a SQLite file."""
    import sqlite3

    try:
        conn = sqlite3.connect(path, timeout=60)
    except sqlite3.Error as exc:
        return [str(exc)]
    try:
        conn.text_factory = lambda b: b.decode("utf-8", "replace")
        rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}").fetchall()]
    except sqlite3.OperationalError as exc:
        if _busy(exc):
            return []  # another process is creating or migrating it: not damage
        return [str(exc)]
    except UnicodeDecodeError as exc:
        return [f"malformed database schema ({exc})"]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    return [] if rows == ["ok"] else rows


def _damaged(url: str, path: Path, problems: list[str]) -> str:
    shown = "; ".join(p.strip() for p in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return (
        f"Cannot open the store at {url}: the file is damaged ({shown}{more}). kiln will "
        "not write into it. See every problem with:  kiln store check --store "
        f"'{path}'\nTo recover what SQLite can still read, keep the damaged file and run:  "
        f"sqlite3 '{path}' .recover | sqlite3 '{path.with_name('recovered.db')}'  then use "
        "the new file (--store or KILN_STORE)."
    )


def _busy(exc: BaseException) -> bool:
    """Whether a store error is SQLite's "database is locked" (or busy)."""
    text = str(exc.__cause__ or exc).lower()
    return "database is locked" in text or "database is busy" in text


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _no_store_message(path: Path) -> str:
    if get_setting("home"):
        where = " (KILN_HOME names its folder)"
    elif path == find_home() / _DB_NAME:
        where = (
            " (the default: the nearest .kiln/ folder from the working directory, up to the "
            "git repository's root)"
        )
    else:
        where = ""
    return (
        f"No kiln store at {path}{where}: nothing has been logged there yet. Run the command "
        "from your project's folder, or choose a store with --store or KILN_STORE; "
        "kiln.start_run() creates one."
    )


def _make_store_folder(folder: Path) -> None:
    """Create a new store's folder with a `.gitignore` of `*`, so that `git status` in
    the project stays clean. A folder that exists gets one only when it is a `.kiln/`
    (made by kiln, say for a pipeline's state) without one: a user's own folder is left
    as it is."""
    if folder.is_dir() and (folder.name != ".kiln" or (folder / ".gitignore").exists()):
        return
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        (folder / ".gitignore").write_text("# Created by kiln: its local store.\n*\n")


def _make_engine(url: str, *, create: bool) -> Engine:
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"{url!r} is not a valid store URL: {exc}") from exc
    if parsed.get_backend_name() == "postgresql":
        require("psycopg", "postgres", "A PostgreSQL store")
        from kiln.store.schema import use_postgresql

        use_postgresql()
        return create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    database = parsed.database or ""
    if not database or database == ":memory:":
        raise ConfigurationError(
            "An in-memory SQLite store would lose everything at exit; give a file path."
        )
    path = Path(database)
    if not path.exists():
        if not create:
            raise StoreNotFoundError(_no_store_message(path), str(path))
        try:
            _make_store_folder(path.parent)
        except OSError as exc:
            blocker = next(
                (p for p in (path.parent, *path.parent.parents) if p.exists() and not p.is_dir()),
                None,
            )
            why = f"{blocker} is a file, not a folder" if blocker else exc.strerror
            raise StoreUnavailableError(
                f"Cannot create the store {_safe(url)}: cannot create the folder {path.parent} "
                f"({why}). Set KILN_HOME or --store to a writable place."
            ) from exc
    elif path.is_dir():
        raise StoreUnavailableError(f"{path} is a folder, not a SQLite file.")
    engine = create_engine(parsed, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
        except UnicodeDecodeError as exc:
            # A damaged schema text: report it as the database error it is.
            import sqlite3

            raise sqlite3.DatabaseError(f"malformed database schema ({exc})") from exc
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("kiln_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
