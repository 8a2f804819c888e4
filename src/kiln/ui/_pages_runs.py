"""Dashboard pages: experiments, the runs table, a run, and runs compared.

Each page has its JSON twin under `/api/` (same data, same query string). The runs table
pages by keyset (`TrackingClient.search_runs_page`): the page after a cursor is found by
the last run's sort values, so it stays fast at 100,000 runs. Metric charts are fed by
`/api/runs/{id}/metrics/{key}?points=N`, downsampled in the database (`_series`).
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.routing import Route

from kiln._exceptions import FilterSyntaxError, TrackingError, UnknownFilterKeyWarning
from kiln.ui._runs_table import (
    Column,
    RunsView,
    available_columns,
    cell,
    default_columns,
    field_ref,
)
from kiln.ui._web import api, client, fmt_time, plain, render

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from kiln.tracking import Run, TrackingClient

__all__ = ["ROUTES"]

_PIPELINE = "kiln.pipeline"
_MAX_CHILDREN = 1000
_MAX_COMPARE = 50
_CSV_PAGE = 5000


# ------------------------------------------------------------------ experiments
def _experiments(tracking: TrackingClient, metric: str, direction: str) -> list[dict[str, Any]]:
    """Live experiments with their top-level run count, last activity and (with `metric`)
    the best latest value of it among their runs: two aggregate queries."""
    from sqlalchemy import and_, func, select

    from kiln.store import schema as s

    e, r = s.experiments, s.runs
    live_top = and_(r.c.experiment_id == e.c.id, r.c.deleted_at.is_(None), r.c.parent_id.is_(None))
    query = (
        select(
            e.c.id,
            e.c.name,
            e.c.created_at,
            func.count(r.c.id),
            func.max(func.coalesce(r.c.end_time, r.c.start_time)),
        )
        .select_from(e.outerjoin(r, live_top))
        .where(e.c.deleted_at.is_(None))
        .group_by(e.c.id, e.c.name, e.c.created_at)
        .order_by(e.c.name)
    )
    best: dict[int, float] = {}
    with tracking.store.read() as conn:
        rows = conn.execute(query).all()
        if metric:
            for i, _name, _created, n, _last in rows:
                if n:
                    value = _best(conn, int(i), int(n), metric, direction)
                    if value is not None:
                        best[int(i)] = value
    return [
        {
            "id": int(i),
            "name": name,
            "created_at": int(created),
            "runs": int(n),
            "last_activity": None if last is None else int(last),
            "best": best.get(int(i)),
        }
        for i, name, created, n, last in rows
    ]


# The best value of a metric in one experiment. A large experiment walks the metric's
# (key, value) index from the best end and stops at its first run; a small one reads its
# own runs' values. (CROSS JOIN fixes SQLite's join order; elsewhere it is a plain join.)
_BEST_FROM_INDEX = """
SELECT o.value FROM latest_metrics o CROSS JOIN runs r
WHERE o."key" = :key AND r.id = o.run_id AND r.experiment_id = :exp
  AND r.deleted_at IS NULL AND r.parent_id IS NULL
ORDER BY o.value {order} LIMIT 1
"""
_BEST_FROM_RUNS = """
SELECT {pick}(o.value) FROM runs r CROSS JOIN latest_metrics o
WHERE r.experiment_id = :exp AND r.deleted_at IS NULL AND r.parent_id IS NULL
  AND o.run_id = r.id AND o."key" = :key
