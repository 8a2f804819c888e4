"""`kiln notebook app`: notebooks served as web apps, a typed form in, a tracked run out.

One page per notebook: a form generated from its `parameters` cell (`notebook_form`),
checked on the server; a submit becomes a job in the `JobQueue`, executed in a warm
forked kernel (`WarmRunner`) as a tracked run; the result page shows the run's outputs
without code, in a sandboxed frame (no script of the notebook's runs in it; every value a
viewer typed is escaped). Results are cached by (notebook code, parameters): the same
submit again answers with the stored run at once, no kernel; `/r/<run id>` is each
result's shareable URL and "Run again" forces a fresh execution.

URLs: `/` (the notebooks), `/n/<name>` (form; POST submits), `/j/<job>` (queue position,
progress, cancel), `/r/<run>` (result), `/r/<run>/output` (the outputs page); JSON under
`/api/`: `/api/notebooks`, `/api/n/<name>`, `POST /api/n/<name>/runs`, `/api/jobs/<job>`,
`POST /api/jobs/<job>/cancel`, `/api/r/<run>`; `/health` and `/ready`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from kiln._exceptions import ConfigurationError, KilnError, NotFoundError, ParameterError
from kiln.ui._app import error_handlers, middleware
from kiln.ui._web import STATIC, api, render

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from kiln.notebooks import FormField, WarmRunner
    from kiln.ui._appjobs import JobQueue

__all__ = ["create_notebook_app", "notebook_app"]

KEY_TAG = "kiln.app.key"
NOTEBOOK_TAG = "kiln.app.notebook"
PARAMS_TAG = "kiln.app.parameters"


@dataclass
class _Notebook:
    slug: str
    path: str
    runner: WarmRunner

    @property
    def title(self) -> str:
        return Path(self.path).stem.replace("_", " ")

    def fields(self) -> list[FormField]:
        from kiln.notebooks import notebook_form

        return notebook_form(self.path)


def _notebooks(paths: Sequence[str]) -> list[str]:
    found: list[str] = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            found += sorted(str(n) for n in p.glob("*.ipynb") if not n.name.startswith("."))
        elif p.is_file():
            found.append(str(p))
        else:
            raise ConfigurationError(
                f"No notebook or folder at {given!r}; expected an .ipynb file or a folder of them."
            )
    if not found:
        raise ConfigurationError(
            f"No notebooks (*.ipynb) in {', '.join(paths) or 'the given paths'}; "
            "pass a notebook or a folder that holds some."
        )
    return found


def _slugs(paths: list[str]) -> dict[str, str]:
    slugs: dict[str, str] = {}
    for path in paths:
        base = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(path).stem) or "nb"
        slug, n = base, 2
        while slug in slugs:
            slug, n = f"{base}-{n}", n + 1
        slugs[slug] = path
    return slugs


def cache_key(digest: str, parameters: dict[str, Any]) -> str:
    """The cache key of one execution: the notebook's code digest and the parameters."""
    text = json.dumps(parameters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(f"{digest}\0{text}".encode()).hexdigest()


def _values(fields: list[FormField], given: list[tuple[str, str]]) -> dict[str, Any]:
    """The raw value of each field from form pairs (a list for multi-selects)."""
    raw: dict[str, Any] = {}
    for f in fields:
        items = [v for k, v in given if k == f.name]
        raw[f.name] = items if f.kind == "multi" else (items[-1] if items else None)
    return raw


def _validate(
    fields: list[FormField], raw: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        if f.name not in raw:
            values[f.name] = f.default
            continue
        try:
            values[f.name] = f.parse(raw[f.name])
        except ParameterError as exc:
            errors[f.name] = str(exc)
    return values, errors


def _shown(f: FormField, value: Any) -> Any:
    """A value as the form shows it (text; a set of texts for a multi-select)."""
    if f.kind == "multi":
        return {str(v) for v in (value if isinstance(value, list) else [value])}
    if f.kind == "bool":
        return bool(value) if not isinstance(value, str) else value.lower() in ("on", "true")
    return "" if value is None else str(value)


class _App:
    """The app's notebooks, job queue and cache; the route handlers."""

    def __init__(self, paths: Sequence[str], workers: int, timeout: float | None, store: Any):
        from kiln.notebooks import WarmRunner
        from kiln.ui._appjobs import JobQueue

        self.notebooks = {
            slug: _Notebook(slug, path, WarmRunner(path, store=store))
            for slug, path in _slugs(_notebooks(paths)).items()
        }
        self.by_path = {nb.runner.notebook: nb for nb in self.notebooks.values()}
        self.queue: JobQueue = JobQueue(
            {s: nb.runner for s, nb in self.notebooks.items()}, workers=workers, timeout=timeout
        )
        self.client = next(iter(self.notebooks.values())).runner.client
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def warm(self) -> None:
        for nb in self.notebooks.values():
            with contextlib.suppress(Exception):  # a cold start is still a start
                nb.runner.warm()

    def close(self) -> None:
        self.queue.close()
        for nb in self.notebooks.values():
            with contextlib.suppress(Exception):
                nb.runner.close()

    def notebook(self, slug: str) -> _Notebook:
        nb = self.notebooks.get(slug)
        if nb is None:
            raise NotFoundError(
                f"No notebook named {slug!r} in this app; it serves {sorted(self.notebooks)}."
            )
        return nb

    def cached(self, key: str) -> str | None:
        """The finished run of an earlier execution with this key, if any."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs = self.client.search_runs(
                filter=f"tags.`{KEY_TAG}` = '{key}' and status = 'finished'", limit=1
            )
        if not runs:
            return None
        with self._lock:
            self._cache[key] = runs[0].id
        return runs[0].id

    def submit(self, nb: _Notebook, values: dict[str, Any], again: bool) -> tuple[str, str]:
        """("run", run id) for a cached result, else ("job", job id)."""
        key = cache_key(nb.runner.digest(), values)
        if not again:
            run_id = self.cached(key)
            if run_id is not None:
                return "run", run_id
            running = self.queue.active(key)
            if running is not None:
                return "job", running.id
        text = json.dumps(values, default=str)
        tags = {KEY_TAG: key, NOTEBOOK_TAG: nb.slug, PARAMS_TAG: text}
        job = self.queue.submit(nb.slug, values, key, tags)
        return "job", job.id

    def job(self, job_id: str) -> Any:
        job = self.queue.get(job_id)
        if job is None:
            raise NotFoundError(f"No job {job_id!r} (unknown, or forgotten since).")
        if job.state == "finished" and job.run_id is not None:
            with self._lock:
                self._cache[job.key] = job.run_id
        return job

    def run(self, run_id: str) -> tuple[Any, _Notebook]:
        """A run this app made, and its notebook; NotFoundError for any other run."""
        run = self.client.get_run(run_id)
        nb = self.notebooks.get(run.tags.get(NOTEBOOK_TAG, ""))
        if nb is None:
            raise NotFoundError(f"Run {run_id!r} is not a result of this app's notebooks.")
        return run, nb


def _state(request: Request) -> _App:
    app: _App = request.app.state.nbapp
    return app


def _form_ctx(
    app: _App, nb: _Notebook, raw: dict[str, Any] | None, errors: dict[str, str]
) -> dict[str, Any]:
    fields = nb.fields()
    rows = []
    for f in fields:
        value = f.default if raw is None or f.name not in raw else raw[f.name]
        rows.append({"field": f, "value": _shown(f, value), "error": errors.get(f.name)})
    return {"nb": nb, "rows": rows, "notebooks": app.notebooks, "errors": errors}


async def index(request: Request) -> Response:
    from starlette.responses import RedirectResponse

    app = _state(request)
    if len(app.notebooks) == 1:
        return RedirectResponse(f"/n/{next(iter(app.notebooks))}", status_code=302)
    return render(request, "app_index.html", notebooks=app.notebooks)


async def health(request: Request) -> Response:
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("ok")


async def form_page(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    app = _state(request)
    nb = app.notebook(request.path_params["slug"])
    given = list(request.query_params.multi_items())
    fields = await run_in_threadpool(nb.fields)
    names = {k for k, _ in given}
    raw = {k: v for k, v in _values(fields, given).items() if k in names}
    ctx = await run_in_threadpool(_form_ctx, app, nb, raw, {})
    return render(request, "app_form.html", **ctx)


async def form_submit(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import RedirectResponse

    app = _state(request)
    nb = app.notebook(request.path_params["slug"])
    body = (await request.body()).decode("utf-8", "replace")
    pairs = parse_qsl(body, keep_blank_values=True)
    fields = await run_in_threadpool(nb.fields)
    raw = _values(fields, pairs)
    values, errors = _validate(fields, raw)
    if errors:
        ctx = await run_in_threadpool(_form_ctx, app, nb, raw, errors)
        # 200, as a form shown again with its errors is (a 400 is what /api/ answers).
        return render(request, "app_form.html", 200, **ctx)
    again = any(k == "again" for k, _ in pairs)
    kind, ident = await run_in_threadpool(app.submit, nb, values, again)
    return RedirectResponse(f"/r/{ident}" if kind == "run" else f"/j/{ident}", status_code=303)


async def job_page(request: Request) -> Response:
    app = _state(request)
    job = app.job(request.path_params["job_id"])
    nb = app.notebook(job.slug)
    return render(request, "app_job.html", nb=nb, job=app.queue.snapshot(job))


async def job_cancel(request: Request) -> Response:
    from starlette.responses import RedirectResponse

    app = _state(request)
    job = app.job(request.path_params["job_id"])
    app.queue.cancel(job)
    if request.url.path.startswith("/api/"):
        return api(app.queue.snapshot(job))
    return RedirectResponse(f"/j/{job.id}", status_code=303)


def _result(app: _App, run_id: str) -> dict[str, Any]:
    run, nb = app.run(run_id)
    try:
        params = json.loads(run.tags.get(PARAMS_TAG) or "{}")
    except ValueError:
        params = {}
    failed = run.tags.get("kiln.failed_cell")
    return {
        "run_id": run.id,
        "notebook": nb.slug,
        "status": run.status,
        "parameters": params,
        "failed_cell": int(failed) if failed not in (None, "", "None") else None,
        "error": run.tags.get("kiln.app.error"),
        "stopped": run.tags.get("kiln.app.stopped"),
        "start_time": run.start_time,
        "end_time": run.end_time,
    }


async def result_page(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    app = _state(request)
    data = await run_in_threadpool(_result, app, request.path_params["run_id"])
    nb = app.notebook(data["notebook"])
    fields = await run_in_threadpool(nb.fields)
    hidden: list[tuple[str, str]] = []  # the values again, for "Run again"
    for f in fields:
        if f.name not in data["parameters"]:
            continue
        value = data["parameters"][f.name]
        if f.kind == "multi":
            hidden += [(f.name, str(v)) for v in (value or [])]
        elif f.kind == "bool":
            hidden += [(f.name, "on")] if value else []
        else:
            hidden.append((f.name, "" if value is None else str(value)))
    from urllib.parse import urlencode

    # The link to the form spells unchecked boxes out ("off"), so they stay unchecked.
    off = [
        (f.name, "off")
        for f in fields
        if f.kind == "bool" and not data["parameters"].get(f.name, True)
    ]
    change = urlencode(hidden + off)
    return render(request, "app_result.html", nb=nb, result=data, hidden=hidden, change=change)


async def result_output(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import HTMLResponse

    app = _state(request)

    def read() -> bytes:
        run, nb = app.run(request.path_params["run_id"])
        try:
            return app.client.read_artifact(run.id, nb.runner.page_path)
        except KilnError as exc:  # no such artifact: a run still going, or a failed store
            raise NotFoundError(f"Run {run.id[:12]} has no result page yet: {exc}") from None

    body = await run_in_threadpool(read)
    # No script of the notebook's runs here: the page is sandboxed (and framed so).
    csp = (
        "sandbox allow-same-origin; default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'; font-src data:"
    )
    return HTMLResponse(
        body, headers={"content-security-policy": csp, "cache-control": "max-age=3600"}
    )


async def api_notebooks(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    app = _state(request)

    def listing() -> list[dict[str, Any]]:
        return [{"name": nb.slug, "path": nb.path, "fields": [f.__dict__ for f in nb.fields()]}
                for nb in app.notebooks.values()]  # fmt: skip

    return api(await run_in_threadpool(listing))


async def api_notebook(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    app = _state(request)
    nb = app.notebook(request.path_params["slug"])
    fields = await run_in_threadpool(nb.fields)
    return api({"name": nb.slug, "path": nb.path, "fields": [f.__dict__ for f in fields]})


async def api_submit(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    app = _state(request)
    nb = app.notebook(request.path_params["slug"])
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        return api({"error": f"The body is not JSON: {exc}"}, 400)
    given = body.get("parameters", {}) if isinstance(body, dict) else None
    if not isinstance(given, dict):
        return api({"error": 'Expected {"parameters": {name: value}, "again": false}.'}, 400)
    fields = await run_in_threadpool(nb.fields)
    names = [f.name for f in fields]
    unknown = [k for k in given if k not in names]
    if unknown:
        return api(
            {"error": f"{unknown[0]!r} is not a parameter of {nb.slug}; it takes {names}."}, 400
        )
    values, errors = _validate(fields, given)
    if errors:
        return api({"error": "Some values are not valid.", "errors": errors}, 400)
    kind, ident = await run_in_threadpool(app.submit, nb, values, bool(body.get("again")))
    if kind == "run":
        return api({"cached": True, "run_id": ident, "url": f"/r/{ident}"})
    job = app.queue.snapshot(app.job(ident))
    return api({"cached": False, "job": job, "url": f"/j/{ident}"}, 202)


async def api_job(request: Request) -> Response:
    app = _state(request)
    return api(app.queue.snapshot(app.job(request.path_params["job_id"])))


async def api_result(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    app = _state(request)
    return api(await run_in_threadpool(_result, app, request.path_params["run_id"]))


def create_notebook_app(
    paths: Sequence[str] | str,
    *,
    workers: int = 1,
    timeout: float | None = 600,
    token: str | None = None,
    store: str | None = None,
) -> Starlette:
    """Notebooks as web apps, as an ASGI app (see the module docstring).

    Args:
        paths: Notebooks, or folders of them (every `*.ipynb` in each).
        workers: Executions at once; the rest wait in the queue.
        timeout: Seconds one execution may run before it is stopped and marked failed
            (None or 0: no limit).
        token: When given, every page and API call needs it (as the dashboard's).
        store: The store URL or path the runs go to (default: the configured one).

    Returns:
        The Starlette app (serve it with `kiln.serving.run_app`, or `kiln notebook app`).
    """
    from kiln._extras import require

    require("starlette", "ui", "kiln notebook app")
    require("jinja2", "ui", "kiln notebook app")
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    state = _App(
        [paths] if isinstance(paths, str) else list(paths), workers, timeout or None, store
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        threading.Thread(target=state.warm, daemon=True, name="kiln-app-warm").start()
        try:
            yield
        finally:
            state.close()

    routes = [
        Route("/", index),
        Route("/health", health),
        Route("/ready", health),
        Route("/n/{slug}", form_page, methods=["GET"]),
        Route("/n/{slug}", form_submit, methods=["POST"]),
        Route("/j/{job_id}", job_page),
        Route("/j/{job_id}/cancel", job_cancel, methods=["POST"]),
        Route("/r/{run_id}", result_page),
        Route("/r/{run_id}/output", result_output),
        Route("/api/notebooks", api_notebooks),
        Route("/api/n/{slug}", api_notebook),
        Route("/api/n/{slug}/runs", api_submit, methods=["POST"]),
        Route("/api/jobs/{job_id}", api_job),
        Route("/api/jobs/{job_id}/cancel", job_cancel, methods=["POST"]),
        Route("/api/r/{run_id}", api_result),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware(token, what="notebook app", hint="kiln notebook app"),
        exception_handlers=error_handlers(),
        lifespan=lifespan,
    )
    app.state.nbapp = state
    app.state.store = store
    app.state.client = state.client
    app.state.token = token
    return app


def notebook_app(
    paths: Sequence[str] | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8866,
    workers: int = 1,
    timeout: float | None = 600,
    token: str | None = None,
    no_auth: bool = False,
    store: str | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve notebooks as web apps until SIGTERM or Ctrl-C (`kiln notebook app`).

    Args:
        paths: Notebooks, or folders of them.
        host: The address to bind; anything but loopback needs `token` or `no_auth`.
        port: The port (0: a free one; `on_ready` gets the URL).
        workers: Executions at once.
        timeout: Seconds one execution may run (None or 0: no limit).
        token: The token every page and API call must carry (default: `KILN_TOKEN`).
        no_auth: Serve off loopback without a token, on purpose.
        store: The store the runs go to (default: the configured one).
        on_ready: Called with the URL once listening.

    Raises:
        ConfigurationError: A non-loopback host without a token or `no_auth`; no notebooks.
    """
    from kiln._settings import get_setting
    from kiln.serving import is_loopback, run_app

    token = get_setting("token", token)
    if not is_loopback(host) and token is None and not no_auth:
        raise ConfigurationError(
            f"Serving notebooks on {host} lets the network run them, so it needs a token: "
            "pass --token TOKEN (or set KILN_TOKEN), or --no-auth to serve without one on "
            "purpose."
        )
    app = create_notebook_app(paths, workers=workers, timeout=timeout, token=token, store=store)
    run_app(app, host=host, port=port, on_ready=on_ready)
