"""`kiln run`, `kiln pipeline show`, `kiln lineage`: run a project's pipeline and trace outputs.

`kiln run` first checks the state file of the last run (stdlib only): when no project
source, param or input file changed, it says so without importing the pipeline.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from kiln.cli._common import json_option

__all__ = ["lineage", "pipeline", "run"]

_STYLE = {
    "done": "green",
    "cached": "cyan",
    "failed": "red",
    "skipped": "yellow",
    "running": "blue",
    "would run": "magenta",
    "not run": "dim",
}


def _target(target: str | None) -> tuple[Any, str]:
    from kiln.pipeline import find_root, tool_config

    root = find_root()
    if target:
        return root, target
    found = tool_config(root).get("pipeline")
    if not found:
        raise click.UsageError(
            f"No pipeline given and {root / 'pyproject.toml'} has no [tool.kiln] pipeline. "
            "Pass one (kiln run pkg.steps or kiln run pkg.steps:pipeline) or add\n"
            '  [tool.kiln]\n  pipeline = "pkg.steps"'
        )
    return root, str(found)


def _store(ctx: click.Context) -> str | None:
    return (ctx.find_root().obj or {}).get("store")


@click.command()
@click.argument("target", required=False)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a param, e.g. -p train.alpha=0.3 (repeatable).",
)
@click.option(
    "--force", multiple=True, metavar="STEP", help="Re-run STEP even if cached (repeatable)."
)
@click.option("--from", "from_step", metavar="STEP", help="Re-run STEP and everything downstream.")
@click.option(
    "--only", multiple=True, metavar="STEP", help="Run only STEP; inputs come from the cache."
)
@click.option("--no-cache", is_flag=True, help="Re-run every step.")
@click.option("-n", "--dry-run", is_flag=True, help="Say what would run and why; run nothing.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Steps run at once.",
)
@click.option(
    "--runner",
    type=click.Choice(["inprocess", "processes", "ray"]),
    default=None,
    help="Where steps run [default: processes when --jobs > 1, else inprocess].",
)
@click.option("--address", metavar="ADDR", help="The Ray cluster to join (default: a local Ray).")
@click.option(
    "-e", "--experiment", help="Experiment of the pipeline run (default: the pipeline's name)."
)
@json_option
@click.pass_context
def run(
    ctx: click.Context,
    target: str | None,
    params: tuple[str, ...],
    force: tuple[str, ...],
    from_step: str | None,
    only: tuple[str, ...],
    no_cache: bool,
    dry_run: bool,
    jobs: int,
    runner: str | None,
    address: str | None,
    experiment: str | None,
    as_json: bool,
) -> None:
    """Run the project's pipeline: only steps whose code, params or inputs changed.

    TARGET is `pkg.module` (every public function is a step), `pkg.module:pipeline` or a
    .py file; default: `[tool.kiln] pipeline` in pyproject.toml.
    """
    from kiln.pipeline import parse_overrides, up_to_date

    root, target = _target(target)
    overrides = parse_overrides(params)
    store = _store(ctx)
    if not (force or from_step or only or no_cache or dry_run):
        state = up_to_date(root, target, overrides, store)
        # Recorded as a tracked run like any other (a pipeline run whose steps are all
        # cache hits), straight into an embedded store; elsewhere the full path below
        # records it.
        noop_id = None
        if state is not None:
            from kiln.pipeline import record_noop

            noop_id = record_noop(state, store, experiment)
        if state is not None and noop_id is not None:
            n = len(state.get("order") or [])
            if as_json:
                from kiln.cli._output import echo_json

                echo_json(
                    {
                        "run_id": noop_id,
                        "up_to_date": True,
                        "last_run_id": state.get("run_id"),
                        "steps": {},
                    }
                )
            else:
                click.echo(
                    f"Nothing changed: {n} steps up to date (run {noop_id[:12]}; outputs from "
                    f"run {str(state.get('run_id'))[:12]})."
                )
            return
    from kiln.pipeline import load_target
    from kiln.tracking import configure

    if store:
        configure(store)
    pipe = load_target(target, root)
    kwargs: dict[str, Any] = {
        "overrides": overrides,
        "force": force,
        "from_step": from_step,
        "only": only or None,
        "no_cache": no_cache,
    }
    if dry_run:
        result = pipe.plan(**kwargs)
        _report(result, as_json, title="Dry run: nothing was run")
        return
    runner = runner or ("processes" if jobs > 1 else "inprocess")
    with _LiveView(pipe, enabled=not as_json) as view:
        result = pipe.run(
            **kwargs,
            runner=runner,
            jobs=jobs,
            address=address,
            experiment=experiment,
            on_event=view.update,
            raise_on_failure=False,
            target=target,
        )
    _report(result, as_json, title=f"Pipeline run {result.run_id}")
    if result.failed:
        from kiln.cli._output import console

        err = console(stderr=True)
        for name in result.failed:
            err.print(f"[bold red]Step {name} failed[/]", soft_wrap=True)
            err.print(result.steps[name].error or "", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


class _LiveView:
    """A Rich live table of steps (pending, running, cached, done, failed) on a terminal;
    one line per finished step otherwise."""

    def __init__(self, pipe: Any, enabled: bool) -> None:
        from kiln.cli._output import is_tty

        self.enabled = enabled
        self.tty = enabled and is_tty()
        self.status = dict.fromkeys(pipe.steps, "pending")
        self.live: Any = None

    def __enter__(self) -> _LiveView:
        if self.tty:
            from rich.live import Live

            from kiln.cli._output import console

            self.live = Live(self._table(), console=console(), refresh_per_second=8, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def _table(self) -> Any:
        from rich.table import Table

        t = Table(show_header=False, box=None)
        for name, status in self.status.items():
            t.add_row(name, f"[{_STYLE.get(status, 'white')}]{status}[/]")
        return t

    def update(self, outcome: Any) -> None:
        self.status[outcome.name] = outcome.status
        if self.live is not None:
            self.live.update(self._table())
        elif self.enabled and outcome.status != "running":
            secs = "" if outcome.seconds is None else f" {outcome.seconds:.2f}s"
            click.echo(f"  {outcome.status:<8} {outcome.name}{secs}  {outcome.reason}".rstrip())


def _report(result: Any, as_json: bool, title: str) -> None:
    from kiln.cli._output import echo_json, table

    if as_json:
        echo_json(
            {
                "run_id": result.run_id,
                "steps": {
                    n: {
                        "status": o.status,
                        "reason": o.reason,
                        "key": o.key,
                        "run_id": o.run_id,
                        "output": o.output,
                        "seconds": o.seconds,
                        "error": o.error,
                    }
                    for n, o in result.steps.items()
                },
            }
        )
        return
    rows = [
        [n, o.status, "" if o.seconds is None else f"{o.seconds:.2f}s", o.reason]
        for n, o in result.steps.items()
    ]
    table(title, ["step", "status", "time", "why"], rows)


@click.group()
def pipeline() -> None:
    """Inspect the project's pipeline."""


