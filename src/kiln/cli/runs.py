"""`kiln runs`: list, show, compare and delete runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kiln.cli._common import (
    client_for_listing,
    client_from,
    json_option,
    resolve_run,
    store_place,
)
from kiln.cli._output import echo_json, fmt_time, fmt_value, table

if TYPE_CHECKING:
    from kiln.tracking import TrackingClient

__all__ = ["runs"]


@click.group()
def runs() -> None:
    """List, show, compare and delete runs."""


@runs.command("list")
@click.option(
    "-e", "--experiment", multiple=True, help="Only runs of this experiment (repeatable)."
)
@click.option(
    "-f",
    "--filter",
    "filter_",
    metavar="EXPR",
    help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\"",
)
@click.option(
    "-o", "--order-by", metavar="KEYS", help='e.g. "metrics.acc desc"; default newest first.'
)
@click.option("-n", "--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--ids", "ids_only", is_flag=True, help="Print only the run ids, one per line.")
@click.option("--all", "show_all", is_flag=True,
              help="Child runs too (pipeline steps, sweep trials), not only the runs started.")  # fmt: skip
@json_option
@click.pass_context
def list_runs(
    ctx: click.Context,
    experiment: tuple[str, ...],
    filter_: str | None,
    order_by: str | None,
    limit: int,
    ids_only: bool,
    show_all: bool,
    as_json: bool,
) -> None:
    """List runs, newest first, with their latest metrics.

    Shows the runs people started: child runs (pipeline steps, sweep trials) only with
    --all or a filter on parent_id. A pipeline run shows its steps' metrics as
    STEP.METRIC (e.g. evaluate.accuracy).
    """
    if ids_only and not as_json:
        client = _client_or_none(ctx)  # no store yet: no ids to print (not "[]")
    else:
        client = client_for_listing(ctx, "runs", as_json=as_json)
    if client is None:
        return
    import warnings

    from kiln._exceptions import UnknownFilterKeyWarning
    from kiln.tracking import scoped_filter

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnknownFilterKeyWarning)
        found = client.search_runs(
            list(experiment) or None,
            filter=scoped_filter(filter_, show_all),
            order_by=order_by,
            limit=limit,
            files=as_json,
        )
    for warning in caught:
        if issubclass(warning.category, UnknownFilterKeyWarning):
            click.echo(f"Note: {warning.message}", err=True)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    found = client.with_step_metrics(found)
    if as_json:
        echo_json([r.to_dict() for r in found])
        return
    if ids_only:
        for r in found:
            click.echo(r.id)
        return
    if not found:
        click.echo(
            f"No runs found in {store_place(client)}."
            + ("" if filter_ or experiment else " Start one with kiln.start_run().")
        )
        return
    # kiln's bookkeeping (steps cached, system readings) after the metrics people logged
    metric_keys = sorted(
        {k for r in found for k in r.metrics}, key=lambda k: (k.startswith(("kiln.", "system/")), k)
    )[:6]
    rows = [
        [
            r.id[:12],
            r.experiment,
            r.name,
            r.status,
            fmt_time(r.start_time),
            "" if r.duration is None else f"{r.duration:.1f}s",
            *[r.metrics.get(k) for k in metric_keys],
        ]
        for r in found
    ]
    table(None, ["id", "experiment", "name", "status", "started", "duration", *metric_keys], rows)


def _client_or_none(ctx: click.Context) -> TrackingClient | None:
    """The store's client, or None when there is no store yet (nothing said)."""
    from kiln._exceptions import StoreNotFoundError

    try:
        return client_from(ctx, create=False)
    except StoreNotFoundError:
        return None


