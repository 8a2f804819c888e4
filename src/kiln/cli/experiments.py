"""`kiln experiments`: list, rename and delete experiments."""

from __future__ import annotations

import click

from kiln.cli._common import client_for_listing, client_from, json_option, store_place
from kiln.cli._output import echo_json, fmt_time, table

__all__ = ["experiments"]


@click.group()
def experiments() -> None:
    """List, rename and delete experiments."""


@experiments.command("list")
@json_option
@click.pass_context
def list_experiments(ctx: click.Context, as_json: bool) -> None:
    """List experiments with their number of runs."""
    client = client_for_listing(ctx, "experiments", as_json=as_json)
    if client is None:
        return
    found = client.list_experiments()
    if as_json:
        echo_json(
            [
                {"id": e.id, "name": e.name, "created_at": e.created_at, "runs": e.n_runs}
                for e in found
            ]
        )
        return
    if not found:
        click.echo(
            f"No experiments found in {store_place(client)}. "
            "kiln.start_run(experiment='name') creates one."
        )
        return
    table(
        None,
        ["id", "name", "runs", "created"],
        [[e.id, e.name, e.n_runs, fmt_time(e.created_at)] for e in found],
    )


@experiments.command("rename")
@click.argument("old")
@click.argument("new")
@click.pass_context
def rename(ctx: click.Context, old: str, new: str) -> None:
    """Rename experiment OLD to NEW."""
    client_from(ctx, create=False).rename_experiment(old, new)
    click.echo(f"Renamed {old!r} to {new!r}.")


@experiments.command("delete")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete experiment NAME and its runs; the name can then be reused."""
    client = client_from(ctx, create=False)
    client.experiment_id(name)  # fail early, with "did you mean", before asking
    if not yes:
        click.confirm(f"Delete experiment {name!r} and all its runs?", abort=True)
    n = client.delete_experiment(name)
    click.echo(
        f"Deleted experiment {name!r} and {n} run(s). Run `kiln store gc` to free their artifacts."
    )
