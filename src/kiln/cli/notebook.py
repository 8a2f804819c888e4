"""`kiln notebook`: run notebooks with parameters, check, diff and pair them."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from kiln.cli._common import json_option, setting_option, start_web_server
from kiln.cli._output import echo_json

__all__ = ["notebook"]


@click.group()
def notebook() -> None:
    """Run notebooks with parameters as tracked runs; check, diff and pair them."""


def _store(ctx: click.Context) -> str | None:
    return (ctx.find_root().obj or {}).get("store")


def _pairs(values: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    pairs = []
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint=option)
        pairs.append((name.strip(), value))
    return pairs


def _yaml_mapping(text: str | bytes, where: str, option: str) -> dict[str, Any]:
    """A YAML mapping, read as papermill reads it: dates stay strings."""
    import yaml

    class NoDates(yaml.SafeLoader):
        pass

    NoDates.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    try:
        loaded = yaml.load(text, Loader=NoDates)
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"{where} is not valid YAML: {exc}", param_hint=option) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise click.BadParameter(
            f"{where} must hold a mapping of name: value; got a {type(loaded).__name__}",
            param_hint=option,
        )
    return loaded


def _parameters(
    params: tuple[str, ...],
    raw: tuple[str, ...],
    files: tuple[str, ...],
    yamls: tuple[str, ...] = (),
    base64s: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The parameters, merged in papermill's order: -b, -f, -y, then -p and -r."""
    import base64
    import binascii

    from kiln.notebooks import parse_value

    values: dict[str, Any] = {}
    for text in base64s:
        try:
            decoded = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise click.BadParameter(
                f"{text[:40]!r} is not base64: {exc}", param_hint="-b"
            ) from exc
        values.update(_yaml_mapping(decoded, "The base64 parameters", "-b"))
    for file in files:
        with open(file, encoding="utf-8") as fh:
            values.update(_yaml_mapping(fh.read(), file, "-f"))
    for text in yamls:
        values.update(_yaml_mapping(text, f"{text[:40]!r}", "-y"))
    for name, value in _pairs(params, "-p"):
        values[name] = parse_value(value)
    for name, value in _pairs(raw, "-r"):
        values[name] = value
    return values


@notebook.command("run")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A parameter, typed as papermill -p does (3 int, 3.5 float, True, None, "
                   "else a string). Repeatable.")  # fmt: skip
@click.option("-r", "--raw", "raw", multiple=True, metavar="NAME=VALUE",
              help="A parameter kept as a string. Repeatable.")  # fmt: skip
@click.option("-f", "--params-file", "--parameters_file", "files", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="A YAML file of parameters (lists, dicts, typed values). Repeatable.")  # fmt: skip
@click.option("-y", "--parameters-yaml", "--parameters_yaml", "yamls", multiple=True, metavar="YAML",
              help="Parameters as a YAML string, e.g. -y 'ids: [1, 2]'. Repeatable.")  # fmt: skip
@click.option("-b", "--parameters-base64", "--parameters_base64", "base64s", multiple=True,
              metavar="BASE64", help="Parameters as base64-encoded YAML. Repeatable.")  # fmt: skip
@click.option("-g", "--grid", "grid", multiple=True, metavar="NAME=V1,V2,...",
              help="Run every combination of these values (each a child run of one sweep).")  # fmt: skip
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --grid: notebooks run at once.")  # fmt: skip
@click.option("--objective", metavar="METRIC",
              help="With --grid: mark the run with the best value of this logged metric.")  # fmt: skip
@click.option("--direction", type=click.Choice(["max", "min"]),
              help="With --objective: which way is better (default: the metric's known direction, else max).")  # fmt: skip
@click.option("-o", "--output", metavar="PATH",
              help="Write the executed notebook here ({name} fields filled from parameters).")  # fmt: skip
