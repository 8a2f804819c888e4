"""`kiln sweep`: a function or the project's pipeline over a grid or random points."""

from __future__ import annotations

import importlib
from typing import Any

import click

from kiln.cli._common import json_option

__all__ = ["sweep"]


def _values(items: tuple[str, ...], random_ranges: tuple[str, ...]) -> dict[str, Any]:
    import yaml

    space: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"write KEY=V1,V2,... (got {item!r})", param_hint="--grid")
        space[key.strip()] = [yaml.safe_load(v) for v in raw.split(",")]
    for item in random_ranges:
        key, sep, raw = item.partition("=")
        low, colon, high = raw.partition(":")
        if not sep or not colon:
            raise click.BadParameter(f"write KEY=LOW:HIGH (got {item!r})", param_hint="--range")
        space[key.strip()] = (yaml.safe_load(low), yaml.safe_load(high))
    return space


@click.command()
@click.argument("target", required=False)
@click.option(
    "-g", "--grid", multiple=True, metavar="KEY=V1,V2", help="Values of a param (repeatable)."
)
@click.option(
    "-r",
    "--range",
    "ranges",
    multiple=True,
    metavar="KEY=LOW:HIGH",
    help="A range, for --strategy random or optuna (repeatable).",
)
@click.option(
    "--strategy", type=click.Choice(["grid", "random", "optuna"]), default="grid", show_default=True
)
@click.option(
    "-n", "--trials", type=click.IntRange(min=1), help="Points to draw (random) or a cap (grid)."
)
@click.option(
    "-o",
    "--objective",
    default="objective",
    show_default=True,
    help="The metric that ranks trials.",
)
@click.option("--direction", type=click.Choice(["max", "min"]), default="max", show_default=True)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Trials run at once (functions only).",
)
@click.option(
    "--runner",
    type=click.Choice(["inprocess", "processes", "ray"]),
    default=None,
    help="Where trials run [default: processes when --jobs > 1].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the random points.")
@json_option
@click.pass_context
def sweep(
    ctx: click.Context,
    target: str | None,
    grid: tuple[str, ...],
    ranges: tuple[str, ...],
    strategy: str,
    trials: int | None,
    objective: str,
    direction: str,
    jobs: int,
    runner: str | None,
    seed: int,
    as_json: bool,
) -> None:
    """Run a function or the project's pipeline once per point; each trial a child run.

    TARGET is `pkg.module:function` (returns a number or a dict of metrics, called with
    the swept params) or a pipeline (`pkg.module`, `pkg.module:pipeline`; default: the
    project's), whose swept params are dotted keys such as train.C and whose last
    step returns the objective. A crashing trial is recorded as failed; the sweep goes on.
    """
    from kiln.cli._output import echo_json, table
    from kiln.cli.run import _store, _target
    from kiln.pipeline import Pipeline, add_to_path, load_target
    from kiln.pipeline import sweep as run_sweep
    from kiln.tracking import configure

    root, target = _target(target)
    if _store(ctx):
        configure(_store(ctx))
    space = _values(grid, ranges)
    options: dict[str, Any] = {
        "strategy": strategy,
        "trials": trials,
        "objective": objective,
        "direction": direction,
        "seed": seed,
    }
    module_name, _, attr = target.partition(":")
    add_to_path(root)
    obj: Any = getattr(importlib.import_module(module_name), attr) if attr else None
    if obj is not None and callable(obj) and not isinstance(obj, Pipeline):
        found = run_sweep(obj, space, jobs=jobs, runner=runner, **options)
    else:
        found = load_target(target, root).sweep(space, **options)
    frame = found.table()
    if as_json:
        echo_json({"run_id": found.run_id, "best": found.best, "trials": found.trials})
        return
    table(
        f"Sweep {found.run_id} ({objective}, {direction})",
        list(frame.columns),
        frame.values.tolist(),
    )
    best = found.best
    if best is None:
        raise click.ClickException(
            "Every trial failed; see the failed runs' errors (kiln runs show ID)."
        )
    click.echo(
        f"Best: trial {best['trial']} {best['params']} {objective}={best['metrics'][objective]:.6g}"
    )
