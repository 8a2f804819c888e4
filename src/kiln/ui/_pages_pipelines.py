"""Dashboard pages: pipeline runs and their step graph, drawn server-side as inline SVG.

A pipeline run (`kiln.Pipeline.run`, `kiln run`) is a tracked run tagged
`kiln.pipeline` (the pipeline's name) with a child run per step, tagged
`kiln.pipeline.step` (its name), `kiln.pipeline.cache` (`hit` or `miss`) and
`kiln.pipeline.inputs` (JSON: input name -> content hash; an input named after a step
is that step's output, which gives the graph's edges); a step that ran logs the metric
`kiln.pipeline.seconds`.

The graph is laid out here, in Python (no Graphviz): layers by longest path from the
sources, then nodes ordered within their layers by the barycenter of their neighbours,
a few sweeps down and up, to reduce crossings.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.routing import Route

from kiln._exceptions import NotFoundError
from kiln.ui._pages_monitoring import quoted
from kiln.ui._web import api, client, render

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from kiln.tracking import Run

__all__ = ["ROUTES", "Layout", "layout"]

TAG = "kiln.pipeline"
SECONDS = "kiln.pipeline.seconds"
LIST_LIMIT = 50
"""Pipeline runs per page of /pipelines."""
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 180, 54, 70, 22, 12
_SWEEPS = 4


@dataclass
class Layout:
    """Where each node of a DAG goes.

    Attributes:
        layers: The nodes of each layer, in their order (top to bottom).
        position: Each node's top-left corner, in SVG units.
        bends: For an edge spanning several layers, the points it passes through (the
            places of its virtual nodes in the layers between), so it goes around the
            nodes there.
        width: The drawing's width.
        height: The drawing's height.
    """

    layers: list[list[str]]
    position: dict[str, tuple[float, float]] = field(default_factory=dict)
    bends: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    width: float = 0.0
    height: float = 0.0
    slots: list[list[str]] = field(default_factory=list)

    def crossings(self, edges: list[tuple[str, str]]) -> int:
        """How many pairs of edge segments between adjacent layers cross (an edge over
        several layers counts through its virtual nodes)."""
        slots = self.slots or self.layers
        rank = {n: (li, i) for li, layer in enumerate(slots) for i, n in enumerate(layer)}
        segments = []
        for a, b in edges:
            if a not in rank or b not in rank:
                continue
            chain = [a, *_chain(a, b, rank[a][0], rank[b][0]), b]
            chain = [n for n in chain if n in rank]
            segments += [(rank[x], rank[y]) for x, y in itertools.pairwise(chain)]
        count = 0
        for i, ((la, ia), (_, ib)) in enumerate(segments):
            for (ma, ja), (_, jb) in segments[i + 1 :]:
                if la == ma and (ia - ja) * (ib - jb) < 0:
                    count += 1
        return count


def _chain(a: str, b: str, top: int, bottom: int) -> list[str]:
    """The virtual nodes of edge a -> b in the layers strictly between its ends."""
    return [f"\0{a}\0{b}\0{k}" for k in range(top + 1, bottom)]


def layout(nodes: list[str], edges: list[tuple[str, str]]) -> Layout:
    """A layered left-to-right layout of a DAG.

    Layers by longest path from a source; an edge spanning several layers gets a
    virtual node in each layer between, then every layer is ordered by the barycenter
    of its neighbours in the layer before (sweeping down) and after (sweeping up).

    Args:
        nodes: The node names, in a stable order (ties keep it).
        edges: (upstream, downstream) pairs; ends not in `nodes` are left out.

    Returns:
        The layers in order, each node's corner and each long edge's bends.
    """
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a in preds and b in preds and a != b:
            preds[b].append(a)
    depth: dict[str, int] = {}

    def visit(n: str, seen: tuple[str, ...] = ()) -> int:
        if n not in depth:
            if n in seen:  # a cycle (never from kiln): cut it
                return 0
            depth[n] = 1 + max((visit(p, (*seen, n)) for p in preds[n]), default=-1)
        return depth[n]

    for n in nodes:
        visit(n)
    n_layers = 1 + max(depth.values(), default=0)
    slots: list[list[str]] = [[] for _ in range(n_layers)]
    for n in nodes:
        slots[depth[n]].append(n)
    up: dict[str, list[str]] = {n: [] for n in nodes}
    down: dict[str, list[str]] = {n: [] for n in nodes}
    long_edges = []
    for a, b in edges:
        if a not in depth or b not in depth or depth[b] <= depth[a]:
            continue
        chain = [a, *_chain(a, b, depth[a], depth[b]), b]
        if len(chain) > 2:
            long_edges.append((a, b, chain[1:-1]))
        for k, virtual in enumerate(chain[1:-1], start=depth[a] + 1):
            slots[k].append(virtual)
            up[virtual], down[virtual] = [], []
        for x, y in itertools.pairwise(chain):
            down[x].append(y)
            up[y].append(x)

    def order(layer: list[str], fixed: list[str], links: dict[str, list[str]]) -> list[str]:
        place = {n: i for i, n in enumerate(fixed)}
        current = {n: i for i, n in enumerate(layer)}

        def barycenter(n: str) -> float:
            near = [place[m] for m in links[n] if m in place]
            return sum(near) / len(near) if near else float(current[n])

        return sorted(layer, key=lambda n: (barycenter(n), current[n]))

    for _ in range(_SWEEPS):
        for i in range(1, n_layers):
            slots[i] = order(slots[i], slots[i - 1], up)
        for i in range(n_layers - 2, -1, -1):
            slots[i] = order(slots[i], slots[i + 1], down)
    tallest = max((len(layer) for layer in slots), default=1)
    out = Layout([[n for n in layer if n in depth] for layer in slots], slots=slots)
    out.width = PAD * 2 + n_layers * NODE_W + (n_layers - 1) * GAP_X
    out.height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y
    corner: dict[str, tuple[float, float]] = {}
    for li, layer in enumerate(slots):
        offset = (tallest - len(layer)) * (NODE_H + GAP_Y) / 2  # centre short layers
        for i, n in enumerate(layer):
            corner[n] = (PAD + li * (NODE_W + GAP_X), PAD + offset + i * (NODE_H + GAP_Y))
    out.position = {n: corner[n] for n in nodes}
    for a, b, inner in long_edges:
        out.bends[(a, b)] = [(corner[v][0], corner[v][1] + NODE_H / 2) for v in inner]
    return out


def _steps(parent: Run, children: list[Run]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """One node per step (its newest child run) and the edges between steps."""
    steps: dict[str, dict[str, Any]] = {}
    inputs: dict[str, list[str]] = {}
    for run in sorted(children, key=lambda r: r.start_time):
        name = run.tags.get(f"{TAG}.step")
        if not name:
            continue
        try:
            given = json.loads(run.tags.get(f"{TAG}.inputs") or "{}")
        except ValueError:
            given = {}
        inputs[name] = sorted(given) if isinstance(given, dict) else []
        seconds = run.metrics.get(SECONDS)
        steps[name] = {
            "name": name,
            "run_id": run.id,
            "status": run.status,
            "cache": run.tags.get(f"{TAG}.cache", ""),
            "reason": run.tags.get(f"{TAG}.reason", ""),
            "seconds": seconds if seconds is not None else run.duration,
            "start_time": run.start_time,
        }
    edges = [(dep, name) for name, deps in inputs.items() for dep in deps if dep in steps]
    return list(steps.values()), edges


def _pipeline(request: Request, run_id: str) -> dict[str, Any]:
    tracking = client(request)
    run = tracking.get_run(run_id)
    if TAG not in run.tags:
        raise NotFoundError(
            f"Run {run.id[:12]} ({run.name!r}) is not a pipeline run (it has no {TAG!r} tag); "
            f"see its page at /runs/{run.id}."
        )
    children = tracking.search_runs(filter=f"parent_id = '{run.id}'", limit=10_000)
    steps, edges = _steps(run, children)
    placed = layout([s["name"] for s in steps], edges)
    for s in steps:
        s["x"], s["y"] = placed.position[s["name"]]
    by_name = {s["name"]: s for s in steps}
    paths = []
    for a, b in edges:
        points = [(by_name[a]["x"] + NODE_W, by_name[a]["y"] + NODE_H / 2)]
        for x, y in placed.bends.get((a, b), []):  # across a layer: enter, then leave it
            points += [(x, y), (x + NODE_W, y)]
        points.append((by_name[b]["x"], by_name[b]["y"] + NODE_H / 2))
        d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            if y1 == y2 or x2 - x1 == NODE_W:
                d += f" L{x2:.1f},{y2:.1f}"
            else:
                mid = (x1 + x2) / 2
                d += f" C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        paths.append({"from": a, "to": b, "d": d})
    return {
        "run": run,
        "pipeline": run.tags.get(TAG, ""),
        "steps": steps,
        "edges": paths,
        "layers": placed.layers,
        "crossings": placed.crossings(edges),
        "width": placed.width,
        "height": placed.height,
        "node": {"w": NODE_W, "h": NODE_H},
    }


def _list(request: Request) -> tuple[list[Run], int, str | None]:
    """A page of pipeline runs, newest first; `?before=<start ms>:<run id>` pages on."""
    try:
        limit = int(request.query_params.get("limit", LIST_LIMIT))
    except ValueError as exc:
        raise HTTPException(400, "limit must be a whole number, such as 50.") from exc
    limit = max(1, min(limit, 500))
    where = f"tags.`{TAG}` is not null and parent_id is null"
    name = request.query_params.get("pipeline")
    if name:
        where += f" and tags.`{TAG}` = {quoted(name)}"
    before = request.query_params.get("before")
    if before:
        ms, _, last = before.partition(":")
        if not ms.isdigit() or (last and not all(c in "0123456789abcdef" for c in last)):
            raise HTTPException(
                400, f"before={before!r} is not a page mark; expected <start ms>:<run id>."
            )
        where += f" and (start_time < {ms} or (start_time = {ms} and id < {quoted(last)}))"
    runs = client(request).search_runs(
        filter=where, order_by="start_time desc, id desc", limit=limit + 1
    )
    more = f"{runs[limit - 1].start_time}:{runs[limit - 1].id}" if len(runs) > limit else None
    return runs[:limit], limit, more


def _summary(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "pipeline": run.tags.get(TAG, ""),
        "name": run.name,
        "experiment": run.experiment,
        "status": run.status,
        "start_time": run.start_time,
        "duration": run.duration,
        "steps_done": run.metrics.get(f"{TAG}.steps_done"),
        "steps_cached": run.metrics.get(f"{TAG}.steps_cached"),
        "steps_failed": run.metrics.get(f"{TAG}.steps_failed"),
    }


def pipelines_page(request: Request) -> Response:
    runs, limit, more = _list(request)
    return render(
        request,
        "pipelines.html",
        runs=[_summary(r) for r in runs],
        limit=limit,
        more=more,
        pipeline=request.query_params.get("pipeline"),
    )


def pipelines_api(request: Request) -> Response:
    runs, _, more = _list(request)
    return api({"pipelines": [_summary(r) for r in runs], "before": more})


def pipeline_page(request: Request) -> Response:
    return render(request, "pipeline.html", **_pipeline(request, request.path_params["run_id"]))


def pipeline_api(request: Request) -> Response:
    data = _pipeline(request, request.path_params["run_id"])
    data["run"] = _summary(data["run"])
    return api(data)


ROUTES = [
    Route("/pipelines", pipelines_page),
    Route("/pipelines/{run_id}", pipeline_page),
    Route("/api/pipelines", pipelines_api),
    Route("/api/pipelines/{run_id}", pipeline_api),
]
