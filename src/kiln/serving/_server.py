"""Running the app: uvicorn with kiln's HTTP protocol (timeouts, a connection cap,
TCP_NODELAY; `kiln.serving._http`), token rules, graceful shutdown.

On SIGTERM or Ctrl-C uvicorn stops accepting connections, lets in-flight requests
finish (up to `graceful_seconds`), then the app's shutdown drains the batcher and
flushes the prediction log.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ConfigurationError
from kiln._settings import get_setting
from kiln.serving._config import (
    GRACEFUL_SECONDS,
    HOST,
    LOG_LEVEL,
    PORT,
    WORKERS,
    Limits,
    ServeConfig,
)

if TYPE_CHECKING:
    import socket
    from types import FrameType

    import uvicorn
    from starlette.applications import Starlette

    from kiln.models import Model

__all__ = ["is_loopback", "run_app", "serve"]

_ENV = "KILN_SERVE_CONFIG"


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only (localhost, 127.0.0.0/8, ::1): binding anything
    else exposes a server to the network, so kiln's servers then require a token."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _factory() -> Starlette:
    """The app of one worker process, from the settings the parent put in the environment."""
    from kiln.serving._app import create_app

    data = json.loads(os.environ[_ENV])
    return create_app(data.pop("model"), ServeConfig(**data))


def serve(
    model: str | os.PathLike[str] | Model,
    *,
    host: str = HOST,
    port: int = PORT,
    workers: int = WORKERS,
    no_auth: bool = False,
    graceful_seconds: float = GRACEFUL_SECONDS,
    log_level: str = LOG_LEVEL,
    config: ServeConfig | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve a model over HTTP until interrupted (`kiln serve` calls this).

    Args:
        model: A model URI, a saved-model folder, or (with one worker) a `kiln.Model`.
        host: Address to bind. Anything but loopback needs `config.token` (or
            `KILN_TOKEN`) unless `no_auth` is True.
        port: Port to bind (0 picks a free one).
        workers: Worker processes, each with its own copy of the model.
        no_auth: Allow a non-loopback address without a token, on purpose.
        graceful_seconds: Longest wait for in-flight requests at shutdown.
        log_level: uvicorn's log level.
        config: Batching, limits, timeouts, logging and auth.
        on_ready: Called with the server's URL once the model is loaded and the port is
            bound (with several workers: once the parent has loaded the model to check it).

    Raises:
        ConfigurationError: A non-loopback address without a token or `no_auth`.
        MissingExtraError: The `serve` extra is not installed.
    """
    from kiln._extras import require

    for dep in ("uvicorn", "starlette", "orjson", "prometheus_client"):
        require(dep, "serve", "kiln serve")
    from kiln.serving._app import create_app
    from kiln.serving._http import uvicorn_config

    config = config or ServeConfig()
    token = get_setting("token", config.token)  # the argument, else KILN_TOKEN
    if token is not None and token != config.token:
        config = dataclasses.replace(config, token=token)
    if not is_loopback(host) and config.token is None and not no_auth:
        raise ConfigurationError(
            f"Serving on {host} exposes the model beyond this machine, so it needs a token: "
            "pass --token TOKEN (or set KILN_TOKEN), or --no-auth to serve without one on "
            "purpose. Health endpoints stay open either way."
        )
    limits = config.limits()
    options = _uvicorn_options(host, port, log_level, graceful_seconds)
    if workers > 1 and config.device not in ("cpu", "auto") and _has("torch"):
        from kiln.models import resolve_device

        resolve_device(config.device)  # here, not in each worker (which would be restarted)
    if workers > 1:
        if not isinstance(model, str | os.PathLike):
            raise ConfigurationError(
                "Several workers each load the model themselves: pass its URI or folder, "
                "not a kiln.Model object."
            )
        from uvicorn.supervisors import Multiprocess

        from kiln.serving._runtime import load_entry

        load_entry(os.fspath(model), store=config.store, validation=config.validation)
        os.environ[_ENV] = json.dumps({"model": os.fspath(model), **dataclasses.asdict(config)})
        uv_config = uvicorn_config(
            "kiln.serving._server:_factory", limits, factory=True, workers=workers, **options
        )
        sock = uv_config.bind_socket()
        if on_ready is not None:
            on_ready(_url(host, sock.getsockname()[1]))
        Multiprocess(uv_config, sockets=[sock]).run()
        return
    app = create_app(model, config)
    _server_class(on_ready)(uvicorn_config(app, limits, **options)).run()


def run_app(
    app: Any,
    *,
    host: str = HOST,
    port: int = PORT,
    limits: Limits | None = None,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = LOG_LEVEL,
    graceful_seconds: float = GRACEFUL_SECONDS,
) -> None:
    """Run any ASGI app the way kiln runs its model servers, until SIGTERM or Ctrl-C.

    kiln's HTTP protocol (header, body and idle timeouts, a connection cap, JSON 400s),
    a graceful shutdown that exits with status 0 on SIGTERM, and `on_ready(url)` once
    listening (port 0 picks a free port; the URL says which). `kiln ui` runs this way.

    Args:
        app: The ASGI application.
        host: The address to bind.
        port: The port (0: any free one).
        limits: Timeouts and the connection cap (default: `Limits()`).
        on_ready: Called with the base URL once the server listens.
        log_level: uvicorn's log level.
        graceful_seconds: How long in-flight requests may finish on shutdown.
    """
    from kiln._extras import require
    from kiln.serving._http import uvicorn_config

    require("uvicorn", "serve", "Running a kiln server")
    options = _uvicorn_options(host, port, log_level, graceful_seconds)
    _server_class(on_ready)(uvicorn_config(app, limits or Limits(), **options)).run()


def _uvicorn_options(
    host: str, port: int, log_level: str, graceful_seconds: float
) -> dict[str, Any]:
    """uvicorn's options for every kiln server (no access log, lifespan on, uvloop if any)."""
    return {
        "host": host,
        "port": port,
        "loop": "uvloop" if _has("uvloop") else "asyncio",
        "log_level": log_level,
        "access_log": False,
        "timeout_graceful_shutdown": graceful_seconds,
        "lifespan": "on",
    }


def _url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _server_class(on_ready: Callable[[str], None] | None = None) -> type[uvicorn.Server]:
    """uvicorn's Server, calling `on_ready` once listening, and exiting with status 0
    after a graceful shutdown on SIGTERM.

    (uvicorn re-raises the signal once shut down, so the process would die of it.)
    """
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and on_ready is not None and self.servers:
                port = self.servers[0].sockets[0].getsockname()[1]
                on_ready(_url(self.config.host, port))

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if sig == signal.SIGTERM and isinstance(captured, list) and sig in captured:
                captured.remove(sig)

    return Server


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