"""


def _best(conn: Any, experiment_id: int, n_runs: int, metric: str, direction: str) -> float | None:
    from sqlalchemy import text

    if n_runs > 2000:
        sql = _BEST_FROM_INDEX.format(order="ASC" if direction == "min" else "DESC")
    else:
        sql = _BEST_FROM_RUNS.format(pick="min" if direction == "min" else "max")
    value = conn.execute(text(sql), {"key": metric, "exp": experiment_id}).scalar()
    return None if value is None else float(value)


def _experiments_data(request: Request) -> dict[str, Any]:
    from kiln.tracking import metric_direction

    metric = request.query_params.get("metric", "").strip()
    asked = request.query_params.get("direction", "").strip().lower()
    if asked and asked not in ("max", "min"):
        raise HTTPException(400, f"direction is 'max' or 'min'; got {asked!r}.")
    known = metric_direction(metric) if metric else None
    direction = asked or known or "max"
    return {
        "metric": metric,
        "metric_ref": field_ref("metrics", metric) if metric else "",
        "direction": direction,
        "direction_known": bool(asked or known),
        "experiments": _experiments(client(request), metric, direction),
    }


def experiments_page(request: Request) -> Response:
    data = _experiments_data(request)
    return render(request, "experiments.html", **data)


def experiments_api(request: Request) -> Response:
    return api(_experiments_data(request))


# ------------------------------------------------------------------ runs table
def _search(request: Request, view: RunsView, after: str | None = None) -> Any:
    """One page of the view's runs and the next cursor; a notice when a filter key is
    unknown. Raises FilterSyntaxError / TrackingError for a bad filter, order or cursor."""
    from kiln.tracking import scoped_filter

    tracking = client(request)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnknownFilterKeyWarning)
        runs, cursor = tracking.search_runs_page(
            view.experiment or None,
            scoped_filter(view.filter or None, view.children),
            view.order or None,
            view.limit,
            after if after is not None else (view.after or None),
        )
    notes = [str(w.message) for w in caught if issubclass(w.category, UnknownFilterKeyWarning)]
    return tracking.with_step_metrics(runs), cursor, notes


def _run_row(run: Run, columns: list[Column]) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "experiment": run.experiment,
        "status": run.status,
        "start_time": run.start_time,
        "duration": run.duration,
        "parent_id": run.parent_id,
        "values": {c.name: cell(run, c) for c in columns},
    }


def _runs_data(request: Request) -> tuple[dict[str, Any], int]:
    """The runs table's data and its HTTP status (400 with a message for a bad filter)."""
    view = RunsView.from_query(request.query_params)
    runs: list[Run] = []
    cursor = None
    notes: list[str] = []
    error = None
    status = 200
    try:
        runs, cursor, notes = _search(request, view)
    except (FilterSyntaxError, TrackingError) as exc:
        error, status = str(exc), 400
    columns = view.columns if view.columns is not None else default_columns(runs)
    data = {
        "view": view,
        "experiment": view.experiment,
        "filter": view.filter,
        "order": view.order,
        "limit": view.limit,
        "children": view.children,
        "columns": [c.name for c in columns],
        "runs": [_run_row(r, columns) for r in runs],
        "next": cursor,
        "error": error,
        "notes": [*view.errors, *notes],
        "_columns": columns,
        "_available": available_columns(runs),
    }
    return data, status


def runs_page(request: Request) -> Response:
    data, status = _runs_data(request)
    view: RunsView = data["view"]
    chosen = {c.name for c in data["_columns"]}
    choices = data["_available"] + [c for c in data["_columns"] if c not in data["_available"]]
    headers = [(c, *view.sort_link(c.ref)) for c in data["_columns"]]
    attributes = [
        (label, *view.sort_link(ref))
        for label, ref in (("Start", "start_time"), ("Duration", "duration"))
    ]
    return render(
        request,
        "runs.html",
        status,
        **data,
        headers=headers,
        attributes=attributes,
        name_sort=view.sort_link("name"),
        status_sort=view.sort_link("status"),
        choices=choices,
        chosen=chosen,
        csv_link=view.link("/runs.csv"),
        next_link=view.link(after=data["next"]) if data["next"] else None,
        first_link=view.link(after="") if view.after else None,
    )


def runs_api(request: Request) -> Response:
    data, status = _runs_data(request)
    if data["error"]:
        return api({"error": data["error"]}, status)
    view: RunsView = data["view"]
    out = {k: v for k, v in data.items() if not k.startswith("_") and k != "view"}
    out["next_url"] = view.link("/api/runs", after=data["next"]) if data["next"] else None
    return api(out)


def runs_csv(request: Request) -> Response:
    """The view's runs as CSV, every page of them from `after` on (streamed)."""
    from starlette.responses import StreamingResponse

    view = RunsView.from_query(request.query_params)
    view.limit = _CSV_PAGE
    try:  # the first page here, so a bad filter is a 400 rather than a broken download
        first = _search(request, view)
    except (FilterSyntaxError, TrackingError) as exc:
        return api({"error": str(exc)}, 400)

    def rows() -> Iterator[str]:  # a page at a time: each chunk is a hop to a thread
        runs, cursor, _ = first
        columns = view.columns if view.columns is not None else default_columns(runs)
        head = ["run_id", "name", "experiment", "status", "start_time", "duration"]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(head + [c.name for c in columns])
        while True:
            for r in runs:
                base = [r.id, r.name, r.experiment, r.status, fmt_time(r.start_time), r.duration]
                writer.writerow(_csv_cells(base + [cell(r, c) for c in columns]))
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if cursor is None:
                return
            runs, cursor, _ = _search(request, view, after=cursor)

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="runs.csv"'},
    )


