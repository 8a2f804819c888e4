"""`kiln server`: run the team server on a host and port, signed in off loopback."""

from __future__ import annotations

from collections.abc import Callable

from kiln._exceptions import ConfigurationError

__all__ = ["server"]


def server(
    store: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    token: str | None = None,
    no_auth: bool = False,
    max_artifact_size: int | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve MLflow's tracking REST API over `store` until SIGTERM or Ctrl-C.

    Args:
        store: The store URL or path (default: the configured one).
        host: The address to bind; anything but loopback needs users in the store
            (`kiln.server.Users`), `token`, or `no_auth`.
        port: The port (0: a free one; `on_ready` gets the URL).
        token: The server's own token, an admin's (default: `KILN_TOKEN`); MLflow's
            client sends `MLFLOW_TRACKING_TOKEN` as one. Users' tokens work as well.
        no_auth: Serve a store without users off loopback without a token, on purpose
            (once the store has users, every request signs in regardless).
        max_artifact_size: The largest artifact upload accepted, bytes (default: the
            `max_artifact_size` setting, 5 GiB).
        on_ready: Called with the URL once listening.

    Raises:
        ConfigurationError: A non-loopback host without users, a token or `no_auth`.
    """
    from kiln._settings import get_setting
    from kiln.server._app import create_app
    from kiln.server._users import Users
    from kiln.serving import is_loopback, run_app

    token = get_setting("token", token)
    if not is_loopback(host) and token is None and not no_auth and not Users(store).any():
        raise ConfigurationError(
            f"Serving the team server on {host} lets the network write to the store, so it "
            "needs a token: pass --token TOKEN (or set KILN_TOKEN), add users with tokens "
            "(kiln server users add NAME --role admin; kiln server tokens create NAME), or "
            "--no-auth to serve without one on purpose."
        )
    limit = get_setting("max_artifact_size", max_artifact_size)
    if limit is None or limit < 0:
        raise ConfigurationError(
            f"max_artifact_size must be a number of bytes, 0 or more; got {limit!r}."
        )
    app = create_app(store, token=token, max_artifact_size=int(limit))
    run_app(app, host=host, port=port, on_ready=on_ready)
