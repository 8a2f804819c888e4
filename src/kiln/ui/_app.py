"""The dashboard's Starlette app: pages, JSON API, static files, token check, errors."""

from __future__ import annotations

import hmac
import importlib
import time
from typing import TYPE_CHECKING, Any

from kiln._exceptions import KilnError, NotFoundError
from kiln.ui._web import STATIC, render

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = [
    "PAGE_MODULES",
    "TOKEN_COOKIE",
    "ServerTiming",
    "create_app",
    "error_handlers",
    "middleware",
    "token_middleware",
]

PAGE_MODULES = [
    "kiln.ui._pages_home",
    "kiln.ui._pages_runs",
    "kiln.ui._pages_artifacts",
    "kiln.ui._pages_models",
    "kiln.ui._pages_pipelines",
    "kiln.ui._pages_monitoring",
]
"""The modules whose `ROUTES` the app mounts, in order (first match wins)."""

TOKEN_COOKIE = "kiln_ui_token"
_OPEN = ("/health", "/ready", "/static/")


def _given_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)


class ServerTiming:
    """Pure ASGI middleware: every answer says how long the app took to start it, as
    `Server-Timing: app;dur=<ms>` (what a browser's devtools and the bench read)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                took = f"app;dur={(time.perf_counter() - start) * 1000:.1f}".encode()
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"server-timing", took)],
                }
            await send(message)

        await self.app(scope, receive, timed)


def middleware(token: str | None, *, what: str = "dashboard", hint: str = "kiln ui") -> list[Any]:
    """The middleware of kiln's web apps: `ServerTiming`, and the token check when a
    token is set (none at all otherwise: each layer costs every request)."""
    from starlette.middleware import Middleware

    layers = [Middleware(ServerTiming)]
    if token is not None:
        layers.append(token_middleware(token, what=what, hint=hint))
    return layers


def token_middleware(token: str | None, *, what: str = "dashboard", hint: str = "kiln ui") -> Any:
    """The middleware that asks every request but /health, /ready and /static for `token`.

    The token comes as an `Authorization: Bearer` header, or `?token=` once (then kept in
    an HttpOnly cookie and dropped from the URL). Shared by the dashboard and
    `kiln notebook app`.

    Args:
        token: The token; None lets every request through.
        what: What the pages are, for the 401 message ("dashboard").
        hint: The command whose `--token` set it, for the 401 message.
    """
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import JSONResponse, RedirectResponse

    async def check_token(request: Request, call_next: Any) -> Response:
        if token is None or request.url.path.startswith(_OPEN):
            return await call_next(request)
        given = _given_token(request)
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            if request.url.path.startswith("/api/"):
                return JSONResponse(
                    {"error": f"This {what} needs a token: send Authorization: Bearer TOKEN."},
                    status_code=401,
                )
            return render(
                request,
                "error.html",
                401,
                title="Token required",
                message=f"This {what} needs a token: open it with ?token=TOKEN "
                f"(the one given to {hint} --token or KILN_TOKEN).",
            )
        if "token" in request.query_params:  # keep it in a cookie, drop it from the URL
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            from urllib.parse import urlencode

            url = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(url, status_code=303)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return response
        return await call_next(request)

    return Middleware(BaseHTTPMiddleware, dispatch=check_token)


def error_handlers() -> dict[Any, Any]:
    """Starlette exception handlers: kiln's NotFoundError as 404, other KilnErrors as 400,
    HTTPException as its status; a JSON `{"error": ...}` under /api/, else the error page."""
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=404)
        return render(request, "error.html", 404, title="Not found", message=str(exc))

    async def kiln_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=400)
        return render(request, "error.html", 400, title="Bad request", message=str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = int(getattr(exc, "status_code", 500))
        detail = str(getattr(exc, "detail", "")) or "Not found"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": detail}, status_code=status)
        return render(request, "error.html", status, title=f"Error {status}", message=detail)

    return {NotFoundError: not_found, KilnError: kiln_error, HTTPException: http_error}


def create_app(store: str | None = None, *, token: str | None = None) -> Starlette:
    """The dashboard as an ASGI app over `store` (default: the configured store).

    Args:
        store: The store URL or path (embedded SQLite or PostgreSQL).
        token: When given, every page and API call needs it: an `Authorization: Bearer`
            header, or `?token=` once (then kept in an HttpOnly cookie).

    Returns:
        The Starlette app (run it with `kiln.serving.run_app`, or `kiln ui`).
    """
    from kiln._extras import require

    require("starlette", "ui", "The dashboard")
    require("jinja2", "ui", "The dashboard")
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    routes: list[Any] = []
    for name in PAGE_MODULES:
        routes.extend(importlib.import_module(name).ROUTES)
    routes.append(Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"))
    app = Starlette(
        routes=routes,
        middleware=middleware(token),
        exception_handlers=error_handlers(),
    )
    app.state.store = store
    app.state.client = None
    app.state.registry = None
    app.state.token = token
    return app
