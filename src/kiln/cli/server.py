"""`kiln server`: the team server, speaking MLflow's tracking REST API over the store."""

from __future__ import annotations

import click

from kiln.cli._common import setting_option, start_web_server

__all__ = ["server"]


@click.command("server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=5000,
    show_default=True,
    type=int,
    help="Port to bind (0: a free one; see --port-file).",
)
@click.option(
    "--port-file",
    type=click.Path(dir_okay=False),
    help="Write the bound port to this file once the server is ready (for --port 0).",
)
@setting_option("token", metavar="TOKEN")
@click.option(
    "--no-auth", is_flag=True, help="Serve off loopback without a token, on purpose (loudly)."
)
@click.pass_context
def server(
    ctx: click.Context,
    host: str,
    port: int,
    port_file: str | None,
    token: str | None,
    no_auth: bool,
) -> None:
    """Serve the store over MLflow's tracking REST API, so MLflow code logs to kiln.

    Point MLflow's client at it with MLFLOW_TRACKING_URI=http://HOST:PORT (and, when the
    server has a token, MLFLOW_TRACKING_TOKEN=TOKEN). Served: experiments, runs, params,
    metrics, tags and metric history. Not yet: artifacts and the model registry (they
    answer an MLflow error). Bound to anything but loopback it needs --token (or
    KILN_TOKEN), or --no-auth on purpose.
    """
    from kiln.server import server as serve_server

    store = (ctx.find_root().obj or {}).get("store")
    ready = start_web_server(
        host,
        port,
        port_file,
        no_auth=no_auth,
        name="server",
        exposes="read and write every experiment, run, param, metric and tag in the store",
    )
    serve_server(store, host=host, port=port, token=token or None, no_auth=no_auth, on_ready=ready)
