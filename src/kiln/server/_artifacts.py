"""MLflow's proxied artifact service (`/api/2.0/mlflow-artifacts/artifacts/...`) and the
tracking API's artifact listing, over kiln's content-addressed artifacts of a run.

Uploads stream to a temporary file (never whole in memory) under their own size bound;
hashing and the copy into the artifact store run off the event loop."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

from kiln.server._filter import MlflowRequestError

__all__ = ["ENDPOINTS", "MAX_ARTIFACT_SIZE", "list_files", "split_path"]

#: The largest artifact upload the server accepts by default, bytes.
MAX_ARTIFACT_SIZE = 5 * 2**30

#: Endpoint names of the artifact routes (declared in `kiln.server._perms`).
ENDPOINTS: dict[tuple[str, str], str] = {
    ("PUT", "mlflow-artifacts/artifacts/<path>"): "upload_artifact",
    ("GET", "mlflow-artifacts/artifacts/<path>"): "download_artifact",
    ("GET", "mlflow-artifacts/artifacts"): "list_artifacts",
    ("GET", "artifacts/list"): "list_artifacts",
}


def _bad(message: str) -> MlflowRequestError:
    return MlflowRequestError(message, "INVALID_PARAMETER_VALUE", 400)


def check_rel(rel: str) -> str:
    """`rel` when it is a safe relative artifact path ('' for the run's root)."""
    from kiln._exceptions import ArtifactPathError
    from kiln.artifacts import check_relative_path

    rel = rel.strip("/") if not rel.startswith("/") else rel
    if rel == "":
        return ""
    try:
        check_relative_path(rel, "Artifact path")
    except ArtifactPathError as exc:
        raise _bad(str(exc)) from None
    if "." in rel.split("/") or "" in rel.split("/"):
        raise _bad(f"Artifact path {rel!r} has an empty or '.' part; send a plain relative path.")
    return rel


def split_path(path: str) -> tuple[str, str, str]:
    """(experiment id, run id, path in the run) of `<exp>/<run>/artifacts[/<rel>]`."""
    if "\0" in path or path.startswith("/") or ".." in path.split("/"):
        raise _bad(
            f"Artifact path {path!r} is absolute or has a '..' or NUL; expected "
            "'<experiment id>/<run id>/artifacts/<path>'."
        )
    parts = path.strip("/").split("/", 3)
    if len(parts) < 3 or parts[2] != "artifacts":
        raise _bad(
            f"Artifact path {path!r} is not '<experiment id>/<run id>/artifacts/<path>' "
            "(the run's artifact_uri from get_run, then the artifact's path)."
        )
    return parts[0], parts[1], check_rel(parts[3] if len(parts) == 4 else "")


def resolve(api: Any, exp_id: str, run_id: str) -> str:
    """The full run id of `run_id`, checked to be in experiment `exp_id` (else 404)."""
    run = api._run(run_id)  # 404 RESOURCE_DOES_NOT_EXIST for an unknown run
    if str(api._exp_ids().get(run.experiment, "")) != exp_id:
        raise MlflowRequestError(
            f"Run {run_id} is not in experiment {exp_id}; use the run's artifact_uri from get_run.",
            "RESOURCE_DOES_NOT_EXIST",
            404,
        )
    return str(run.id)


def list_files(client: Any, run_id: str, rel: str) -> list[dict[str, Any]]:
    """MLflow's file listing of the artifacts directly under `rel` of a run."""
    from sqlalchemy import select

    from kiln.store import schema as s

    a = s.artifacts
    with client.store.read() as conn:
        rows = conn.execute(select(a.c.path, a.c.size).where(a.c.run_id == run_id)).all()
    prefix = rel + "/" if rel else ""
    files: dict[str, dict[str, Any]] = {}
    for path, size in rows:
        if not path.startswith(prefix):
            continue
        head, _, tail = path[len(prefix) :].partition("/")
        if tail:
            files.setdefault(head, {"path": head, "is_dir": True})
        else:
            files[head] = {"path": head, "is_dir": False, "file_size": int(size)}
    return [files[k] for k in sorted(files)]


def store_upload(client: Any, run_id: str, rel: str, tmp: str) -> None:
    """Hash and copy the uploaded file at `tmp` into the store as `rel` of the run."""
    sha, size = client.artifacts.put_file(tmp)
    client._record_artifacts(run_id, [(rel, sha, size)])


def new_temp() -> tuple[Any, str]:
    """An open temporary file for an upload, and its path."""
    fd, name = tempfile.mkstemp(prefix="kiln-upload-")
    return os.fdopen(fd, "wb"), name


def iter_file(fh: Any, chunk: int = 2**20) -> Iterator[bytes]:
    """The bytes of an open file in chunks, closing it at the end (run in a thread pool)."""
    with fh:
        while data := fh.read(chunk):
            yield data
