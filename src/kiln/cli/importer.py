"""`kiln import`: bring another tracker's history into the store (MLflow's, for now)."""

from __future__ import annotations

import sys
from typing import Any

import click

from kiln.cli._common import setting_option

__all__ = ["import_group"]


@click.group("import")
def import_group() -> None:
    """Import experiments, runs and models from another tracker."""


@import_group.command("mlflow")
@click.argument("source")
@setting_option("store", metavar="URL")
@click.option(
    "--experiment",
    "experiments",
    multiple=True,
    metavar="NAME",
    help="Import only this MLflow experiment (repeat for several; default: all).",
)
@click.option("--no-artifacts", is_flag=True, help="Leave the runs' artifact files out.")
@click.option("--dry-run", is_flag=True, help="Say what would be imported; write nothing.")
@click.pass_context
def mlflow(
    ctx: click.Context,
    source: str,
    store: str | None,
    experiments: tuple[str, ...],
    no_artifacts: bool,
    dry_run: bool,
) -> None:
    """Import an MLflow tracking store: experiments, runs, metrics, artifacts, models.

    SOURCE is an MLflow file store folder (./mlruns), an MLflow SQLite database
    (sqlite:///mlflow.db) or an MLflow server (http://host:5000). Runs keep their ids,
    names, statuses, times, params, tags and every metric's history; each carries the
    tag kiln.imported_from, so importing again skips what was imported. Registered
    versions that are kiln saved models are registered with their aliases; what kiln
    cannot hold is listed with the reason. Needs mlflow: pip install 'kiln-ml[mlflow]'.
    Exits 1 when anything failed to import.
    """
    from kiln.importer import import_mlflow

    store = store or (ctx.find_root().obj or {}).get("store")
    with _progress() as progress:
        report = import_mlflow(
            source,
            store=store,
            experiments=list(experiments) or None,
            dry_run=dry_run,
            artifacts=not no_artifacts,
            progress=progress,
        )
    _print_report(report)
    if not report.ok:
        sys.exit(1)


class _progress:
    """A Rich progress bar per stage (runs, then models), on stderr."""

    def __enter__(self) -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from kiln.cli._output import console

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[item]}"),
            console=console(stderr=True),
            transient=True,
        )
        self.tasks: dict[str, Any] = {}
        self.bar.__enter__()
        return self.update

    def update(self, stage: str, done: int, total: int, item: str) -> None:
        task = self.tasks.get(stage)
        if task is None:
            task = self.tasks[stage] = self.bar.add_task(stage, total=total, item="")
        self.bar.update(task, completed=done, total=total, item=item)

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)


def _print_report(report: Any) -> None:
    from rich.markup import escape

    from kiln.cli._output import console, table

    out = console()
    head = "Would import" if report.dry_run else "Imported"
    out.print(f"{head} from {escape(report.source)} into {escape(report.store)}", soft_wrap=True)
    table(None, ["", ""], report.rows())
    for title, items in (("Skipped", report.skipped), ("Failed", report.failed)):
        if items:
            out.print(f"[bold]{title}:[/]")
            for item in items:
                out.print(f"  {escape(item.kind)} {escape(item.name)}: {escape(item.reason)}")
    if report.dry_run:
        out.print("Dry run: nothing was written.")