@click.option("-e", "--experiment", help="The run's experiment.")
@click.option("-n", "--name", help="The run's name (default: the notebook's file name).")
@click.option("--cwd", type=click.Path(file_okay=False), help="The kernel's working directory.")
@click.option("-k", "--kernel", "kernel_name", help="Kernel name (default: the notebook's).")
@click.option("-t", "--timeout", type=click.FloatRange(min=0), default=3600.0, show_default=True,
              metavar="SECONDS", help="Seconds each cell may run; 0 for no limit.")  # fmt: skip
@click.option("--allow-unknown-params", is_flag=True,
              help="Inject parameters the 'parameters' cell does not define, or with no such cell.")  # fmt: skip
@click.option("--html", is_flag=True,
              help="Store nbconvert's HTML render instead of kiln's own (fast) HTML page.")  # fmt: skip
@click.option("--no-preload", is_flag=True,
              help="Do not let the fresh kernel import the notebook's imports as it boots.")  # fmt: skip
@click.option("--no-fork", is_flag=True,
              help="With --grid: start every kernel from scratch instead of forking each "
                   "fresh kernel from a process that imported the libraries once.")  # fmt: skip
@json_option
@click.pass_context
def run_cmd(
    ctx: click.Context,
    path: str,
    params: tuple[str, ...],
    raw: tuple[str, ...],
    files: tuple[str, ...],
    yamls: tuple[str, ...],
    base64s: tuple[str, ...],
    grid: tuple[str, ...],
    jobs: int,
    objective: str | None,
    direction: str | None,
    output: str | None,
    experiment: str | None,
    name: str | None,
    cwd: str | None,
    kernel_name: str | None,
    timeout: float | None,
    allow_unknown_params: bool,
    html: bool,
    no_preload: bool,
    no_fork: bool,
    as_json: bool,
) -> None:
    """Execute a notebook top to bottom in a fresh kernel, as a tracked run.

    Parameters go into a cell tagged 'injected-parameters' after the cell tagged
    'parameters', as papermill does, merged in papermill's order (-b, -f, -y, then -p and
    -r). A failing cell exits with status 1, naming the cell. On SIGTERM the running cell
    is interrupted, the partial notebook saved (to -o and the run) and the run marked
    killed before kiln exits.
    """
    from kiln.notebooks import parse_value, run_grid, run_notebook

    values = _parameters(params, raw, files, yamls, base64s)
    common: dict[str, Any] = {
        "output": output,
        "experiment": experiment,
        "name": name,
        "cwd": cwd,
        "kernel_name": kernel_name,
        "timeout": timeout or None,  # 0: no limit
        "allow_unknown_params": allow_unknown_params,
        "html": html,
        "preload": not no_preload,
        "store": _store(ctx),
    }
    if grid:
        axes = {n: [parse_value(v) for v in vals.split(",")] for n, vals in _pairs(grid, "--grid")}
        sweep = run_grid(
            path, axes, values, jobs=jobs, fork=not no_fork, objective=objective,
            direction=direction, **common,
        )  # fmt: skip
        rows = [
            {"run_id": r.run_id, "status": r.status, "parameters": r.parameters,
             "seconds": round(r.seconds, 3), "output": r.output_path,
             "failed_cell": r.error.cell_index if r.error else None}
            for r in sweep.results
        ]  # fmt: skip
        best = sweep.best.run_id if sweep.best is not None else None
        if as_json:
            out: dict[str, Any] = {"sweep_run_id": sweep.run_id, "runs": rows}
            if objective:
                out.update(objective=objective, direction=sweep.direction, best_run_id=best,
                           best_value=sweep.best_value)  # fmt: skip
            echo_json(out)
        else:
            for row in rows:
                mark = " *" if row["run_id"] == best else ""
                click.echo(f"{row['status']:8} {row['run_id'][:12]}  {row['parameters']}{mark}")
            click.echo(f"sweep {sweep.run_id}: {len(rows)} runs in {sweep.seconds:.1f}s")
            if objective and best is not None:
                click.echo(
                    f"best ({sweep.direction} {objective}): {best[:12]} with {sweep.best_value:g}"
                )
        if objective and best is None:
            click.echo(
                f"No finished run logged the metric {objective!r}: none is marked best.", err=True
            )
        if sweep.failed:
            for r in sweep.failed:
                click.echo(f"Error in {r.parameters}: {r.error}", err=True)
            sys.exit(1)
        return
    if jobs != 1:
        raise click.UsageError("--jobs applies to --grid sweeps only.")
    if objective or direction:
        raise click.UsageError("--objective and --direction apply to --grid sweeps only.")
    result = run_notebook(path, values, **common)
    if as_json:
        echo_json({"run_id": result.run_id, "status": result.status,
                   "seconds": round(result.seconds, 3), "output": result.output_path})  # fmt: skip
    else:
        click.echo(f"{result.status} run {result.run_id} in {result.seconds:.1f}s")


