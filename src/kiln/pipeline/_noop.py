"""Recording a no-op `kiln run` as a tracked run, without SQLAlchemy or the user's code.

When nothing changed, `kiln run` still leaves a pipeline run in the store, as every run
does: a finished run of the pipeline with one child run per step, each a cache hit. The
last real run's state file says what such a run records (its experiment, tags, params,
and each step's cache key, code hash, inputs and output); this module writes those rows
to an embedded (SQLite) store through the standard library's sqlite3, in one
transaction, taking the same write turn as every other writer. Importing SQLAlchemy
would cost a no-op run more than all its other work.

It returns None when it cannot (a PostgreSQL store, a store at another schema revision,
a state file from before this was recorded): `kiln run` then takes the full path, which
records the same run through the tracking client.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import uuid
from typing import Any

from kiln._settings import get_setting
from kiln.store import SCHEMA_REVISIONS, resolve_url, write_turn
from kiln.tracking import capture_environment, new_run_name, param_number, param_text

__all__ = ["record_noop"]

_TAG = "kiln.pipeline"
_REASON = "unchanged (kiln run found nothing changed)"


def step_tags(
    step: str,
    cache: str,
    *,
    key: str | None,
    code: str | None,
    reason: str,
    inputs: Any,
    output: dict[str, Any] | None,
) -> dict[str, str]:
    """The tags of a step's child run (the scheduler's and a no-op run's alike)."""
    return {
        f"{_TAG}.step": step,
        f"{_TAG}.cache": cache,
        f"{_TAG}.key": key or "",
        f"{_TAG}.code": code or "",
        f"{_TAG}.reason": reason,
        f"{_TAG}.inputs": json.dumps(inputs or {}, sort_keys=True),
        **({f"{_TAG}.output": output["sha"]} if output and output.get("sha") else {}),
    }


def record_noop(
    state: dict[str, Any], store: str | None, experiment: str | None = None
) -> str | None:
    """Write the no-op run described by `state` (in `experiment`, default the last run's);
    its id, or None when it cannot here."""
    record = state.get("record")
    order = state.get("order") or []
    steps = state.get("steps") or {}
    if not isinstance(record, dict) or any(n not in steps for n in order):
        return None
    url = resolve_url(store)
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :]
    if not os.path.exists(path):
        return None
    try:
        conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        with write_turn(path):
            conn.execute("BEGIN IMMEDIATE")
            try:
                run_id = _write(conn, record, experiment, order, steps)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if run_id is None:
                conn.execute("ROLLBACK")
            else:
                conn.execute("COMMIT")
            return run_id
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _write(
    conn: sqlite3.Connection,
    record: dict[str, Any],
    experiment_name: str | None,
    order: list[str],
    steps: dict[str, Any],
) -> str | None:
    try:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except (sqlite3.Error, TypeError):
        return None
    if revision != SCHEMA_REVISIONS[-1]:
        return None
    now = int(time.time() * 1000)
    experiment = _experiment_id(conn, experiment_name or str(record["experiment"]), now)
    env = capture_environment(packages=bool(get_setting("capture_packages")))
    shas = {}
    for name in ("packages", "git_diff"):
        body = env.pop(name, None)
        if body:
            shas[f"{name}_sha"] = sha = hashlib.sha256(body.encode("utf-8")).hexdigest()
            conn.execute("INSERT OR IGNORE INTO texts (sha256, body) VALUES (?, ?)", (sha, body))
    top = {**env, **shas}
    run_id = _run(conn, experiment, str(record["name"]), None, top, now)
    _params(conn, run_id, record.get("params") or {})  # already as text
    _tags(conn, run_id, record.get("tags") or {})
    counts = {"done": 0.0, "cached": float(len(order)), "failed": 0.0}
    conn.executemany(
        "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, 0, ?)",
        [(run_id, f"{_TAG}.steps_{k}", v, now) for k, v in counts.items()],
    )
    conn.executemany(
        "INSERT INTO latest_metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, 0, ?)",
        [(run_id, f"{_TAG}.steps_{k}", v, now) for k, v in counts.items()],
    )
    child_env = {k: top.get(k) for k in ("user", "host", "pid", "entry_point", "command")}
    child_env["python_version"] = env.get("python_version")
    for step in order:
        entry = steps[step]
        child = _run(conn, experiment, step, run_id, child_env, now)
        _params(conn, child, entry.get("params") or {})
        tags = step_tags(
            step,
            "hit",
            key=entry.get("key"),
            code=entry.get("code_hash"),
            reason=_REASON,
            inputs=entry.get("inputs"),
            output=entry.get("output"),
        )
        _tags(conn, child, tags)
    return run_id


def _experiment_id(conn: sqlite3.Connection, name: str, now: int) -> int:
    query = "SELECT id FROM experiments WHERE name = ? AND deleted_at IS NULL"
    found = conn.execute(query, (name,)).fetchone()
    if found is None:
        conn.execute("INSERT INTO experiments (name, created_at) VALUES (?, ?)", (name, now))
        found = conn.execute(query, (name,)).fetchone()
    return int(found[0])


_RUN_COLUMNS = (
    "user", "host", "pid", "entry_point", "command", "git_commit", "git_branch", "git_dirty",
    "git_diff_sha", "python_version", "packages_sha",
)  # fmt: skip


def _run(
    conn: sqlite3.Connection,
    experiment: int,
    name: str,
    parent: str | None,
    env: dict[str, Any],
    now: int,
) -> str:
    run_id = uuid.uuid4().hex
    values = [env.get(c) for c in _RUN_COLUMNS]
    conn.execute(
        "INSERT INTO runs (id, experiment_id, name, status, start_time, end_time, parent_id, "
        f"{', '.join(_RUN_COLUMNS)}) VALUES (?, ?, ?, 'finished', ?, ?, ?, "
        f"{', '.join('?' * len(_RUN_COLUMNS))})",
        (run_id, experiment, name or new_run_name(), now, now, parent, *values),
    )
    return run_id


def _params(conn: sqlite3.Connection, run_id: str, params: dict[str, Any]) -> None:
    rows = []
    for key, value in params.items():
        text = param_text(value)  # after a JSON round trip: a tuple is a list, same text
        rows.append((run_id, key, text, param_number(text, value)))
    conn.executemany("INSERT INTO params (run_id, key, value, value_num) VALUES (?, ?, ?, ?)", rows)


def _tags(conn: sqlite3.Connection, run_id: str, tags: dict[str, Any]) -> None:
    conn.executemany(
        "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)",
        [(run_id, key, str(value)) for key, value in tags.items()],
    )
