"""`kiln evaluate`: evaluate a saved model on a data file; print metrics, write a report."""

from __future__ import annotations

import math
from pathlib import Path

import click

from kiln.cli._common import json_option
from kiln.cli._output import echo_json, table

__all__ = ["check_column", "evaluate"]


def _read(path: Path) -> object:
    from kiln._datafile import read_data_file
    from kiln._exceptions import ConfigurationError

    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq", ".csv"):
        return read_data_file(path)
    raise ConfigurationError(
        f"Cannot read {path.name!r}: kiln evaluate reads .parquet or .csv files."
    )


def check_column(name: str, columns: list[object], path: Path, option: str) -> None:
    """A usage error (exit status 2) naming the option when `name` is not a column."""
    if name in columns:
        return
    from kiln._exceptions import did_you_mean

    shown = ", ".join(map(str, columns[:10])) + (", ..." if len(columns) > 10 else "")
    raise click.BadParameter(
        f"{name!r} is not a column of {path.name}.{did_you_mean(name, map(str, columns))} "
        f"Its columns: {shown}.",
        param_hint=option,
    )


@click.command("evaluate")
@click.argument("model_uri", metavar="MODEL")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Evaluation data: a .parquet or .csv file with the features and the target.",
)
@click.option("--target", required=True, help="The target column in the data.")
@click.option("--segments", help="A column to compare groups by (fairness gaps).")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML report here (one file that opens offline).",
)
@click.option(
    "--experiment",
    help="Log the evaluation to a new run in this experiment (default: log nothing).",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Load a model whose files run code when loaded (pickle, unlisted skops types); "
    "only for a model you trust as your own code.",
)
@json_option
@click.pass_context
def evaluate(
    ctx: click.Context,
    model_uri: str,
    data_path: Path,
    target: str,
    segments: str | None,
    report_path: Path | None,
    experiment: str | None,
    trust_pickle: bool,
    as_json: bool,
) -> None:
    """Evaluate MODEL (runs:/..., models:/name@alias, or a folder) on a data file.

    Prints the metrics (and the fairness gaps with --segments); --report writes the
    plots and tables as one HTML file.
    """
    from kiln.evaluate import evaluate as evaluate_model
    from kiln.models import load_model
    from kiln.tracking import configure, configured_store, start_run

    store = (ctx.find_root().obj or {}).get("store")
    if store is not None and store != configured_store():  # re-configuring drops the client
        configure(store)
    frame = _read(data_path)
    columns = list(frame.columns)  # type: ignore[attr-defined]
    check_column(target, columns, data_path, "--target")
    model = load_model(model_uri, trust_pickle=trust_pickle)
    y = frame[target]  # type: ignore[index]
    X = frame.drop(columns=[target])  # type: ignore[attr-defined]
    groups = None
    if segments is not None:
        check_column(segments, columns, data_path, "--segments")
        groups = frame[segments]  # type: ignore[index]
        names = getattr(model, "signature_", None)
        if names is not None and segments not in {c.name for c in names.inputs}:
            X = X.drop(columns=[segments])
    want_report = report_path is not None or experiment is not None
    if experiment is not None:
        with start_run(
            experiment=experiment, tags={"evaluated_model": model_uri}, system_metrics=False
        ) as run:
            result = evaluate_model(model, X, y, groups, report=want_report)
        run_id: str | None = run.id
    else:
        result = evaluate_model(model, X, y, groups, report=want_report, plots=want_report)
        run_id = None
    if report_path is not None:
        result.save_report(report_path)
    plain = {k: (None if math.isnan(v) else v) for k, v in result.metrics.items()}
    if as_json:
        echo_json(
            {
                "task": result.task,
                "metrics": plain,
                "run_id": run_id,
                "report": str(report_path) if report_path else None,
            }
        )
        return
    table(
        f"{result.task} evaluation of {model_uri} on {len(y):,} rows",
        ["metric", "value"],
        [[k, "" if v is None else f"{v:.4f}"] for k, v in plain.items()],
    )
    if run_id:
        click.echo(f"Logged to run {run_id}.")
    if report_path:
        click.echo(f"Report written to {report_path}.")
