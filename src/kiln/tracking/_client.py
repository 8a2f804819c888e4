"""The tracking client: every read and write of runs, explicit about which run.

The module-level API (`kiln.start_run`, `kiln.log_metric`, ...) is a thin layer over one
`TrackingClient` per store. Use a client directly to work with several stores, or with
runs other than the active one.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kiln._exceptions import (
    ExperimentNotFoundError,
    ParamConflictError,
    TrackingError,
    did_you_mean,
)
from kiln._settings import get_setting
from kiln.store import Store
from kiln.tracking._artifact_ops import ArtifactOps
from kiln.tracking._maint import Maintenance
from kiln.tracking._reads import RunReads
from kiln.tracking._validate import (
    DEFAULT_EXPERIMENT,
    ERROR_ARTIFACT,
    MAX_ERROR,
    MAX_PARAM,
    STATUSES,
    _valid_keys,
    check_key,
    check_metric,
    check_text,
    clean_text,
    new_run_name,
    now_ms,
    param_number,
    param_text,
    shorten,
)

if TYPE_CHECKING:
    from kiln.tracking._writer import Writer

__all__ = ["DEFAULT_EXPERIMENT", "TrackingClient"]

# This process's id, updated in a forked child: the logging hot path compares against it
# instead of calling os.getpid() (a system call) each time.
_fork_state = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _fork_state.__setitem__(0, os.getpid()))

# Every column of a run row, so that batched inserts share one statement.
_RUN_COLUMNS = (
    "id", "experiment_id", "name", "status", "start_time", "heartbeat_at",
    "heartbeat_interval", "parent_id", "user", "host", "pid", "entry_point", "command",
    "git_commit", "git_branch", "git_dirty", "git_diff_sha", "python_version", "packages_sha",
)  # fmt: skip


_RUN_ID = re.compile(r"[0-9a-f]{32}")

# Metric rows per multi-row INSERT on SQLite (5 values each, far below its 32,766 limit).
_ROWS_PER_INSERT = 200


def _in_worker_process() -> bool:
    """Whether this process was started by multiprocessing (a pool worker, say)."""
    mp = sys.modules.get("multiprocessing")
    return mp is not None and mp.parent_process() is not None


def _op_run(op: tuple[str, Any]) -> str | None:
    """The run a queued op writes to (None for a shared text)."""
    kind, payload = op
    if kind in ("metric", "update"):
        return str(payload[0])
    if kind == "metrics":
        return str(payload[0][0]) if payload else None
    if kind in ("params", "tags"):
        return str(payload[0]["run_id"]) if payload else None
    if kind == "run":
        return str(payload[0]["id"])
    return None


def _schema() -> Any:
    from kiln.store import schema as s

    return s


@dataclass
class _OwnRun:
    """A run this process started and has not ended: its writes go through the queue."""

    experiment: str
    params: dict[str, str] = field(default_factory=dict)


class TrackingClient(ArtifactOps, RunReads, Maintenance):
    """Reads and writes runs in one store.

    Writes to runs this client started in this process are queued and committed in
    batches by a background writer (see `flush`); writes to any other run are committed
    before the call returns. Reads always see this client's earlier writes.

    Args:
        store: A store URL or path; None means `KILN_STORE`, then the embedded default.
        flush_interval: Longest time (s) a queued write waits (`KILN_FLUSH_INTERVAL`).
        heartbeat_interval: Seconds between heartbeats of running runs
            (`KILN_HEARTBEAT_INTERVAL`).
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | Store | None = None,
        *,
        flush_interval: float | None = None,
        heartbeat_interval: float | None = None,
    ) -> None:
        self.store = store if isinstance(store, Store) else Store.open(store)
        self.flush_interval = float(get_setting("flush_interval", flush_interval))
        self.heartbeat_interval = float(get_setting("heartbeat_interval", heartbeat_interval))
        self._artifacts: Any = None
        self._steps: dict[tuple[str, str], int] = {}
        self._own: dict[str, _OwnRun] = {}
        self._writer: Writer | None = None
        self._pid = os.getpid()
        self._last_beat = 0.0
        self._texts: dict[str, str] = {}  # recent large texts -> sha256, written once
        self._lost_runs: set[str | None] = set()  # runs whose row the store refused
        self._checked_writable = 0  # the pid that found the store writable

    @property
    def artifacts(self) -> Any:
        """The store's `ArtifactStore`."""
        if self._artifacts is None:
            from kiln.artifacts import ArtifactStore

            self._artifacts = ArtifactStore(self.store.artifact_root)
        return self._artifacts

    # ---------------------------------------------------------------- queue
    def _check_fork(self) -> None:
        _fork_state[0] = os.getpid()
        if self._pid != _fork_state[0]:
            # A forked child: the parent's runs are not ours to queue for.
            self._pid = os.getpid()
            self._own = {}
            self._steps = {}

    def _queue(self) -> Writer:
        if self._writer is None:
            from kiln.tracking._writer import Writer

            # The writer thread sends heartbeats when it wakes: it must wake at least once
            # per heartbeat interval, or a live run with a long flush interval would read
            # as crashed.
            interval = min(self.flush_interval, self.heartbeat_interval)
            self._writer = Writer(
                self._write_ops,
                interval=interval,
                tick=self._tick,
                key=self.store.url,
                recovery=self._save_for_recovery,
            )
        return self._writer

    def _submit(self, run_id: str, kind: str, payload: Any) -> None:
        self._queue().submit((kind, payload))
        if run_id not in self._own:
            self.flush()

    def flush(self) -> None:
        """Write everything this client has queued, before returning.

        Raises:
            TrackingError: The store refused some queued writes (for example, values
                for a run deleted meanwhile); the message says which.
        """
        writer = self._writer
        if writer is not None and (writer.pending or writer.refused):
            writer.flush()

    def _flush_pending(self) -> None:
        """Before a read: write what any client of this process has queued, so reads in
        this process always see its own writes."""
        from kiln.tracking._writer import flush_all

        self._check_fork()
        flush_all(key=self.store.url)
        self.flush()

    def _tick(self) -> list[tuple[str, Any]]:
        """Heartbeats for our running runs, called by the writer thread."""
        now = time.monotonic()
        if not self._own or now - self._last_beat < self.heartbeat_interval:
            return []
        self._last_beat = now
        stamp = now_ms()
        return [("update", (run_id, {"heartbeat_at": stamp})) for run_id in list(self._own)]

    def _save_for_recovery(self, ops: list[tuple[str, Any]]) -> str:
        from kiln.tracking._recovery import save

        return str(save(self.store, ops))

    def _write_ops(self, ops: list[tuple[str, Any]]) -> None:
        """Commit queued ops; isolate and drop (and report) any the store refuses for good.

        A record that can never be written (a value the database refuses, values for a
        run purged meanwhile) must not hold back the others: the batch is split in halves
        until the refused ops are alone, and only they are dropped, each reported by the
        next `flush`. Errors that may pass (a locked, full or unreachable store) leave
        the whole batch queued, to be retried.
        """
        from kiln.tracking._recovery import refused_for_good

        lost = self._lost_runs
        if lost:
            ops = [op for op in ops if _op_run(op) not in lost]
            if not ops:
                return
        try:
            self._write_batch(ops)
        except Exception as exc:
            if not refused_for_good(exc):
                raise
            if len(ops) > 1:
                half = len(ops) // 2
                self._write_ops(ops[:half])
                self._write_ops(ops[half:])
                return
            from kiln.tracking._writer import short_error

            kind = ops[0][0]
            run_id = _op_run(ops[0])
            if kind == "run":
                lost.add(run_id)  # what follows for it can never be written either
            self._queue().refused.append(f"{kind} of run {str(run_id)[:12]}: {short_error(exc)}")

    def _write_batch(self, ops: list[tuple[str, Any]]) -> None:
        """Commit queued ops in one transaction, runs first and updates last."""
        runs: list[dict[str, Any]] = []
        texts: dict[str, dict[str, str]] = {}
        wanted_experiments: dict[str, str] = {}
        params: list[dict[str, Any]] = []
        metrics: list[tuple[str, str, float, int, int]] = []
        tags: dict[tuple[str, str], dict[str, Any]] = {}
        updates: dict[str, dict[str, Any]] = {}
        for kind, payload in ops:
            if kind == "metric":
                metrics.append(payload)
            elif kind == "metrics":
                metrics.extend(payload)
            elif kind == "params":
                params.extend(payload)
            elif kind == "text":
                texts[payload["sha256"]] = payload
            elif kind == "run":
                runs.append(payload[0])
                wanted_experiments[payload[0]["id"]] = payload[1]
            elif kind == "tags":
                tags.update({(r["run_id"], r["key"]): r for r in payload})
            elif kind == "update":
                updates.setdefault(payload[0], {}).update(payload[1])
        metric_sql = self._metric_statements(metrics) if metrics else []
        latest = self._latest_rows(metrics) if metrics else []
        with self.store.write() as conn:
            if texts:
                self._exec_rows(conn, "texts", list(texts.values()))
            if runs:
                ids = self._experiment_ids(conn, set(wanted_experiments.values()))
                for row in runs:
                    row["experiment_id"] = ids[wanted_experiments[row["id"]]]
                    # A run created and updated (ended, say) in one batch is inserted
                    # as it ends up: one row, no UPDATE.
                    row.update(updates.pop(row["id"], ()))
                # One executemany per run of rows with the same columns, in order
                # (a parent is always inserted before its children).
                start = 0
                for i in range(1, len(runs) + 1):
                    if i == len(runs) or runs[i].keys() != runs[start].keys():
                        conn.execute(self._stmt("runs"), runs[start:i])
                        start = i
            if params:
                self._exec_rows(conn, "params", params)
            for sql, args in metric_sql:
                conn.exec_driver_sql(sql, args)
            if latest:
                conn.execute(self._stmt("latest"), latest)
            if tags:
                self._exec_rows(conn, "tags", list(tags.values()))
            self._update_runs(conn, updates)

    def _update_runs(self, conn: Any, updates: dict[str, dict[str, Any]]) -> None:
        """One executemany per set of changed columns, not one statement per run."""
        from sqlalchemy import bindparam, update

        s = _schema()
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for run_id, values in updates.items():
            row = {f"v_{k}": v for k, v in values.items()}
            row["b_run_id"] = run_id
            groups.setdefault(tuple(sorted(values)), []).append(row)
        for keys, rows in groups.items():
            stmt = (
                update(s.runs)
                .where(s.runs.c.id == bindparam("b_run_id"))
                .values({k: bindparam(f"v_{k}") for k in keys})
            )
            conn.execute(stmt, rows)

    def _experiment_ids(self, conn: Any, names: set[str]) -> dict[str, int]:
        """Ids of the live experiments called `names`, creating the missing ones."""
        from sqlalchemy import select, text

        s = _schema()
        e = s.experiments
        query = select(e.c.name, e.c.id).where(e.c.name.in_(names), e.c.deleted_at.is_(None))
        found = dict(conn.execute(query).all())
        missing = names - set(found)
        if missing:
            stamp = now_ms()
            insert = self._insert_ignore(e, ["name"], text("deleted_at IS NULL"))
            conn.execute(insert, [{"name": n, "created_at": stamp} for n in sorted(missing)])
            found = dict(conn.execute(query).all())
        return {name: int(i) for name, i in found.items()}

    def _insert_ignore(
        self, table: Any, columns: list[str] | None = None, where: Any = None
    ) -> Any:
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        if columns is None:
            return insert(table).on_conflict_do_nothing()
        return insert(table).on_conflict_do_nothing(index_elements=columns, index_where=where)

    def _metric_statements(
        self, rows: Sequence[tuple[str, str, float, int, int]]
    ) -> list[tuple[str, Any]]:
        """(sql, parameters) inserting `(run_id, key, value, step, timestamp)` rows, built
        before the write transaction so that writers hold the store's write turn only
        while the database works.

        The rows go to the driver as plain tuples (on SQLite 200 rows per statement, about
        1.5x faster than one execution per row): at tens of thousands of rows per batch,
        building a dict per row would dominate.
        """
        insert = "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES "
        rows = list(rows)
        if self.store.dialect != "sqlite":
            return [(insert + "(%s, %s, %s, %s, %s)", rows)]
        out: list[tuple[str, Any]] = []
        per, done = _ROWS_PER_INSERT, len(rows) - len(rows) % _ROWS_PER_INSERT
        if done:
            sql = insert + ",".join(["(?, ?, ?, ?, ?)"] * per)
            out += [
                (sql, tuple(x for r in rows[i : i + per] for x in r)) for i in range(0, done, per)
            ]
        if done < len(rows):
            out.append((insert + "(?, ?, ?, ?, ?)", rows[done:]))
        return out

    @staticmethod
    def _latest_rows(rows: Sequence[tuple[str, str, float, int, int]]) -> list[dict[str, Any]]:
        """Each (run, key)'s latest value among `rows`: highest step, then latest time."""
        latest: dict[tuple[str, str], tuple[str, str, float, int, int]] = {}
        for row in rows:
            k = (row[0], row[1])
            cur = latest.get(k)
            if cur is None or (row[3], row[4]) >= (cur[3], cur[4]):
                latest[k] = row
        keys = ("run_id", "key", "value", "step", "timestamp")
        return [dict(zip(keys, r, strict=True)) for r in latest.values()]

    def _exec_rows(self, conn: Any, name: str, rows: list[dict[str, Any]]) -> None:
        """Run statement `name` for `rows` through the driver, compiled once.

        For tables of plain text and numbers (params, tags, texts), where SQLAlchemy's
        per-row parameter processing would cost more than the database's own work.
        """
        cache = self.__dict__.setdefault("_driver_sql", {})
        keys = tuple(rows[0])
        found = cache.get((name, keys))
        if found is None:
            compiled = self._stmt(name).compile(dialect=conn.dialect, column_keys=list(keys))
            order = compiled.positiontup  # None for named styles (psycopg's %(name)s)
            found = cache[(name, keys)] = (compiled.string, order)
        sql, order = found
        if order is None:
            conn.exec_driver_sql(sql, rows)
        else:
            conn.exec_driver_sql(sql, [tuple(r[k] for k in order) for r in rows])

    def _stmt(self, name: str) -> Any:
        """A statement built once per client (building upserts costs more than running them)."""
        stmts = self.__dict__.setdefault("_stmts", {})
        if name not in stmts:
            stmts[name] = {
                "latest": self._upsert_latest,
                "tags": self._upsert_tags,
                "params": lambda: self._insert_ignore(_schema().params),
                "runs": lambda: _schema().runs.insert(),
                "texts": lambda: self._insert_ignore(_schema().texts),
            }[name]()
        return stmts[name]

    # ------------------------------------------------------------ experiments
    def experiment_id(self, name: str, *, create: bool = False) -> int:
        """The id of the live experiment called `name`, created when `create` is true."""
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        from kiln.store import schema as s

        if not isinstance(name, str) or not name.strip():
            raise TrackingError(f"An experiment name must be a non-empty string; got {name!r}.")
        check_text(name, "experiment name")
        query = select(s.experiments.c.id).where(
            s.experiments.c.name == name, s.experiments.c.deleted_at.is_(None)
        )
        with self.store.read() as conn:
            found = conn.execute(query).scalar()
        if found is None and not create:
            raise ExperimentNotFoundError(
                f"No experiment named {name!r}.{did_you_mean(name, self._experiment_names())}"
                " List them with: kiln experiments list"
            )
        if found is None:
            try:
                with self.store.write() as conn:
                    found = conn.execute(
                        s.experiments.insert()
                        .values(name=name, created_at=now_ms())
                        .returning(s.experiments.c.id)
                    ).scalar_one()
            except IntegrityError:  # created by another process meanwhile
                with self.store.read() as conn:
                    found = conn.execute(query).scalar_one()
        return int(found)

    # ------------------------------------------------------------------- runs
    def create_run(
        self,
        *,
        experiment: str | None = None,
        name: str | None = None,
        parent_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        start_time: int | None = None,
    ) -> str:
        """Create a run in status `running` and return its id.

        The run is this client's until `end_run`: its writes are queued and batched.

        Args:
            experiment: Experiment name, created if needed (default: the parent's, else "Default").
            name: A human name; a memorable one is made up when omitted.
            parent_id: The parent run (id or unique prefix), for nested runs.
            tags: Tags to set at once.
            environment: Columns from `capture_environment` (user, host, git state, ...).
            run_id: The new run's id, 32 lowercase hex digits (as MLflow's), for a run
                copied from another tracker; default: a new random one.
            start_time: When the run started, in milliseconds since the epoch (default: now).

        Raises:
            TrackingError: `run_id` is not 32 lowercase hex digits, or a run (even a
                deleted one, until `gc`) already has it.
        """
        self._check_fork()
        parent_own = self._own.get(parent_id) if parent_id is not None else None
        if parent_id is not None and parent_own is None:
            parent_id = self.resolve_run_id(parent_id)
        if experiment is None and parent_own is not None:
            experiment = parent_own.experiment
        elif experiment is None and parent_id is not None:
            experiment = self.get_run(parent_id).experiment
        experiment = experiment or DEFAULT_EXPERIMENT
        if not isinstance(experiment, str) or not experiment.strip() or len(experiment) > 255:
            raise TrackingError(
                "An experiment name must be a non-empty string of at most 255 characters; "
                f"got {experiment!r}."
            )
        if name is not None and (not isinstance(name, str) or len(name) > 255):
            raise TrackingError(
                f"A run name must be a string of at most 255 characters; got {name!r}."
            )
        check_text(experiment, "experiment name")
        if name is not None:
            check_text(name, "run name")
        if self._checked_writable != os.getpid():
            self._check_writable()
            self._checked_writable = os.getpid()
        if run_id is None:
            run_id = uuid.uuid4().hex
        else:
            self._check_new_run_id(run_id)
        if start_time is not None and (type(start_time) is not int or start_time < 0):
            raise TrackingError(
                f"start_time must be milliseconds since the epoch (an int >= 0); got "
                f"{start_time!r}."
            )
        start = now_ms() if start_time is None else start_time
        row: dict[str, Any] = dict.fromkeys(_RUN_COLUMNS)
        env = dict(environment or {})
        for field_name in ("packages", "git_diff"):
            text = env.pop(field_name, None)
            if text:
                env[f"{field_name}_sha"] = self._text(text)
        row.update(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                # Captured text (a command line with a non-UTF-8 file name, say) is
                # escaped rather than refused: the run must be storable.
                **{
                    k: clean_text(v) if isinstance(v, str) else v
                    for k, v in env.items()
                    if k in _RUN_COLUMNS
                },
                "id": run_id,
                "experiment_id": None,  # resolved from the name when written
                "name": name or new_run_name(),
                "status": "running",
                "start_time": start,
                "heartbeat_at": start,
                "heartbeat_interval": self.heartbeat_interval,
                "parent_id": parent_id,
            }
        )
        self._own[run_id] = _OwnRun(experiment)
        # The experiment is found (or created) by name in the same transaction that
        # inserts the run: starting a run touches no database.
        self._queue().submit(("run", (row, experiment)))
        if tags:
            self.set_tags(run_id, tags)
        return run_id

    def _check_new_run_id(self, run_id: Any) -> None:
        from sqlalchemy import select

        from kiln.store import schema as s

        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            raise TrackingError(
                f"A run id must be 32 lowercase hex digits (like uuid.uuid4().hex); got {run_id!r}."
            )
        self._flush_pending()
        with self.store.read() as conn:
            taken = conn.execute(select(s.runs.c.id).where(s.runs.c.id == run_id)).first()
        if taken is not None:
            raise TrackingError(
                f"Run id {run_id} is already taken in {self.store.display_url} (a deleted "
                "run keeps its id until `kiln store gc`). Leave run_id out for a new id."
            )

    def _check_writable(self) -> None:
        """Commit one harmless write, so that a store that cannot be written (read-only,
        a full disk, a read-only database user) fails the first run at its start rather
        than losing its records later."""
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        from kiln._exceptions import StoreUnavailableError
        from kiln.tracking._writer import short_error

        try:
            with self.store.write() as conn:
                # A value that changes: SQLite writes nothing for an update that doesn't.
                conn.execute(
                    text(
                        "INSERT INTO store_meta (key, value) VALUES ('last_write_check', :v) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                    ),
                    {"v": f"{now_ms()} {uuid.uuid4().hex[:8]}"},
                )
        except SQLAlchemyError as exc:
            raise StoreUnavailableError(
                f"The store at {self.store.display_url} cannot be written: "
                f"{short_error(exc)}. Nothing was logged. Free disk space, make the store "
                "writable, or choose another store with --store or KILN_STORE."
            ) from exc

    def end_run(
        self,
        run_id: str,
        status: str = "finished",
        error: str | None = None,
        *,
        end_time: int | None = None,
    ) -> None:
        """Mark a run ended with `status` (finished, failed or killed).

        Everything queued for the run is written at once by the writer thread; call
        `flush()` to wait for it (reads and interpreter exit do). In a multiprocessing
        worker, which may be terminated as soon as its task returns, this waits. So it
        does while the store is failing to take writes, and then raises.

        An `error` over 10,000 characters is stored as its head and tail around a note,
        and kept whole as the run's artifact `kiln/error.txt`.

        `end_time` (milliseconds since the epoch, default now) is for a run copied from
        another tracker.

        Raises:
            TrackingError: The store has refused this client's writes and still does
                (they stay queued; at exit they are saved to a recovery file).
        """
        if status not in STATUSES[1:]:
            raise TrackingError(f"A run ends as finished, failed or killed; got {status!r}.")
        if end_time is not None and (type(end_time) is not int or end_time < 0):
            raise TrackingError(
                f"end_time must be milliseconds since the epoch (an int >= 0); got {end_time!r}."
            )
        self._check_fork()
        if run_id not in self._own:
            run_id = self.resolve_run_id(run_id)
        if error is not None and len(error) > MAX_ERROR:
            # A multi-megabyte exception message stays whole as an artifact, not in the
            # runs table that every listing reads and `kiln runs show` prints.
            self.log_artifact(run_id, error.encode("utf-8", "backslashreplace"), ERROR_ARTIFACT)
            error = shorten(error, MAX_ERROR, f"the run's artifact {ERROR_ARTIFACT}")
        values: dict[str, Any] = {"status": status, "error": error}
        values["end_time"] = now_ms() if end_time is None else end_time
        own = self._own.pop(run_id, None)
        self._queue().submit(("update", (run_id, values)))
        if own is None or _in_worker_process():
            # Pool workers can be terminated, or leave through os._exit, as soon as their
            # task returns: a run they end is written before end_run returns.
            self.flush()
        else:
            # Written at once by the writer thread (and at exit, and before any read in
            # this process): ending a run does not wait on the disk. Like Python's own
            # buffered files, os._exit skips this; call kiln.flush() before it.
            writer = self._queue()
            writer.kick()
            if writer.failing or writer.refused:
                # The store is failing: the end of the run is where the program must
                # see it (this raises once the writes fail again).
                self.flush()

    def _text(self, body: str) -> str:
        """Queue a large text for the `texts` table (once per process); return its sha256."""
        import hashlib

        cached = self._texts.get(body)
        if cached is not None:
            return cached
        body = clean_text(body)
        sha = hashlib.sha256(body.encode("utf-8")).hexdigest()
        if len(self._texts) > 64:
            self._texts.clear()
        self._texts[body] = sha
        self._queue().submit(("text", {"sha256": sha, "body": body}))
        return sha

    def heartbeat(self, run_id: str) -> None:
        """Record that the run's process is alive."""
        self._check_fork()
        self._submit(run_id, "update", (run_id, {"heartbeat_at": now_ms()}))

    # ---------------------------------------------------------------- logging
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Record params; logging a key again with the same value is a no-op.

        Raises:
            ParamConflictError: A key already has a different value on this run.
        """
        if not isinstance(params, Mapping):
            raise TrackingError(
                f"log_params expects a dict of name -> value; got {type(params).__name__}."
            )
        if not params:
            return
        rows: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            check_key(key, "param")
            text = param_text(value, f"value of param {key!r}")
            if len(text) > MAX_PARAM:
                raise TrackingError(
                    f"Param {key!r} is {len(text)} characters long; the limit is {MAX_PARAM}. "
                    "Log large values as an artifact (kiln.log_artifact)."
                )
            rows[key] = {
                "run_id": run_id,
                "key": key,
                "value": text,
                "value_num": param_number(text, value),
            }
        self._check_fork()
        own = self._own.get(run_id)
        existing = own.params if own is not None else self._stored_params(run_id, list(rows))
        for key, old in existing.items():
            if key in rows and old != rows[key]["value"]:
                raise ParamConflictError(
                    f"Param {key!r} of run {run_id[:12]} is already {old!r}; it cannot become "
                    f"{rows[key]['value']!r}. Params record a run's inputs and never change: "
                    "use another key, or start a new run for the new value."
                )
        new = [row for key, row in rows.items() if key not in existing]
        if not new:
            return
        if own is not None:
            own.params.update({row["key"]: row["value"] for row in new})
        self._submit(run_id, "params", new)

    def _stored_params(self, run_id: str, keys: list[str]) -> dict[str, str]:
        from sqlalchemy import select

        from kiln.store import schema as s

        self.flush()
        run_id = self.resolve_run_id(run_id)
        with self.store.read() as conn:
            return dict(
                conn.execute(
                    select(s.params.c.key, s.params.c.value).where(
                        s.params.c.run_id == run_id, s.params.c.key.in_(keys)
                    )
                ).all()
            )

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: Any,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Record one metric value (the hot path of `kiln.log_metric`).

        A `None` step continues the key's series (0, 1, 2, ...); a `None` timestamp
        (milliseconds since the epoch) means now.
        """
        kind = type(value)
        if (kind is float or kind is int) and key in _valid_keys and type(key) is str:
            try:
                number = float(value)  # the common case inline: a checked key, a plain number
            except OverflowError:  # an int past 1.8e308: check_metric says so
                number = check_metric(key, value, step)
            if number - number != 0.0 or (
                step is not None and (type(step) is not int or not -(2**63) <= step < 2**63)
            ):
                number = check_metric(key, value, step)  # inf, NaN or a strange step
        else:
            number = check_metric(key, value, step)
        if self._pid != _fork_state[0]:
            self._check_fork()
        own = run_id in self._own
        if not own:
            run_id = self.resolve_run_id(run_id)
        k = (run_id, key)
        if step is None:
            step = self._next_step(run_id, key)
        else:
            step = int(step)
            following = self._steps.get(k)
            if following is None:
                following = self._peek_step(run_id, key)
            if step >= following:
                self._steps[k] = step + 1
        writer = self._writer or self._queue()
        writer.submit(("metric", (run_id, key, number, step, timestamp or int(time.time() * 1000))))
        if not own:
            self.flush()

    def log_metrics(
        self,
        run_id: str,
        metrics: Iterable[tuple[str, Any, int | None, int | None]],
    ) -> None:
        """Record metric values as `(key, value, step, timestamp_ms)` tuples.

        A `None` step continues the key's series (0, 1, 2, ...); a `None` timestamp means now.
        """
        # Validate the whole batch first: a refused value must not advance any series.
        checked = [(k, check_metric(k, v, step), step, ts) for k, v, step, ts in metrics]
        if not checked:
            return
        self._check_fork()
        if run_id not in self._own:
            run_id = self.resolve_run_id(run_id)
        stamp = now_ms()
        rows: list[tuple[str, str, float, int, int]] = []
        for key, number, step, ts in checked:
            if step is None:
                step = self._next_step(run_id, key)
            else:
                step = int(step)
                self._steps[(run_id, key)] = max(self._peek_step(run_id, key), step + 1)
            rows.append((run_id, key, number, step, ts or stamp))
        self._submit(run_id, "metrics", rows)

    def _peek_step(self, run_id: str, key: str) -> int:
        """The step the key's series continues at (one past the highest stored step)."""
        step = self._steps.get((run_id, key))
        if step is None:
            if run_id in self._own:
                return 0  # started here: every value it has went through this client
            from sqlalchemy import func, select

            from kiln.store import schema as s

            self.flush()
            with self.store.read() as conn:
                last = conn.execute(
                    select(func.max(s.metrics.c.step)).where(
                        s.metrics.c.run_id == run_id, s.metrics.c.key == key
                    )
                ).scalar()
            step = 0 if last is None else int(last) + 1
        return step

    def _next_step(self, run_id: str, key: str) -> int:
        step = self._peek_step(run_id, key)
        self._steps[(run_id, key)] = step + 1
        return step

    def _upsert_latest(self) -> Any:
        from sqlalchemy import or_

        from kiln.store import schema as s

        t = s.latest_metrics
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        stmt = insert(t)
        ex = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=[t.c.run_id, t.c.key],
            set_={"value": ex.value, "step": ex.step, "timestamp": ex.timestamp},
            where=or_(ex.step > t.c.step, (ex.step == t.c.step) & (ex.timestamp >= t.c.timestamp)),
        )

    def _upsert_tags(self) -> Any:
        from kiln.store import schema as s

        t = s.tags
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        stmt = insert(t)
        return stmt.on_conflict_do_update(
            index_elements=[t.c.run_id, t.c.key], set_={"value": stmt.excluded.value}
        )

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags (a tag, unlike a param, may be changed)."""
        if not isinstance(tags, Mapping):
            raise TrackingError(
                f"set_tags expects a dict of name -> value; got {type(tags).__name__}."
            )
        rows = [
            {"run_id": run_id, "key": check_key(k, "tag"), "value": param_text(v, f"tag {k!r}")}
            for k, v in tags.items()
        ]
        if not rows:
            return
        self._check_fork()
        if run_id not in self._own:
            self.flush()
            run_id = self.resolve_run_id(run_id)
            for row in rows:
                row["run_id"] = run_id
        self._submit(run_id, "tags", rows)
