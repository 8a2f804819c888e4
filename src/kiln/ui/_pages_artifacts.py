"""Dashboard pages: a run's artifacts, browsed by folder, previewed, and served raw.

Safety: a path from a request only ever names an artifact *listed for that run* in the
store; it is refused (400) when it is absolute, has a `..` or `.` part, a backslash or a
NUL, also after percent-decoding it again (double-encoded traversal), and the bytes are
read by the sha256 recorded for it from the content-addressed store, checked against
that digest. A blob that is a link leading outside the artifact root is refused (404),
whatever it holds. Raw responses carry `Content-Security-Policy: sandbox` (HTML reports:
`sandbox allow-scripts`), so a report runs its charts but cannot reach the dashboard's
origin or cookies.
"""

from __future__ import annotations

import io
import json
import mimetypes
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from starlette.exceptions import HTTPException
from starlette.routing import Route

from kiln._exceptions import NotFoundError
from kiln.ui._web import api, client, render

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.requests import Request
    from starlette.responses import Response

    from kiln.tracking import ArtifactInfo, Run

__all__ = ["ROUTES", "artifact_url", "check_request_path", "find_report", "read_listed"]

HEAD_ROWS = 50
"""Rows shown of a CSV or Parquet artifact."""
PREVIEW_BYTES = 64 << 20
"""Artifacts up to this size are previewed (and checked against their sha256 in memory)."""
TEXT_BYTES = 256 << 10
"""Text previews show at most this much."""
_IMAGES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp"}
_TEXT = {".txt", ".log", ".md", ".py", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sql", ".sh"}
_TEXT |= {".r", ".tsv", ".xml", ".rst", ".diff", ".patch", ".err", ".out"}
_REPORT_NAMES = ("evaluation/report.html", "report.html", "evaluation.html")


def check_request_path(raw: str) -> str:
    """`raw` when it is a plain relative artifact path; a 400 error otherwise.

    Refused: empty, absolute (`/x`, `C:x`), a `..` or `.` part, a backslash, a NUL or
    control character, and any of these after decoding `%xx` once or twice more (a
    double-encoded `%252e%252e%252f` arrives as `%2e%2e%2f`).

    Raises:
        HTTPException: 400, naming what was wrong.
    """
    seen = raw
    for _ in range(3):  # the path as given, then decoded again, twice
        problem = _path_problem(seen)
        if problem:
            raise HTTPException(
                400,
                f"Artifact path {raw!r} is refused: {problem}. Expected a relative path "
                "such as 'plots/roc.png', as the run's artifact list shows it.",
            )
        decoded = unquote(seen)
        if decoded == seen:
            break
        seen = decoded
    return raw


def _path_problem(path: str) -> str | None:
    if not path.strip():
        return "it is empty"
    if any(ord(c) < 32 or c == "\x7f" for c in path):
        return "it holds a NUL or control character"
    if "\\" in path:
        return "it holds a backslash"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "it is absolute"
    if any(part in ("..", ".") for part in path.split("/")):
        return "it has a '..' or '.' part"
    return None


def artifact_url(run_id: str, path: str, kind: str = "artifacts") -> str:
    """The dashboard URL of an artifact's preview (`kind="artifacts"`) or bytes (`"raw"`)."""
    return f"/runs/{run_id}/{kind}/{quote(path)}"


def find_report(run: Run) -> str | None:
    """The path of the run's evaluation report artifact (`evaluation/report.html`, any
    `*/report.html`), or None."""
    paths = [a.path for a in run.artifacts]
    for name in _REPORT_NAMES:
        if name in paths:
            return name
    found = sorted(p for p in paths if p.endswith("/report.html"))
    return found[0] if found else None


def _listed(run: Run, path: str) -> ArtifactInfo:
    for info in run.artifacts:
        if info.path == path:
            return info
    raise NotFoundError(
        f"Run {run.id[:12]} has no artifact {path!r}; see /runs/{run.id}/artifacts."
    )


def _check_blob(request: Request, info: ArtifactInfo, run: Run) -> None:
    """A 404 when the blob of `info` is a link leading outside the artifact root."""
    store = client(request).artifacts
    if not getattr(store, "local", False):
        return
    blob = Path(store.location(info.sha256))  # <root>/objects/<2 hex>/<sha256>
    root = blob.absolute().parents[2].resolve()
    target = blob.resolve()
    if blob.is_symlink() or root not in target.parents:
        raise NotFoundError(
            f"Artifact {info.path!r} of run {run.id[:12]} is not a file inside the artifact "
            "store (its blob is a link leading elsewhere), so it is not served."
        )


def read_listed(request: Request, run: Run, path: str) -> tuple[ArtifactInfo, bytes]:
    """An artifact listed for `run`, and its bytes checked against its sha256.

    Raises:
        HTTPException: 400 for a refused path.
        NotFoundError: The run lists no such artifact, or its blob leads outside the store.
    """
    info = _listed(run, check_request_path(path))
    _check_blob(request, info, run)
    data = client(request).artifacts.read_bytes(
        info.sha256, label=f"{info.path!r} of run {run.id[:12]}"
    )
    return info, bytes(data)


def _run(request: Request) -> Run:
    return client(request).get_run(request.path_params["run_id"])


def _listing(run: Run, folder: str) -> dict[str, Any]:
    """The folders and files directly under `folder` ('' for the top)."""
    prefix = f"{folder.rstrip('/')}/" if folder else ""
    folders: dict[str, dict[str, Any]] = {}
    files = []
    for a in sorted(run.artifacts, key=lambda a: a.path):
        if not a.path.startswith(prefix):
            continue
        rest = a.path[len(prefix) :]
        head, sep, _tail = rest.partition("/")
        if sep:
            entry = folders.setdefault(
                head, {"name": head, "path": prefix + head, "size": 0, "files": 0}
            )
            entry["size"] += a.size
            entry["files"] += 1
        else:
            files.append(
                {
                    "name": rest,
                    "path": a.path,
                    "size": a.size,
                    "sha256": a.sha256,
                    "created_at": a.created_at,
                }
            )
    if folder and not folders and not files:
        raise NotFoundError(f"Run {run.id[:12]} has no artifact folder {folder!r}.")
    crumbs = []
    parts = PurePosixPath(folder).parts if folder else ()
    for i in range(len(parts)):
        crumbs.append({"name": parts[i], "path": "/".join(parts[: i + 1])})
    return {"folder": folder, "crumbs": crumbs, "folders": list(folders.values()), "files": files}


def artifacts_page(request: Request) -> Response:
    run = _run(request)
    folder = request.query_params.get("path", "").strip("/")
    if folder:
        check_request_path(folder)
    listing = _listing(run, folder)
    return render(request, "artifacts.html", run=run, **listing)


def artifacts_api(request: Request) -> Response:
    run = _run(request)
    folder = request.query_params.get("path", "").strip("/")
    if folder:
        check_request_path(folder)
    listing = _listing(run, folder)
    return api({"run_id": run.id, **listing})


def _kind(path: str) -> str:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in _IMAGES:
        return "image"
    if suffix in (".html", ".htm"):
        return "html"
    if suffix == ".ipynb":
        return "notebook"
    if suffix == ".csv":
        return "csv"
    if suffix == ".parquet":
        return "parquet"
    if suffix == ".json":
        return "json"
    if suffix in _TEXT or not suffix:
        return "text"
    return "binary"


def _table(frame: Any) -> dict[str, Any]:
    head = frame.head(HEAD_ROWS)
    return {
        "columns": [str(c) for c in head.columns],
        "rows": [
            ["" if v is None else str(v) for v in row]
            for row in head.astype(object).itertuples(index=False)
        ],
    }


def _preview(kind: str, data: bytes) -> dict[str, Any]:
    """What the preview page shows of an artifact of this kind."""
    if kind == "csv":
        import pandas as pd

        return {"table": _table(pd.read_csv(io.BytesIO(data), nrows=HEAD_ROWS))}
    if kind == "parquet":
        import pyarrow.parquet as pq

        file = pq.ParquetFile(io.BytesIO(data))
        batch = next(file.iter_batches(batch_size=HEAD_ROWS), None)
        frame = (
            batch.to_pandas() if batch is not None else file.schema_arrow.empty_table().to_pandas()
        )
        return {"table": _table(frame), "total_rows": file.metadata.num_rows}
    if kind == "json":
        try:
            return {"text": json.dumps(json.loads(data), indent=2, ensure_ascii=False)}
        except (ValueError, UnicodeDecodeError) as exc:
            return {
                "text": data[:TEXT_BYTES].decode("utf-8", "replace"),
                "note": f"Not valid JSON: {exc}",
            }
    if kind == "notebook":
        return {"cells": _notebook_cells(data)}
    if kind == "text":
        text = data[:TEXT_BYTES].decode("utf-8", "replace")
        cut = len(data) > TEXT_BYTES
        return {"text": text, "note": f"The first {TEXT_BYTES // 1024} KiB." if cut else None}
    return {}


def _notebook_cells(data: bytes) -> list[dict[str, Any]]:
    """An executed notebook's cells: source, text outputs, images (as data URLs)."""
    nb = json.loads(data)
    cells = []
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        outputs = []
        for out in cell.get("outputs", []) or []:
            kind = out.get("output_type")
            if kind == "stream":
                outputs.append({"text": _joined(out.get("text", ""))})
            elif kind == "error":
                outputs.append({"error": f"{out.get('ename', '')}: {out.get('evalue', '')}"})
            elif kind in ("execute_result", "display_data"):
                bundle = out.get("data", {})
                image = next((m for m in ("image/png", "image/jpeg") if m in bundle), None)
                if image:
                    raw = _joined(bundle[image]).replace("\n", "")
                    outputs.append({"image": f"data:{image};base64,{raw}"})
                elif "text/plain" in bundle:
                    outputs.append({"text": _joined(bundle["text/plain"])})
        cells.append(
            {
                "type": cell.get("cell_type", "code"),
                "source": _joined(source),
                "count": cell.get("execution_count"),
                "outputs": outputs,
            }
        )
    return cells


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def preview_page(request: Request) -> Response:
    run = _run(request)
    path = request.path_params["path"]
    check_request_path(path)
    info = _listed(run, path)
    kind = _kind(path)
    shown: dict[str, Any] = {}
    if info.size > PREVIEW_BYTES and kind not in ("image", "html"):
        shown = {"note": f"Too large to preview ({info.size} bytes); download it."}
    elif kind not in ("image", "html", "binary"):
        _, data = read_listed(request, run, path)
        try:
            shown = _preview(kind, data)
        except Exception as exc:  # noqa: BLE001 (a damaged file: say so; raw still serves it)
            shown = {"note": f"Could not preview this {kind} file: {type(exc).__name__}: {exc}"}
    else:
        _check_blob(request, info, run)
    page = path[: -len(".ipynb")] + ".html" if kind == "notebook" else ""
    if page and any(a.path == page for a in run.artifacts):
        shown["rendered"] = artifact_url(run.id, page, "raw")  # kiln's page of the run
    parts = path.split("/")
    crumbs = [{"name": p, "path": "/".join(parts[: i + 1])} for i, p in enumerate(parts[:-1])]
    return render(
        request,
        "artifact_preview.html",
        run=run,
        info=info,
        kind=kind,
        crumbs=crumbs,
        name=parts[-1],
        raw_url=artifact_url(run.id, path, "raw"),
        shown={
            "text": None,
            "note": None,
            "table": None,
            "cells": None,
            "total_rows": None,
            "rendered": None,
            **shown,
        },
    )


def _chunks(fh: Any) -> Iterator[bytes]:
    with fh:
        while chunk := fh.read(1 << 20):
            yield chunk


def raw(request: Request) -> Response:
    """The artifact's bytes (inline; `?download=1`: as an attachment), sandboxed.

    Up to `PREVIEW_BYTES` they are read whole and checked against the recorded sha256;
    larger ones are checked in one pass, then streamed.
    """
    from starlette.responses import Response as Plain
    from starlette.responses import StreamingResponse

    run = _run(request)
    path = check_request_path(request.path_params["path"])
    info = _listed(run, path)
    name = PurePosixPath(info.path).name
    kind = _kind(info.path)
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind in ("text", "csv", "html") or media.startswith("text/"):
        media = f"{'text/html' if kind == 'html' else 'text/plain'}; charset=utf-8"
    if kind == "json":
        media = "application/json"
    inline = kind in ("image", "html", "text", "json", "csv")
    disposition = "inline" if inline and "download" not in request.query_params else "attachment"
    headers = {
        "content-security-policy": "sandbox allow-scripts" if kind == "html" else "sandbox",
        "x-content-type-options": "nosniff",
        "content-disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
        "cache-control": "private, max-age=3600",
        "etag": f'"{info.sha256}"',
    }
    if info.size > PREVIEW_BYTES:
        _check_blob(request, info, run)
        label = f"{info.path!r} of run {run.id[:12]}"
        fh = client(request).artifacts.open(info.sha256, label=label)  # checks the digest
        headers["content-length"] = str(info.size)
        return StreamingResponse(_chunks(fh), media_type=media, headers=headers)
    _, data = read_listed(request, run, path)
    return Plain(data, media_type=media, headers=headers)


ROUTES = [
    Route("/runs/{run_id}/artifacts", artifacts_page),
    Route("/runs/{run_id}/artifacts/{path:path}", preview_page),
    Route("/runs/{run_id}/raw/{path:path}", raw),
    Route("/api/runs/{run_id}/artifacts", artifacts_api),
]
