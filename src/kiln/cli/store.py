"""`kiln store`: inspect, migrate and garbage-collect the metadata and artifact stores."""

from __future__ import annotations

import click

from kiln.cli._common import client_from, json_option, setting_option
from kiln.cli._output import echo_json, fmt_time, table

__all__ = ["store"]


@click.group()
def store() -> None:
    """Inspect, migrate and garbage-collect the store."""


@store.command("info")
@json_option
@click.pass_context
def info(ctx: click.Context, as_json: bool) -> None:
    """Where the store is, its schema revision, artifact root and sizes.

    Where there is no store yet, says where it looked (and creates none).
    """
    from kiln._exceptions import StoreNotFoundError

    try:
        data = {**client_from(ctx, create=False).info(), "exists": True}
    except StoreNotFoundError as exc:
        if as_json:
            echo_json({"url": f"sqlite:///{exc.path}", "backend": "sqlite", "exists": False})
        else:
            click.echo(str(exc))
        return
    if as_json:
        echo_json(data)
        return
    rows = [[k, fmt_time(v) if k == "created_at" else v] for k, v in data.items()]
    table("kiln store", ["", ""], rows)


@store.command("migrate")
@setting_option("artifacts", metavar="URL")
@click.pass_context
def migrate(ctx: click.Context, artifacts: str | None) -> None:
    """Create or upgrade the store's schema to this client's version.

    An embedded SQLite store migrates itself; a shared PostgreSQL store is migrated
    only by this command, once every client is upgraded.
    """
    from kiln.store import Store

    target = Store.connect(ctx.find_root().obj.get("store"))
    try:
        before, after = target.migrate(artifacts)
    finally:
        target.engine.dispose()
    if before == after:
        click.echo(f"Store {target.display_url} is already at schema revision {after}.")
    else:
        click.echo(f"Migrated {target.display_url} from revision {before or '(empty)'} to {after}.")


@store.command("gc")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="MINUTES",
    help="Keep unreferenced artifact files younger than this (a process may be logging them).",
)
@json_option
@click.pass_context
def gc(ctx: click.Context, dry_run: bool, grace: float, as_json: bool) -> None:
    """Purge deleted runs, then remove artifacts that no run references.

    Artifact files stored in the last --grace minutes are kept: a process logging an
    artifact stores the file a moment before the run references it.
    """
    result = client_from(ctx, create=False).gc(dry_run=dry_run, grace=grace)
    if as_json:
        echo_json({**result, "dry_run": dry_run})
        return
    verb = "Would free" if dry_run else "Freed"
    click.echo(
        f"{verb} {_mb(result['bytes_freed'])} in {result['blobs_removed']} artifact file(s); "
        f"{'would purge' if dry_run else 'purged'} {result['runs_purged']} deleted run(s)."
        + (
            f" Kept {result['blobs_kept_recent']} unreferenced file(s) younger than {grace:g} "
            "minute(s)."
            if result["blobs_kept_recent"]
            else ""
        )
    )


@store.command("check")
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check an embedded store's file for damage (SQLite's full integrity check).

    Works on a damaged store, which kiln otherwise refuses to open. Exits with status 1
    and says how to recover when problems are found.
    """
    from kiln._exceptions import StoreUnavailableError
    from kiln.store import Store, resolve_url

    url = resolve_url(ctx.find_root().obj.get("store"))
    problems = Store.check(url)
    if problems:
        for line in problems[:20]:
            click.echo(line)
        if len(problems) > 20:
            click.echo(f"... and {len(problems) - 20} more")
        raise StoreUnavailableError(Store.damage_message(url, problems))
    click.echo(f"ok: no problems found in {url.removeprefix('sqlite:///')}.")


@store.command("recover")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--force", is_flag=True, help="Write the records even if FILE names another store.")
@click.pass_context
def recover(ctx: click.Context, file: str, force: bool) -> None:
    """Write the records of a recovery file to the store.

    A process that could not write what it logged (a full disk, a read-only store, a
    database that stayed down) saved the records to FILE (kiln-recovery-*.jsonl, next
    to the store) and exited with status 1. Run this once the store can be written; the
    file is then renamed to FILE.recovered.
    """
    client = client_from(ctx)
    n = client.recover(file, force=force)
    click.echo(
        f"Wrote {n} record(s) from {file} to {client.store.display_url}; "
        f"the file is now {file}.recovered."
    )


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 10_000 else f"{n} bytes"
