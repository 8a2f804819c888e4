"""Helpers shared by command modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from kiln.tracking._client import TrackingClient

__all__ = ["client_from", "json_option", "resolve_run"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def client_from(ctx: click.Context) -> TrackingClient:
    """The tracking client for the store chosen by `--store` / `KILN_STORE` / default."""
    from kiln.tracking._client import TrackingClient

    root = ctx.find_root()
    store = (root.obj or {}).get("store")
    return TrackingClient(store)


def resolve_run(client: TrackingClient, run_id: str) -> str:
    """A full run id from an id, a unique prefix, or `latest` (the newest run)."""
    if run_id.lower() == "latest":
        from kiln._exceptions import RunNotFoundError

        newest = client.search_runs(limit=1)
        if not newest:
            raise RunNotFoundError("There are no runs yet, so there is no 'latest' run.")
        return newest[0].id
    return client.resolve_run_id(run_id)