def _csv_cells(values: list[Any]) -> list[Any]:
    """Cells for the CSV writer: None as empty, and a text cell that a spreadsheet would
    read as a formula (=, +, -, @ and not a number) quoted with a leading '."""
    return [
        ""
        if v is None
        else "'" + v
        if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") and not _is_number(v)
        else v
        for v in values
    ]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------ one run
def _children(tracking: TrackingClient, run: Run) -> dict[str, Any]:
    """A run's child runs: pipeline steps (with cache status) or sweep trials (best
    first by the sweep's objective), else plain children, newest first."""
    from kiln.tracking import metric_direction

    kids = tracking.search_runs(filter=f"parent_id = '{run.id}'", limit=_MAX_CHILDREN)
    objective = run.tags.get("kiln.sweep.objective")
    kind = "sweep" if objective else "pipeline" if f"{_PIPELINE}.target" in run.tags else "plain"
    direction = None
    if objective:
        direction = metric_direction(objective, tags=run.tags) or "max"
        sign = -1.0 if direction == "max" else 1.0

        def rank(r: Run) -> tuple[int, float]:
            value = r.metrics.get(objective)
            return (0, sign * value) if value is not None else (1, 0.0)

        kids.sort(key=rank)
    elif kind == "pipeline":
        kids = _in_step_order(kids)
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "status": r.status,
            "start_time": r.start_time,
            "duration": r.duration,
            "step": r.tags.get(f"{_PIPELINE}.step"),
            "cache": r.tags.get(f"{_PIPELINE}.cache"),
            "trial": r.tags.get("kiln.sweep.trial"),
            "objective": r.metrics.get(objective) if objective else None,
            "params": r.params,
        }
        for r in kids
    ]
    return {"kind": kind, "objective": objective, "direction": direction, "runs": rows}


def _in_step_order(steps: list[Run]) -> list[Run]:
    """A pipeline's step runs in run order: by start time, a step after the steps it
    reads (cache hits are recorded within the same millisecond)."""
    import json

    def reads(run: Run) -> set[str]:
        try:
            return set(json.loads(run.tags.get(f"{_PIPELINE}.inputs") or "{}"))
        except (ValueError, TypeError):
            return set()

    steps = sorted(steps, key=lambda r: (r.start_time, r.tags.get(f"{_PIPELINE}.step", "")))
    names = {r.tags.get(f"{_PIPELINE}.step", "") for r in steps}
    done: set[str] = set()
    out: list[Run] = []
    while steps:
        ready = next((i for i, r in enumerate(steps) if reads(r) & names <= done), 0)
        out.append(steps.pop(ready))
        done.add(out[-1].tags.get(f"{_PIPELINE}.step", ""))
    return out


def _run_data(request: Request, run_id: str) -> dict[str, Any]:
    tracking = client(request)
    run = tracking.get_run(run_id)
    env = dict(run.environment)
    diff = env.pop("git_diff", None)
    packages = env.pop("packages", None) or {}
    metric_keys = sorted(run.metrics)
    from kiln.ui._series import keys_with_history

    charted = keys_with_history(tracking.store, run.id)
    links = []
    if f"{_PIPELINE}.target" in run.tags:
        links.append(("Pipeline graph", f"/pipelines/{run.id}"))
    if run.tags.get("kiln.monitor.model"):
        model = run.tags["kiln.monitor.model"]
        links.append(("Monitoring of " + model, f"/monitoring/{quote(model, safe='')}"))
    return {
        "run": run.to_dict() | {"environment": env},
        "git_diff": diff,
        "packages": packages,
        # A chart per metric with a history; a single value reads better in the table.
        "metrics": [k for k in metric_keys if not k.startswith("system/") and k in charted],
        "system_metrics": [k for k in metric_keys if k.startswith("system/")],
        "artifacts": [
            {
                "path": a.path,
                "size": a.size,
                "sha256": a.sha256,
                "url": f"/runs/{run.id}/artifacts/{quote(a.path, safe='/')}",
            }
            for a in run.artifacts
        ],
        "children": _children(tracking, run),
        "links": links,
    }


_PRELOADED = 6  # charts whose series the page's head asks for before any script runs


def series_url(run_id: str, key: str, points: int = 1000) -> str:
    """The URL kiln.js's `kiln.series` asks for a metric's downsampled history
    (each path segment encoded as JavaScript's encodeURIComponent does)."""
    js_safe = "!'()*"
    segments = "/".join(quote(part, safe=js_safe) for part in key.split("/"))
    return f"/api/runs/{quote(run_id, safe=js_safe)}/metrics/{segments}?points={points}"


