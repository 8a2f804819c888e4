"""What every dashboard page shares: templates, the store's clients, JSON answers.

Pages are Starlette routes in `_pages_*.py` modules, each with a `ROUTES` list that
`create_app` mounts. A page renders a Jinja2 template that extends `base.html`
(autoescaped: run names, params and tags are user input), and every page's data is also
served as JSON under `/api/` by a route of the same module.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._jsonable import plain

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from kiln.registry import RegistryClient
    from kiln.tracking import TrackingClient

__all__ = ["STATIC", "TEMPLATES", "api", "client", "fmt_time", "plain", "registry", "render"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every value is escaped unless a template says otherwise
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = fmt_time
    env.filters["number"] = _number
    env.filters["tojson_attr"] = lambda v: json.dumps(plain(v))
    return env


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """An HTML page: `template` rendered with `context`, the request and the nav."""
    from starlette.responses import HTMLResponse

    html = _environment().get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code)


def api(data: Any, status_code: int = 200) -> Response:
    """A JSON answer (NaN and infinity as null, times as ISO 8601)."""
    from starlette.responses import Response as Plain

    body = json.dumps(plain(data), separators=(",", ":"), allow_nan=False)
    return Plain(body, status_code=status_code, media_type="application/json")


def client(request: Request) -> TrackingClient:
    """The app's tracking client (one per app, opened on first use)."""
    state = request.app.state
    if getattr(state, "client", None) is None:
        from kiln.tracking import TrackingClient

        state.client = TrackingClient(state.store)
    found: TrackingClient = state.client
    return found


def registry(request: Request) -> RegistryClient:
    """The app's model registry, over the same store as `client`."""
    state = request.app.state
    if getattr(state, "registry", None) is None:
        from kiln.registry import RegistryClient

        state.registry = RegistryClient(client(request))
    found: RegistryClient = state.registry
    return found


def fmt_time(ms: Any) -> str:
    """Milliseconds since the epoch as `2026-12-04 21:35:26` (UTC); '' for None."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}"
    return str(value)
