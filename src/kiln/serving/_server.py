"""Running the app: uvicorn with httptools, TCP_NODELAY, token rules, graceful shutdown.

On SIGTERM or Ctrl-C uvicorn stops accepting connections, lets in-flight requests
finish (up to `graceful_seconds`), then the app's shutdown drains the batcher and
flushes the prediction log.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from typing import Any

from kiln._exceptions import ConfigurationError
from kiln.serving._app import ServeConfig, create_app

__all__ = ["serve"]

_ENV = "KILN_SERVE_CONFIG"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _factory() -> Any:
    """The app of one worker process, from the settings the parent put in the environment."""
    data = json.loads(os.environ[_ENV])
    return create_app(data.pop("model"), ServeConfig(**data))


def serve(
    model: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    no_auth: bool = False,
    graceful_seconds: float = 30.0,
    log_level: str = "warning",
    config: ServeConfig | None = None,
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
        config: Batching, limits, logging and auth.

    Raises:
        ConfigurationError: A non-loopback address without a token or `no_auth`.
    """
    import uvicorn

    from kiln._extras import require

    require("uvicorn", "serve", "kiln serve")
    config = config or ServeConfig()
    if config.token is None and os.environ.get("KILN_TOKEN"):
        config = dataclasses.replace(config, token=os.environ["KILN_TOKEN"])
    if not _is_loopback(host) and config.token is None and not no_auth:
        raise ConfigurationError(
            f"Serving on {host} exposes the model beyond this machine, so it needs a token: "
            "pass --token TOKEN (or set KILN_TOKEN), or --no-auth to serve without one on "
            "purpose. Health endpoints stay open either way."
        )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": "kiln.serving._nodelay:NoDelayProtocol",
        "loop": "uvloop" if _has("uvloop") else "asyncio",
        "log_level": log_level,
        "access_log": False,
        "timeout_graceful_shutdown": graceful_seconds,
        "lifespan": "on",
    }
    if workers > 1 and config.device not in ("cpu", "auto") and _has("torch"):
        from kiln.models._torch import resolve_device

        resolve_device(config.device)  # here, not in each worker (which would be restarted)
    if workers > 1:
        if not isinstance(model, str | os.PathLike):
            raise ConfigurationError(
                "Several workers each load the model themselves: pass its URI or folder, "
                "not a kiln.Model object."
            )
        os.environ[_ENV] = json.dumps({"model": os.fspath(model), **dataclasses.asdict(config)})
        uvicorn.run("kiln.serving._server:_factory", factory=True, workers=workers, **options)
        return
    app = create_app(model, config)
    _server_class()(uvicorn.Config(app, **options)).run()


def _server_class() -> Any:
    """uvicorn's Server, exiting with status 0 after a graceful shutdown on SIGTERM.

    (uvicorn re-raises the signal once shut down, so the process would die of it.)
    """
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if sig == signal.SIGTERM and isinstance(captured, list) and sig in captured:
                captured.remove(sig)

    return Server


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
