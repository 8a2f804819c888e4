"""`import_mlflow`: an MLflow tracking source's experiments, runs and models into kiln.

MLflow is read through its own client (`MlflowClient`), never its files directly, so a
file store, a SQLite or PostgreSQL database and an MLflow server all read the same.
MLflow's concepts map onto kiln's as `kiln server` maps them: statuses FINISHED, FAILED
and KILLED are kiln's finished, failed and killed; experiments match by name (MLflow's
`Default`, id 0, is kiln's `Default`); a run keeps its 32-hex id.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ConfigurationError, StoreNotFoundError, did_you_mean
from kiln.importer._models import import_models
from kiln.importer._report import ImportReport, SkippedItem
from kiln.importer._source import mlflow_client, pages, tracking_uri
from kiln.store import Store

if TYPE_CHECKING:
    from kiln.tracking import TrackingClient

__all__ = ["IMPORTED_FROM", "import_mlflow"]

#: The tag every imported run carries: `mlflow:<MLflow run id>`.
IMPORTED_FROM = "kiln.imported_from"
_STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
_PAGE = 1000

#: progress(stage, done, total, item): stage is "runs" or "models".
Progress = Callable[[str, int, int, str], None]


def import_mlflow(
    source: str | os.PathLike[str],
    store: str | os.PathLike[str] | None = None,
    experiments: Iterable[str] | None = None,
    dry_run: bool = False,
    artifacts: bool = True,
    progress: Progress | None = None,
) -> ImportReport:
    """Import an MLflow tracking source's experiments, runs and registered models.

    Runs already imported into `store` (found by their tag `kiln.imported_from`) are
    skipped, so importing again brings only what is new. A run that fails to import is
    rolled back (deleted; `kiln store gc` frees what it stored), reported in `failed`,
    and the import goes on with the next run.

    Args:
        source: MLflow's tracking data: a file store folder (`./mlruns`), a SQLite
            database (`sqlite:///mlflow.db` or its path), or an MLflow server
            (`http://host:5000`); read with MLflow's own client (`pip install
            'kiln-ml[mlflow]'`).
        store: The kiln store to import into (default: `KILN_STORE`, then the embedded one).
        experiments: Import only these MLflow experiments, by name (default: all).
        dry_run: Read everything and count what would be imported; write nothing.
        artifacts: Import each run's artifact files (under the same relative paths).
        progress: Called as `progress(stage, done, total, item)` as runs ("runs") and
            registered models ("models") are imported.

    Returns:
        What was imported, skipped (with reasons) and failed; `report.ok` is false when
        anything failed.

    Raises:
        ConfigurationError: The source does not exist or is not an MLflow store, or an
            experiment named in `experiments` is not in it.
        MissingExtraError: mlflow is not installed.
    """
    uri = tracking_uri(source)
    with mlflow_client(uri) as mlflow:
        chosen = _experiments(mlflow, uri, experiments)
        client = _kiln_client(store, dry_run)
        report = ImportReport(
            source=uri,
            store=client.store.display_url if client is not None else _display(store),
            dry_run=dry_run,
        )
        done = _imported_runs(client)
        existing = {e.name for e in client.list_experiments()} if client is not None else set()
        for experiment in chosen:  # empty ones too: an experiment is found by its name
            report.experiments.append(experiment.name)
            report.experiments_created += experiment.name not in existing
            if client is not None and not dry_run:
                client.experiment_id(experiment.name, create=True)
        runs = [(e, r) for e in chosen for r in _runs(mlflow, e.experiment_id)]
        # Oldest first: a parent run starts before its children, and is imported first.
        runs.sort(key=lambda er: (er[1].info.start_time or 0, er[1].info.run_id))
        for i, (experiment, run) in enumerate(runs):
            if progress is not None:
                progress("runs", i, len(runs), run.info.run_name or run.info.run_id)
            _import_run(mlflow, client, experiment.name, run, done, report, artifacts=artifacts)
        if progress is not None:
            progress("runs", len(runs), len(runs), "")
        runs_now = {**done, **report.run_ids}
        import_models(mlflow, client, report, runs_now, artifacts=artifacts, progress=progress)
    if client is not None:
        client.flush()
    return report


def _display(store: str | os.PathLike[str] | None) -> str:
    from kiln.store import resolve_url

    return resolve_url(store)


def _kiln_client(store: str | os.PathLike[str] | None, dry_run: bool) -> TrackingClient | None:
    """The kiln store's client; in a dry run, None when the store does not exist yet (a
    dry run creates nothing)."""
    from kiln.tracking import TrackingClient

    if not dry_run:
        return TrackingClient(store)
    try:
        return TrackingClient(Store.open(store, create=False))
    except StoreNotFoundError:
        return None


def _experiments(mlflow: Any, uri: str, names: Iterable[str] | None) -> list[Any]:
    """The source's live experiments (those named in `names`, when given)."""
    try:
        found = pages(lambda token: mlflow.search_experiments(max_results=_PAGE, page_token=token))
    except Exception as exc:
        raise ConfigurationError(
            f"Cannot read MLflow experiments from {uri}: {type(exc).__name__}: {exc}"
        ) from exc
    if names is None:
        return sorted(found, key=lambda e: e.name)
    by_name = {e.name: e for e in found}
    wanted = list(dict.fromkeys(names))
    for name in wanted:
        if name not in by_name:
            raise ConfigurationError(
                f"The MLflow source {uri} has no experiment {name!r}."
                f"{did_you_mean(name, by_name)} It has: {', '.join(sorted(by_name)) or 'none'}."
            )
    return [by_name[n] for n in wanted]


def _runs(mlflow: Any, experiment_id: str) -> list[Any]:
    return pages(
        lambda token: mlflow.search_runs(
            [experiment_id], max_results=_PAGE, page_token=token, order_by=["start_time ASC"]
        )
    )


def _imported_runs(client: TrackingClient | None) -> dict[str, str]:
    """MLflow run id -> kiln run id of the runs an earlier import brought."""
    if client is None:
        return {}
    from kiln._exceptions import UnknownFilterKeyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownFilterKeyWarning)  # none imported yet
        runs = client.search_runs(filter=f"tags.`{IMPORTED_FROM}` like 'mlflow:%'")
    return {r.tags[IMPORTED_FROM].split(":", 1)[1]: r.id for r in runs}


def _import_run(
    mlflow: Any,
    client: TrackingClient | None,
    experiment: str,
    run: Any,
    done: dict[str, str],
    report: ImportReport,
    *,
    artifacts: bool,
) -> None:
    """Import one run, or count it skipped or failed; a failed run is rolled back."""
    info = run.info
    run_id = info.run_id
    if run_id in done:
        report.runs_skipped += 1
        report.run_ids[run_id] = done[run_id]
        return
    status = _STATUS.get(info.status)
    if status is None:
        report.skipped.append(
            SkippedItem(
                "run",
                run_id,
                f"it is {info.status} in MLflow; import it again once it has ended.",
            )
        )
        return
    kiln_id: str | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="kiln-import-") as tmp:
            data = _read_run(mlflow, run, Path(tmp), report, artifacts=artifacts)
            if client is not None and not report.dry_run:
                kiln_id = _write_run(client, experiment, run, status, data, done)
    except Exception as exc:  # noqa: BLE001 - reported; the import goes on
        reason = " ".join([f"{type(exc).__name__}: {exc}", *getattr(exc, "__notes__", ())])
        report.runs_failed += 1
        report.failed.append(SkippedItem("run", run_id, reason))
        return
    report.runs_imported += 1
    report.params += len(data["params"])
    report.tags += len(data["tags"])
    report.metric_points += len(data["metrics"])
    report.artifacts += len(data["files"])
    report.artifact_bytes += sum(size for _, size in data["files"])
    # In a dry run, the id the run would keep.
    report.run_ids[run_id] = kiln_id or run_id
    if kiln_id is not None:
        done[run_id] = kiln_id


def _read_run(
    mlflow: Any, run: Any, tmp: Path, report: ImportReport, *, artifacts: bool
) -> dict[str, Any]:
    """Everything of one run, read from MLflow before anything is written to kiln."""
    run_id = run.info.run_id
    metrics: list[tuple[str, float, int, int]] = []
    for key in sorted(run.data.metrics):
        bad = 0
        for m in mlflow.get_metric_history(run_id, key):
            if math.isfinite(m.value):
                metrics.append((key, float(m.value), int(m.step), int(m.timestamp)))
            else:
                bad += 1
        if bad:
            report.skipped.append(
                SkippedItem(
                    "metric",
                    f"{key} of run {run_id}",
                    f"{bad} NaN or infinite value(s) left out: kiln stores only finite numbers.",
                )
            )
    files: list[tuple[str, int]] = []
    if artifacts:
        try:
            files = _artifact_files(mlflow, run_id, None)
            if files and not report.dry_run:
                mlflow.download_artifacts(run_id, "", dst_path=str(tmp))
        except Exception as exc:
            exc.add_note(
                f"(reading the artifacts at {run.info.artifact_uri}; to import the runs "
                "without their artifacts, pass artifacts=False: kiln import mlflow "
                "--no-artifacts)"
            )
            raise
    return {
        "params": dict(run.data.params),
        "tags": dict(run.data.tags),
        "metrics": metrics,
        "files": files,
        "folder": tmp,
    }


def _artifact_files(mlflow: Any, run_id: str, path: str | None) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for f in mlflow.list_artifacts(run_id, path):
        if f.is_dir:
            out += _artifact_files(mlflow, run_id, f.path)
        else:
            out.append((f.path, int(f.file_size or 0)))
    return out


def _write_run(
    client: TrackingClient,
    experiment: str,
    run: Any,
    status: str,
    data: dict[str, Any],
    done: dict[str, str],
) -> str:
    """Write one run read by `_read_run`; return its kiln id."""
    from kiln._exceptions import TrackingError

    info = run.info
    tags = data["tags"]
    parent = tags.get("mlflow.parentRunId")
    environment = {
        "user": tags.get("mlflow.user") or info.user_id or None,
        "entry_point": tags.get("mlflow.source.name"),
        "git_commit": tags.get("mlflow.source.git.commit"),
        "host": None,  # not the importing machine's: MLflow does not record it
        "pid": None,
    }
    create: dict[str, Any] = {
        "experiment": experiment,
        "name": (info.run_name or tags.get("mlflow.runName") or None),
        "parent_id": done.get(parent) if parent else None,
        "environment": {k: v for k, v in environment.items() if k in ("host", "pid") or v},
        "start_time": int(info.start_time) if info.start_time is not None else None,
    }
    try:
        kiln_id = client.create_run(run_id=info.run_id, **create)
    except TrackingError:  # the id is taken (a run deleted but not yet purged, say)
        kiln_id = client.create_run(**create)
    try:
        if data["params"]:
            client.log_params(kiln_id, data["params"])
        if data["metrics"]:
            client.log_metrics(kiln_id, data["metrics"])
        client.set_tags(kiln_id, {**tags, IMPORTED_FROM: f"mlflow:{info.run_id}"})
        folder: Path = data["folder"]
        for entry in sorted(folder.iterdir()) if data["files"] else []:
            client.log_artifact(kiln_id, entry, name=entry.name)
        end = int(info.end_time) if info.end_time is not None else None
        client.end_run(kiln_id, status, end_time=end)
        client.flush()
    except Exception as exc:
        exc.add_note(_roll_back(client, kiln_id))
        raise
    return kiln_id


def _roll_back(client: TrackingClient, kiln_id: str) -> str:
    """Delete a half-imported run; say what became of it, for the report."""
    # The run row may never have been written: then there is nothing to end.
    with contextlib.suppress(Exception):
        client.end_run(kiln_id, "failed", error="The import from MLflow failed.")
    try:
        client.delete_runs([kiln_id])
    except Exception as exc:  # noqa: BLE001 - said in the report
        return (
            f"Could not roll back the half-imported run {kiln_id} ({exc}): delete it with "
            f"kiln runs delete {kiln_id}."
        )
    return f"Rolled back: the half-imported run {kiln_id} was deleted."
