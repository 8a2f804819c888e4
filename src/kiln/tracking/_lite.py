"""Reading a run's artifacts, with a read-only path into an embedded store that needs only
the standard library's sqlite3.

Importing SQLAlchemy costs a fresh process about a fifth of a second, more than all of
the rest of loading a model. A process that only reads a logged model (a server starting,
a batch job) does not need it: for an existing, current SQLite store with local
artifacts, `download_run_files` answers with one query and copies the files out of the
content-addressed store, checking each against its recorded sha256 exactly as the
client does. Anything else takes the full client path (`TrackingClient.download_artifacts`).
`download_run_artifacts` chooses.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from pathlib import Path

from kiln._exceptions import ArtifactIntegrityError
from kiln.artifacts import inside
from kiln.store import SCHEMA_REVISIONS, resolve_url
from kiln.tracking._fluent import configured_store, get_client

__all__ = ["download_run_artifacts", "download_run_files"]

_RUN_ID_CHARS = frozenset("0123456789abcdef")


def download_run_artifacts(
    run_id: str, path: str, dest: str | os.PathLike[str], *, store: str | None = None
) -> Path:
    """Copy a run's artifact, or every artifact under a folder path, into `dest`, verified.

    Every file is checked against the sha256 the metadata store recorded when it was
    logged. An existing embedded (SQLite) store with local artifacts is read with the
    standard library alone, so a process that only loads a logged model never imports
    SQLAlchemy; any other store is read through `TrackingClient.download_artifacts`.

    Args:
        run_id: The run's id (or, through the client, a unique prefix of it).
        path: The artifact path within the run ("model"), or "" for all of them.
        dest: The local folder to copy into.
        store: The store URL or path (default: the one `kiln.configure()` chose).

    Returns:
        The local path of the artifact (or folder).

    Raises:
        RunNotFoundError: No run has that id.
        ArtifactNotFoundError: The run has nothing logged under `path`.
        ArtifactIntegrityError: A file's bytes differ from its recorded sha256.
        ArtifactPathError: A stored path would reach outside `dest`.
    """
    target = Path(dest)
    folder = download_run_files(store, run_id, path, target)
    if folder is not None:
        return folder
    if store is None:
        return get_client().download_artifacts(run_id, path, target)
    from kiln.tracking._client import TrackingClient

    return TrackingClient(store).download_artifacts(run_id, path, target)


def _usable(store: str | None) -> Path | None:
    if store is None:
        store = configured_store()
    url = resolve_url(store)
    # Reads see this process's queued writes. Only a writer already loaded can hold any;
    # importing the writer here would register its exit flush after the fluent API's
    # and reverse their order at exit (tests/test_write_failures.py shows why that matters).
    writer = sys.modules.get("kiln.tracking._writer")
    if writer is not None:
        writer.flush_all(key=url)
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
