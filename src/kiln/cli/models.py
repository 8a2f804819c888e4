"""`kiln models`: list, show, register and alias registered models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kiln.cli._common import client_for_listing, client_from, json_option, store_place
from kiln.cli._output import echo_json, fmt_time, table

if TYPE_CHECKING:
    from kiln.registry import AliasChange, ModelVersion, RegistryClient

__all__ = ["models"]


def _registry(ctx: click.Context, *, create: bool = False) -> RegistryClient:
    """The registry of the chosen store; only commands that write pass create=True."""
    from kiln.registry import RegistryClient

    return RegistryClient(client_from(ctx, create=create))


@click.group()
def models() -> None:
    """List, show, register and alias registered models."""


@models.command("list")
@json_option
@click.pass_context
def list_models(ctx: click.Context, as_json: bool) -> None:
    """List registered models with their latest version and aliases."""
    from kiln.registry import RegistryClient

    client = client_for_listing(ctx, "registered models", as_json=as_json)
    if client is None:
        return
    found = RegistryClient(client).list_models()
    if as_json:
        echo_json([m.to_dict() for m in found])
        return
    if not found:
        click.echo(
            f"No registered models found in {store_place(client)}. Register one with: "
            "kiln models register RUN_ID NAME"
        )
        return
    rows = [
        [
            m.name,
            m.latest_version,
            m.n_versions,
            _aliases_text(m.aliases),
            fmt_time(m.created_at),
            m.description or "",
        ]
        for m in found
    ]
    table(None, ["name", "latest", "versions", "aliases", "created", "description"], rows)


@models.command("show")
@click.argument("model")
@json_option
@click.pass_context
def show(ctx: click.Context, model: str, as_json: bool) -> None:
    """Show a model and its versions, or one version with its lineage.

    MODEL is NAME, NAME/VERSION, NAME@ALIAS, NAME/latest, or a models:/ URI.
    """
    from kiln.registry import parse_model_ref

    registry = _registry(ctx)
    name, ref = parse_model_ref(model)
    if ref is not None:
        _show_version(registry.get_model_version(name, ref), as_json)
        return
    info = registry.get_model(name)
    versions = registry.list_versions(name)
    if as_json:
        echo_json({**info.to_dict(), "versions": [v.to_dict() for v in versions]})
        return
    from kiln.cli._output import console

    out = console()
    out.print(f"[bold]Model {info.name}[/]", highlight=False)
    for key, value in (
        ("description", info.description or ""),
        ("created", fmt_time(info.created_at)),
        ("aliases", _aliases_text(info.aliases)),
    ):
        if value:
            out.print(f"  {key:<11} {value}", markup=False)
    table(
        "Versions",
        ["version", "aliases", "registered", "user", "run", "flavor", "source"],
        [
            [
                v.version,
                ", ".join(v.aliases),
                fmt_time(v.created_at),
                v.user or "",
                _run_text(v),
                v.flavor or "",
                v.source,
            ]
            for v in versions
        ],
    )


def _show_version(version: ModelVersion, as_json: bool) -> None:
    if as_json:
        echo_json(version.to_dict())
        return
    from kiln.cli._output import console

    out = console()
    lineage = version.lineage
    out.print(f"[bold]{version.uri}[/]", highlight=False)
    git = ""
    if lineage.get("git_commit"):
        dirty = " (uncommitted changes)" if lineage.get("git_dirty") else ""
        git = f"{lineage['git_commit'][:12]}{dirty}"
    for key, value in (
        ("source", version.source),
        ("aliases", ", ".join(version.aliases)),
        ("registered", fmt_time(version.created_at)),
        ("user", version.user or ""),
        ("run", _run_text(version)),
        ("experiment", lineage.get("experiment") or ""),
        ("flavor", version.flavor or ""),
        ("git", git),
        ("copied from", lineage.get("registered_from") or ""),
    ):
        if value:
            out.print(f"  {key:<11} {value}", markup=False)
    if version.tags:
        table("Tags", ["key", "value"], sorted(version.tags.items()))
    if lineage.get("params"):
        table("Params", ["key", "value"], sorted(lineage["params"].items()))
    if lineage.get("metrics"):
        table("Metrics", ["key", "value"], sorted(lineage["metrics"].items()))
    if lineage.get("datasets"):
        table(
            "Datasets",
            ["role", "direction", "name", "rows", "cols", "fingerprint"],
            [
                [
                    d.get("role"),
                    d.get("direction"),
                    d.get("name") or "",
                    *(d.get("shape") or ["", ""]),
                    (d.get("fingerprint") or "")[:16],
                ]
                for d in lineage["datasets"]
            ],
        )
    files = lineage.get("model_files") or {}
    if files:
        table("Files", ["path", "sha256"], [[p, sha[:16]] for p, sha in sorted(files.items())])


def _run_text(version: ModelVersion) -> str:
    if not version.run_id:
        return ""
    name = version.lineage.get("run_name")
    return f"{version.run_id[:12]} {name}" if name else version.run_id[:12]


def _aliases_text(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias}={version}" for alias, version in sorted(aliases.items()))


@models.command("register")
@click.argument("model")
@click.argument("name")
@click.option("-d", "--description", help="The model's description (replaces the old one).")
@click.option("-t", "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@click.option(
    "--if-changed",
    is_flag=True,
    help="Register only when MODEL is not already NAME's latest version (same source, "
    "files and tags); otherwise say so and keep that version.",
)
@json_option
@click.pass_context
def register(
    ctx: click.Context,
    model: str,
    name: str,
    description: str | None,
    tags: tuple[str, ...],
    if_changed: bool,
    as_json: bool,
) -> None:
    """Register a saved model as the next version of NAME.

    MODEL is a run id (its artifact folder model/), runs:/RUN_ID/PATH, a local folder
    holding kiln-model.json, or a models:/ URI to register again. A pipeline step's run
    that reused a cached model registers the run that saved it. With --if-changed,
    registering on every deploy adds a version only for a new model.
    """
    import time

    parsed: dict[str, str] = {}
    for tag in tags:
        key, eq, value = tag.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"expected KEY=VALUE; got {tag!r}.", param_hint="--tag")
        parsed[key] = value
    called_ms = int(time.time() * 1000)
    version = _registry(ctx, create=True).register(
        model, name, description=description, tags=parsed, if_changed=if_changed
    )
    if as_json:
        echo_json(version.to_dict())
        return
    if version.created_at < called_ms:  # --if-changed kept the latest version
        click.echo(
            f"{version.uri}, the latest version of {name!r}, is already this model (from "
            f"{version.source}, registered {fmt_time(version.created_at)}); nothing registered."
        )
        return
    click.echo(f"Registered {version.uri} from {version.source}")


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False)
@click.option("--delete", is_flag=True, help="Remove the alias instead of setting it.")
@json_option
@click.pass_context
def alias(
    ctx: click.Context, name: str, alias: str, version: str | None, delete: bool, as_json: bool
) -> None:
    """Point ALIAS of model NAME at VERSION, or remove it with --delete.

    VERSION is a version number, `latest`, or another alias (e.g. promote `staging`
    to `production` with: kiln models alias churn production staging).
    """
    if delete and version is not None:
        raise click.UsageError("Give either a VERSION or --delete, not both.")
    if not delete and version is None:
        raise click.UsageError(
            f"Missing VERSION: kiln models alias {name} {alias} VERSION (or --delete)."
        )
    registry = _registry(ctx)
    if delete:
        change = registry.delete_alias(name, alias)
    else:
        assert version is not None
        change = registry.set_alias(name, alias, version)
    if as_json:
        echo_json(change.to_dict())
        return
    click.echo(_change_text(change))


def _change_text(change: AliasChange) -> str:
    where = f"{change.name}@{change.alias}"
    if change.action == "set":
        return f"Set {where} -> version {change.new_version}."
    if change.action == "move":
        return f"Moved {where} from version {change.old_version} to {change.new_version}."
    if change.action == "remove":
        return f"Removed {where} (it pointed at version {change.old_version})."
    return f"{where} already points at version {change.new_version}; nothing changed."


@models.command("history")
@click.argument("name")
@click.argument("alias", required=False)
@json_option
@click.pass_context
def history(ctx: click.Context, name: str, alias: str | None, as_json: bool) -> None:
    """Show every set, move and removal of the aliases of NAME (or of one ALIAS)."""
    changes = _registry(ctx).alias_history(name, alias)
    if as_json:
        echo_json([c.to_dict() for c in changes])
        return
    if not changes:
        click.echo(
            f"No alias of {name} has been set yet. Set one with: "
            f"kiln models alias {name} ALIAS VERSION"
        )
        return
    rows: list[list[Any]] = [
        [
            fmt_time(c.at),
            c.alias,
            c.action,
            "" if c.old_version is None else c.old_version,
            "" if c.new_version is None else c.new_version,
            f"{c.user or ''}@{c.host or ''}",
        ]
        for c in changes
    ]
    table(f"Alias history of {name}", ["at", "alias", "action", "from", "to", "by"], rows)


@models.command("compare")
@click.argument("model_a", metavar="A")
@click.argument("model_b", metavar="B")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Held-out rows with the target column: a .parquet or .csv file.",
)
@click.option("--target", required=True, help="The name of the target column in --data.")
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Load a model whose files run code when loaded (pickle, unlisted skops types); "
    "only for a model you trust as your own code.",
)
@json_option
@click.pass_context
def compare(
    ctx: click.Context,
    model_a: str,
    model_b: str,
    data_path: str,
    target: str,
    trust_pickle: bool,
    as_json: bool,
) -> None:
    """Score A and B on the same held-out data and say which is better on which metric.

    A and B are NAME/VERSION, NAME@ALIAS, models:/ or runs:/ URIs, or model folders, e.g.
    `kiln models compare churn@production churn/4 --data test.parquet --target churned`.
    """
    from pathlib import Path

    from kiln._datafile import read_data_file
    from kiln.cli.evaluate import check_column
    from kiln.evaluate import compare as compare_models

    frame = read_data_file(data_path)
    check_column(target, list(frame.columns), Path(data_path), "--target")
    store = (ctx.find_root().obj or {}).get("store")
    result = compare_models(
        model_a,
        model_b,
        frame.drop(columns=[target]),
        frame[target],
        store=store,
        trust_pickle=trust_pickle,
    )
    if as_json:
        echo_json(result.to_dict())
        return
    rows = [
        [
            m.name,
            "n/a" if m.a is None else f"{m.a:.4f}",
            "n/a" if m.b is None else f"{m.b:.4f}",
            "higher" if m.higher_is_better else "lower",
            {"a": model_a, "b": model_b, "tie": "tie"}.get(m.better or "", ""),
        ]
        for m in result.metrics
    ]
    title = f"{model_a} (A) vs {model_b} (B): {result.task}, {result.n_rows} rows"
    table(title, ["metric", "A", "B", "better is", "better"], rows)
    click.echo(result.verdict)
    for line in result.drift:
        click.echo(f"Note: outside the training data of {line}")
