"""The `kiln` command line: Click with lazily loaded command groups and Rich output.

Every command is a thin call into the Python API. `kiln --help` imports none of the
command modules, and no pandas, scikit-learn or SQLAlchemy.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from kiln._version import __version__
from kiln.cli._common import setting_option
from kiln.cli._lazy import LazyGroup

__all__ = ["cli", "main"]

_COMMANDS = {
    "runs": ("kiln.cli.runs:runs", "List, show, compare and delete runs."),
    "evaluate": ("kiln.cli.evaluate:evaluate", "Evaluate a saved model on a data file."),
    "experiments": ("kiln.cli.experiments:experiments", "List, rename and delete experiments."),
    "models": ("kiln.cli.models:models", "List, show, register and alias registered models."),
    "store": ("kiln.cli.store:store", "Inspect, migrate and garbage-collect the store."),
    "run": ("kiln.cli.run:run", "Run the project's pipeline; only what changed re-runs."),
    "pipeline": ("kiln.cli.run:pipeline", "Show the pipeline's graph and each step's last status."),
    "lineage": ("kiln.cli.run:lineage", "Which step, code, params and inputs produced an output."),
    "sweep": ("kiln.cli.sweep:sweep", "Run a function or the pipeline over a grid; best trial."),
    "serve": ("kiln.cli.serve:serve", "Serve a model over HTTP (REST, MLflow and KServe V2)."),
    "package": ("kiln.cli.serve:package", "Package a model as a wheel and a Dockerfile."),
    "predict": ("kiln.cli.serve:predict", "Score a Parquet or CSV file with a model, in chunks."),
    "ui": ("kiln.cli.ui:ui", "The dashboard: runs, models, pipelines and monitoring."),
    "server": (
        "kiln.cli.server:server",
        "The team server: MLflow's tracking REST API over the store.",
    ),
    "monitor": (
        "kiln.cli.monitor:monitor",
        "Drift, data quality and performance of a model against its training data.",
    ),
    "import": (
        "kiln.cli.importer:import_group",
        "Import experiments, runs and models from MLflow.",
    ),
    "init": ("kiln.cli.init:init", "Create a project from kiln's template, or update one."),
    "notebook": (
        "kiln.cli.notebook:notebook",
        "Run notebooks with parameters as tracked runs; check, diff and pair them.",
    ),
}


@click.group(
    cls=LazyGroup,
    lazy_subcommands={k: v[0] for k, v in _COMMANDS.items()},
    lazy_help={k: v[1] for k, v in _COMMANDS.items()},
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@setting_option("store", metavar="URL")
@click.version_option(__version__, "-V", "--version", prog_name="kiln")
@click.pass_context
def cli(ctx: click.Context, store: str | None) -> None:
    """kiln: from notebook to production.

    Tracks experiments in an embedded store (a .kiln/ folder found like git finds .git/)
    or a team's PostgreSQL. Run `kiln COMMAND --help` for each command.
    """
    ctx.ensure_object(dict)
    ctx.obj["store"] = store


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; kiln's own errors print as one clear message and exit with status 1."""
    return run_standalone(cli, argv, "kiln")


def run_standalone(command: click.Command, argv: list[str] | None, prog: str) -> Any:
    """Run a Click command as a program: kiln's errors as one message and status 1."""
    from kiln._exceptions import KilnError

    try:
        return command.main(args=argv, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KilnError as exc:
        from kiln.cli._output import print_error

        print_error(exc)
        sys.exit(1)
