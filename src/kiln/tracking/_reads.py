"""Reading runs: ids, single runs, searches and metric histories."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kiln._exceptions import (
    RunNotFoundError,
    TrackingError,
    did_you_mean,
)
from kiln.tracking._base import _ClientBase
from kiln.tracking._records import ArtifactInfo, DatasetInfo, Metric, Run
from kiln.tracking._validate import now_ms

__all__ = ["RunReads", "effective_status"]

_PIPELINE = "kiln.pipeline"

_HOST = socket.gethostname()


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def effective_status(
    status: str,
    heartbeat_at: int | None,
    interval: float | None,
    host: str | None,
    pid: int | None,
    now: int,
) -> str:
    """A stored status as it reads now: a `running` run whose process is gone from this
    host, or whose heartbeat is more than three intervals old, is `crashed`."""
    if status != "running":
        return status
    if heartbeat_at is not None and now - heartbeat_at > 3 * 1000 * (interval or 10.0):
        return "crashed"
    if pid and host == _HOST and pid != os.getpid() and _process_gone(int(pid)):
        return "crashed"
    return status


_N_RUN_COLUMNS = 10


def _make_cursor(order: str, values: list[Any]) -> str:
    """A page cursor: the order it was made for and the last run's sort values."""
    import base64

    raw = json.dumps({"o": order, "v": values}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# How far a runs page may walk an index (SQLite virtual-machine steps) before it is read
# by building the filter's sets instead (`search_runs_page`). A walk that fills its page
# takes 1,000-100,000 steps (a few ms); 200,000 is some 40 ms on a 2-core machine. Steps,
# not seconds, so the plan a page gets does not depend on how busy the machine is.
_WALK_BUDGET = 200_000


def _within(conn: Any, steps: int, query: Any) -> list[Any] | None:
    """The rows of `query` on SQLite, or None when it has not finished within about
    `steps` virtual-machine steps (it is interrupted then, by SQLite's progress handler)."""
    from sqlalchemy.exc import OperationalError

    raw = conn.connection.driver_connection
    every = 1000
    left = [steps]

    def spent() -> bool:
        left[0] -= every
        return left[0] < 0

    raw.set_progress_handler(spent, every)
    try:
        return list(conn.execute(query).all())
    except OperationalError as exc:
        if "interrupted" in str(exc.orig) and left[0] < 0:
            return None
        raise
    finally:
        raw.set_progress_handler(None, 0)


def _resume(columns: list[tuple[Any, bool]], last: list[Any] | None, have: int) -> list[Any]:
    """The conditions of the rows after `last` among the runs that have the first order
    key; for a metric or tag also a range on its value, so an index seeks to the cursor."""
    if last is None:
        return []
    from kiln.tracking._query import after_row

    conds = [after_row(columns, last)]
    if have == 0:
        col, descending = columns[0]
        conds.append(col <= last[0] if descending else col >= last[0])
    return conds


def _read_cursor(cursor: str, order: str, n_values: int) -> list[Any]:
    """The sort values in `cursor`, checked against the order they are used with."""
    import base64
    import binascii

    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        values, made_for = data["v"], data["o"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise TrackingError(
            f"{cursor[:40]!r} is not a page cursor: pass back the one a page returned "
            "(or leave it out for the first page)."
        ) from None
    if made_for != order or not isinstance(values, list) or len(values) != n_values:
        raise TrackingError(
            f"This page cursor was made for the order {made_for or 'newest first'!r}, not "
            f"{order or 'newest first'!r}: start from the first page when the order changes."
        )
    return values


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects.

    Reading a thousand runs allocates tens of thousands of tuples and dicts; that count
    sets off a full collection, which walks every object of a process that imported pandas
    and SQLAlchemy: 50-60 ms, more than the search itself. Nothing built here forms a
    cycle, so the pause frees nothing late.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _fetch_plain(conn: Any, query: Any) -> list[Any]:
    """Rows of `query` as the driver returns them, without SQLAlchemy's per-row type
    processing (a fifth of a 1,000-run search's time). For queries whose columns need
    none but the caller's own conversions, and whose parameters are plain values."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    order = compiled.positiontup
    args = params if order is None else tuple(params[k] for k in order)
    return _driver_rows(conn, compiled.string, args)


def _driver_rows(conn: Any, sql: str, args: Any) -> list[Any]:
    """Rows of `sql` as plain tuples from the DB-API cursor of `conn`'s transaction."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, args)
        return cursor.fetchall()
    finally:
        cursor.close()


def _run_columns(*, full: bool) -> tuple[list[Any], Any]:
    """The columns a `Run` is built from (the first `_N_RUN_COLUMNS`, then its environment)
    and the join they come from; `full` adds the git diff and package list."""
    from kiln.store import schema as s

    r = s.runs
    columns: list[Any] = [
        r.c.id,
        r.c.name,
        s.experiments.c.name,
        r.c.status,
        r.c.start_time,
        r.c.end_time,
        r.c.parent_id,
        r.c.error,
        r.c.heartbeat_at,
        r.c.heartbeat_interval,
        r.c.user,
        r.c.host,
        r.c.pid,
        r.c.entry_point,
        r.c.command,
        r.c.git_commit,
        r.c.git_branch,
        r.c.git_dirty,
        r.c.python_version,
    ]
    joined = r.join(s.experiments, s.experiments.c.id == r.c.experiment_id)
    if full:
        diff, packages = s.texts.alias("diff"), s.texts.alias("packages")
        columns += [diff.c.body.label("git_diff"), packages.c.body.label("packages")]
        joined = joined.outerjoin(diff, diff.c.sha256 == r.c.git_diff_sha).outerjoin(
            packages, packages.c.sha256 == r.c.packages_sha
        )
    return columns, joined


class RunReads(_ClientBase):
    """Read methods of `TrackingClient`."""

    def resolve_run_id(self, run_id: str) -> str:
        """The full id of the live run whose id is or starts with `run_id`.

        `latest` is the newest top-level run (not a pipeline step, sweep trial or other
        child run).

        Raises:
            RunNotFoundError: None matches, or the prefix is ambiguous.
        """
        self._flush_pending()
        from sqlalchemy import select

        from kiln.store import schema as s

        if not isinstance(run_id, str) or not run_id.strip():
            raise RunNotFoundError(f"A run id must be a non-empty string; got {run_id!r}.")
        run_id = run_id.strip().lower()
        live = s.runs.c.deleted_at.is_(None)
        with self.store.read() as conn:
            if run_id == "latest":
                newest = conn.execute(
                    select(s.runs.c.id)
                    .where(live, s.runs.c.parent_id.is_(None))
                    .order_by(s.runs.c.start_time.desc(), s.runs.c.id.desc())
                    .limit(1)
                ).scalar()
                if newest is None:
                    raise RunNotFoundError(
                        f"There are no runs in the store at {self.store.display_url} yet, "
                        "so there is no 'latest' run."
                    )
                return str(newest)
            if len(run_id) == 32:
                if conn.execute(select(s.runs.c.id).where(s.runs.c.id == run_id, live)).first():
                    return run_id
                matches: list[str] = []
            elif any(c not in "0123456789abcdef" for c in run_id):
                matches = []  # not a hex prefix (and '%' or '_' would be LIKE wildcards)
            else:
                matches = list(
                    conn.execute(
                        select(s.runs.c.id).where(s.runs.c.id.like(run_id + "%"), live).limit(6)
                    ).scalars()
                )
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise RunNotFoundError(
                    f"Run id prefix {run_id!r} matches several runs ({', '.join(m[:12] for m in matches[:5])}"
                    f"{', ...' if len(matches) > 5 else ''}); give more characters."
                )
            recent = conn.execute(
                select(s.runs.c.id).where(live).order_by(s.runs.c.start_time.desc()).limit(2000)
            ).scalars()
            hint = did_you_mean(run_id, [r[: len(run_id)] for r in recent])
        raise RunNotFoundError(
            f"No run with id {run_id!r} in the store at {self.store.display_url}.{hint} "
            "List runs with: kiln runs list"
        )

    # ---------------------------------------------------------------- reading
    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics, tags, datasets, artifacts and environment."""
        self._flush_pending()

        run_id = self.resolve_run_id(run_id)
        return self._with_files(self._load_runs([run_id], full=True))[0]

    def _with_files(self, runs: list[Run]) -> list[Run]:
        """The runs with their datasets and artifacts read (two queries for all of them)."""
        from sqlalchemy import select

        from kiln.store import schema as s

        if not runs:
            return runs
        ids = [r.id for r in runs]
        datasets: dict[str, list[DatasetInfo]] = {i: [] for i in ids}
        artifacts: dict[str, list[ArtifactInfo]] = {i: [] for i in ids}
        d, link, a = s.datasets, s.run_datasets, s.artifacts
        with self.store.read() as conn:
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                ds = conn.execute(
                    select(
                        link.c.run_id,
                        d.c.fingerprint,
                        link.c.name,
                        link.c.role,
                        link.c.direction,
                        d.c.n_rows,
                        d.c.n_cols,
                        d.c.schema,
                        d.c.summary,
                        d.c.source,
                    )
                    .select_from(link.join(d, d.c.id == link.c.dataset_id))
                    .where(self._id_in(link.c.run_id, chunk))
                    .order_by(link.c.direction, link.c.role)
                ).all()
                arts = conn.execute(
                    select(a.c.run_id, a.c.path, a.c.sha256, a.c.size, a.c.created_at)
                    .where(self._id_in(a.c.run_id, chunk))
                    .order_by(a.c.path)
                ).all()
                for rid, fp, nm, role, dr, nr, nc, sc, sm, src in ds:
                    datasets[rid].append(
                        DatasetInfo(
                            fp, nm, role, dr, int(nr), int(nc), json.loads(sc), json.loads(sm), src
                        )
                    )
                for rid, path, sha, size, ts in arts:
                    artifacts[rid].append(ArtifactInfo(path, sha, int(size), int(ts)))
        return [
            Run(**{**r.__dict__, "datasets": datasets[r.id], "artifacts": artifacts[r.id]})
            for r in runs
        ]

    def _load_runs(self, ids: Sequence[str], *, full: bool) -> list[Run]:
        from sqlalchemy import select

        if not ids:
            return []
        columns, joined = _run_columns(full=full)
        from kiln.store import schema as s

        out: list[Run] = []
        with self.store.read() as conn:
            for chunk_start in range(0, len(ids), 5000):
                chunk = list(ids[chunk_start : chunk_start + 5000])
                rows = conn.execute(
                    select(*columns).select_from(joined).where(self._id_in(s.runs.c.id, chunk))
                ).all()
                by_id = {row[0]: row for row in rows}
                found = [by_id[i] for i in chunk if i in by_id]
                out += self._runs_from_rows(conn, found, [c.name for c in columns])
        return out

    def _runs_from_rows(self, conn: Any, rows: Sequence[Any], names: list[str]) -> list[Run]:
        """Runs from rows of `_run_columns`, with their params, latest metrics and tags read
        in one query per table (the ids passed as one parameter, rows read by the driver)."""
        ids = [row[0] for row in rows]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        for chunk_start in range(0, len(ids), 5000):
            chunk = ids[chunk_start : chunk_start + 5000]
            for table, into in (("params", params), ("latest_metrics", metrics), ("tags", tags)):
                for rid, k, v in self._rows_of_runs(conn, table, chunk):
                    into[rid][k] = v
        now = now_ms()
        env_names = names[_N_RUN_COLUMNS:]
        out = []
        for row in rows:
            rid, name, exp, status, start, end, parent, error, beat, every = row[:_N_RUN_COLUMNS]
            env = dict(zip(env_names, row[_N_RUN_COLUMNS:], strict=True))
            if env["git_dirty"] is not None:  # 0/1 when read through the driver
                env["git_dirty"] = bool(env["git_dirty"])
            if env.get("packages"):
                env["packages"] = json.loads(env["packages"])
            out.append(
                Run(
                    id=rid,
                    name=name,
                    experiment=exp,
                    status=effective_status(status, beat, every, env["host"], env["pid"], now),
                    start_time=int(start),
                    end_time=None if end is None else int(end),
                    parent_id=parent,
                    params=dict(sorted(params[rid].items())),
                    metrics=dict(sorted(metrics[rid].items())),
                    tags=dict(sorted(tags[rid].items())),
                    environment=env,
                    error=error,
                )
            )
        return out

    def _id_in(self, column: Any, ids: list[str]) -> Any:
        """`column IN ids`; on SQLite with the ids as one JSON parameter, not one each."""
        if self.store.dialect != "sqlite":
            return column.in_(ids)
        from sqlalchemy import func, literal_column, select

        return column.in_(
            select(literal_column("value")).select_from(func.json_each(json.dumps(ids)))
        )

    def _rows_of_runs(self, conn: Any, table: str, ids: list[str]) -> list[Any]:
        """(run_id, key, value) rows of `table` for the runs `ids`."""
        if self.store.dialect == "sqlite":
            sql = (
                f'SELECT run_id, "key", value FROM {table} '
                "WHERE run_id IN (SELECT value FROM json_each(?))"
            )
            return _driver_rows(conn, sql, (json.dumps(ids),))
        sql = f'SELECT run_id, "key", value FROM {table} WHERE run_id = ANY(%s)'
        return _driver_rows(conn, sql, (ids,))

    def search_runs(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        *,
        files: bool = False,
    ) -> list[Run]:
        """Runs matching a filter, newest first unless `order_by` says otherwise.

        Args:
            experiment: One experiment name or several; None means all.
            filter: An expression in the filter language (see `kiln.tracking` docs), e.g.
                `"metrics.acc > 0.9 and params.model = 'rf'"`.
            order_by: e.g. `"metrics.acc desc"`; several keys separated by commas.
            limit: At most this many runs.
            files: Also read each run's datasets and artifacts (left empty otherwise,
                which is faster).

        `id` and `parent_id` also match a shorter id, such as the 12 characters tables
        show: `parent_id = '3f2a9c01b7de'` finds that run's children.

        Warns:
            UnknownFilterKeyWarning: The filter matched no run and names a metric, param
                or tag key that none of the searched runs has (a typo, say); the message
                suggests the closest key they do have.
        """
        self._flush_pending()
        from sqlalchemy import select

        from kiln.store import schema as s
        from kiln.tracking._filter import parse_filter, parse_order_by
        from kiln.tracking._query import compile_filter, order_clauses

        where = compile_filter(parse_filter(filter or ""), filter or "")
        keys = parse_order_by(
            order_by if isinstance(order_by, (str, type(None))) else list(order_by)
        )
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise TrackingError(f"limit must be a positive integer; got {limit!r}.")
        columns, joined = _run_columns(full=False)
        query = select(*columns).select_from(joined)
        conds = [s.runs.c.deleted_at.is_(None), where]
        if experiment is not None:
            names = [experiment] if isinstance(experiment, str) else list(experiment)
            exp_ids = [self.experiment_id(n) for n in names]
            conds.append(s.runs.c.experiment_id.in_(exp_ids))
        query, terms = order_clauses(keys, query)
        query = query.where(*conds).order_by(*terms)
        if limit and limit < 2**63:  # a larger one (past SQL's 64-bit LIMIT) is no limit
            query = query.limit(limit)
        with no_gc(), self.store.read() as conn:
            rows = _fetch_plain(conn, query)
            found = self._runs_from_rows(conn, rows, [c.name for c in columns])
            if not found and filter:
                self._warn_missing_keys(conn, parse_filter(filter), conds[:1] + conds[2:])
        return self._with_files(found) if files else found

    def search_runs_page(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> tuple[list[Run], str | None]:
        """One page of `search_runs`, and the cursor of the next page (None on the last).

        Pass the cursor back as `after` (with the same `order_by`) for the next page. The
        page after a cursor is found by the sort values of its last run (keyset paging),
        never by skipping the earlier runs, so page 1,000 of 100,000 runs is as quick as
        page 1; runs added meanwhile do not shift a page.

        Args:
            experiment: One experiment name or several; None means all.
            filter: An expression in the filter language, as for `search_runs`.
            order_by: e.g. `"metrics.acc desc"`; several keys separated by commas.
            limit: At most this many runs on the page (1 to 10,000).
            after: The cursor a previous page returned.

        Raises:
            FilterSyntaxError: The filter or order cannot be parsed.
            TrackingError: A cursor that is not one, or was made for another order.
        """
        self._flush_pending()
        from sqlalchemy import select

        from kiln.store import schema as s
        from kiln.tracking._filter import parse_filter, parse_order_by
        from kiln.tracking._query import (
            after_row,
            compile_filter,
            key_bounds,
            order_columns,
            order_from,
        )

        node = parse_filter(filter or "")
        where = compile_filter(node, filter or "")
        order = (order_by or "").strip()
        keys = parse_order_by(order or None)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise TrackingError(f"limit must be an integer from 1 to 10,000; got {limit!r}.")
        conds = [s.runs.c.deleted_at.is_(None), where]
        exp_ids: list[int] = []
        if experiment is not None:
            names = [experiment] if isinstance(experiment, str) else list(experiment)
            exp_ids = [self.experiment_id(n) for n in names]
            conds.append(s.runs.c.experiment_id.in_(exp_ids))
        joined: Any = s.runs
        if "experiment" in f"{filter} {order}".lower():  # only then is the join needed
            joined = s.runs.join(s.experiments, s.experiments.c.id == s.runs.c.experiment_id)
        # On SQLite a page whose order an index gives (a metric's or tag's values, or one
        # experiment's start times) is read by walking that index and testing each run
        # until the page is full: the filter's metric, param and tag terms as correlated
        # EXISTS, one primary-key search per run walked. When the filter matches few of
        # the runs walked, that walk is long, and building each term's set of runs once
        # (the plan every other page uses) is quicker: past _WALK_BUDGET steps the walk
        # stops and the page is read that way instead.
        walked = (
            compile_filter(node, filter or "", correlated=True)
            if self.store.dialect == "sqlite" and joined is s.runs
            else None
        )

        def bounds(columns: list[tuple[Any, bool]]) -> list[Any]:
            keyed = bool(keys) and keys[0].field.kind == "metrics"
            return key_bounds(node, keys[0].field, columns[0][0]) if keyed else []

        def page(inner: bool, extra: Callable[[list[Any]], list[Any]], n: int) -> list[Any]:
            lead = inner and keys[0].field.kind in ("metrics", "tags")
            by_time = not keys or (
                keys[0].field.kind == "attribute" and keys[0].field.name == "start_time"
            )
            walk = walked is not None and (lead or (not inner and by_time and len(exp_ids) == 1))

            def query(cond: Any, walking: bool) -> Any:
                frm, columns = order_from(keys, joined, inner_first=inner, lead=walking and lead)
                terms = [
                    # A walked key's values are never missing (start_time, or an inner
                    # join on a NOT NULL value), and NULLS LAST on an ascending key would
                    # stop SQLite from reading its order off the index.
                    (c.desc() if d else c.asc())
                    if walking and j == 0
                    else (c.desc() if d else c.asc()).nulls_last()
                    for j, (c, d) in enumerate(columns[:-2])
                ]
                terms += [s.runs.c.start_time.desc(), s.runs.c.id]
                return (
                    select(s.runs.c.id, *(c for c, _ in columns))
                    .select_from(frm)
                    .where(*conds[:1], cond, *conds[2:], *extra(columns), *bounds(columns))
                    .order_by(*terms)
                    .limit(n)
                )

            if walk:
                rows = _within(conn, _WALK_BUDGET, query(walked, True))
                if rows is not None:
                    return rows
            return list(conn.execute(query(where, False)).all())

        n_cols = len(order_columns(keys, select(s.runs.c.id))[1])
        last = _read_cursor(after, order, n_cols) if after else None
        keyed = bool(keys) and keys[0].field.kind != "attribute"
        with no_gc(), self.store.read() as conn:
            if not keyed:
                rows = page(False, lambda cols: [after_row(cols, last)] if last else [], limit + 1)
            else:
                # Ordered by a metric, param or tag: first the runs that have it (on SQLite
                # walked from the key's index, stopping at the page's end), then those that
                # lack it (missing values sort last), so no page sorts every run.
                have = 1 if keys[0].field.kind == "params" else 0  # its `value` column
                rows = []
                if last is None or last[have] is not None:
                    rows = page(True, lambda cols: _resume(cols, last, have), limit + 1)
                if len(rows) <= limit:
                    rows += page(
                        False,
                        lambda cols: [
                            cols[have][0].is_(None),
                            *([after_row(cols, last)] if last and last[have] is None else []),
                        ],
                        limit + 1 - len(rows),
                    )
            if not rows and filter and not after:
                self._warn_missing_keys(conn, parse_filter(filter), conds[:1] + conds[2:])
        found = self._load_runs([row[0] for row in rows[:limit]], full=False)
        cursor = _make_cursor(order, list(rows[limit - 1][1:])) if len(rows) > limit else None
        return found, cursor

    def with_step_metrics(self, runs: Sequence[Run]) -> list[Run]:
        """The runs, each pipeline run with its steps' metrics rolled up into its own.

        A pipeline run's params sit on it and its model metrics on its steps' child runs;
        rolled up, the step `evaluate`'s `accuracy` reads as the pipeline run's metric
        `evaluate.accuracy`, so pipeline runs compare side by side. A step served from
        the cache contributes the metrics of the run that computed its output (same
        cache key). kiln's bookkeeping (`kiln.*`, `system/*`) is left out. Other runs are
        returned as they are.
        """
        from sqlalchemy import select

        from kiln.store import schema as s

        pipelines = [r.id for r in runs if f"{_PIPELINE}.target" in r.tags]
        if not pipelines:
            return list(runs)
        r, t = s.runs, s.tags
        keys = (f"{_PIPELINE}.step", f"{_PIPELINE}.cache", f"{_PIPELINE}.key")
        steps: dict[str, dict[str, str]] = {}  # child id -> parent, step, cache, key
        with no_gc(), self.store.read() as conn:
            for start in range(0, len(pipelines), 5000):
                chunk = pipelines[start : start + 5000]
                rows = conn.execute(
                    select(r.c.id, r.c.parent_id, t.c.key, t.c.value)
                    .select_from(r.join(t, t.c.run_id == r.c.id))
                    .where(
                        self._id_in(r.c.parent_id, chunk),
                        r.c.deleted_at.is_(None),
                        t.c.key.in_(keys),
                    )
                ).all()
                for child, parent, key, value in rows:
                    steps.setdefault(child, {"parent": parent})[key.rsplit(".", 1)[1]] = value
            # A cache hit computed nothing: its metrics are those of the run that did.
            wanted = {c["key"] for c in steps.values() if c.get("cache") == "hit" and c.get("key")}
            computed: dict[str, str] = {}
            if wanted:
                k2 = t.alias("cache")
                found = conn.execute(
                    select(t.c.value, t.c.run_id)
                    .select_from(
                        t.join(k2, k2.c.run_id == t.c.run_id).join(r, r.c.id == t.c.run_id)
                    )
                    .where(
                        t.c.key == f"{_PIPELINE}.key",
                        t.c.value.in_(sorted(wanted)),
                        k2.c.key == f"{_PIPELINE}.cache",
                        k2.c.value == "miss",
                        r.c.deleted_at.is_(None),
                    )
                    .order_by(r.c.start_time)
                ).all()
                computed = {row[0]: row[1] for row in found}  # the newest wins
            source = {
                child: computed.get(c.get("key", ""), child) if c.get("cache") == "hit" else child
                for child, c in steps.items()
            }
            metrics: dict[str, dict[str, float]] = {}
            ids = sorted(set(source.values()))
            for start in range(0, len(ids), 5000):
                for rid, key, value in self._rows_of_runs(
                    conn, "latest_metrics", ids[start : start + 5000]
                ):
                    metrics.setdefault(rid, {})[key] = value
        rolled: dict[str, dict[str, float]] = {}
        for child, c in steps.items():
            step = c.get("step")
            if not step:
                continue
            for key, value in metrics.get(source[child], {}).items():
                if not key.startswith(("kiln.", "system/")):
                    rolled.setdefault(c["parent"], {})[f"{step}.{key}"] = value
        return [
            Run(
                **{
                    **run.__dict__,
                    "metrics": dict(sorted({**run.metrics, **rolled[run.id]}.items())),
                }
            )
            if run.id in rolled
            else run
            for run in runs
        ]

    def _warn_missing_keys(self, conn: Any, node: Any, searched: list[Any]) -> None:
        """Warn (`UnknownFilterKeyWarning`) when a filter that matched nothing names keys
        that no searched run has: a typo matches nothing silently otherwise."""
        import warnings

        from sqlalchemy import and_

        from kiln._exceptions import UnknownFilterKeyWarning
        from kiln.tracking._query import missing_keys

        missing = missing_keys(conn, node, and_(*searched))
        if not missing:
            return
        keys = ", ".join(key for key, _ in missing)
        hints = " ".join(f"For {key}: {hint[0].lower()}{hint[1:]}" for key, hint in missing if hint)
        warnings.warn(
            UnknownFilterKeyWarning(
                f"No searched run has {keys}, so the filter matched nothing."
                + (f" {hints}" if hints else "")
                + " See the keys runs have with: kiln runs show latest"
            ),
            stacklevel=3,
        )

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value logged for a metric, by step then time."""
        self._flush_pending()
        from sqlalchemy import select

        from kiln.store import schema as s

        run_id = self.resolve_run_id(run_id)
        m = s.metrics
        with no_gc(), self.store.read() as conn:
            rows = _fetch_plain(
                conn,
                select(m.c.key, m.c.value, m.c.step, m.c.timestamp)
                .where(m.c.run_id == run_id, m.c.key == key)
                .order_by(m.c.step, m.c.timestamp, m.c.id),
            )
            if not rows:
                keys = list(
                    conn.execute(select(m.c.key).where(m.c.run_id == run_id).distinct()).scalars()
                )
        if not rows:
            have = f" It has: {', '.join(sorted(keys))}." if keys else " It has no metrics."
            raise TrackingError(
                f"Run {run_id[:12]} has no metric {key!r}.{did_you_mean(key, keys)}{have}"
            )
        with no_gc():
            return [Metric(k, float(v), int(st), int(ts)) for k, v, st, ts in rows]
