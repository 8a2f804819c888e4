"""`kiln server`: the team server, speaking MLflow's tracking REST API over the store,
and its users, tokens and permissions (`kiln server users|tokens|permissions ...`)."""

from __future__ import annotations

from typing import Any

import click

from kiln.cli._common import json_option, setting_option, start_web_server
from kiln.cli._output import echo_json, fmt_time, table

__all__ = ["server"]


@click.group("server", invoke_without_command=True)
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
@setting_option("max_artifact_size", metavar="BYTES")
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
    max_artifact_size: int | None,
    no_auth: bool,
) -> None:
    """Serve the store over MLflow's tracking REST API, so MLflow code logs to kiln.

    Point MLflow's client at it with MLFLOW_TRACKING_URI=http://HOST:PORT (and, when it
    needs signing in, MLFLOW_TRACKING_TOKEN=TOKEN, or MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD=TOKEN). Served: experiments, runs, params, metrics, tags,
    metric history, the model registry (kiln's: kiln models list shows it) and
    artifacts: mlflow.log_artifact(s), list_artifacts and download_artifacts go through
    MLflow's artifact API into kiln's checked, content-addressed artifacts of the run
    (uploads up to --max-artifact-size). Not yet: MLflow 3's logged models
    (mlflow.<flavor>.log_model); log the model with kiln, or save it and
    mlflow.log_artifacts the folder. Once the store has users (kiln server users add),
    every request signs in with a token and each endpoint checks the user's
    permission; --token (or KILN_TOKEN) is an admin's token. Bound to anything but loopback it needs users,
    --token, or --no-auth on purpose.
    """
    if ctx.invoked_subcommand is not None:
        return
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
    serve_server(
        store,
        host=host,
        port=port,
        token=token or None,
        no_auth=no_auth,
        max_artifact_size=max_artifact_size,
        on_ready=ready,
    )


def _users(ctx: click.Context) -> Any:
    from kiln.server import Users

    return Users((ctx.find_root().obj or {}).get("store"))


_ROLE = click.Choice(["admin", "editor", "viewer"])


@server.group("users")
def users() -> None:
    """Add, list and disable the team server's users."""


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=_ROLE,
    default="editor",
    show_default=True,
    help="admin: everything; editor: creates experiments and writes its own or granted "
    "ones, reads the rest; viewer: reads.",
)
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str) -> None:
    """Add user NAME. Once a store has a user, its server needs every request signed in."""
    user = _users(ctx).add(name, role=role)
    click.echo(
        f"Added {user.role} {user.name!r}. Make them a token: kiln server tokens create {user.name}"
    )


@users.command("list")
@json_option
@click.pass_context
def users_list(ctx: click.Context, as_json: bool) -> None:
    """Every user, their role and whether they are disabled."""
    found = _users(ctx).list()
    if as_json:
        echo_json([u.__dict__ for u in found])
        return
    rows = [[u.name, u.role, fmt_time(u.created_at), "yes" if u.disabled else ""] for u in found]
    table("users", ["name", "role", "created", "disabled"], rows)


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
@click.pass_context
def users_disable(ctx: click.Context, name: str, enable: bool) -> None:
    """Disable user NAME: their tokens are refused until they are enabled again."""
    user = _users(ctx).set_disabled(name, not enable)
    click.echo(f"User {user.name!r} is {'disabled' if user.disabled else 'enabled'}.")


@users.command("set-role")
@click.argument("name")
@click.argument("role", type=_ROLE)
@click.pass_context
def users_set_role(ctx: click.Context, name: str, role: str) -> None:
    """Give user NAME the role ROLE (admin, editor or viewer)."""
    user = _users(ctx).set_role(name, role)
    click.echo(f"User {user.name!r} is now a {user.role}.")


@server.group("tokens")
def tokens() -> None:
    """Create, list and revoke users' API tokens (stored as sha256 only)."""


@tokens.command("create")
@click.argument("user")
@click.option("--name", help="A label for the token, unique per user (default: token-N).")
@click.option(
    "--expires-in",
    type=click.FloatRange(min=0, min_open=True),
    metavar="DAYS",
    help="Days until the token stops working (default: never).",
)
@click.pass_context
def tokens_create(
    ctx: click.Context, user: str, name: str | None, expires_in: float | None
) -> None:
    """Make a token for USER and print it on stdout: the only time it is shown.

    The store keeps only its sha256. MLflow's client sends it from MLFLOW_TRACKING_TOKEN,
    or as MLFLOW_TRACKING_PASSWORD with MLFLOW_TRACKING_USERNAME=USER.
    """
    text = _users(ctx).create_token(user, name=name, expires_in_days=expires_in)
    click.echo(text)
    click.echo("This token is shown once and stored only as its sha256: keep it now.", err=True)


@tokens.command("list")
@click.argument("user", required=False)
@json_option
@click.pass_context
def tokens_list(ctx: click.Context, user: str | None, as_json: bool) -> None:
    """The tokens of USER (default: everyone's): label, state and dates, never the token."""
    found = _users(ctx).tokens(user)
    if as_json:
        echo_json([{**t.__dict__, "state": t.state} for t in found])
        return
    rows = [
        [
            t.user,
            t.name,
            t.state,
            fmt_time(t.created_at),
            fmt_time(t.expires_at),
            fmt_time(t.last_used_at),
        ]
        for t in found
    ]
    table("tokens", ["user", "name", "state", "created", "expires", "last used"], rows)


@tokens.command("revoke")
@click.argument("user")
@click.argument("name")
@click.pass_context
def tokens_revoke(ctx: click.Context, user: str, name: str) -> None:
    """Revoke USER's token labelled NAME: the server refuses it from then on."""
    token = _users(ctx).revoke_token(user, name)
    click.echo(f"Revoked token {token.name!r} of user {token.user!r}.")


@server.group("permissions")
def permissions() -> None:
    """Grant, revoke and list users' permissions on experiments."""


@permissions.command("grant")
@click.argument("user")
@click.argument("experiment")
@click.argument("level", metavar="LEVEL")
@click.pass_context
def permissions_grant(ctx: click.Context, user: str, experiment: str, level: str) -> None:
    """Give USER the LEVEL on EXPERIMENT (a name or id), replacing any grant they had.

    READ reads it; EDIT also creates and writes runs; MANAGE also deletes runs; NONE
    hides it from the user. An admin has MANAGE everywhere whatever is granted.
    """
    grant = _users(ctx).grant(user, experiment, level)
    click.echo(
        f"User {grant.user!r} has {grant.level} on experiment {grant.experiment!r} "
        f"(id {grant.experiment_id})."
    )


@permissions.command("revoke")
@click.argument("user")
@click.argument("experiment")
@click.pass_context
def permissions_revoke(ctx: click.Context, user: str, experiment: str) -> None:
    """Remove USER's grant on EXPERIMENT: their role's default applies again."""
    if _users(ctx).revoke(user, experiment):
        click.echo(f"Removed user {user!r}'s permission on experiment {experiment!r}.")
    else:
        click.echo(f"User {user!r} had no permission granted on experiment {experiment!r}.")


@permissions.command("list")
@click.argument("user", required=False)
@json_option
@click.pass_context
def permissions_list(ctx: click.Context, user: str | None, as_json: bool) -> None:
    """The permissions granted to USER (default: everyone) on experiments."""
    found = _users(ctx).grants(user)
    if as_json:
        echo_json([g.__dict__ for g in found])
        return
    rows = [[g.user, g.experiment, g.experiment_id, g.level] for g in found]
    table("permissions", ["user", "experiment", "id", "level"], rows)