@notebook.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--rerun", is_flag=True, help="Also execute a fresh copy and compare outputs.")
@click.option("--rtol", type=float, default=1e-6, show_default=True,
              help="Relative tolerance for numbers when comparing outputs.")  # fmt: skip
@click.option("--no-imports", is_flag=True, help="Skip checking imports against pyproject.toml.")
@click.option("-t", "--timeout", type=float, default=600.0, show_default=True,
              help="Per-cell time limit of the rerun.")  # fmt: skip
@click.option("--strict", is_flag=True, help="Warnings (no 'parameters' cell) fail the check too.")
@click.option("--lax", is_flag=True,
              help="Compare only cells marked '# NBVAL_CHECK_OUTPUT' (as pytest --nbval-lax).")  # fmt: skip
@click.option("--sanitize-with", type=click.Path(exists=True, dir_okay=False),
              help="An nbval sanitize file of 'regex:'/'replace:' lines applied before comparing.")  # fmt: skip
@json_option
def check_cmd(
    path: str,
    rerun: bool,
    rtol: float,
    no_imports: bool,
    timeout: float,
    strict: bool,
    lax: bool,
    sanitize_with: str | None,
    as_json: bool,
) -> None:
    """Check a saved notebook for hidden state and out-of-order execution; exit 1 on errors.

    With --rerun, nbval's cell markers are honoured (# NBVAL_SKIP, # NBVAL_IGNORE_OUTPUT,
    # NBVAL_RAISES_EXCEPTION, # NBVAL_CHECK_OUTPUT and their tags). Warnings are printed
    but fail the check only with --strict.
    """
    from kiln.notebooks import check_notebook

    report = check_notebook(
        path,
        rerun=rerun,
        rtol=rtol,
        imports=not no_imports,
        timeout=timeout,
        strict=strict,
        lax=lax,
        sanitize_with=sanitize_with,
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        for f in report.findings:
            where = "notebook" if f.cell is None else f"cell {f.cell}"
            level = "warning: " if f.severity == "warning" else ""
            click.echo(f"{path}: {where}: {level}{f.kind}: {f.message}")
        if report.ok:
            click.echo(f"{path}: ok")
    if not report.ok:
        sys.exit(1)


@notebook.command("diff")
@click.argument("paths", nargs=-1, required=True)
@click.option("--no-outputs", is_flag=True, help="Compare sources only.")
def diff_cmd(paths: tuple[str, ...], no_outputs: bool) -> None:
    """Show a readable diff of two notebooks: sources and text outputs, images summarised.

    Takes A B, or the 7 arguments git passes to an external diff driver (see the docs).
    """
    from kiln.notebooks import diff_notebooks

    if len(paths) == 7:  # git: path old-file old-hex old-mode new-file new-hex new-mode
        a, b = paths[1], paths[4]
    elif len(paths) == 2:
        a, b = paths
    else:
        raise click.UsageError(f"Expected two notebooks A B; got {len(paths)} arguments.")
    text = diff_notebooks(a, b, outputs=not no_outputs)
    if text:
        click.echo(text)


@notebook.command("show")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--no-outputs", is_flag=True, help="Sources only.")
def show_cmd(path: str, no_outputs: bool) -> None:
    """Print a notebook as text (a git textconv): sources, text outputs, images summarised."""
    from kiln.notebooks import notebook_text

    click.echo(notebook_text(path, outputs=not no_outputs))


@notebook.command("pair")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", default="py:percent", show_default=True,
              help="The jupytext format of the text file.")  # fmt: skip
