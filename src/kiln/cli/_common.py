"""Helpers shared by command modules."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kiln._settings import find_setting

if TYPE_CHECKING:
    from kiln.tracking import TrackingClient

__all__ = [
    "check_port_free",
    "client_for_listing",
    "client_from",
    "json_option",
    "resolve_run",
    "setting_option",
    "start_web_server",
    "store_place",
    "write_port",
]

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def setting_option(name: str, *, metavar: str | None = None) -> Callable[[F], F]:
    """A Click option built from the row of `kiln._settings.SETTINGS` called `name`.

    The flag (`--flush-interval` for `flush_interval`), its environment variable, its
    type and its help (ending in `[env: KILN_...]`) all come from the table, so the
    CLI, the environment and the docs cannot drift apart. The option's default is None:
    the library resolves it (`get_setting`), so an unset option falls back to the
    environment and then the table's default.

    Args:
        name: The setting's name in `SETTINGS`.
        metavar: How the value is shown in `--help` (default: the type's name).
    """
    setting = find_setting(name)
    return click.option(
        f"--{name.replace('_', '-')}",
        name,
        type=bool if setting.type is bool else setting.type,
        envvar=setting.env,
        metavar=metavar,
        help=f"{setting.help} [env: {setting.env}]",
    )


def client_from(ctx: click.Context, *, create: bool = True) -> TrackingClient:
    """The tracking client for the store chosen by `--store` / `KILN_STORE` / default.

    Args:
        create: Create an embedded store that does not exist yet. Commands that only
            read pass False: reading never creates a store (`StoreNotFoundError`, which
            names the path looked at, instead).
    """
    from kiln.store import Store
    from kiln.tracking import TrackingClient

    root = ctx.find_root()
    store = (root.obj or {}).get("store")
    return TrackingClient(Store.open(store, create=create))


def client_for_listing(ctx: click.Context, what: str, *, as_json: bool) -> TrackingClient | None:
    """The client for a command that lists `what` (e.g. "runs"), or None when there is no
    store yet: then it has said so, naming the path it looked at (JSON: an empty list)."""
    from kiln._exceptions import StoreNotFoundError

    try:
        return client_from(ctx, create=False)
    except StoreNotFoundError as exc:
        if as_json:
            click.echo("[]")
        else:
            click.echo(
                f"No {what} found: there is no kiln store at {exc.path} yet (nothing has been "
                "logged there). kiln.start_run() creates one; choose another store with "
                "--store or KILN_STORE."
            )
        return None


def store_place(client: TrackingClient) -> str:
    """Where the client's store is, for messages: the SQLite file, or the masked URL."""
    store = client.store
    if store.dialect == "sqlite" and store.engine.url.database:
        return store.engine.url.database
    return store.display_url


def resolve_run(client: TrackingClient, run_id: str) -> str:
    """A full run id from an id, a unique prefix, or `latest` (the newest top-level run)."""
    return client.resolve_run_id(run_id)


def write_port(path: str, port: int) -> None:
    """Write `port` and a newline to `path` at once (a reader never sees half a file)."""
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".port-", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"{port}\n")
    os.replace(tmp, path)


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on, before the model is loaded."""
    import errno
    import socket

    from kiln._exceptions import ConfigurationError

    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return  # anything else is uvicorn's to report
            raise ConfigurationError(
                f"Port {port} on {host} is already in use by another process: stop it, or "
                "choose another port with --port (--port 0 takes a free one)."
            ) from None


def start_web_server(
    host: str, port: int, port_file: str | None, *, no_auth: bool, name: str, exposes: str
) -> Callable[[str], None]:
    """Checks before a web server starts (the port is free, --port-file's folder exists),
    a loud warning when it serves off loopback without a token, and its `on_ready`
    callback: writes the port file and says where it listens.

    Args:
        host: The address to bind.
        port: The port (0: a free one).
        port_file: Where to write the bound port, if anywhere.
        no_auth: Whether --no-auth was given.
        name: What is served ("dashboard"), for the messages.
        exposes: What anyone reaching the address could do, for the warning.
    """
    from kiln.serving import is_loopback

    check_port_free(host, port)
    if port_file is not None and not os.path.isdir(os.path.dirname(os.path.abspath(port_file))):
        raise click.BadParameter(
            f"the folder of {port_file!r} does not exist; create it, or name a file in an "
            "existing folder.",
            param_hint="'--port-file'",
        )
    if no_auth and not is_loopback(host):
        click.secho(
            f"WARNING: the {name} on {host} has no token: anyone who can reach this "
            f"address can {exposes}.",
            fg="red",
            bold=True,
            err=True,
        )

    def ready(url: str) -> None:
        if port_file is not None:
            write_port(port_file, int(url.rsplit(":", 1)[1]))
        click.echo(f"kiln {name} on {url}", err=True)

    return ready
