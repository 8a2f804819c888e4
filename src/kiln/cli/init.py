"""`kiln init NAME`: a project from kiln's template; `kiln init --update`: merge a newer one."""

from __future__ import annotations

import sys

import click

from kiln.cli._common import json_option
from kiln.cli._output import echo_json

__all__ = ["init"]


@click.command()
@click.argument("name", required=False)
@click.option(
    "--template",
    default="default",
    show_default=True,
    help="kiln's template by name, or the path of a Copier template folder with a VERSION file.",
)
@click.option(
    "--no-git",
    is_flag=True,
    help="Do not make the project a git repository (it then cannot take template updates).",
)
@click.option(
    "--no-lock", is_flag=True, help="Do not write uv.lock (`uv lock` asks the package index)."
)
@click.option(
    "--update",
    is_flag=True,
    help="Merge the template's newer version into the project NAME (default: the current "
    "folder) three-way; conflicts are marked and listed, and the exit status is 1.",
)
@click.option(
    "-d", "--description", help="One line about the project (for its README and pyproject)."
)
@click.option(
    "--kiln-wheel",
    type=click.Path(exists=True),
    help="A kiln-ml wheel (or a folder with one) for the project's wheels/ (default: the one "
    "kiln was installed from, or dist/ of kiln's source tree, built there if missing or older than the source).",
)
@json_option
def init(
    name: str | None,
    template: str,
    no_git: bool,
    no_lock: bool,
    update: bool,
    description: str | None,
    kiln_wheel: str | None,
    as_json: bool,
) -> None:
    """Create the project NAME: a pipeline, a notebook, tests, Makefile, CI and Dockerfile.

    NAME becomes the folder, the distribution and (with '-' as '_') the Python package.
    With --update, merge a newer template version into an existing project instead.
    """
    from kiln.project import init as init_project
    from kiln.project import update as update_project

    if update:
        result = update_project(name or ".", template=template, kiln_wheel=kiln_wheel)
        if as_json:
            echo_json(
                {
                    "path": str(result.path),
                    "old_version": result.old_version,
                    "new_version": result.new_version,
                    "changed": result.changed,
                    "conflicts": result.conflicts,
                }
            )
        elif not result.changed:
            click.echo(f"{result.path} is at template version {result.new_version} already.")
        else:
            click.echo(
                f"Updated {result.path} from template {result.old_version} to "
                f"{result.new_version}: {len(result.changed)} file(s) changed."
            )
            for path in result.changed:
                click.echo(f"  {'C' if path in result.conflicts else 'M'} {path}")
            if result.conflicts:
                click.echo(
                    f"{len(result.conflicts)} conflict(s): both the template and the project "
                    "changed the same lines in:\n"
                    + "".join(f"  {path}\n" for path in result.conflicts)
                    + "Resolve the <<<<<<< / >>>>>>> markers, then commit.",
                    err=True,
                )
            else:
                click.echo("Review with `git diff`, then commit.")
        if result.conflicts:
            sys.exit(1)
        return
    if not name:
        raise click.UsageError("kiln init needs the project's NAME (or --update).")
    answers = {"description": description} if description else None
    root = init_project(
        name,
        template=template,
        git=not no_git,
        answers=answers,
        kiln_wheel=kiln_wheel,
        lock=not no_lock,
    )
    if as_json:
        echo_json({"path": str(root)})
        return
    click.echo(f"Created {root}")
    if not no_lock and not (root / "uv.lock").is_file():
        from kiln._wheel import uv_executable

        click.echo(
            "No uv.lock yet: uv is not installed, and the project's tasks run with it. "
            "Install it with `pip install uv` (or see https://docs.astral.sh/uv/); "
            "`make setup` then writes uv.lock."
            if uv_executable() is None
            else "No uv.lock yet (`uv lock` failed: is the package index reachable?): "
            "`make setup` writes it, or says why it cannot."
        )
    click.echo(f"Next:  cd {name} && make setup && make test && make run")