@pipeline.command("show")
@click.argument("target", required=False)
@json_option
def show(target: str | None, as_json: bool) -> None:
    """Print the graph: each step, the steps and params it reads, and its last status."""
    from kiln.cli._output import echo_json, fmt_time, table
    from kiln.pipeline import load_target, read_state

    root, target = _target(target)
    pipe = load_target(target, root)
    last = (read_state(root) or {}).get("steps", {})
    rows = []
    data = {}
    for name, s in pipe.steps.items():
        rec = last.get(name) or {}
        reads = [a for a in s.args if a not in s.deps]
        data[name] = {"needs": list(s.deps), "reads": reads, "last": rec}
        when = fmt_time(int(rec["end"] * 1000)) if rec.get("end") else ""
        rows.append(
            [name, ", ".join(s.deps), ", ".join(reads), rec.get("status", "never run"), when]
        )
    if as_json:
        echo_json(data)
        return
    table(f"Pipeline {pipe.name} ({root})", ["step", "needs", "reads", "last status", "when"], rows)


@click.command()
@click.argument("output")
@json_option
def lineage(output: str, as_json: bool) -> None:
    """Say which step, code version, params and inputs produced OUTPUT (a step name).

    Follows the inputs up to the pipeline's sources, as of the last run in this project.
    """
    from kiln.cli._output import console, echo_json
    from kiln.pipeline import find_root
    from kiln.pipeline import lineage as trace

    tree = trace(find_root(), output)
    if as_json:
        echo_json(tree)
        return
    out = console()

    def show(node: dict[str, Any], depth: int) -> None:
        pad = "  " * depth
        out_desc = node.get("output") or {}
        out.print(
            f"{pad}[bold]{node['step']}[/]  output {out_desc.get('format', '?')} "
            f"{str(out_desc.get('sha', ''))[:12]}  ({node.get('status')})",
            soft_wrap=True,
        )
        out.print(
            f"{pad}  code {str(node.get('code_hash'))[:12]}  run {node.get('run_id')}  key {str(node.get('key'))[:12]}",
            markup=False,
            soft_wrap=True,
        )
        for k, v in sorted((node.get("params") or {}).items()):
            out.print(f"{pad}  param {k} = {v!r}", markup=False, soft_wrap=True)
        for path, sha in sorted((node.get("files") or {}).items()):
            out.print(f"{pad}  file {path} sha256 {sha[:12]}", markup=False, soft_wrap=True)
        for child in node.get("inputs", []):
            show(child, depth + 1)

    show(tree, 0)
