"""Dashboard pages: monitoring per model, from the runs `kiln.monitor` records.

Each monitoring run (experiment `monitoring`) is one window of a model's data, tagged
`kiln.monitor.model` (the registered name; runs of a model folder have only
`kiln.monitor.model_uri`), `kiln.monitor.version`, `kiln.monitor.since`/`until`, with
the metrics `drift/<feature>` (a distance per feature), `drifted_columns`,
`quality_errors`, `performance/<metric>`, and the artifacts `monitor.json` (the whole
report) and `monitor.html`. The model's page draws drift as a heatmap of windows by
features, performance over time, the latest report and its data-quality findings.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.routing import Route

from kiln._exceptions import NotFoundError
from kiln.ui._pages_artifacts import artifact_url, read_listed
from kiln.ui._web import api, client, fmt_time, render

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from kiln.tracking import Run

__all__ = ["EXPERIMENT", "ROUTES", "quoted"]

EXPERIMENT = "monitoring"
"""The experiment `kiln.monitor` records its runs in by default."""
MODEL_TAG = "kiln.monitor.model"
URI_TAG = "kiln.monitor.model_uri"
VERSION_TAG = "kiln.monitor.version"
WINDOWS = 200
"""At most this many windows (the newest) are drawn per model."""
RECENT = 500
"""The monitoring runs read to list the monitored models (the newest)."""


def quoted(value: str) -> str:
    """`value` as a quoted string of the runs filter language."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _key(run: Run) -> str:
    return run.tags.get(MODEL_TAG) or run.tags.get(URI_TAG) or ""


def _search(request: Request, where: str | None, limit: int) -> list[Run]:
    try:
        return client(request).search_runs(experiment=EXPERIMENT, filter=where, limit=limit)
    except NotFoundError:  # nothing monitored yet: no such experiment
        return []


def _models(request: Request) -> list[dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {}
    for run in _search(request, None, RECENT):  # newest first
        key = _key(run)
        if not key:
            continue
        entry = models.get(key)
        if entry is None:
            models[key] = entry = {
                "model": key,
                "uri": run.tags.get(URI_TAG, ""),
                "latest_run": run.id,
                "latest_time": run.start_time,
                "version": run.tags.get(VERSION_TAG),
                "drifted": run.tags.get("kiln.monitor.drifted") == "true",
                "breached": run.tags.get("kiln.monitor.breached") == "true",
                "drifted_columns": run.metrics.get("drifted_columns"),
                "quality_errors": run.metrics.get("quality_errors"),
                "windows": 0,
            }
        entry["windows"] += 1
    return sorted(models.values(), key=lambda m: m["model"])


def _window_label(run: Run) -> str:
    since, until = run.tags.get("kiln.monitor.since"), run.tags.get("kiln.monitor.until")
    if since or until:
        return f"{(since or '')[:16]} → {(until or '')[:16]}".replace("T", " ")
    return fmt_time(run.start_time)


def _model(request: Request, model: str) -> dict[str, Any]:
    if not model.strip():
        raise HTTPException(400, "Name a model: /monitoring/<model name>.")
    where = f"tags.`{MODEL_TAG}` = {quoted(model)} or tags.`{URI_TAG}` = {quoted(model)}"
    version = request.query_params.get("version")
    if version:
        where = f"({where}) and tags.`{VERSION_TAG}` = {quoted(version)}"
    runs = _search(request, where, WINDOWS)
    runs = [r for r in runs if _key(r) == model]
    if not runs:
        raise NotFoundError(
            f"No monitoring runs of model {model!r}"
            f"{f' version {version}' if version else ''} in experiment {EXPERIMENT!r}; "
            "record some with kiln.monitor(...) or kiln monitor. See /monitoring."
        )
    runs.sort(key=lambda r: (r.tags.get("kiln.monitor.since") or "", r.start_time))
    features = sorted({k[6:] for r in runs for k in r.metrics if k.startswith("drift/")})
    perf = sorted({k[12:] for r in runs for k in r.metrics if k.startswith("performance/")})
    labels: list[str] = []
    for r in runs:  # unique, or a category axis would merge two windows
        label = _window_label(r)
        labels.append(f"{label} · {r.id[:6]}" if label in labels else label)
    windows = [
        {
            "run_id": r.id,
            "label": label,
            "version": r.tags.get(VERSION_TAG),
            "since": r.tags.get("kiln.monitor.since"),
            "until": r.tags.get("kiln.monitor.until"),
            "start_time": r.start_time,
            "drifted": r.tags.get("kiln.monitor.drifted") == "true",
            "breached": r.tags.get("kiln.monitor.breached") == "true",
            "drifted_columns": r.metrics.get("drifted_columns"),
            "drift_share": r.metrics.get("drift_share"),
            "quality_errors": r.metrics.get("quality_errors"),
            "quality_warnings": r.metrics.get("quality_warnings"),
            "n_current": r.metrics.get("n_current"),
        }
        for r, label in zip(runs, labels, strict=True)
    ]
    drift = {
        "windows": [w["label"] for w in windows],
        "features": features,
        "z": [[r.metrics.get(f"drift/{f}") for r in runs] for f in features],
    }
    performance = {
        "windows": [w["label"] for w in windows],
        "series": {m: [r.metrics.get(f"performance/{m}") for r in runs] for m in perf},
    }
    latest = runs[-1]
    paths = {a.path for a in latest.artifacts} if latest.artifacts else set()
    if not paths:
        latest = client(request).get_run(latest.id)  # search_runs leaves artifacts unread
        paths = {a.path for a in latest.artifacts}
    report_url = artifact_url(latest.id, "monitor.html", "raw") if "monitor.html" in paths else None
    quality: list[dict[str, Any]] = []
    alerts: list[str] = []
    note = None
    if "monitor.json" in paths:
        try:
            _, data = read_listed(request, latest, "monitor.json")
            report = json.loads(data)
            quality = [q for q in report.get("quality") or [] if isinstance(q, dict)]
            alerts = [str(a) for a in report.get("alerts") or []]
        except (ValueError, NotFoundError, OSError) as exc:
            note = f"The latest report's monitor.json could not be read: {exc}"
    return {
        "model": model,
        "version": version,
        "windows": windows,
        "drift": drift,
        "performance": performance,
        "latest": {"run_id": latest.id, "name": latest.name, "label": _window_label(latest)},
        "report_url": report_url,
        "quality": quality,
        "alerts": alerts,
        "note": note,
    }


def monitoring_page(request: Request) -> Response:
    return render(request, "monitoring.html", models=_models(request))


def monitoring_api(request: Request) -> Response:
    return api({"models": _models(request)})


def model_page(request: Request) -> Response:
    data = _model(request, request.path_params["model"])
    charts = {"drift": data["drift"], "performance": data["performance"]}
    return render(request, "monitoring_model.html", charts=charts, **data)


def model_api(request: Request) -> Response:
    return api(_model(request, request.path_params["model"]))


ROUTES = [
    Route("/monitoring", monitoring_page),
    Route("/monitoring/{model:path}", model_page),
    Route("/api/monitoring", monitoring_api),
    Route("/api/monitoring/{model:path}", model_api),
]