def pair_cmd(path: str, fmt: str) -> None:
    """Pair a notebook with a jupytext .py file, or sync an existing pair."""
    from kiln.notebooks import pair_notebook

    for written in pair_notebook(path, fmt):
        click.echo(f"wrote {written}")


@notebook.command("html")
@click.argument("run_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Also write it to this file.")
@click.option("--nbconvert", is_flag=True,
              help="nbconvert's full render (made once, stored with the run) instead of kiln's page.")  # fmt: skip
@click.pass_context
def html_cmd(ctx: click.Context, run_id: str, output: str | None, nbconvert: bool) -> None:
    """The HTML page of a notebook run (every run stores one), printed as its artifact path."""
    from kiln.notebooks import render_html
    from kiln.tracking import TrackingClient, get_client

    store = _store(ctx)
    client = TrackingClient(store) if store is not None else get_client()
    path = render_html(run_id, nbconvert=nbconvert, store=_store(ctx))
    if output:
        with open(output, "wb") as fh:
            fh.write(client.read_artifact(client.resolve_run_id(run_id), path))
        click.echo(f"wrote {output}")
    else:
        click.echo(path)


@notebook.command("results")
@click.argument("run_id")
@click.pass_context
def results_cmd(ctx: click.Context, run_id: str) -> None:
    """Print the values a notebook run stored with kiln.record, as JSON."""
    from kiln.notebooks import notebook_results

    found = notebook_results(run_id, store=_store(ctx))
    click.echo(json.dumps({k: _jsonable(v) for k, v in found.items()}, indent=2, default=str))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict(orient="list")
    return value


@notebook.command("app")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8866, show_default=True, type=int,
              help="Port to bind (0: a free one; see --port-file).")  # fmt: skip
@click.option("--port-file", type=click.Path(dir_okay=False),
              help="Write the bound port to this file once the app is ready (for --port 0).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Executions at once; the rest wait in a queue, their position shown.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds one execution may run before it is stopped and failed (0: no limit).")  # fmt: skip
@setting_option("token", metavar="TOKEN")
@click.option("--no-auth", is_flag=True,
              help="Serve off loopback without a token, on purpose (loudly).")  # fmt: skip
@click.pass_context
def app_cmd(
    ctx: click.Context,
    paths: tuple[str, ...],
    host: str,
    port: int,
    port_file: str | None,
    workers: int,
    timeout: float,
    token: str | None,
    no_auth: bool,
) -> None:
    """Serve notebooks as web apps: a form from the parameters cell, each submit a tracked run.

    PATHS are notebooks or folders of them (one page each, an index for several). A
    submit runs the notebook with the form's values in a warm forked kernel, as a
    tracked run, and shows its outputs without code; the same values on the same code
    return the stored result at once (/r/RUN_ID), "Run again" forces a new run. At most
    --workers run at once, the rest are queued. Bound to anything but loopback it needs
    --token (or KILN_TOKEN), or --no-auth on purpose.
    """
    from kiln.ui import notebook_app

    ready = start_web_server(
        host,
        port,
        port_file,
        no_auth=no_auth,
        name="notebook app",
        exposes="run its notebooks and read their results",
    )

    notebook_app(
        list(paths),
        host=host,
        port=port,
        workers=workers,
        timeout=timeout or None,
        token=token or None,
        no_auth=no_auth,
        store=_store(ctx),
        on_ready=ready,
    )


@notebook.command("export")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The module to write, e.g. src/mypkg/features.py.")  # fmt: skip
def export_cmd(path: str, output: str) -> None:
    """Write the code cells tagged `export` to an importable module (nbdev's habit).

    Cells tagged `export` (or starting with a `#| export` line) are written in order,
    under a header naming the notebook and its git commit. `kiln notebook check` warns
    when the module is older than the notebook's export cells.
    """
    from kiln.notebooks import export_notebook

    click.echo(f"wrote {export_notebook(path, output)}")
