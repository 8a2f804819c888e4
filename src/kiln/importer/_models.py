"""MLflow's model registry into kiln's: versions, aliases and descriptions.

A kiln model version points at a kiln saved model: a folder of a run's artifacts
holding `kiln-model.json`. An MLflow version whose files are such a folder (a kiln model
logged to MLflow) is registered; one whose files are an MLflow model (an `MLmodel` file
and, most often, a pickle) cannot be, since kiln never unpickles: its files still come
along as the run's artifacts, and the report says so.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._exceptions import KilnError
from kiln.importer._report import ImportReport, SkippedItem
from kiln.importer._source import pages

if TYPE_CHECKING:
    from kiln.registry import RegistryClient
    from kiln.tracking import TrackingClient

__all__ = ["import_models"]

_MANIFEST = "kiln-model.json"
_PAGE = 100
_TAG = "kiln.imported_from"


def import_models(
    mlflow: Any,
    client: TrackingClient | None,
    report: ImportReport,
    runs: dict[str, str],
    *,
    artifacts: bool,
    progress: Callable[[str, int, int, str], None] | None,
) -> None:
    """Import every registered model of `mlflow` whose versions kiln can hold."""
    from kiln.registry import RegistryClient

    try:
        models = pages(
            lambda token: mlflow.search_registered_models(max_results=_PAGE, page_token=token)
        )
    except Exception as exc:  # noqa: BLE001 - a source without a registry (an old server)
        report.skipped.append(
            SkippedItem("model registry", report.source, f"could not be read: {exc}")
        )
        return
    registry = RegistryClient(client) if client is not None else None
    models.sort(key=lambda m: m.name)
    for i, model in enumerate(models):
        if progress is not None:
            progress("models", i, len(models), model.name)
        try:
            _import_model(mlflow, registry, model, report, runs, artifacts=artifacts)
        except Exception as exc:  # noqa: BLE001 - reported; the import goes on
            report.failed.append(SkippedItem("model", model.name, f"{type(exc).__name__}: {exc}"))
    if progress is not None:
        progress("models", len(models), len(models), "")


def _import_model(
    mlflow: Any,
    registry: RegistryClient | None,
    model: Any,
    report: ImportReport,
    runs: dict[str, str],
    *,
    artifacts: bool,
) -> None:
    name = model.name
    quoted = name.replace("'", "\\'")
    versions = pages(
        lambda token: mlflow.search_model_versions(
            f"name='{quoted}'", max_results=_PAGE, page_token=token
        )
    )
    versions.sort(key=lambda v: int(v.version))
    existing = _imported_versions(registry, name)
    kiln_version: dict[str, int] = {}  # MLflow version -> kiln version
    imported = 0
    for mv in versions:
        key = f"mlflow:models:/{name}/{mv.version}"
        label = f"{name}/{mv.version}"
        if key in existing:
            report.versions_skipped += 1
            kiln_version[str(mv.version)] = existing[key]
            continue
        where = _location(mlflow, mv, runs)
        if isinstance(where, str):
            report.skipped.append(SkippedItem("model version", label, where))
            continue
        kiln_run, path = where
        if registry is None or report.dry_run:
            report.versions += 1
            imported += 1
            kiln_version[str(mv.version)] = 0
            continue
        tags = {**dict(mv.tags or {}), "mlflow.version": str(mv.version), _TAG: key}
        if mv.description:
            tags["mlflow.description"] = mv.description
        if mv.current_stage and mv.current_stage != "None":
            tags["mlflow.stage"] = mv.current_stage
        try:
            version = registry.register(
                f"runs:/{kiln_run}/{path}", name, description=model.description or None, tags=tags
            )
        except KilnError as exc:
            hint = " (artifacts were not imported: --no-artifacts)" if not artifacts else ""
            report.skipped.append(SkippedItem("model version", label, f"{exc}{hint}"))
            continue
        report.versions += 1
        imported += 1
        kiln_version[str(mv.version)] = version.version
    if imported:
        report.models += 1
    _import_aliases(registry, model, kiln_version, report)
    if model.tags:
        report.skipped.append(
            SkippedItem(
                "model tags",
                name,
                f"kiln's registered models have no tags ({', '.join(sorted(model.tags))}); "
                "the tags of each version were kept.",
            )
        )


def _imported_versions(registry: RegistryClient | None, name: str) -> dict[str, int]:
    from kiln.registry import ModelNotFoundError

    if registry is None:
        return {}
    try:
        versions = registry.list_versions(name)
    except (ModelNotFoundError, KilnError):
        return {}
    return {v.tags[_TAG]: v.version for v in versions if _TAG in v.tags}


def _import_aliases(
    registry: RegistryClient | None,
    model: Any,
    kiln_version: dict[str, int],
    report: ImportReport,
) -> None:
    aliases = model.aliases or {}
    pairs = (
        aliases.items() if isinstance(aliases, dict) else [(a.alias, a.version) for a in aliases]
    )
    for alias, version in sorted(pairs):
        target = kiln_version.get(str(version))
        label = f"{model.name}@{alias}"
        if target is None:
            report.skipped.append(
                SkippedItem("alias", label, f"it points at version {version}, not imported.")
            )
            continue
        if registry is None or report.dry_run:
            report.aliases += 1
            continue
        try:
            change = registry.set_alias(model.name, alias, target)
        except KilnError as exc:
            report.skipped.append(SkippedItem("alias", label, str(exc)))
            continue
        report.aliases += change.action != "unchanged"


def _location(mlflow: Any, mv: Any, runs: dict[str, str]) -> tuple[str, str] | str:
    """(kiln run id, artifact path) of a version's kiln saved model, or why there is none."""
    source = str(mv.source or "")
    run_id = mv.run_id
    if not run_id:
        return (
            f"it was not made by a run (source {source}); kiln registers models saved in "
            "a run's artifacts."
        )
    if run_id not in runs:
        return f"its run {run_id} was not imported (see the runs skipped or failed)."
    marker = f"/{run_id}/artifacts/"
    if source.startswith(f"runs:/{run_id}/"):
        path = source[len(f"runs:/{run_id}/") :]
    elif marker in source:
        path = source.split(marker, 1)[1]
    else:
        return (
            f"its files ({source}) are not among its run's artifacts (an MLflow 3 logged "
            "model, say); kiln imports the artifacts of runs."
        )
    path = path.strip("/")
    names = {f.path for f in mlflow.list_artifacts(run_id, path)}
    if f"{path}/{_MANIFEST}" in names:
        return runs[run_id], path
    if not names:
        return f"its run {run_id} has no artifacts at {path}/ (its source is {source})."
    flavors = _flavors(mlflow, run_id, path) if f"{path}/MLmodel" in names else None
    what = (
        f"an MLflow model (flavors: {', '.join(flavors) or 'none'})"
        if flavors is not None
        else "no saved model of any kind"
    )
    return (
        f"its files ({path}/ of run {run_id}) are {what}, not a kiln saved model (no "
        f"{_MANIFEST}); kiln never unpickles MLflow's models. They were imported as the "
        f"run's artifacts: load the model with MLflow, save it with kiln, then register it."
    )


def _flavors(mlflow: Any, run_id: str, path: str) -> list[str]:
    """The flavors an MLmodel file names (read as YAML data, nothing loaded)."""
    import yaml

    with tempfile.TemporaryDirectory(prefix="kiln-import-") as tmp:
        local = mlflow.download_artifacts(run_id, f"{path}/MLmodel", dst_path=tmp)
        meta = yaml.safe_load(Path(local).read_text(encoding="utf-8"))
    flavors = meta.get("flavors") if isinstance(meta, dict) else None
    return sorted(flavors) if isinstance(flavors, dict) else []
