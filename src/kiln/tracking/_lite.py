"""A read-only path into an embedded store with the standard library's sqlite3 alone.

Importing SQLAlchemy costs a fresh process about a fifth of a second, more than all of
the rest of loading a model. A process that only reads a logged model (a server starting,
a batch job) does not need it: for an existing, current SQLite store with local
artifacts, `download_run_files` answers with one query and copies the files out of the
content-addressed store, checking each against its recorded sha256 exactly as the
client does. Anything else returns None and the caller takes the full client path.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from pathlib import Path

from kiln._exceptions import ArtifactIntegrityError
from kiln.store._engine import SCHEMA_REVISIONS, resolve_url

__all__ = ["download_run_files"]

_RUN_ID_CHARS = frozenset("0123456789abcdef")


def _usable(store: str | None) -> Path | None:
    fluent = sys.modules.get("kiln.tracking._fluent")
    if store is None and fluent is not None:
        store = fluent._store  # what kiln.configure() chose
    url = resolve_url(store)
    if "kiln.tracking._writer" in sys.modules:  # reads see this process's queued writes
        sys.modules["kiln.tracking._writer"].flush_all(key=url)
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = Path(url[len("sqlite:///") :])
    return path if path.is_file() else None


def download_run_files(store: str | None, run_id: str, prefix: str, dest: Path) -> Path | None:
    """Copy a run's artifact (or folder) `prefix` into `dest`, verified; None to fall back.

    Returns:
        The local path of the artifact, or None when this path cannot answer (not an
        embedded store, an older or newer schema, a short run id, remote artifacts,
        nothing logged under `prefix`): the caller then uses the full client.
    """
    db = _usable(store)
    if db is None or len(run_id) != 32 or not set(run_id) <= _RUN_ID_CHARS:
        return None
    prefix = prefix.strip("/")
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return None
    try:
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if revision is None or revision[0] != SCHEMA_REVISIONS[-1]:
            return None
        meta = dict(conn.execute("SELECT key, value FROM store_meta").fetchall())
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
        rows = conn.execute(
            "SELECT path, sha256 FROM artifacts WHERE run_id = ? AND (path = ? OR path LIKE ? "
            "ESCAPE '\\')",
            (run_id, prefix, like),
        ).fetchall()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    root = meta.get("artifact_root", "artifacts")
    if "://" in root:
        return None
    base = Path(root) if os.path.isabs(root) else db.parent / root
    if not rows:
        return None
    from kiln.artifacts import inside

    # Every path and digest from the store is checked before any file is written.
    files = inside(dest, [rel for rel, _ in rows], f"Artifact path of run {run_id[:12]}")
    for rel, sha in rows:
        if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= _RUN_ID_CHARS:
            raise ArtifactIntegrityError(
                f"Artifact {rel!r} of run {run_id[:12]} has the recorded digest {sha!r}, which "
                "is not a sha256 hex digest; the store's row was not written by kiln."
            )
    for (rel, sha), file in zip(rows, files, strict=True):
        _copy_verified(base / "objects" / sha[:2] / sha, sha, file, f"{rel!r} of run {run_id[:12]}")
    return dest / prefix if prefix else dest


def _copy_verified(blob: Path, sha: str, target: Path, label: str) -> None:
    # The same checks and messages as ArtifactStore.verify, without fsspec.
    try:
        data = blob.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactIntegrityError(
            f"Artifact {label} is missing from the artifact store (expected at {blob}). "
            "It was deleted or the artifact root moved."
        ) from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha:
        raise ArtifactIntegrityError(
            f"Artifact {label} at {blob} has been changed or truncated: its sha256 is "
            f"{actual}, but {sha} was recorded when it was logged. It will not be used. "
            "Re-log it from its source."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
