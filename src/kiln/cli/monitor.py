"""`kiln monitor`: drift, data quality and performance of a model against its training.

Exit status: 0 when no threshold is breached, 1 when one is (for cron and CI alerting),
2 on a usage error (a bad option, config, time, data file or model URI).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from kiln.cli._common import json_option
from kiln.cli._output import console, echo_json, print_error, table

__all__ = ["monitor"]

_DATA = click.Path(exists=True, dir_okay=False, path_type=Path)


def _summary(report: Any) -> None:
    """A Rich summary of one report: drifted features, alerts, findings, notes."""
    from rich.markup import escape

    out = console()
    window = ""
    if report.since is not None:
        window = f" from {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
    state = "[bold red]ALERT[/]" if report.breached else "[bold green]OK[/]"
    out.print(
        f"{state} {escape(report.model_uri)}{window}: {report.n_current:,} current rows against "
        f"{report.n_reference:,} reference rows."
    )
    if report.drift is not None:
        rows = [
            [
                r.column,
                r.kind,
                r.test if isinstance(r.test, str) else "",
                "" if r.distance != r.distance else f"{r.distance:.3g}",
                "" if r.adjusted_p_value != r.adjusted_p_value else f"{r.adjusted_p_value:.3g}",
                "yes" if r.drifted else "",
            ]
            for r in report.drift.table.itertuples()
            if r.drifted
        ]
        tested = int((report.drift.table["rule"] != "skipped").sum())
        if rows:
            table(
                f"{len(rows)} of {tested} features drifted",
                ["feature", "kind", "test", "distance", "adj. p", "drifted"],
                rows,
            )
        else:
            out.print(f"No drift in {tested} features.")
    for line in report.alerts:
        if not line.startswith("drift: "):
            out.print(f"  [red]-[/] {escape(line)}")
    infos = [f for f in report.quality if f.severity == "info"]
    for finding in infos[:10]:
        out.print(f"  [dim]- {escape(finding.message)}[/]")
    for note in report.notes:
        out.print(f"  [yellow]note:[/] {escape(note)}")
    if report.run_id:
        out.print(f"Recorded as run {report.run_id} (experiment monitoring).")


def _nothing_logged(
    model_uri: str, since: str | None, until: str | None, options: dict[str, Any]
) -> str:
    """What to do when no window has a logged request: the whole span's `empty`
    finding says it (log with --log-rate 1, the URIs the log does have, --current)."""
    from rich.markup import escape

    from kiln._exceptions import KilnError
    from kiln.monitor import monitor as run_monitor

    quiet = {"experiment": None, "labels": None, "segment": None, "progress": False}
    try:
        whole = run_monitor(model_uri, since=since, until=until, **{**options, **quiet})
    except KilnError:  # the windows were read a moment ago; say no more than that
        return ""
    messages = [f.message for f in whole.quality if f.check == "empty"]
    return escape(messages[0]) if messages else ""


@click.command("monitor")
@click.argument("model_uri", metavar="MODEL")
@click.option("--since", help="Window start: an ISO time, or a duration ago such as 7d or 12h.")
@click.option("--until", help="Window end (default: now).")
@click.option(
    "--current",
    "current_path",
    type=_DATA,
    help="Current data (.parquet or .csv) instead of the model's prediction log.",
)
@click.option(
    "--reference",
    "reference_path",
    type=_DATA,
    help="Reference data instead of the model's saved reference sample.",
)
@click.option(
    "--labels",
    "labels_path",
    type=_DATA,
    help="True labels (.parquet or .csv) with the --on key column: performance over time.",
)
@click.option(
    "--on",
    default="kiln_request_id",
    show_default=True,
    help="The key joining labels to the logged requests; several columns comma-separated "
    "(kiln_request_id,kiln_row for requests of several rows).",
)
@click.option("--segment", help="A column to compute metrics and fairness gaps per group by.")
@click.option(
    "--every",
    help="One result (and one recorded run) per window of this length, from --since: 1h, 1d.",
)
@click.option(
    "--config",
    "config_path",
    type=_DATA,
    help="A YAML file: alpha, large_sample, thresholds, per-feature columns, quality, ...",
)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML report here (with --every, the last window's).",
)
@click.option(
    "--no-record",
    is_flag=True,
    help="Do not record the result as a run of the monitoring experiment.",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Load a pickled model (for prediction drift); only for a model you trust.",
)
@json_option
@click.pass_context
def monitor(
    ctx: click.Context,
    model_uri: str,
    since: str | None,
    until: str | None,
    current_path: Path | None,
    reference_path: Path | None,
    labels_path: Path | None,
    on: str,
    segment: str | None,
    every: str | None,
    config_path: Path | None,
    output: Path | None,
    no_record: bool,
    trust_pickle: bool,
    as_json: bool,
) -> None:
    """Compare what MODEL sees now with what it was trained on.

    MODEL is the URI given to `kiln serve` (models:/name@alias, models:/name/3, runs:/...,
    or a folder). Current data: the model's prediction log from --since to --until, or
    --current FILE. Exits 1 when a threshold is breached (drift, a data-quality error or
    warning, a metric that fell), 0 otherwise, 2 on a usage error.
    """
    from kiln._exceptions import ConfigurationError, DataFileError, NotFoundError, RegistryError
    from kiln.tracking import configure, configured_store

    store = (ctx.find_root().obj or {}).get("store")
    if store is not None and store != configured_store():
        configure(store)
    if current_path is not None and (since or until or every):
        raise click.UsageError(
            "--since/--until/--every choose windows of the prediction log; they cannot be "
            "used with --current FILE. Filter the file first, or leave out --current."
        )
    if every is not None and since is None:
        raise click.UsageError("--every needs --since (for example --since 7d --every 1d).")
    from kiln.monitor import monitor as run_monitor
    from kiln.monitor import monitor_windows

    options: dict[str, Any] = {
        "reference": reference_path,
        "labels": labels_path,
        "on": [k.strip() for k in on.split(",")] if "," in on else on,
        "segment": segment,
        "config": config_path,
        "experiment": None if no_record else "monitoring",
        "trust_pickle": trust_pickle,
        "progress": None if not as_json else False,
    }
    try:
        if every is not None:
            reports = monitor_windows(model_uri, since=since, until=until, every=every, **options)
        else:
            reports = [run_monitor(model_uri, current_path, since=since, until=until, **options)]
    except (ConfigurationError, DataFileError, NotFoundError, RegistryError) as exc:
        print_error(exc)
        sys.exit(2)
    if output is not None and reports:
        reports[-1].save_report(output)
    if as_json:
        if every is not None:
            echo_json({"windows": [r.to_dict() for r in reports]})
        else:
            echo_json(reports[0].to_dict())
    else:
        if not reports:
            what_to_do = _nothing_logged(model_uri, since, until, options)
            console().print(f"No logged requests in any window. {what_to_do}".rstrip())
        for report in reports:
            _summary(report)
        if output is not None and reports:
            console().print(f"Report written to {output}.")
    sys.exit(1 if any(r.breached for r in reports) else 0)
