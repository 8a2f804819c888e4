"""The team server's Starlette app: MLflow's REST API under /api/2.0/mlflow/, health
and readiness, signing in (`_auth`), each endpoint's permission (`_perms`), and MLflow's
error JSON for every error."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from kiln._exceptions import ArtifactNotFoundError
from kiln.server import _artifacts as art
from kiln.server._artifacts import MAX_ARTIFACT_SIZE
from kiln.server._auth import PRINCIPAL, Authenticator, AuthMiddleware
from kiln.server._filter import MlflowRequestError
from kiln.server._mlflow import ENDPOINTS, MlflowApi
from kiln.server._perms import authorize
from kiln.server._registry import ENDPOINTS as REGISTRY_ENDPOINTS
from kiln.server._registry import RegistryApi
from kiln.server._users import Users

__all__ = ["create_app"]

_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/")
#: Endpoint families MLflow has and this server does not serve yet, with why.
_NOT_YET = {
    "logged-models": "MLflow 3's logged models (what mlflow.<flavor>.log_model uses) are "
    "not served by kiln yet. Log the model with kiln (kiln.log_model), or save it with "
    "mlflow.<flavor>.save_model and log the folder with mlflow.log_artifacts(folder, "
    "'model'); to register it, call MlflowClient().create_model_version(name, "
    "'runs:/<run id>/model', run_id) rather than mlflow.register_model.",
}


_REGISTRY_NAMES = frozenset(REGISTRY_ENDPOINTS.values())


def _error(message: str, code: str, status: int) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"error_code": code, "message": message}, status_code=status)


#: The largest request body the server reads, bytes.
MAX_BODY = 8 * 2**20


def create_app(
    store: str | None = None,
    *,
    token: str | None = None,
    max_artifact_size: int = MAX_ARTIFACT_SIZE,
) -> Any:
    """The team server as an ASGI app over `store` (default: the configured store).

    Args:
        store: A store URL or path.
        token: The server's own token: a request carrying it (as `Authorization:
            Bearer TOKEN`, or as an HTTP Basic password) is an admin's. With a token,
            or once the store has users (`kiln.server.Users`), every request but
            /health and /ready must sign in; without either the server is open.
        max_artifact_size: The largest artifact upload accepted, bytes (413 above it).
    """
    from kiln._extras import require

    require("starlette", "serve", "Running kiln's team server")
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from kiln.tracking import TrackingClient

    client = TrackingClient(store)
    api = MlflowApi(client)
    registry = RegistryApi(client, api.lock)
    users = Users(client.store)
    authenticator = Authenticator(users, token)

    def guarded(name: str, body: dict[str, Any], who: Any) -> dict[str, Any]:
        """Check the permission, call the endpoint, and grant a creator MANAGE."""
        readable = authorize(who, name, body, api, users)
        target = registry if name in _REGISTRY_NAMES else api
        result = target.call(name, body, readable=readable)
        if name == "create_experiment" and who is not None and who.user_id is not None:
            users.grant_id(who.user_id, int(result["experiment_id"]), "MANAGE")
        return result

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def mlflow(request: Request) -> Response:
        path = request.url.path
        prefix = next((p for p in _PREFIXES if path.startswith(p)), None)
        if prefix is None:  # /api/2.0/mlflow-artifacts/...
            return await artifacts(request)
        rest = path[len(prefix) :].strip("/")
        if request.method == "GET" and rest == "artifacts/list":
            return await artifacts(request)
        name = ENDPOINTS.get((request.method, rest)) or REGISTRY_ENDPOINTS.get(
            (request.method, rest)
        )
        if name is None:
            family = rest.split("/", 1)[0]
            if family in _NOT_YET:
                return _error(_NOT_YET[family], "NOT_IMPLEMENTED", 501)
            return _error(
                f"kiln's MLflow API has no endpoint {request.method} {path}.",
                "ENDPOINT_NOT_FOUND",
                404,
            )
        body: dict[str, Any]
        if request.method == "GET":
            body = dict(request.query_params)
        else:
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    return _error(
                        f"The request body is over {MAX_BODY // 2**20} MiB; MLflow's own "
                        "limits (1,000 metrics, 100 params and 100 tags per log-batch) fit "
                        "in far less: send it in smaller batches.",
                        "INVALID_PARAMETER_VALUE",
                        413,
                    )
                chunks.append(chunk)
            raw = b"".join(chunks)
            try:  # off the event loop: a big body never stalls /health
                body = await run_in_threadpool(json.loads, raw) if raw.strip() else {}
            except ValueError as exc:
                return _error(
                    f"The request body is not JSON: {str(exc)[:200]}.", "MALFORMED_REQUEST", 400
                )
            if not isinstance(body, dict):
                return _error("The request body must be a JSON object.", "MALFORMED_REQUEST", 400)
        try:
            who = request.scope.get(PRINCIPAL)
            result = await run_in_threadpool(guarded, name, body, who)
        except MlflowRequestError as exc:
            return _error(str(exc), exc.code, exc.status)
        return JSONResponse(result)

    async def artifacts(request: Request) -> Response:
        """MLflow's artifact service: upload, download and list, streamed."""
        from starlette.responses import StreamingResponse

        who = request.scope.get(PRINCIPAL)
        raw = request.scope.get("raw_path", b"").split(b"?", 1)[0].decode("latin-1")
        marker = "/mlflow-artifacts/artifacts"
        try:
            if marker not in raw:  # GET /api/2.0/mlflow/artifacts/list
                q = request.query_params
                run_id = await run_in_threadpool(api._run_id, q.get("run_id") or q.get("run_uuid"))
                rel = art.check_rel(q.get("path") or "")
                await run_in_threadpool(
                    authorize, who, "list_artifacts", {"run_id": run_id}, api, users
                )
                files = await run_in_threadpool(art.list_files, client, run_id, rel)
                root = f"mlflow-artifacts:/{{}}/{run_id}/artifacts"
                run = await run_in_threadpool(api._run, run_id)
                exp = (await run_in_threadpool(api._exp_ids)).get(run.experiment, "")
                out = [dict(f, path=f"{rel}/{f['path']}" if rel else f["path"]) for f in files]
                return JSONResponse({"root_uri": root.format(exp), "files": out})
            from urllib.parse import unquote

            tail = raw.split(marker, 1)[1]
            if tail in ("", "/"):  # list
                if request.method != "GET":
                    raise MlflowRequestError("Only GET lists artifacts.", "BAD_REQUEST", 405)
                full = request.query_params.get("path") or ""
                exp_id, run_id, rel = art.split_path(full)
                run_id = await run_in_threadpool(art.resolve, api, exp_id, run_id)
                await run_in_threadpool(
                    authorize, who, "list_artifacts", {"run_id": run_id}, api, users
                )
                files = await run_in_threadpool(art.list_files, client, run_id, rel)
                return JSONResponse({"files": files})
            exp_id, run_id, rel = art.split_path(unquote(tail[1:]))
            run_id = await run_in_threadpool(art.resolve, api, exp_id, run_id)
            if request.method == "GET":
                if not rel:
                    raise MlflowRequestError(
                        "Name an artifact file to download.", "INVALID_PARAMETER_VALUE", 400
                    )
                await run_in_threadpool(
                    authorize, who, "download_artifact", {"run_id": run_id}, api, users
                )
                info = await run_in_threadpool(client._artifact, run_id, rel)
                label = f"{rel!r} of run {run_id[:12]}"
                # verified (sha256) before the first byte goes out; then streamed
                blob = await run_in_threadpool(client.artifacts.open, info.sha256, label=label)
                return StreamingResponse(
                    art.iter_file(blob),
                    media_type="application/octet-stream",
                    headers={"Content-Length": str(info.size)},
                )
            if request.method != "PUT":
                raise MlflowRequestError(
                    f"kiln serves GET and PUT on artifacts, not {request.method}.",
                    "NOT_IMPLEMENTED",
                    501,
                )
            if not rel:
                raise MlflowRequestError(
                    "Name the artifact's path to upload.", "INVALID_PARAMETER_VALUE", 400
                )
            await run_in_threadpool(
                authorize, who, "upload_artifact", {"run_id": run_id}, api, users
            )
            fh, tmp = art.new_temp()
            try:
                size = 0
                with fh:
                    async for chunk in request.stream():
                        size += len(chunk)
                        if size > max_artifact_size:
                            return _error(
                                f"The artifact upload is over {max_artifact_size} bytes, "
                                "the server's limit (kiln server --max-artifact-size); "
                                "nothing was stored.",
                                "INVALID_PARAMETER_VALUE",
                                413,
                            )
                        await run_in_threadpool(fh.write, chunk)
                await run_in_threadpool(art.store_upload, client, run_id, rel, tmp)
            finally:
                os.unlink(tmp)
            return JSONResponse({})
        except MlflowRequestError as exc:
            return _error(str(exc), exc.code, exc.status)
        except ArtifactNotFoundError as exc:
            return _error(str(exc), "RESOURCE_DOES_NOT_EXIST", 404)

    async def internal_error(_request: Request, exc: Exception) -> Response:
        return _error(f"{type(exc).__name__}: {exc}", "INTERNAL_ERROR", 500)

    methods = ["GET", "POST", "PATCH", "DELETE", "PUT"]
    routes = [
        Route("/health", health),
        Route("/ready", health),
        Route("/api/2.0/mlflow/{rest:path}", mlflow, methods=methods),
        Route("/ajax-api/2.0/mlflow/{rest:path}", mlflow, methods=methods),
        Route("/api/2.0/mlflow-artifacts/{rest:path}", mlflow, methods=methods),
    ]
    middleware = [Middleware(AuthMiddleware, authenticator=authenticator)]

    async def not_found(request: Request, _exc: Exception) -> Response:
        return _error(
            f"No endpoint {request.method} {request.url.path}.", "ENDPOINT_NOT_FOUND", 404
        )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        yield
        client.flush()  # what is still queued is committed before the process exits

    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: not_found, Exception: internal_error},
        lifespan=lifespan,
    )
