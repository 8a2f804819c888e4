"""`kiln ui`: the dashboard over the store, in the browser."""

from __future__ import annotations

import click

from kiln.cli._common import setting_option, start_web_server

__all__ = ["ui"]


@click.command("ui")
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
    help="Write the bound port to this file once the dashboard is ready (for --port 0).",
)
@setting_option("token", metavar="TOKEN")
@click.option(
    "--no-auth", is_flag=True, help="Serve off loopback without a token, on purpose (loudly)."
)
@click.pass_context
def ui(
    ctx: click.Context,
    host: str,
    port: int,
    port_file: str | None,
    token: str | None,
    no_auth: bool,
) -> None:
    """Serve the dashboard over the store (read-only): runs, models, pipelines, monitoring.

    Bound to anything but loopback it needs --token (or KILN_TOKEN), or --no-auth on
    purpose.
    """
    from kiln.ui import ui as serve_ui

    store = (ctx.find_root().obj or {}).get("store")
    ready = start_web_server(
        host,
        port,
        port_file,
        no_auth=no_auth,
        name="dashboard",
        exposes="read every run, param, artifact and model in the store",
    )
    serve_ui(store, host=host, port=port, token=token or None, no_auth=no_auth, on_ready=ready)
