"""The home page and the health probe."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["ROUTES"]


async def home(request: Request) -> Response:
    return RedirectResponse("/experiments", status_code=302)


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def plotly_js(request: Request) -> Response:
    """plotly.js from the installed plotly package: no CDN (the machines may be offline)."""
    from importlib.resources import files

    from starlette.responses import FileResponse

    from kiln._extras import require

    require("plotly", "ui", "The dashboard's charts")
    path = files("plotly") / "package_data" / "plotly.min.js"
    return FileResponse(
        str(path), media_type="text/javascript", headers={"cache-control": "max-age=86400"}
    )


ROUTES = [
    Route("/", home),
    Route("/health", health),
    Route("/ready", health),
    Route("/static/plotly.min.js", plotly_js),
]
