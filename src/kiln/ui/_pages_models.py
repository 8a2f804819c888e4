"""Dashboard pages: registered models, their versions, aliases and alias history, each
version's lineage (run, datasets, code commit) and evaluation report, and where it is
served (from the prediction-log runs that `kiln serve` records)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from kiln._exceptions import NotFoundError
from kiln.ui._pages_artifacts import artifact_url, find_report
from kiln.ui._web import api, client, registry, render

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from kiln.registry import ModelVersion

from kiln.tracking import SERVING_EXPERIMENT, SERVING_URI_TAG

__all__ = ["ROUTES"]

SERVING_LIMIT = 50
"""At most this many serving runs are read per model (newest first)."""


def _serving(request: Request, name: str, versions: list[ModelVersion]) -> list[dict[str, Any]]:
    """The newest prediction-log runs serving `name`, with the version each URI means now."""
    tag = f"tags.`{SERVING_URI_TAG}`"
    where = f"{tag} like 'models:/{name}/%' or {tag} like 'models:/{name}@%'"
    where += "".join(f" or {tag} = '{v.source}'" for v in versions if "'" not in v.source)
    try:
        runs = client(request).search_runs(
            experiment=SERVING_EXPERIMENT, filter=where, limit=SERVING_LIMIT
        )
    except NotFoundError:  # nothing was ever served: the experiment does not exist
        return []
    by_source = {v.source: v for v in versions}
    aliases = {a: v.version for v in versions for a in v.aliases}
    out = []
    for run in runs:
        uri = run.tags.get(SERVING_URI_TAG, "")
        version: int | None = None
        rest = uri[len(f"models:/{name}") :] if uri.startswith(f"models:/{name}") else None
        if rest is not None and rest.startswith("@"):
            version = aliases.get(rest[1:])
        elif rest is not None and rest.startswith("/"):
            ref = rest[1:]
            if ref.isdigit():
                version = int(ref)
            elif ref == "latest" and versions:
                version = versions[-1].version
        elif uri in by_source:
            version = by_source[uri].version
        else:
            continue  # a LIKE near-miss (`_` matches any character): another model
        out.append(
            {
                "run_id": run.id,
                "run_name": run.name,
                "uri": uri,
                "version": version,
                "status": run.status,
                "host": run.environment.get("host") if run.environment else None,
                "start_time": run.start_time,
                "end_time": run.end_time,
            }
        )
    return out


def _version_row(request: Request, v: ModelVersion) -> dict[str, Any]:
    lineage = v.lineage or {}
    report = None
    run_found = False
    if v.run_id:
        try:
            run = client(request).get_run(v.run_id)
        except NotFoundError:
            run = None
        if run is not None:
            run_found = True
            path = find_report(run)
            report = artifact_url(run.id, path) if path else None
    return {
        **v.to_dict(),
        "created_ms": v.created_at,
        "run_found": run_found,
        "report_url": report,
        "run_name": lineage.get("run_name"),
        "experiment": lineage.get("experiment"),
        "datasets": lineage.get("datasets") or [],
        "git_commit": lineage.get("git_commit"),
        "git_branch": lineage.get("git_branch"),
        "git_dirty": lineage.get("git_dirty"),
        "metrics": lineage.get("metrics") or {},
    }


def _model(request: Request, name: str) -> dict[str, Any]:
    reg = registry(request)
    model = reg.get_model(name)
    versions = reg.list_versions(name)
    history = reg.alias_history(name)
    serving = _serving(request, name, versions)
    served: dict[int, list[dict[str, Any]]] = {}
    for s in serving:  # newest first: a running server, or the last that served it
        if s["version"] is not None:
            served.setdefault(s["version"], []).append(
                {"uri": s["uri"], "status": s["status"], "host": s["host"], "run_id": s["run_id"]}
            )
    rows = [_version_row(request, v) for v in reversed(versions)]  # newest first
    for row in rows:
        row["served_by"] = served.get(row["version"], [])
    return {
        "model": model.to_dict(),
        "created_ms": model.created_at,
        "versions": rows,
        "history": [{**h.to_dict(), "at_ms": h.at} for h in reversed(history)],
        "serving": serving,
    }


def models_page(request: Request) -> Response:
    models = registry(request).list_models()
    return render(request, "models.html", models=models)


def models_api(request: Request) -> Response:
    return api({"models": [m.to_dict() for m in registry(request).list_models()]})


def model_page(request: Request) -> Response:
    data = _model(request, request.path_params["name"])
    return render(request, "model.html", **data)


def model_api(request: Request) -> Response:
    data = _model(request, request.path_params["name"])
    data.pop("created_ms")
    for row in data["versions"]:
        row.pop("created_ms")
    for h in data["history"]:
        h.pop("at_ms")
    return api(data)


ROUTES = [
    Route("/models", models_page),
    Route("/models/{name}", model_page),
    Route("/api/models", models_api),
    Route("/api/models/{name}", model_api),
]
