"""`kiln serve`, `kiln package` and `kiln predict`: a model over HTTP, as a wheel, on files."""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable
from typing import Any

import click

from kiln.cli._common import check_port_free, write_port
from kiln.serving import ServeConfig, predict_file
from kiln.serving import serve as serve_function

__all__ = ["package", "predict", "serve", "serve_packaged"]


def _store(ctx: click.Context) -> str | None:
    return (ctx.find_root().obj or {}).get("store")


def _default(name: str, function: Callable[..., Any] = serve_function) -> Any:
    """The default of `function`'s parameter `name` (written once, there)."""
    return inspect.signature(function).parameters[name].default


def _click_type(field: dataclasses.Field[Any]) -> Any:
    """The Click type of a `ServeConfig` field: its metadata's range or choices."""
    meta = field.metadata
    if "choices" in meta:
        return click.Choice(list(meta["choices"]))
    kind = type(field.default)
    if kind is int:
        return click.IntRange(meta.get("min"), meta.get("max"))
    if kind is float:
        return click.FloatRange(
            meta.get("min"), meta.get("max"), min_open=bool(meta.get("min_open"))
        )
    return None


def config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add an option for each `ServeConfig` field whose metadata has `help`, with the
    field's default, so changing the dataclass changes the command line."""
    for field in reversed(dataclasses.fields(ServeConfig)):
        meta = field.metadata
        if "help" not in meta:
            continue
        flag = meta.get("option") or "--" + field.name.replace("_", "-")
        if isinstance(field.default, bool):
            option = click.option(
                flag, field.name, is_flag=True, default=field.default, help=meta["help"]
            )
        else:
            option = click.option(
                flag,
                field.name,
                default=field.default,
                show_default=field.default is not None,
                type=_click_type(field),
                envvar=meta.get("envvar"),
                help=meta["help"],
            )
        command = option(command)
    return command


@click.command()
@click.argument("model_uri")
@click.option("--host", default=_default("host"), show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=_default("port"),
    show_default=True,
    type=int,
    help="Port to bind (0: a free one; see --port-file).",
)
@click.option(
    "--port-file",
    type=click.Path(dir_okay=False),
    help="Write the bound port to this file once the server is ready (for --port 0).",
)
@click.option(
    "--workers",
    default=_default("workers"),
    show_default=True,
    type=click.IntRange(1),
    help="Worker processes.",
)
@click.option("--no-auth", is_flag=True, help="Serve off loopback without a token, on purpose.")
@config_options
@click.option(
    "--log-level", default=_default("log_level"), show_default=True, help="uvicorn's log level."
)
@click.pass_context
def serve(ctx: click.Context, model_uri: str, **opts: Any) -> None:
    """Serve MODEL_URI over HTTP: /predict, /invocations, /v2/..., /metrics, /docs.

    MODEL_URI is runs:/<run id>/model, models:/NAME@ALIAS, models:/NAME/3 or a folder.
    An alias is watched: when it moves, the new version is loaded and swapped in.
    """
    fields = {f.name for f in dataclasses.fields(ServeConfig)}
    config = ServeConfig(
        **{name: value for name, value in opts.items() if name in fields},
        store=_store(ctx),
    )
    config.token = config.token or None  # an empty KILN_TOKEN is no token
    host, port = str(opts["host"]), int(opts["port"])
    check_port_free(host, port)
    port_file = opts["port_file"]
    if port_file is not None and not os.path.isdir(os.path.dirname(os.path.abspath(port_file))):
        raise click.BadParameter(
            f"the folder of {port_file!r} does not exist; create it, or name a file in an "
            "existing folder.",
            param_hint="'--port-file'",
        )

    def ready(url: str) -> None:  # once the model is loaded and the port bound
        if port_file is not None:
            write_port(port_file, int(url.rsplit(":", 1)[1]))
        click.echo(f"Serving {model_uri} on {url} (docs: /docs)", err=True)

    serve_function(
        model_uri,
        host=host,
        port=port,
        workers=int(opts["workers"]),
        no_auth=bool(opts["no_auth"]),
        log_level=str(opts["log_level"]),
        config=config,
        on_ready=ready,
    )


