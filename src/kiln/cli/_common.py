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
    """A full run id from an id, a unique prefix, or `latest` (the newest top-level run)."""
    return client.resolve_run_id(run_id)