@runs.command("show")
@click.argument("run_id")
@json_option
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show one run: params, metrics, tags, datasets, artifacts, environment.

    RUN_ID may be any unique prefix of the id, or `latest` for the newest top-level run.
    """
    client = client_from(ctx, create=False)
    run = client.get_run(resolve_run(client, run_id))
    if as_json:
        echo_json(run.to_dict())
        return
    from kiln.cli._output import console

    out = console()
    env = run.environment
    out.print(f"[bold]Run {run.id}[/]  {run.name}")
    lines = [
        ("experiment", run.experiment),
        ("status", run.status),
        ("started", fmt_time(run.start_time)),
        ("ended", fmt_time(run.end_time)),
        ("duration", "" if run.duration is None else f"{run.duration:.2f}s"),
        ("parent", run.parent_id or ""),
        ("user@host", f"{env.get('user') or ''}@{env.get('host') or ''}"),
        ("command", env.get("command") or ""),
        ("git", _git_line(env)),
        ("python", env.get("python_version") or ""),
    ]
    for key, value in lines:
        if value:
            out.print(f"  {key:<11} {value}", markup=False)
    if run.params:
        table("Params", ["key", "value"], sorted(run.params.items()))
    if run.metrics:
        table("Metrics (latest)", ["key", "value"], sorted(run.metrics.items()))
    if run.tags:
        table("Tags", ["key", "value"], sorted(run.tags.items()))
    if run.datasets:
        table(
            "Datasets",
            ["role", "direction", "name", "rows", "cols", "fingerprint"],
            [
                [d.role, d.direction, d.name or "", d.n_rows, d.n_cols, d.fingerprint[:16]]
                for d in run.datasets
            ],
        )
    if run.artifacts:
        table(
            "Artifacts",
            ["path", "size", "sha256"],
            [[a.path, _size(a.size), a.sha256[:16]] for a in run.artifacts],
        )
    if run.error:
        out.print("[bold red]Error[/]")
        out.print(run.error.rstrip(), markup=False)


def _git_line(env: dict[str, Any]) -> str:
    if not env.get("git_commit"):
        return ""
    dirty = " (uncommitted changes)" if env.get("git_dirty") else ""
    branch = f" on {env['git_branch']}" if env.get("git_branch") else ""
    return f"{env['git_commit'][:12]}{branch}{dirty}"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@click.option(
    "--all", "show_all", is_flag=True, help="Show params that are equal in every run too."
)
@click.option("--max", "maximize", multiple=True, metavar="KEY",
              help="A metric that is better higher (repeatable).")  # fmt: skip
@click.option("--min", "minimize", multiple=True, metavar="KEY",
              help="A metric that is better lower (repeatable).")  # fmt: skip
@json_option
@click.pass_context
def compare(
    ctx: click.Context,
    run_ids: tuple[str, ...],
    show_all: bool,
    maximize: tuple[str, ...],
    minimize: tuple[str, ...],
    as_json: bool,
) -> None:
    """Compare runs side by side: params that differ, and every metric.

    Pipeline runs show their steps' metrics as STEP.METRIC beside their params.

    The best value of a metric is starred when its direction is known: kiln's own
    metrics (durations lower), kiln.evaluate's (accuracy, auc, loss, rmse, ...), a run
    tag kiln.direction.<metric> = max|min (sweeps set it), or --max/--min.
    """
    from kiln.tracking import metric_direction

    if len(run_ids) < 2:
        raise click.UsageError("Give at least two run ids to compare.")
    client = client_from(ctx, create=False)
    found = client.with_step_metrics([client.get_run(resolve_run(client, r)) for r in run_ids])
    declared = {**dict.fromkeys(maximize, "max"), **dict.fromkeys(minimize, "min")}
    tags: dict[str, str] = {}
    for r in found:
        tags.update(r.tags)
    metric_keys = sorted({k for r in found for k in r.metrics})
    directions = {k: metric_direction(k, tags=tags, directions=declared) for k in metric_keys}
    if as_json:
        echo_json(
            {
                "runs": [r.id for r in found],
                "params": {
                    k: [r.params.get(k) for r in found]
                    for k in sorted({k for r in found for k in r.params})
                },
                "metrics": {k: [r.metrics.get(k) for r in found] for k in metric_keys},
                "directions": directions,
            }
        )
        return
    header = ["", *[f"{r.id[:8]} {r.name}" for r in found]]
    rows: list[list[Any]] = []
    for key in sorted({k for r in found for k in r.params}):
        values = [r.params.get(key) for r in found]
        if show_all or len(set(values)) > 1:
            rows.append([f"params.{key}", *values])
    for key in metric_keys:
        scores = [r.metrics.get(key) for r in found]
        best = _best(directions[key], scores)
        rows.append(
            [
                f"metrics.{key}",
                *[f"{fmt_value(v)}{' *' if i == best else ''}" for i, v in enumerate(scores)],
            ]
        )
    table("Comparison (* best, for metrics whose direction is known)", header, rows)


def _best(direction: str | None, values: list[Any]) -> int | None:
    present = [(v, i) for i, v in enumerate(values) if v is not None and v == v]  # not NaN
    if direction is None or len(present) < 2 or len({v for v, _ in present}) == 1:
        return None
    return (min(present) if direction == "min" else max(present))[1]


@runs.command("delete")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(ctx: click.Context, run_ids: tuple[str, ...], yes: bool) -> None:
    """Delete runs and their child runs. `kiln store gc` then frees their artifacts."""
    client = client_from(ctx, create=False)
    full = [resolve_run(client, r) for r in run_ids]
    if not yes:
        click.confirm(f"Delete {len(full)} run(s) and their child runs?", abort=True)
    deleted = client.delete_runs(full)
    click.echo(f"Deleted {len(deleted)} run(s). Run `kiln store gc` to free their artifacts.")


@runs.command("reproduce")
@click.argument("run_id")
@click.option(
    "--env",
    "env",
    type=click.Choice(["fresh", "current"]),
    default="fresh",
    show_default=True,
    help="fresh: a new venv (uv) with the project's dependencies at the versions the run "
    "recorded; current: this Python env.",
)
@json_option
@click.pass_context
def reproduce(ctx: click.Context, run_id: str, env: str, as_json: bool) -> None:
    """Re-create a pipeline run at its recorded commit and compare its metrics.

    Checks the commit out into a scratch git worktree, applies the recorded uncommitted
    diff, builds a fresh virtual env with the project's declared dependencies pinned to
    the versions the run recorded (uv), re-runs the pipeline there with the recorded
    params (no cache), and prints each step's metrics side by side with the original's.
    A project that declares no dependencies runs in the current env. Exits 1 when the
    metrics differ.
    """
    import sys

    from kiln.pipeline import reproduce as rerun

    client = client_from(ctx, create=False)
    out = rerun(resolve_run(client, run_id), client=client, env=env)
    if as_json:
        echo_json(out)
    else:
        where = "a fresh env" if out["env"] == "fresh" else "the current env"
        click.echo(
            f"Run {out['original']} re-created at {out['commit'][:12]} as {out['reproduced']}"
            f" in {where}"
        )
        rows = [
            [r["step"], r["key"], r["original"], r["reproduced"], "yes" if r["same"] else "NO"]
            for r in out["metrics"]
        ]
        table(None, ["step", "metric", "original", "reproduced", "same"], rows)
        click.echo("Identical metrics." if out["identical"] else "The metrics differ.")
        if out["packages_changed"]:
            click.echo("Packages that differ from the run's: " + ", ".join(out["packages_changed"]))
    if not out["identical"]:
        sys.exit(1)