@click.command()
@click.argument("model_uri")
@click.option(
    "-o",
    "--output",
    default="dist",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the wheel and Dockerfile.",
)
@click.option("--name", help="Distribution name (default: kiln-model-<model name>).")
@click.option(
    "--version",
    "version",
    help="Distribution version (default: the registry version of a models:/ URI, else 1.0.0).",
)
@click.option(
    "--kiln-wheel",
    type=click.Path(exists=True),
    help="A kiln-ml wheel (or a folder with one) to put beside the model's "
    "(default: built from kiln's source tree when kiln runs from one).",
)
@click.pass_context
def package(
    ctx: click.Context,
    model_uri: str,
    output: str,
    name: str | None,
    version: str | None,
    kiln_wheel: str | None,
) -> None:
    """Package MODEL_URI as a wheel that serves it, with kiln-ml's wheel and a Dockerfile.

    Install offline with `pip install --find-links DIR DIR/<model wheel>`, then run its
    command (printed below) to serve the model.
    """
    from kiln.serving import build_package

    result = build_package(
        model_uri,
        output,
        name=name,
        version=version,
        store=_store(ctx),
        kiln_wheel=kiln_wheel,
    )
    click.echo(f"Wheel:      {result['wheel']}")
    if result["version"]:
        aliases = f" (aliases: {result['aliases']})" if result["aliases"] else ""
        click.echo(f"Model:      version {result['version']}{aliases}")
    click.echo(f"kiln-ml:    {result['kiln_wheel'] or 'from your package index'}")
    click.echo(f"Dockerfile: {result['dockerfile']}")
    click.echo(f"Install:    pip install --find-links {output} {result['wheel']}")
    click.echo(f"Command:    {result['command']} --port 8000")


def serve_packaged(model_dir: Any, argv: list[str], *, prog: str, about: str) -> Any:
    """Run the command of a wheel made by `kiln package`: `kiln serve` on the packaged
    model folder, with its own help (the model never changes, so no alias is watched)."""

    hidden = {"model_uri", "reload_interval"}

    def run(**opts: Any) -> None:
        ctx = click.get_current_context()
        ctx.invoke(serve, model_uri=os.fspath(model_dir), reload_interval=0.0, **opts)

    command = click.Command(
        prog,
        callback=run,
        params=[p for p in serve.params if p.name not in hidden],
        help=f"{about}, served over HTTP: /predict, /invocations, /v2/..., /metrics, /docs.\n\n"
        "The model is inside this package; its files are checked against their recorded "
        "hashes when it loads.",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    from kiln.cli import run_standalone

    return run_standalone(command, argv, prog)


@click.command()
@click.argument("model_uri")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Parquet (or .csv) file to write.",
)
@click.option(
    "--chunk-size",
    default=_default("chunk_size", predict_file),
    show_default=True,
    type=click.IntRange(1),
    help="Rows read, validated and predicted at a time.",
)
@click.option("--proba", is_flag=True, help="Add one probability column per class.")
@click.option(
    "--keep", "keep", multiple=True, help="Input column to copy to the output (repeatable)."
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Load a model whose files run code when loaded (pickle, unlisted skops types); "
    "only for a model you trust as your own code.",
)
@click.option(
    "--device",
    default=_default("device", predict_file),
    show_default=True,
    help="Where a PyTorch model runs: cpu, cuda, cuda:N, mps, or auto (CUDA when available).",
)
@click.option(
    "--model-threads",
    default=_default("model_threads", predict_file),
    show_default=True,
    type=click.IntRange(0),
    help="Threads the model uses: n_jobs and OpenMP/BLAS pools (0: every core).",
)
@click.pass_context
def predict(
    ctx: click.Context,
    model_uri: str,
    source: str,
    output: str,
    chunk_size: int,
    proba: bool,
    keep: tuple[str, ...],
    trust_pickle: bool,
    device: str,
    model_threads: int,
) -> None:
    """Score SOURCE (Parquet or CSV) with MODEL_URI, in chunks, into --output."""
    rows = predict_file(
        model_uri,
        source,
        output,
        chunk_size=chunk_size,
        proba=proba,
        keep=list(keep),
        store=_store(ctx),
        trust_pickle=trust_pickle,
        device=device,
        model_threads=model_threads,
    )
    click.echo(f"Wrote {rows:,} predictions to {output}")