def run_page(request: Request) -> Response:
    data = _run_data(request, request.path_params["run_id"])
    run_id = data["run"]["id"]
    # The first charts' data is fetched while plotly.js loads and runs, not after.
    keys = (data["metrics"] + data["system_metrics"])[:_PRELOADED]
    preload = [series_url(run_id, k) for k in keys]
    return render(request, "run.html", **data, chart={"run": run_id}, preload=preload)


def run_api(request: Request) -> Response:
    return api(_run_data(request, request.path_params["run_id"]))


def metric_api(request: Request) -> Response:
    """A metric's history, downsampled to about `?points=` buckets (default 1000)."""
    from kiln.ui._series import MAX_POINTS, downsample

    tracking = client(request)
    run_id = tracking.resolve_run_id(request.path_params["run_id"])
    key = request.path_params["key"]
    raw = request.query_params.get("points", "1000")
    try:
        points = int(raw)
        if not 1 <= points <= MAX_POINTS:
            raise ValueError
    except ValueError:
        raise HTTPException(
            400, f"points is a whole number from 1 to {MAX_POINTS}; got {raw!r}."
        ) from None
    series = downsample(tracking.store, run_id, key, points)
    if series.total == 0:
        from kiln._exceptions import NotFoundError

        raise NotFoundError(f"Run {run_id[:12]} has no metric {key!r}.")
    return api({"run_id": run_id, **series.to_dict()})


# ------------------------------------------------------------------ compare
def _compare_data(request: Request) -> dict[str, Any]:
    from kiln.tracking import metric_direction

    asked = [i.strip() for v in request.query_params.getlist("runs") for i in v.split(",")]
    asked = [i for i in asked if i]
    if not asked:
        raise HTTPException(
            400, "Name the runs to compare: /compare?runs=ID1,ID2 (ids or prefixes)."
        )
    if len(asked) > _MAX_COMPARE:
        raise HTTPException(400, f"Compare at most {_MAX_COMPARE} runs; got {len(asked)}.")
    tracking = client(request)
    ids = list(dict.fromkeys(tracking.resolve_run_id(i) for i in asked))
    quoted = ", ".join(f"'{i}'" for i in ids)  # full ids: 32 hex characters each
    by_id = {r.id: r for r in tracking.search_runs(filter=f"id in ({quoted})")}
    runs = tracking.with_step_metrics([by_id[i] for i in ids if i in by_id])
    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics})
    differing = [k for k in param_keys if len({r.params.get(k) for r in runs}) > 1]
    best: dict[str, str | None] = {}
    for key in metric_keys:
        direction = metric_direction(key, tags=runs[0].tags if runs else None)
        have = [(r.metrics[key], r.id) for r in runs if key in r.metrics]
        best[key] = (
            (max(have) if direction == "max" else min(have))[1] if direction and have else None
        )
    sweep = len({r.parent_id for r in runs}) == 1 and any(
        "kiln.sweep.trial" in r.tags for r in runs
    )
    numeric = [k for k in differing if all(_is_number(r.params[k]) for r in runs if k in r.params)]
    charted = [k for k in metric_keys if not k.startswith(("system/", "kiln."))]
    return {
        "runs": [
            {
                "id": r.id,
                "name": r.name,
                "experiment": r.experiment,
                "status": r.status,
                "params": r.params,
                "metrics": r.metrics,
                "parent_id": r.parent_id,
            }
            for r in runs
        ],
        "param_keys": param_keys,
        "differing_params": differing,
        "metric_keys": metric_keys,
        "best": best,
        "charted_metrics": charted,
        "parallel": {
            "show": sweep or len(runs) >= 3,
            "params": numeric,
            "metrics": [k for k in charted if all(k in r.metrics for r in runs)],
        },
    }


def compare_page(request: Request) -> Response:
    data = _compare_data(request)
    return render(request, "compare.html", **plain(data))


def compare_api(request: Request) -> Response:
    return api(_compare_data(request))


ROUTES = [
    Route("/experiments", experiments_page),
    Route("/api/experiments", experiments_api),
    Route("/runs", runs_page),
    Route("/runs.csv", runs_csv),
    Route("/api/runs", runs_api),
    Route("/runs/{run_id}", run_page),
    Route("/api/runs/{run_id}", run_api),
    Route("/api/runs/{run_id}/metrics/{key:path}", metric_api),
    Route("/compare", compare_page),
    Route("/api/compare", compare_api),
]
