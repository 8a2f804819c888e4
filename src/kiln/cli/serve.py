"""`kiln serve`, `kiln package` and `kiln predict`: a model over HTTP, as a wheel, on files."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["package", "predict", "serve", "serve_packaged"]


def _store(ctx: click.Context) -> str | None:
    return (ctx.find_root().obj or {}).get("store")


@click.command()
@click.argument("model_uri")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1), help="Worker processes."
)
@click.option(
    "--token", envvar="KILN_TOKEN", help="Bearer token required off loopback [env: KILN_TOKEN]."
)
@click.option("--no-auth", is_flag=True, help="Serve off loopback without a token, on purpose.")
@click.option(
    "--max-batch",
    default=64,
    show_default=True,
    type=click.IntRange(1),
    help="Most rows per predict call.",
)
@click.option(
    "--max-wait-ms",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Longest wait for a batch to fill.",
)
@click.option(
    "--max-queue",
    default=256,
    show_default=True,
    type=click.IntRange(1),
    help="Waiting requests past which 503 is answered.",
)
@click.option(
    "--max-body",
    default=2**20,
    show_default=True,
    type=click.IntRange(1),
    help="Largest body in bytes.",
)
@click.option(
    "--log-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of requests kept in the prediction log.",
)
@click.option(
    "--log-flush",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds between prediction-log writes.",
)
@click.option(
    "--reload-interval",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds between checks of an alias for a new version (0: never).",
)
@click.option(
    "--validation",
    type=click.Choice(["strict", "warn", "off"]),
    help="Validation mode (default: the model's own).",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Load a model whose files run code when loaded (pickle, unlisted skops types); "
    "only for a model you trust as your own code.",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds for a request's headers to arrive (408 past it).",
)
@click.option(
    "--body-timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds for a request's body to arrive after its headers.",
)
@click.option(
    "--keepalive-timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds an idle kept-alive connection stays open.",
)
@click.option(
    "--max-connections",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="Most open connections per worker (lowered to fit `ulimit -n`).",
)
@click.option("--log-level", default="warning", show_default=True, help="uvicorn's log level.")
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="Where a PyTorch model runs: cpu, cuda, cuda:N, mps, or auto (CUDA when available).",
)
@click.option(
    "--model-threads",
    default=1,
    show_default=True,
    type=click.IntRange(0),
    help="Threads the model itself uses per worker: n_jobs and OpenMP/BLAS pools "
    "(0: every core). Batching and --workers do the parallel work.",
)
@click.pass_context
def serve(ctx: click.Context, model_uri: str, **opts: Any) -> None:
    """Serve MODEL_URI over HTTP: /predict, /invocations, /v2/..., /metrics, /docs.

    MODEL_URI is runs:/<run id>/model, models:/NAME@ALIAS, models:/NAME/3 or a folder.
    An alias is watched: when it moves, the new version is loaded and swapped in.
    """
    from kiln.serving import ServeConfig
    from kiln.serving import serve as run_server

    config = ServeConfig(
        max_batch=opts["max_batch"],
        max_wait_ms=opts["max_wait_ms"],
        max_queue=opts["max_queue"],
        max_body=opts["max_body"],
        log_rate=opts["log_rate"],
        log_flush_seconds=opts["log_flush"],
        reload_interval=opts["reload_interval"],
        token=opts["token"] or None,
        validation=opts["validation"],
        store=_store(ctx),
        trust_pickle=bool(opts["trust_pickle"]),
        device=str(opts["device"]),
        header_timeout=opts["header_timeout"],
        body_timeout=opts["body_timeout"],
        keepalive_timeout=opts["keepalive_timeout"],
        max_connections=opts["max_connections"],
        model_threads=opts["model_threads"],
    )
    host, port = str(opts["host"]), int(opts["port"])
    _check_port_free(host, port)

    def ready(url: str) -> None:  # once the model is loaded and the port bound
        click.echo(f"Serving {model_uri} on {url} (docs: /docs)", err=True)

    run_server(
        model_uri,
        host=host,
        port=port,
        workers=int(opts["workers"]),
        no_auth=bool(opts["no_auth"]),
        log_level=str(opts["log_level"]),
        config=config,
        on_ready=ready,
    )


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on, before the model is loaded."""
    import errno
    import socket

    from kiln._exceptions import ConfigurationError

    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return  # anything else is uvicorn's to report
            raise ConfigurationError(
                f"Port {port} on {host} is already in use by another process: stop it, or "
                "choose another port with --port (--port 0 takes a free one)."
            ) from None


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
    import os

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
    default=100_000,
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
    default="cpu",
    show_default=True,
    help="Where a PyTorch model runs: cpu, cuda, cuda:N, mps, or auto (CUDA when available).",
)
@click.option(
    "--model-threads",
    default=0,
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
    from kiln.serving import predict_file

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
